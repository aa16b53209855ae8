"""Materialisation: the engine over the kept log, and what each change means for the live tables.

The stream's engine agent and `dualtrack replay` both use `Materializer`. It starts from the newest
usable engine checkpoint in the store and folds only the events after it (`catch_up`), so a restart
costs the events since the last checkpoint, not the history. New events are applied in place
(`apply`); a late one restates the state and the tables from its time on. Only what an event changed
is written: the rows of the teachers, studios and schools it touched, one snapshot per school and day,
the alert transitions. Every write is keyed, so repeating one after a crash replaces rows instead of
adding them, and a checkpoint is taken only after everything before its position is written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rules import snapshot
from rules.alerts import EVENT_RULES, LIVE_RULES, Alert, AlertKey, Transition
from rules.engine import Engine, Step, state_key
from rules.forecast import forecast_alerts, forecast_transitions, forecasts
from rules.incremental import Incremental, TooLate
from rules.indicators import Indicators, day_of, studio_reasons
from rules.limits import Rules
from rules.report import build_report, unchanged_before
from rules.state import Studio, Teacher
from schemas.validation import Accepted, Reason, rejected
from sinks.base import Row, Store, micros
from sinks.checkpoints import Checkpoints
from sinks.eventlog import EventLog
from sinks.health import HealthTables
from sinks.live import LiveTables
from streams.health import forecast_rows
from streams.state_at import restored

#: the worker and replay write a checkpoint after this many events (at the first event of a month,
#: so that as-of reports find one at most a month and about this many events before any time) ...
CHECKPOINT_EVENTS = 20_000
#: ... and the worker at least this often while events arrive (bounds the work of a restart)
CHECKPOINT_SECONDS = 300.0
#: how far back a late event is restated from the in-memory window (DUALTRACK_LATE_WINDOW_DAYS)
LATE_WINDOW = timedelta(days=90)
_MICROSECOND = timedelta(microseconds=1)


def _months(events: list[Accepted]) -> list[list[Accepted]]:
    """Events in rule order, cut where the calendar month turns."""
    out: list[list[Accepted]] = []
    for e in events:
        if out and (out[-1][-1].occurred_at.year, out[-1][-1].occurred_at.month) == (
            e.occurred_at.year,
            e.occurred_at.month,
        ):
            out[-1].append(e)
        else:
            out.append([e])
    return out


def _f(num: int, den: int) -> float:
    return round(num / den, 6)


def _value(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def transition_row(t: Transition, version: int) -> Row:
    a: Alert = t.alert
    return {
        "rule": a.rule, "school_id": a.school_id, "subject": a.subject, "transition": t.kind, "at": t.at,
        "at_us": micros(t.at), "severity": a.severity, "value": _value(a.value),
        "threshold": _value(a.threshold), "since": a.since, "reasons": list(a.reasons),
        "caused_by": list(a.caused_by), "rule_version": t.rule_version, "retracted": 0, "version": version,
    }  # fmt: skip


def _indicator_floats(ind: Indicators) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name in ("student_teacher_ratio", "postgraduate_share", "doctor_share", "senior_title_share",
                 "part_time_share"):  # fmt: skip
        parts = ind.parts(name)
        out[name] = None if parts is None else _f(*parts)
    out["students"] = _f(ind.students_scaled, ind.scales.students)
    out["fte_teachers"] = _f(ind.fte_scaled, ind.scales.fte)
    return out


@dataclass
class _Batch:
    """What one run of the fold changed, gathered as it goes."""

    steps: list[Step] = field(default_factory=list)
    snapshots: dict[tuple[str, date], tuple[Step, Indicators]] = field(default_factory=dict)
    schools: set[str] = field(default_factory=set)
    teachers: set[str] = field(default_factory=set)
    studios: set[str] = field(default_factory=set)

    def take(self, step: Step) -> None:
        self.steps.append(step)
        day = day_of(step.event.occurred_at)
        for sid, ind in step.staffing.items():
            self.snapshots[(sid, day)] = (step, ind)
        self.schools.update(step.changes.schools)
        self.teachers.update(step.changes.teachers)
        self.studios.update(step.changes.studios)


@dataclass(frozen=True)
class Applied:
    """What a batch of new events did to the alerts: the transitions (in the order they happened) and
    whether a late event restated history, so that what holds now must be compared as a whole with
    what was told (`rules.notifications.decide(..., restated=True)`)."""

    transitions: list[Transition]
    restated: bool = False


class Materializer:
    """The engine over a store's kept log, writing the live tables as it goes."""

    def __init__(
        self,
        store: Store,
        rules: Rules,
        checkpoint_events: int = CHECKPOINT_EVENTS,
        late_window: timedelta = LATE_WINDOW,
    ) -> None:
        self.log = EventLog(store)
        self.tables = LiveTables(store)
        self.checkpoints = Checkpoints(store)
        self.rules = rules
        self.checkpoint_events = checkpoint_events
        self.late_window = late_window
        self.state = Incremental(rules, window=late_window)
        #: school -> when its latest kept event arrived (the live feed_stale rule)
        self.last_arrival: dict[str, datetime] = {}
        #: (school, term) -> when its first enrollment report arrived (the live enrollment_missing rule)
        self.reported: dict[tuple[str, str], datetime] = {}
        self._since_checkpoint = 0
        self._checkpoint_at = time.monotonic()
        #: the dual_share_forecast warnings open now (not part of the fold: they describe the present)
        self.forecast_open: dict[AlertKey, Alert] = {}
        #: what the report this engine last kept holds for: the log's event count and the time it ends
        self._report_holds: tuple[int, datetime] | None = None

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def kept(self) -> set[str]:
        """The event ids applied in the in-memory window (older ones are found in the store)."""
        return self.state.kept

    def open_alerts(self) -> dict[AlertKey, Alert]:
        """Every alert that holds now: the fold's (event- and clock-driven, feed_stale) and the early
        warnings. The store holds the same (`alert_transitions`, `dual_share_forecasts`)."""
        return {**self.engine.alerts.open, **self.forecast_open}

    # --- starting -----------------------------------------------------------------------------------

    def catch_up(self, now: datetime | None = None, since: datetime | None = None) -> list[Transition]:
        """Restore the newest usable checkpoint and fold the log after it, writing what that changes. The
        cost is the events since the checkpoint; the in-memory window of late events starts there.

        With `since` (a late event earlier than the in-memory window) the checkpoint is the newest one
        before it, and the transitions from `since` on are returned when `since` is within the late
        window of the newest event (an older restatement returns none: what holds now is compared with
        what was told all the same).

        The fold goes a calendar month at a time: each month's rows and transitions are written, and the
        stored transitions of that month that no longer hold are retracted, before the next month (and
        before any checkpoint), so an interrupted catch-up leaves nothing half-done behind its checkpoint."""
        now = now or datetime.now(UTC)
        base, checkpoint = restored(
            self.log.store, self.rules, None if since is None else since - _MICROSECOND
        )
        self.state = Incremental(self.rules, window=self.late_window, base=base)
        self.last_arrival = self.log.last_arrivals()
        self.reported = self.log.enrollment_arrivals()
        newest = self.log.newest_event_time()
        collect = since is not None and newest is not None and since >= newest - self.late_window
        found: list[Transition] = []
        version = time.time_ns()
        batch = _Batch()

        def take(step: Step) -> None:
            batch.take(step)
            if collect and since is not None and step.event.occurred_at >= since:
                found.extend(step.transitions)

        # History older than the late window of the newest event is folded by the bare engine: a late
        # event that old restates from a stored checkpoint anyway, so the in-memory window (its log and
        # its copies of the state, `rules.incremental`) starts at the window's edge, not at the checkpoint.
        window_from = None if newest is None else newest - self.late_window
        windowed = window_from is None
        for page in self.log.events_after(checkpoint.position if checkpoint else None):
            for month in _months(page):
                if batch.steps and self._month_turns(month[0]):
                    self._write_month(batch, now, version)
                    batch = _Batch()
                    if self._since_checkpoint >= self.checkpoint_events:
                        self.save_checkpoint()
                if not windowed and month[-1].occurred_at < window_from:  # type: ignore[operator]
                    for e in month:  # in rule order and distinct already (`events_after`)
                        take(self.engine.apply(e))
                else:
                    if not windowed:
                        self.state = Incremental(self.rules, window=self.late_window, base=self.engine)
                        windowed = True
                    self.state.extend(month, take)
                self._since_checkpoint += len(month)
            self.log.store.release_memory()
        if batch.steps:
            self._write_month(batch, now, version)
        ticked = self.engine.tick(now, self.last_arrival, self.reported)
        ticked += self._live_left_open(now)
        self.tables.transitions(transition_row(t, version) for t in ticked)
        # what the early warning holds now (its rows are the clock tick's to write)
        self.forecast_open = dict(forecast_alerts(forecasts(self.engine.province, self.rules, now)))
        self.write_current(now, version, None)
        if since is None:  # a start or a replay (a restatement's report waits for the next tick)
            self.write_report(now, version)
        if self._since_checkpoint:
            self.save_checkpoint()
        return found + ticked if collect else ticked

    def _write_month(self, batch: _Batch, now: datetime, version: int) -> None:
        """A month of history: its transitions (restated over the month's span) and snapshots. The
        current-state tables are written once, at the end of the catch-up (each month would overwrite
        the one before)."""
        rows = [transition_row(t, version) for step in batch.steps for t in step.transitions]
        first, last = batch.steps[0].event.occurred_at, batch.steps[-1].event.occurred_at
        self.tables.restate_transitions(rows, EVENT_RULES, version, first, last)
        self._dead_letter_failures(batch.steps, now)
        snapshots = [
            self._snapshot_row(sid, day, ind, step.event, version)
            for (sid, day), (step, ind) in batch.snapshots.items()
        ]
        self.tables.restate_snapshots(snapshots, day_of(first), day_of(last), version)

    def _month_turns(self, e: Accepted) -> bool:
        last = self.engine.province.last_applied
        return last is not None and (last[0].year, last[0].month) != (e.occurred_at.year, e.occurred_at.month)

    # --- the live path --------------------------------------------------------------------------------

    def apply(self, events: list[Accepted], now: datetime | None = None) -> Applied:
        """Apply new events (already kept in the store's log) and write what they change."""
        now = now or datetime.now(UTC)
        version = time.time_ns()
        batch = _Batch()
        unseen = [e.occurred_at for e in events if e.event_id not in self.state.kept]
        if not unseen:
            return Applied([])
        earliest = min(unseen)

        def collect(step: Step) -> None:
            # events re-applied from a checkpoint before the earliest new one are unchanged: skip them
            if step.event.occurred_at >= earliest:
                batch.take(step)

        try:
            new, since = self.state.extend(events, collect)
        except TooLate:  # earlier than the in-memory window: restate from a stored checkpoint before it
            found = self.catch_up(now, since=earliest)
            self._arrived(events, now)
            return Applied(found, restated=True)
        self._arrived(new, now)
        found = [t for step in batch.steps for t in step.transitions]
        found += self.engine.tick(now, self.last_arrival, self.reported)
        if since is not None:
            rows = [transition_row(t, version) for t in found]
            self.tables.restate_transitions(rows, EVENT_RULES, version, since)
            snapshots = [
                self._snapshot_row(sid, day, ind, step.event, version)
                for (sid, day), (step, ind) in batch.snapshots.items()
            ]
            self.tables.restate_snapshots(snapshots, day_of(since), None, version)
            batch.snapshots.clear()
            self._write(batch, now, version, [], transitions_written=True)
        else:
            self._write(batch, now, version, found)
        self._since_checkpoint += len(new)
        return Applied(found, restated=since is not None)

    def _live_left_open(self, now: datetime) -> list[Transition]:
        """The live alerts (on arrival: feed_stale, enrollment_missing) the store has open and a fold from
        an older checkpoint no longer holds: resolved now (the fold's own book starts without them)."""
        rows = self.tables.open_alerts_of(LIVE_RULES)
        held = self.engine.alerts.keys(LIVE_RULES)
        return [
            Transition(
                "resolved",
                Alert(r["rule"], r["school_id"], r["subject"], r["sev"], None, None),
                now,
                self.rules.version,
            )
            for r in rows
            if (r["rule"], r["school_id"], r["subject"]) not in held
        ]

    def _arrived(self, events: list[Accepted], now: datetime) -> None:
        """What the live rules read: each school's latest arrival, each term's first enrollment report."""
        self.last_arrival.update((e.school_id, now) for e in events)
        for e in events:
            if e.event_type == "enrollment.reported":
                self.reported.setdefault((e.school_id, str(e.payload["term"])), e.arrived_at or now)

    def tick(self, now: datetime) -> list[Transition]:
        """Clock-driven rules at `now` (certificate expiry, studio inactivity) and the early warnings
        (dual_share_forecast), written to the store; returns the transitions."""
        transitions = self.engine.tick(now, self.last_arrival, self.reported)
        version = time.time_ns()
        self.tables.transitions(transition_row(t, version) for t in transitions)
        self.forecast_open, warnings = self._forecast(now, version, self.forecast_open)
        transitions += warnings
        # the clock changes every school's status (certificate validity) and studios (inactivity)
        self.write_current(now, version, None, teachers=False)
        self.write_report(now, version)
        return transitions

    def write_report(self, now: datetime, version: int) -> None:
        """Keep the report at `now` with what it holds for (`documents.report.report_for_now` reads it).
        Only the engine writes the log, so what it has applied is what the log holds now; a report is
        kept only when no applied event is later than `now` (a report at T reads the events up to T)."""
        events = self.log.kept_count()
        if self._report_holds is not None and self._report_holds[0] == events and now < self._report_holds[1]:
            return  # the kept one still holds: a quiet tick builds nothing
        newest = self.log.newest_event_time()
        if newest is not None and newest > now:
            return
        report = build_report(self.engine, now)
        edge = unchanged_before(self.engine, now)
        self.tables.current_report({
            "scope": "province", "as_of": now, "as_of_us": micros(now), "valid_before_us": micros(edge),
            "events": events, "rules_key": state_key(self.rules),
            "body": json.dumps(report, ensure_ascii=False), "version": version,
        })  # fmt: skip
        self._report_holds = (events, edge)

    def _forecast(
        self, now: datetime, version: int, open_: dict[AlertKey, Alert]
    ) -> tuple[dict[AlertKey, Alert], list[Transition]]:
        """The early warnings at `now`, written to `dual_share_forecasts`, and their transitions from
        `open_`."""
        found = forecasts(self.engine.province, self.rules, now)
        HealthTables(self.log.store).forecasts(forecast_rows(self.engine.province, found, now, version))
        return forecast_transitions(open_, forecast_alerts(found), now, self.rules.version)

    def checkpoint_due(self) -> bool:
        return self._since_checkpoint > 0 and (
            self._since_checkpoint >= self.checkpoint_events
            or time.monotonic() - self._checkpoint_at >= CHECKPOINT_SECONDS
        )

    def save_checkpoint(self) -> None:
        """Store the engine's state (everything before its position is written already)."""
        position = self.engine.province.last_applied
        if position is None:
            return
        state = snapshot.encode(snapshot.capture(self.engine))
        self.checkpoints.save(position, self.engine.province.applied, state_key(self.rules), state)
        self._since_checkpoint = 0
        self._checkpoint_at = time.monotonic()

    # --- writing --------------------------------------------------------------------------------------

    def _write(
        self,
        batch: _Batch,
        now: datetime,
        version: int,
        found: list[Transition],
        transitions_written: bool = False,
    ) -> None:
        self._dead_letter_failures(batch.steps, now)
        if not transitions_written:
            self.tables.transitions(transition_row(t, version) for t in found)
        self.tables.snapshots(
            self._snapshot_row(sid, day, ind, step.event, version)
            for (sid, day), (step, ind) in batch.snapshots.items()
        )
        p = self.engine.province
        schools = set(batch.schools)
        schools |= {s for t in batch.teachers if (s := p.school_of_teacher(t)) is not None}
        schools |= {p.studios[s].school_id for s in batch.studios if s in p.studios}
        self.write_current(now, version, (schools, batch.teachers, batch.studios))

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

    def write_current(
        self,
        now: datetime,
        version: int,
        only: tuple[set[str], set[str], set[str]] | None,
        teachers: bool = True,
    ) -> None:
        """The current-state tables at `now`, for every school, teacher and studio, or only those in
        `only` (schools, teachers, studios)."""
        p, rules = self.engine.province, self.rules
        rows = []
        for s in self.engine.schools(now, None if only is None else only[0]):
            i = s.indicators
            school = p.schools[i.school_id]
            limit = rules.limits["student_teacher_ratio"].for_level(school.level)
            dual = i.parts("dual_share")
            rows.append({
                "school_id": i.school_id, "as_of": now, "name": school.name, "level": i.level or "",
                "city": i.city, "circle": school.circle, "communities": list(school.communities),
                "full_time_teachers": i.full_time_teachers, "part_time_teachers": i.part_time_teachers,
                "ratio_limit": _value(limit), "professional_teachers": i.professional_teachers,
                "dual_teachers": i.dual_teachers or 0, "dual_share": None if dual is None else _f(*dual),
                "active_studios": i.active_studios, "compliant_studios": i.compliant_studios,
                "violations": list(s.violations), "status": s.status,
                "last_event_at": school.last_event_at or now, "version": version, **_indicator_floats(i),
            })  # fmt: skip
        self.tables.schools(rows)
        if teachers:
            ids = p.teachers.keys() if only is None else only[1] & p.teachers.keys()
            self.tables.teachers(self._teacher_row(p.teachers[t], now, version) for t in ids)
        studios = p.studios.keys() if only is None else only[2] & p.studios.keys()
        self.tables.studios(self._studio_row(p.studios[s], now, version) for s in studios)

    def _snapshot_row(self, sid: str, day: date, ind: Indicators, e: Accepted, version: int) -> Row:
        school = self.engine.province.schools[sid]
        limit = self.rules.limits["student_teacher_ratio"].for_level(school.level)
        return {
            "school_id": sid, "day": day, "at": e.occurred_at, "at_us": micros(e.occurred_at),
            "event_id": e.event_id, "name": school.name, "level": school.level or "", "city": school.city,
            "circle": school.circle, "communities": list(school.communities),
            "registered": int(school.registered), "full_time_teachers": ind.full_time_teachers,
            "part_time_teachers": ind.part_time_teachers, "ratio_limit": _value(limit),
            "professional_teachers": ind.professional_teachers, "retracted": 0, "version": version,
            **_indicator_floats(ind),
        }  # fmt: skip

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
