"""The engine: state, indicators and alerts together; the one entry point the stream, replay and tests use.

Events must be applied in order (occurred_at, then event_id). `fold(events, until)` sorts and folds a
set of kept events, which is how an as-of report and a late event's restatement are computed.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rules.alerts import (
    CLOCK_RULES,
    EVENT_RULES,
    LIVE_RULES,
    Alert,
    AlertBook,
    AlertKey,
    Transition,
    clock_alerts,
    event_alerts,
    feed_stale_alerts,
)
from rules.indicators import (
    Indicators,
    day_of,
    dual_teachers,
    staffing,
    status,
    studio_reasons,
    violations,
)
from rules.limits import Rules
from rules.state import Changes, Province
from schemas.validation import Accepted

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchoolStatus:
    indicators: Indicators
    violations: tuple[str, ...]
    status: str


@dataclass(frozen=True, slots=True)
class Step:
    """What applying one event did: what it changed, the staffing indicators of the schools it changed,
    and the event-driven alert transitions it caused."""

    event: Accepted
    changes: Changes
    staffing: dict[str, Indicators]
    transitions: list[Transition]
    #: why applying the event failed (a defect in the rules): the event changed nothing it could undo,
    #: is dead-lettered as apply_failed, and everything else goes on
    failed: str | None = None


class Engine:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.province = Province()
        self.alerts = AlertBook(rules.version)
        #: event_id -> why it could not be applied (see `apply`)
        self.failed: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        """The fold's state without the rules: a checkpoint restores into the rules of its reader
        (`restore`), whatever shape the rules' code had when it was written."""
        return {"province": self.province, "alerts": self.alerts, "failed": self.failed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def apply(self, event: Accepted) -> Step:
        """Apply the next event in order. An exception from the rules is the last line of defence: the
        step says why it failed instead of stopping the fold (the province, a report, a restart)."""
        try:
            return self._apply(event)
        except Exception as err:  # any defect in the rules must not stop the province
            self.failed[event.event_id] = f"{type(err).__name__}: {err}"[:500]
            return Step(event, Changes(), {}, [], failed=self.failed[event.event_id])

    def _apply(self, event: Accepted) -> Step:
        changes = self.province.apply(event)
        schools = {
            sid: staffing(self.province, self.rules, self.province.schools[sid])
            for sid in sorted(changes.schools)
        }
        if not schools:
            return Step(event, changes, schools, [])
        current: dict[AlertKey, Alert] = {}
        scope: set[AlertKey] = set()
        for sid, ind in schools.items():
            scope |= {(rule, sid, "") for rule in EVENT_RULES}
            if self.province.schools[sid].registered:
                current |= event_alerts(ind, self.rules)
        transitions = self.alerts.reconcile(current, scope, event.occurred_at, (event.event_id,))
        return Step(event, changes, schools, transitions)

    def tick(self, at: datetime, last_arrival: dict[str, datetime] | None = None) -> list[Transition]:
        """Bring the clock-driven alerts in line with time `at` (the stream calls this on a timer).
        With `last_arrival` (school -> when its latest event arrived) the live `feed_stale` rule too."""
        current = clock_alerts(self.province, self.rules, at, (s.indicators for s in self.schools(at)))
        scope = set(current) | self.alerts.keys(CLOCK_RULES)
        if last_arrival is not None:
            stale = feed_stale_alerts(self.province, self.rules, at, last_arrival)
            current |= stale
            scope |= set(stale) | self.alerts.keys(LIVE_RULES)
        return self.alerts.reconcile(current, scope, at)

    def schools(self, at: datetime, only: set[str] | None = None) -> list[SchoolStatus]:
        """Full indicators, violations and status of every registered school at `at` (or of those in
        `only`), by school_id."""
        day = day_of(at)
        studios_by_school: dict[str, list[bool]] = {}
        for studio in self.province.studios.values():
            if studio.active and (only is None or studio.school_id in only):
                compliant = not studio_reasons(self.province, self.rules, studio, at)
                studios_by_school.setdefault(studio.school_id, []).append(compliant)
        out = []
        for sid in sorted(self.province.schools if only is None else only & self.province.schools.keys()):
            school = self.province.schools[sid]
            if not school.registered:
                continue
            base = staffing(self.province, self.rules, school)
            flags = studios_by_school.get(sid, [])
            ind = replace(
                base,
                dual_teachers=dual_teachers(self.province, sid, day),
                active_studios=len(flags),
                compliant_studios=sum(flags),
            )
            missed = violations(ind, self.rules)
            out.append(SchoolStatus(ind, missed, status(missed)))
        return out

    def alerts_at(self, at: datetime, schools: list[SchoolStatus] | None = None) -> list[Alert]:
        """The alerts firing at `at`: event-driven ones with their `since`, clock-driven ones without."""
        if schools is None:
            schools = self.schools(at)
        event_driven = [a for k, a in self.alerts.open.items() if k[0] in EVENT_RULES]
        clock = clock_alerts(self.province, self.rules, at, (s.indicators for s in schools)).values()
        clock_ = [replace(a, since=None, caused_by=()) for a in clock]
        return sorted(event_driven + clock_, key=lambda a: (a.school_id, a.rule, a.subject))


def restore(state: bytes, rules: Rules) -> Engine:
    """An engine from a pickled state (ours: in-memory or stored checkpoints, never external data)."""
    engine: Engine = pickle.loads(state)  # noqa: S301 - our own snapshot, never external data
    engine.rules = rules
    return engine


def restore_stored(state: bytes, rules: Rules) -> Engine | None:
    """An engine from a stored checkpoint, or None when it cannot be loaded (a damaged part, classes
    that changed under an unchanged `state_key`): the caller then folds from the log, which is slower
    and always right."""
    try:
        engine = restore(state, rules)
    except Exception as exc:  # any failure to load means: refold
        log.warning("a stored checkpoint does not load (%s); folding from the log", type(exc).__name__)
        return None
    return engine if isinstance(engine, Engine) else None


def state_key(rules: Rules) -> str:
    """What a stored checkpoint must match to be restored: the rules file (its version and every value
    the fold reads) and the rules' code, since a checkpoint is a pickle of these classes. After an
    upgrade or a change of limits the first start folds the log once and checkpoints again."""
    read = [f.name for f in fields(rules) if f.compare and f.name != "notifications"]
    values = {name: getattr(rules, name) for name in read}
    digest = hashlib.sha256(repr(sorted(values.items())).encode())
    digest.update(_code_fingerprint().encode())
    return f"{rules.version}+{digest.hexdigest()[:16]}"


@functools.cache
def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ordered(events: Iterable[Accepted]) -> list[Accepted]:
    """Kept events in the order every rule applies them: occurred_at as instants, then event_id."""
    return sorted(events, key=lambda e: e.order_key)


def fold(events: Iterable[Accepted], rules: Rules, until: datetime | None = None) -> Engine:
    """A new engine with every event at or before `until` applied in order (all when None)."""
    engine = Engine(rules)
    for e in ordered(events):
        if until is not None and e.occurred_at > until:
            break
        engine.apply(e)
    return engine


class TooLate(Exception):
    """An event earlier than the start of the in-memory window: restate from the store instead."""


class Incremental:
    """An engine over a growing set of kept events that arrive in any order, in batches.

    Events after everything applied so far are applied in place. A late event (earlier in rule order
    than the last applied one) restores the newest in-memory checkpoint taken before it and re-applies
    the log from there, so the state is always the in-order fold and a late event costs at most
    `checkpoint_every` re-applied events plus the events after it. The log kept in memory is a window:
    it starts at `base` (an engine restored from a stored checkpoint, or the empty one) and is trimmed,
    as it grows, to the newest in-memory checkpoint at least `window` older than the newest event; an
    event earlier than the window raises TooLate.
    """

    def __init__(
        self,
        rules: Rules,
        checkpoint_every: int = 5_000,
        window: timedelta = timedelta(days=90),
        base: Engine | None = None,
    ) -> None:
        self.rules = rules
        self.engine = base if base is not None else Engine(rules)
        self.base_position = self.engine.province.last_applied
        self._base = pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL)
        self.log: list[Accepted] = []
        self.kept: set[str] = set()
        self.checkpoint_every = checkpoint_every
        self.window = window
        #: (log index: the number of log events the copy has applied, the time of the last of them, the
        #: pickled engine)
        self._checkpoints: list[tuple[int, datetime, bytes]] = []

    def extend(
        self, events: Iterable[Accepted], on_applied: Callable[[Step], None] | None = None
    ) -> tuple[list[Accepted], datetime | None]:
        """Add and apply the events not seen before. Returns them (in order) and, when one was late,
        the time from which the state was restated (None when everything was applied in place).
        `on_applied(step)` sees every event applied, re-applied ones included."""
        new = [e for e in ordered(events) if e.event_id not in self.kept]
        new = [e for i, e in enumerate(new) if i == 0 or e.event_id != new[i - 1].event_id]
        if not new:
            return [], None
        first = new[0].order_key
        if self.base_position is not None and first <= self.base_position:
            raise TooLate(first)
        self.kept.update(e.event_id for e in new)
        last = self.engine.province.last_applied
        if last is None or first > last:
            start = len(self.log)
            self.log.extend(new)
            self._apply(start, on_applied)
            self._trim()
            return new, None
        keep = bisect.bisect_left(self.log, first, key=lambda e: e.order_key)
        self.log[keep:] = ordered([*self.log[keep:], *new])
        while self._checkpoints and self._checkpoints[-1][0] > keep:
            self._checkpoints.pop()
        # Clock-driven alerts describe the present, not the history being restated: they carry over.
        clock = {k: a for k, a in self.engine.alerts.open.items() if k[0] not in EVENT_RULES}
        start, _, saved = self._checkpoints[-1] if self._checkpoints else (0, first[0], self._base)
        self.engine = restore(saved, self.rules)
        self._apply(start, on_applied)
        self.engine.alerts.open.update(clock)
        self._trim()
        return new, first[0]

    def _apply(self, start: int, on_applied: Callable[[Step], None] | None) -> None:
        for i in range(start, len(self.log)):
            step = self.engine.apply(self.log[i])
            if on_applied is not None:
                on_applied(step)
            done = i + 1
            if done % self.checkpoint_every == 0 and (
                not self._checkpoints or self._checkpoints[-1][0] < done
            ):
                copy = pickle.dumps(self.engine, protocol=pickle.HIGHEST_PROTOCOL)
                self._checkpoints.append((done, self.log[i].occurred_at, copy))

    def _trim(self) -> None:
        """Start the window at the newest checkpoint at least `window` older than the newest event."""
        last = self.engine.province.last_applied
        if last is None:
            return
        horizon = last[0] - self.window
        older = [n for n, (_, at, _) in enumerate(self._checkpoints) if at <= horizon]
        if not older:
            return
        cut, _, self._base = self._checkpoints[older[-1]]
        self.kept.difference_update(e.event_id for e in self.log[:cut])
        self.base_position = self.log[cut - 1].order_key
        del self.log[:cut]
        self._checkpoints = [(i - cut, at, saved) for i, at, saved in self._checkpoints[older[-1] + 1 :]]
