"""Materialisation: the engine over the kept log, and what each change means for the live tables.

The stream's engine agent and `dualtrack replay` both use `Materializer`: it keeps the incremental
engine over the kept events and writes the teacher, school and studio rows an event changed, the
schools' snapshots after each event, and the alert transitions. A late event refolds the log and
restates the tables from its time on. Every write is keyed, so repeating one after a crash replaces
rows instead of adding them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rules.alerts import EVENT_RULES, Alert, Transition
from rules.engine import Engine, Incremental, Step
from rules.indicators import Indicators, studio_reasons
from rules.limits import Rules
from rules.report import rounded
from rules.state import Changes, Studio, Teacher
from schemas.validation import Accepted, Reason, rejected
from sinks.base import Row, Store, micros
from sinks.eventlog import EventLog
from sinks.live import LiveTables


def _f(value: Any) -> float | None:
    return rounded(value, 6) if value is not None else None


def transition_row(t: Transition, version: int) -> Row:
    a: Alert = t.alert
    return {
        "rule": a.rule, "school_id": a.school_id, "subject": a.subject, "transition": t.kind, "at": t.at,
        "at_us": micros(t.at), "severity": a.severity, "value": _f(a.value), "threshold": _f(a.threshold),
        "since": a.since, "reasons": list(a.reasons), "caused_by": list(a.caused_by),
        "rule_version": t.rule_version, "retracted": 0, "version": version,
    }  # fmt: skip


def _snapshot_row(engine: Engine, sid: str, ind: Indicators, e: Accepted, version: int) -> Row:
    school = engine.province.schools[sid]
    limit = engine.rules.limits["student_teacher_ratio"].for_level(school.level)
    return {
        "school_id": sid, "at": e.occurred_at, "at_us": micros(e.occurred_at), "event_id": e.event_id,
        "name": school.name, "level": school.level or "", "city": school.city,
        "circle": school.circle, "communities": list(school.communities),
        "registered": int(school.registered), "students": _f(ind.students),
        "full_time_teachers": ind.full_time_teachers, "part_time_teachers": ind.part_time_teachers,
        "fte_teachers": _f(ind.fte_teachers), "student_teacher_ratio": _f(ind.student_teacher_ratio),
        "ratio_limit": _f(limit), "professional_teachers": ind.professional_teachers,
        "postgraduate_share": _f(ind.postgraduate_share), "doctor_share": _f(ind.doctor_share),
        "senior_title_share": _f(ind.senior_title_share), "part_time_share": _f(ind.part_time_share),
        "version": version,
    }  # fmt: skip


class Materializer:
    """The incremental engine over a store's kept log, writing the live tables as it goes."""

    def __init__(self, store: Store, rules: Rules) -> None:
        self.log = EventLog(store)
        self.tables = LiveTables(store)
        self.rules = rules
        self.state = Incremental(rules)
        #: school -> when its latest kept event arrived (the live feed_stale rule)
        self.last_arrival: dict[str, datetime] = {}

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def kept(self) -> set[str]:
        return self.state.kept

    def load(self, now: datetime | None = None) -> int:
        """Rebuild from the events the store keeps (a restarted worker's recovery); returns their count."""
        events = self.log.events()
        self.state = Incremental(self.rules)
        self.last_arrival = self.log.last_arrivals()
        self._run(events, now or datetime.now(UTC), full=True)
        return len(events)

    def extend(self, events: list[Accepted], now: datetime | None = None) -> list[Transition]:
        """Apply new events (already kept in the store's log); returns the alert transitions."""
        return self._run(events, now or datetime.now(UTC), full=False)

    def _run(self, events: list[Accepted], now: datetime, full: bool) -> list[Transition]:
        version = time.time_ns()
        steps: list[Step] = []
        unseen = [e.occurred_at for e in events if e.event_id not in self.state.kept]
        earliest = min(unseen) if unseen else None

        def collect(step: Step) -> None:
            # events re-applied from a checkpoint before the earliest new one are unchanged: skip them
            if full or (earliest is not None and step.event.occurred_at >= earliest):
                steps.append(step)

        new, since = self.state.extend(events, collect)
        if not new:
            return []
        if not full:
            self.last_arrival.update((e.school_id, now) for e in new)
        self._dead_letter_failures(steps, now)
        found = [t for step in steps for t in step.transitions]
        found += self.engine.tick(now, self.last_arrival)
        rows = [transition_row(t, version) for t in found]
        if full or since is not None:
            self.tables.restate_transitions(rows, EVENT_RULES, version, None if full else since)
        else:
            self.tables.transitions(rows)
        self.tables.snapshots(
            _snapshot_row(self.engine, sid, ind, step.event, version)
            for step in steps
            for sid, ind in step.staffing.items()
        )
        changed = Changes()
        for step in steps:
            changed |= step.changes
        self.write_current(now, version, None if full else changed)
        return found

    def _dead_letter_failures(self, steps: list[Step], now: datetime) -> None:
        """Events whose application failed (a defect) are dead-lettered with the error; all else goes on."""
        failed = [
            rejected(
                Reason.apply_failed,
                f"applying the event failed: {s.failed}",
                s.event.raw,
                s.event.school_id,
                s.event.event_id,
                s.event.event_type,
            )
            for s in steps
            if s.failed is not None
        ]
        if failed:
            self.log.dead_letter([(r, "engine", now) for r in failed])

    def tick(self, now: datetime) -> list[Transition]:
        """Clock-driven rules at `now` (certificate expiry, studio inactivity), written to the store."""
        transitions = self.engine.tick(now, self.last_arrival)
        version = time.time_ns()
        self.tables.transitions(transition_row(t, version) for t in transitions)
        # the clock changes school status (certificate validity) and studios (inactivity), not teachers
        self.write_current(now, version, Changes(studios=frozenset(self.engine.province.studios)))
        return transitions

    def write_current(self, now: datetime, version: int, only: Changes | None = None) -> None:
        """The current-state tables at `now`: school_status (every school), and teacher_state and
        studio_state for every teacher and studio, or only those `only` names."""
        p, rules = self.engine.province, self.rules
        rows = []
        for s in self.engine.schools(now):
            i = s.indicators
            school = p.schools[i.school_id]
            limit = rules.limits["student_teacher_ratio"].for_level(school.level)
            rows.append({
                "school_id": i.school_id, "as_of": now, "name": school.name, "level": i.level or "",
                "city": i.city, "circle": school.circle, "communities": list(school.communities),
                "students": _f(i.students), "full_time_teachers": i.full_time_teachers,
                "part_time_teachers": i.part_time_teachers, "fte_teachers": _f(i.fte_teachers),
                "student_teacher_ratio": _f(i.student_teacher_ratio), "ratio_limit": _f(limit),
                "professional_teachers": i.professional_teachers, "dual_teachers": i.dual_teachers or 0,
                "dual_share": _f(i.dual_share), "postgraduate_share": _f(i.postgraduate_share),
                "doctor_share": _f(i.doctor_share), "senior_title_share": _f(i.senior_title_share),
                "part_time_share": _f(i.part_time_share), "active_studios": i.active_studios,
                "compliant_studios": i.compliant_studios, "violations": list(s.violations),
                "status": s.status, "last_event_at": school.last_event_at or now, "version": version,
            })  # fmt: skip
        self.tables.schools(rows)
        teachers = p.teachers if only is None else only.teachers & p.teachers.keys()
        self.tables.teachers(self._teacher_row(p.teachers[t], now, version) for t in teachers)
        studios = p.studios if only is None else only.studios & p.studios.keys()
        self.tables.studios(self._studio_row(p.studios[s], now, version) for s in studios)

    def _teacher_row(self, t: Teacher, now: datetime, version: int) -> Row:
        p = self.engine.province
        held = sum(1 for c in p.certificates_of.get(t.teacher_id, ()) if p.certificates[c].revoked_at is None)
        return {
            "teacher_id": t.teacher_id, "school_id": t.school_id or "", "employment": t.employment,
            "course_type": t.course_type, "title": t.title, "degree": t.degree, "certificates": held,
            "updated_at": now, "version": version,
        }  # fmt: skip

    def _studio_row(self, st: Studio, now: datetime, version: int) -> Row:
        reasons = studio_reasons(self.engine.province, self.rules, st, now) if st.active else ()
        return {
            "studio_id": st.studio_id, "school_id": st.school_id, "name": st.name, "level": st.level,
            "trade": st.trade or "", "community": st.community or "", "lead_teacher_id": st.lead_teacher_id,
            "established_at": st.established_at, "active": int(st.active), "members": len(st.members),
            "compliant": int(st.active and not reasons), "reasons": list(reasons),
            "last_activity_at": st.last_activity_at, "last_evaluation": st.last_evaluation or "",
            "version": version,
        }  # fmt: skip
