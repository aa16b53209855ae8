"""Notices from the store (docs/alerts.md): the policy's cycles on the worker that holds the province's
engine, the policy's memory in the `notifier_state` table, and the delivery of what it decides.

A cycle runs right after the engine has written a batch (or a clock tick) to the store, in the same
thread: it compares what holds now (the engine's open alerts, which the store holds too) with what was
told, and writes everything it decided (tracks, digest items, the messages to send) in one INSERT
before anything is sent. A worker that stops anywhere leaves either that cycle whole or nothing of it;
the next owner of the engine, on this machine or another, loads the table, sends the messages not yet
settled and compares the present with what was told, so each change is told once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.alerts import Alert, AlertKey, Transition
from rules.limits import SEVERITIES, Rules
from rules.messages import Context
from rules.notifications import EMPTY, Notice, PolicyState, Track, decide
from rules.recipients import RULES, Recipient, SchoolInfo
from rules.state import Province
from sinks.base import Store
from sinks.notifications import NotificationLog, NotifierState
from streams.delivery import Dispatcher, Sender, StoreLedger
from streams.outbox import Outgoing, plan
from streams.records import transition_record

log = logging.getLogger(__name__)


def province_wide(url: str) -> Recipient:
    """DUALTRACK_ALERT_WEBHOOK_URL without a recipients file: one contact for the whole province, every
    rule and severity."""
    return Recipient("webhook", "webhook", "province", "", url, None, frozenset(SEVERITIES), frozenset(RULES))


class Directory(Mapping[str, SchoolInfo]):
    """School names and cities for messages, read from the engine's state as needed."""

    def __init__(self, province: Province) -> None:
        self.province = province

    def __getitem__(self, school_id: str) -> SchoolInfo:
        s = self.province.schools[school_id]
        return SchoolInfo(s.name, s.city)

    def __iter__(self) -> Iterator[str]:
        return iter(self.province.schools)

    def __len__(self) -> int:
        return len(self.province.schools)


def _track_key(key: AlertKey) -> str:
    return "track|" + "\x1f".join(key)


def _queued_key(n: Notice) -> str:
    return f"queued|{n.transition_id}|{n.kind}"


def _message_key(notice_id: str) -> str:
    return f"message|{notice_id}"


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass
class Loaded:
    policy: PolicyState
    pending: dict[str, Outgoing]  # notice id -> a message decided and not yet settled
    cycle: int


def load_state(table: NotifierState) -> Loaded:
    """The policy's state and the unsettled messages, from the table's live entries."""
    entries, cycle = table.load()
    tracks: dict[AlertKey, Track] = {}
    queued: list[Notice] = []
    pending: dict[str, Outgoing] = {}
    for key, body in entries.items():
        d = json.loads(body)
        kind = key.split("|", 1)[0]
        if kind == "track":
            rule, school, subject = d["key"]
            tracks[(rule, school, subject)] = Track.from_dict(d["track"])
        elif kind == "queued":
            queued.append(Notice.from_dict(d))
        elif kind == "message":
            o = Outgoing.from_dict(d)
            pending[o.notice_id] = o
    queued.sort(key=lambda n: (n.decided_at, n.transition_id))
    return Loaded(PolicyState(tracks, tuple(queued)), pending, cycle)


def changes(before: PolicyState, after: PolicyState) -> dict[str, str]:
    """The entries that turn `before` into `after` (an empty body removes a key)."""
    out: dict[str, str] = {}
    for key in before.tracks.keys() - after.tracks.keys():
        out[_track_key(key)] = ""
    for key, track in after.tracks.items():
        if before.tracks.get(key) != track:
            out[_track_key(key)] = _dump({"key": list(key), "track": track.to_dict()})
    was = {_queued_key(n): n for n in before.queued}
    now = {_queued_key(n): n for n in after.queued}
    for name in was.keys() - now.keys():
        out[name] = ""
    for name in now.keys() - was.keys():
        out[name] = _dump(now[name].to_dict())
    return out


