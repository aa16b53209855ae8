"""What the agents of one worker share: the store (one writer at a time), the engine and counters.

Nothing here touches the store on the event loop: opening it, migrating, catching up and every write
run in a worker thread (`run`), one at a time, so a slow or absent ClickHouse server delays results but
never stops the consumer's heartbeats. The store is opened by the first agent that needs it; the engine
is caught up only by the worker that owns the province's engine partition, and again whenever that
partition comes back after a rebalance (another worker may have moved the log on meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from foundation.errors import DualtrackError
from foundation.settings import Settings
from rules.alerts import Transition
from rules.limits import Rules
from rules.recipients import Recipient
from schemas.validation import Rejected
from sinks import Store, open_store
from sinks.eventlog import EventLog
from streams.materialize import Materializer
from streams.notices import Directory, Notifier
from streams.outbox import Outgoing

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Counters:
    received: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    kept: int = 0
    transitions: int = 0
    last_activity: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_activity = time.monotonic()


class Runtime:
    """The worker's store and engine, opened when first needed (in a thread), never at import."""

    def __init__(self, settings: Settings, rules: Rules) -> None:
        self.settings = settings
        self.rules = rules
        self.counters = Counters()
        self._store: Store | None = None
        self._materializer: Materializer | None = None
        #: who is told of alerts (set by the notifier agent); none: no notice cycles
        self.recipients: list[Recipient] = []
        #: the notice cycles of the engine's worker, made with the engine (its state is in the store)
        self.notifier: Notifier | None = None
        self._lock = asyncio.Lock()
        self._starting = asyncio.Lock()
        #: the notifications ledger's own connection, on a server (`ledger`)
        self._ledger: Store | None = None
        self._ledger_lock = asyncio.Lock()
        #: set once the engine is caught up with the log (cleared when the engine partition is revoked)
        self.ready = asyncio.Event()
        #: whether this worker holds the province's engine partition
        self.owns_engine = False

    @property
    def materializer(self) -> Materializer:
        if self._materializer is None:
            raise DualtrackError("the engine is not caught up yet (Runtime.start_engine)")
        return self._materializer

    @property
    def store(self) -> Store:
        if self._store is None:
            raise DualtrackError("the store is not open yet (Runtime.open)")
        return self._store

    @property
    def opened(self) -> bool:
        """Whether the store is open (`open`): a worker that does not hold the engine may not have it."""
        return self._store is not None

    @property
    def log(self) -> EventLog:
        return EventLog(self.store)

    def busy(self) -> bool:
        """Whether store work (a batch or a clock tick) is in progress."""
        return self._lock.locked()

    def settled(self) -> bool:
        """No store work in progress, and the engine caught up if this worker holds it."""
        return not self.busy() and (self.ready.is_set() or not self.owns_engine)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking store work in a thread, one at a time (chDB is single-writer). A worker stopping
        meanwhile waits for the work to end: Faust acknowledges a batch when its agent stops, so the
        batch must be in the store by then."""
        async with self._lock:
            work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                raise

    async def open(self) -> Store:
        """The store, opened and migrated (in a thread) by the first caller."""
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    store = await asyncio.to_thread(open_store, self.settings)
                    await asyncio.to_thread(store.migrate)
                    self._store = store
        return self._store

    async def start_engine(self) -> Materializer:
        """The engine, caught up with the log (in a thread) by the first caller after a start or after
        the engine partition came back."""
        async with self._starting:  # one catch-up at a time, however many ask for it
            if not self.ready.is_set():
                store = await self.open()
                window = timedelta(days=self.settings.late_window_days)
                materializer = Materializer(store, self.rules, late_window=window)
                await self._in_thread(materializer.catch_up)
                self._materializer = materializer
                self.notifier = Notifier(store, self.rules, self.recipients) if self.recipients else None
                log.info("caught up with the log; the engine is ready")
                self.ready.set()
        return self.materializer

    def stop_engine(self) -> None:
        """The engine partition went to another worker: this engine's state may fall behind the log, and
        so may the notifier's (the next owner continues from the store)."""
        self.ready.clear()
        self._materializer = None
        self.notifier = None

    def notify(self, transitions: list[Transition], restated: bool, now: datetime) -> list[Outgoing]:
        """One notice cycle after the engine's writes (blocking: in the store's thread, from `run`):
        what holds now against what was told; returns the messages to send."""
        if self.notifier is None:
            return []
        m = self.materializer
        return self.notifier.cycle(transitions, m.open_alerts(), now, restated, Directory(m.engine.province))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Store work for the engine (caught up first)."""
        await self.start_engine()
        return await self._in_thread(fn, *args)

    async def store_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Store work that needs no engine (dead letters, notifications), in its turn."""
        await self.open()
        return await self._in_thread(fn, *args)

    async def ledger(self) -> tuple[Store, Callable[..., Awaitable[Any]]]:
        """Where delivered messages are recorded, and how to call it. On a server, a connection of its
        own with its own turn: a message a receiver took is recorded within one insert, never behind the
        engine's writes, so a worker killed in between leaves at most the few messages in flight to be
        sent again (with the same notice id, the receivers' idempotency key). chDB has one writer, so
        there the record takes its turn with the rest."""
        store = await self.open()
        if store.kind != "server":
            return store, self.store_call
        if self._ledger is None:
            self._ledger = await asyncio.to_thread(open_store, self.settings)
        lock = self._ledger_lock

        async def one_at_a_time(fn: Callable[..., T], *args: Any) -> T:
            async with lock:
                return await asyncio.to_thread(fn, *args)

        return self._ledger, one_at_a_time

    async def dead_letter(self, rows: list[tuple[Rejected, str, datetime]]) -> None:
        """Keep dead letters in the store (no engine needed)."""
        await self.open()
        await self._in_thread(lambda: self.log.dead_letter(rows))

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._store is not None:
            self._store.close()
            self._store = None
