"""The engine: state, indicators and alerts together; the one entry point the stream, replay and tests use.

Events must be applied in order (occurred_at, then event_id). `fold(events, until)` sorts and folds a
set of kept events, which is how an as-of report and a late event's restatement are computed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path

from rules.alerts import (
    CLOCK_RULES,
    EVENT_RULES,
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
from rules.reporting import enrollment_missing_alerts
from rules.state import Changes, Province
from schemas.validation import Accepted


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

    def tick(
        self,
        at: datetime,
        last_arrival: dict[str, datetime] | None = None,
        reported: Mapping[tuple[str, str], datetime] | None = None,
    ) -> list[Transition]:
        """Bring the clock-driven alerts in line with time `at` (the stream calls this on a timer).
        With `last_arrival` (school -> when its latest event arrived) the live `feed_stale` rule too,
        and with `reported` ((school, term) -> when its enrollment report arrived) `enrollment_missing`."""
        current = clock_alerts(self.province, self.rules, at, (s.indicators for s in self.schools(at)))
        scope = set(current) | self.alerts.keys(CLOCK_RULES)
        if last_arrival is not None:
            stale = feed_stale_alerts(self.province, self.rules, at, last_arrival)
            current |= stale
            scope |= set(stale) | self.alerts.keys(("feed_stale",))
        if reported is not None:
            missing = enrollment_missing_alerts(self.province, self.rules, at, reported)
            current |= missing
            scope |= set(missing) | self.alerts.keys(("enrollment_missing",))
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


def state_key(rules: Rules) -> str:
    """What a stored checkpoint must match to be restored: the rules file (its version and every value
    the fold reads) and the rules' code, since the state a checkpoint holds is what this code folded
    (its format is `rules.snapshot`'s). After an upgrade or a change of limits the first start folds the
    log once and checkpoints again."""
    read = [
        f.name
        for f in fields(rules)
        if f.compare and f.name not in ("notifications", "revisions", "reporting")
    ]
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