class Notifier:
    """The policy's cycles over one store (blocking: call it in the store's thread)."""

    def __init__(self, store: Store, rules: Rules, recipients: Sequence[Recipient]) -> None:
        self.table = NotifierState(store)
        self.ledger = NotificationLog(store)
        self.rules = rules
        self.recipients = list(recipients)
        self.policy = EMPTY
        self.pending: dict[str, Outgoing] = {}
        self.cycles = 0
        self.loaded = False
        #: messages settled since the last cycle: their entries are removed by the next one
        self._settled: set[str] = set()

    def load(self) -> list[Outgoing]:
        """Read the table (a worker that takes the engine over continues from it); returns the messages
        decided before and not yet settled, which are sent again (the ledger skips any that were)."""
        state = load_state(self.table)
        self.policy, self.cycles = state.policy, state.cycle
        done = self.ledger.settled(list(state.pending))
        self.pending = {i: o for i, o in state.pending.items() if i not in done}
        self._settled = set(done)
        self.loaded = True
        return list(self.pending.values())

    def cycle(
        self,
        transitions: Sequence[Transition],
        present: Mapping[AlertKey, Alert],
        now: datetime,
        restated: bool,
        schools: Mapping[str, SchoolInfo],
    ) -> list[Outgoing]:
        """Decide what the cycle's transitions and the present tell, record what is not told, and write
        it all before anything is sent; returns the messages to send."""
        again: list[Outgoing] = []
        if not self.loaded:
            again = self.load()  # decided before a restart or a move, and not yet settled
            restated = True  # a worker that starts compares everything that holds with what was told
        records = [transition_record(t) for t in transitions]
        decision = decide(self.policy, records, now, self.rules.notifications, present, restated)
        ctx = Context(schools, self.rules.certificate_expiring_days, self.rules.notifications.flapping_days)
        out, rows = plan(decision, self.recipients, ctx, now)
        entries = changes(self.policy, decision.state)
        entries |= {_message_key(o.notice_id): _dump(o.to_dict()) for o in out}
        entries |= {_message_key(i): "" for i in self._settled if i not in self.pending}
        if rows:  # records of what is not told: idempotent by id, harmless if the cycle is lost after
            self.ledger.record(rows)
        if entries:
            self.table.write(entries, self.cycles + 1)
            self.cycles += 1
            self._settled.clear()
        self.policy = decision.state
        self.pending.update((o.notice_id, o) for o in out)
        return again + out

    def settle(self, notice_ids: set[str]) -> None:
        """Messages delivered, refused or given up: no longer pending."""
        for i in notice_ids:
            self.pending.pop(i, None)
        self._settled |= notice_ids


class Notices:
    """Delivery of the notifier's messages on the worker that holds the engine: each batch of messages
    in a task on the event loop (an endpoint that is down never holds up the stream); the notifier's
    cycles themselves run in the store's thread (`streams.runtime.Runtime.notify`)."""

    def __init__(self, runtime: Any, senders: Mapping[str, Sender]) -> None:
        self.runtime = runtime  # streams.runtime.Runtime (not imported: it imports this module)
        self.senders = senders
        self._dispatcher: Dispatcher | None = None
        self._making = asyncio.Lock()
        self._sending: set[asyncio.Task[None]] = set()
        self._flying: set[str] = set()  # notice ids being sent

    def start(self, out: Iterable[Outgoing]) -> None:
        """Send messages (the ledger skips any settled already) in a task of their own; a message being
        sent already is not sent again."""
        todo = [o for o in out if o.notice_id not in self._flying]
        if not todo:
            return
        self._flying |= {o.notice_id for o in todo}
        task = asyncio.ensure_future(self._deliver(todo))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def retry(self) -> None:
        """Send again what is pending and not being sent (a delivery that failed on the store)."""
        notifier = self.runtime.notifier
        if notifier is not None:
            self.start(list(notifier.pending.values()))

    async def _dispatch(self) -> Dispatcher:
        async with self._making:
            if self._dispatcher is None:
                store, run = await self.runtime.ledger()
                self._dispatcher = Dispatcher(self.senders, StoreLedger(NotificationLog(store), run))
        return self._dispatcher

    async def _deliver(self, out: list[Outgoing]) -> None:
        try:
            dispatcher = await self._dispatch()
            await dispatcher.deliver(out)  # each message is delivered, refused, given up or skipped
        except Exception as err:  # the ledger's store failed: the messages stay pending (`retry`)
            log.warning("delivering %d notice(s) failed (%s); retrying later", len(out), type(err).__name__)
            return
        finally:
            self._flying -= {o.notice_id for o in out}
        notifier = self.runtime.notifier
        if notifier is not None:
            notifier.settle({o.notice_id for o in out})

    def busy(self) -> bool:
        return bool(self._sending)

    async def stop(self) -> None:
        """The engine moved to another worker: stop sending. A message being sent finishes and is
        recorded; one waiting for a retry is left to the next owner, which finds it pending."""
        for task in list(self._sending):
            task.cancel()
        if self._sending:
            await asyncio.wait(list(self._sending))
