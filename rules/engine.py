"""The engine: state, indicators and alerts together; the one entry point the stream, replay and tests use.

Events must be applied in order (occurred_at, then event_id). `fold(events, until)` sorts and folds a
set of kept events, which is how an as-of report and a late event's restatement are computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction

from rules.alerts import (
    CLOCK_RULES,
    EVENT_RULES,
    Alert,
    AlertBook,
    AlertKey,
    Transition,
    clock_alerts,
    event_alerts,
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
from rules.state import Province
from schemas.validation import Accepted


@dataclass(frozen=True, slots=True)
class SchoolStatus:
    indicators: Indicators
    violations: tuple[str, ...]
    status: str


class Engine:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.province = Province()
        self.alerts = AlertBook(rules.version)
        #: the schools whose staffing the last applied event changed (for snapshots)
        self.last_affected: set[str] = set()

    def apply(self, event: Accepted) -> list[Transition]:
        """Apply the next event in order; returns the event-driven alert transitions it causes."""
        affected = self.last_affected = self.province.apply(event)
        if not affected:
            return []
        current: dict[AlertKey, Alert] = {}
        scope: set[AlertKey] = set()
        for sid in affected:
            scope |= {(rule, sid, "") for rule in EVENT_RULES}
            school = self.province.schools.get(sid)
            if school is not None and school.registered:
                current |= event_alerts(staffing(self.province, self.rules, school), self.rules)
        return self.alerts.reconcile(current, scope, event.occurred_at, (event.event_id,))

    def tick(self, at: datetime) -> list[Transition]:
        """Bring the clock-driven alerts in line with time `at` (the stream calls this on a timer)."""
        current = clock_alerts(self.province, self.rules, at, (s.indicators for s in self.schools(at)))
        scope = set(current) | self.alerts.keys(CLOCK_RULES)
        return self.alerts.reconcile(current, scope, at)

    def schools(self, at: datetime) -> list[SchoolStatus]:
        """Full indicators, violations and status of every registered school at `at`, by school_id."""
        day = day_of(at)
        studios_by_school: dict[str, list[bool]] = {}
        for studio in self.province.studios.values():
            if studio.active:
                compliant = not studio_reasons(self.province, self.rules, studio, at)
                studios_by_school.setdefault(studio.school_id, []).append(compliant)
        out = []
        for sid in sorted(self.province.schools):
            school = self.province.schools[sid]
            if not school.registered:
                continue
            base = staffing(self.province, self.rules, school)
            dual = dual_teachers(self.province, sid, day)
            flags = studios_by_school.get(sid, [])
            ind = replace(
                base,
                dual_teachers=dual,
                dual_share=(
                    Fraction(dual, base.professional_teachers) if base.professional_teachers else None
                ),
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


class Incremental:
    """An engine over a growing set of kept events that arrive in any order, in batches.

    A batch entirely after what was applied is applied in place; a batch with a late event (earlier in
    rule order than the last applied one) refolds the whole log, so the state is always `fold(log)`.
    """

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.engine = Engine(rules)
        self.log: list[Accepted] = []
        self.kept: set[str] = set()

    def extend(self, events: Iterable[Accepted]) -> tuple[list[Accepted], bool]:
        """Add the events not seen before; returns them (in order) and whether the log was refolded."""
        new: list[Accepted] = []
        for e in ordered(events):
            if e.event_id not in self.kept:
                self.kept.add(e.event_id)
                new.append(e)
        if not new:
            return [], False
        last = self.engine.province.last_applied
        if last is not None and new[0].order_key < last:
            self.log = ordered([*self.log, *new])
            self.engine = Engine(self.rules)
            return new, True
        self.log.extend(new)
        return new, False
