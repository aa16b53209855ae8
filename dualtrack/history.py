"""The event log in the store: keeping events exactly once, reading them back, and materialising the
live tables (teacher, school, studio state, snapshots, alert transitions) from the same rules.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from rules.alerts import EVENT_RULES, Alert, Transition
from rules.engine import Engine, Incremental, ordered
from rules.indicators import Indicators, studio_reasons
from rules.limits import Rules
from rules.report import rounded
from rules.state import Studio
from schemas.validation import Accepted, Reason, Rejected, validate
from sinks.base import Row, Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(t: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact, for ordering)."""
    d = t - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def event_row(e: Accepted, arrived_at: datetime) -> Row:
    return {
        "event_id": e.event_id,
        "event_type": e.event_type,
        "school_id": e.school_id,
        "occurred_at": e.occurred_at,
        "occurred_at_us": micros(e.occurred_at),
        "emitted_at_us": micros(e.emitted_at) if e.emitted_at else 0,
        "arrived_at": arrived_at,
        "content_hash": content_hash(e.content),
        "body": e.content,
    }


def dead_letter_row(r: Rejected, origin: str, arrived_at: datetime) -> Row:
    digest = hashlib.sha256(r.reason.value.encode() + b"\0" + r.raw).hexdigest()
    return {
        "dead_letter_id": digest,
        "reason": r.reason.value,
        "message": r.message,
        "school_id": r.school_id,
        "event_id": r.event_id,
        "event_type": r.event_type,
        "raw": r.raw.decode("utf-8", errors="replace"),
        "arrived_at": arrived_at,
        "origin": origin,
    }


class Deduplicator:
    """DOMAIN.md's duplicate rule: the first copy of an event_id is kept; an identical later copy is a
    duplicate; a later copy with other content is dead-lettered as a conflicting duplicate."""

    def __init__(self, kept: MutableMapping[str, str] | None = None) -> None:
        #: event_id -> content hash of the first copy; updated in place (the stream passes its
        #: changelog-backed Faust table, replay a dict loaded from the store)
        self.kept: MutableMapping[str, str] = kept if kept is not None else {}

    def check(self, e: Accepted) -> Literal["new", "duplicate"] | Rejected:
        digest = content_hash(e.content)
        first = self.kept.get(e.event_id)
        if not first:
            self.kept[e.event_id] = digest
            return "new"
        if first == digest:
            return "duplicate"
        return Rejected(
            Reason.conflicting_duplicate,
            f"event_id {e.event_id} was already kept with other content; send a new event_id for a new event",
            e.raw,
            school_id=e.school_id,
            event_id=e.event_id,
            event_type=e.event_type,
        )


def kept_hashes(store: Store) -> dict[str, str]:
    rows = store.query(
        f"SELECT event_id, any(content_hash) AS h FROM {store.table('events')} GROUP BY event_id"
    )
    return {r["event_id"]: r["h"] for r in rows}


def load_events(store: Store, until: datetime | None = None) -> list[Accepted]:
    """The kept events (at or before `until`), in rule order."""
    where = f"WHERE occurred_at_us <= {micros(until)}" if until is not None else ""
    rows = store.query(
        f"SELECT event_id, any(body) AS body FROM {store.table('events')} {where} GROUP BY event_id"
    )
    out = []
    for r in rows:
        e = validate(r["body"])
        if isinstance(e, Accepted):
            out.append(e)
    return ordered(out)


@dataclass
class IntakeResult:
    new: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def intake(lines: Iterable[bytes], dedup: Deduplicator) -> IntakeResult:
    """Validate and deduplicate raw events (one per line; blank lines are skipped)."""
    out = IntakeResult()
    for raw in lines:
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        result = validate(raw)
        if isinstance(result, Rejected):
            out.rejected.append(result)
            continue
        verdict = dedup.check(result)
        if verdict == "new":
            out.new.append(result)
        elif verdict == "duplicate":
            out.duplicates += 1
        else:
            out.rejected.append(verdict)
    return out


# --- materialising the live tables -------------------------------------------------------------------


def _f(value: Any) -> float | None:
    return rounded(value, 6) if value is not None else None


def _transition_row(t: Transition, version: int) -> Row:
    a: Alert = t.alert
    return {
        "rule": a.rule,
        "school_id": a.school_id,
        "subject": a.subject,
        "transition": t.kind,
        "at": t.at,
        "at_us": micros(t.at),
        "severity": a.severity,
        "value": _f(a.value),
        "threshold": _f(a.threshold),
        "since": a.since,
        "reasons": list(a.reasons),
        "caused_by": list(a.caused_by),
        "rule_version": t.rule_version,
        "retracted": 0,
        "version": version,
    }


class Materializer:
    """Keeps the incremental engine over the kept log and writes what each change means to the live
    tables. A late event refolds the log and restates the tables from its time on. Every write is
    keyed, so repeating one after a crash replaces rows instead of adding them.
    """

    def __init__(self, store: Store, rules: Rules) -> None:
        self.store = store
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
        events = load_events(self.store)
        self.state = Incremental(self.rules)
        rows = self.store.query(
            f"SELECT school_id, max(arrived_at) AS at FROM {self.store.table('events')} GROUP BY school_id"
        )
        self.last_arrival = {r["school_id"]: _as_utc(r["at"]) for r in rows}
        self._run(events, now or datetime.now(UTC), full=True)
        return len(events)

    def extend(self, events: list[Accepted], now: datetime | None = None) -> list[Transition]:
        """Apply new events (already kept in the store's log); returns the alert transitions."""
        return self._run(events, now or datetime.now(UTC), full=False)

    def _run(self, events: list[Accepted], now: datetime, full: bool) -> list[Transition]:
        version = time.time_ns()
        applied: list[tuple[Accepted, list[Transition], list[Row]]] = []
        unseen = [e.occurred_at for e in events if e.event_id not in self.state.kept]
        earliest = min(unseen) if unseen else None

        def collect(e: Accepted, changed: list[Transition]) -> None:
            # events re-applied from a checkpoint before the earliest new one are unchanged: skip them
            if full or (earliest is not None and e.occurred_at >= earliest):
                applied.append((e, changed, _snapshot_rows(self.engine, e)))

        new, since = self.state.extend(events, collect)
        if not new:
            return []
        if not full:
            self.last_arrival.update((e.school_id, now) for e in new)
        # `applied` holds only what happened from the earliest new event on: a restatement rewrites
        # that, and events re-applied before it (from the checkpoint) are unchanged.
        found = [t for _, changed, _ in applied for t in changed]
        found += self.engine.tick(now, self.last_arrival)
        rows = [_transition_row(t, version) for t in found]
        if full or since is not None:
            _write_transitions(self.store, rows, version, None if full else since)
        else:
            self.store.insert("alert_transitions", rows)
        snapshots = [row for _, _, snap in applied for row in snap]
        for row in snapshots:
            row["version"] = version
        self.store.insert("school_snapshots", snapshots)
        write_current(self.store, self.engine, now, version, None if full else touched(self.engine, new))
        return found

    def tick(self, now: datetime) -> list[Transition]:
        """Clock-driven rules at `now` (certificate expiry, studio inactivity), written to the store."""
        transitions = self.engine.tick(now, self.last_arrival)
        version = time.time_ns()
        self.store.insert("alert_transitions", [_transition_row(t, version) for t in transitions])
        # the clock changes school status (certificate validity) and studios (inactivity), not teachers
        write_current(self.store, self.engine, now, version, (set(), set(self.engine.province.studios)))
        return transitions


def _as_utc(value: datetime | str) -> datetime:
    """A DateTime('UTC') value as the backends return it (naive datetime or text) made aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _snapshot_rows(engine: Engine, e: Accepted) -> list[Row]:
    return [_snapshot_row(engine, sid, ind, e) for sid, ind in engine.last_affected.items()]


def _snapshot_row(engine: Engine, sid: str, ind: Indicators, e: Accepted) -> Row:
    school = engine.province.schools[sid]
    limit = engine.rules.limits["student_teacher_ratio"].for_level(school.level)
    return {
        "school_id": sid, "at": e.occurred_at, "at_us": micros(e.occurred_at), "event_id": e.event_id,
        "name": school.name, "level": school.level.value if school.level else "", "city": school.city,
        "circle": school.circle, "communities": list(school.communities),
        "registered": int(school.registered), "students": _f(ind.students),
        "full_time_teachers": ind.full_time_teachers, "part_time_teachers": ind.part_time_teachers,
        "fte_teachers": _f(ind.fte_teachers), "student_teacher_ratio": _f(ind.student_teacher_ratio),
        "ratio_limit": _f(limit), "professional_teachers": ind.professional_teachers,
        "postgraduate_share": _f(ind.postgraduate_share), "doctor_share": _f(ind.doctor_share),
        "senior_title_share": _f(ind.senior_title_share), "part_time_share": _f(ind.part_time_share),
        "version": 0,
    }  # fmt: skip


def _write_transitions(store: Store, rows: list[Row], version: int, since: datetime | None = None) -> None:
    """Write the transitions of a refold and retract the stored ones (from `since` on) that no longer hold."""
    key = ("rule", "school_id", "subject", "at_us", "transition")
    fresh = {tuple(r[k] for k in key) for r in rows}
    # clock-driven transitions are about the present and are never restated (only event-driven ones)
    rules = ", ".join(f"'{r}'" for r in EVENT_RULES)
    where = f"WHERE rule IN ({rules})" + (f" AND at_us >= {micros(since)}" if since is not None else "")
    stored = store.query(
        f"SELECT rule, school_id, subject, at_us, transition, argMax(retracted, version) AS retracted "
        f"FROM {store.table('alert_transitions')} {where} "
        "GROUP BY rule, school_id, subject, at_us, transition"
    )
    gone = {
        k
        for r in stored
        if (k := (r["rule"], r["school_id"], r["subject"], int(r["at_us"]), r["transition"])) not in fresh
        and not int(r["retracted"])
    }
    if gone:
        for r in store.query(f"SELECT * FROM {store.table('alert_transitions')} FINAL {where}"):
            if (r["rule"], r["school_id"], r["subject"], int(r["at_us"]), r["transition"]) in gone:
                rows.append({**r, "at_us": int(r["at_us"]), "retracted": 1, "version": version})
    store.insert("alert_transitions", rows)


def touched(engine: Engine, events: list[Accepted]) -> tuple[set[str], set[str]]:
    """The teachers and studios whose rows the events may have changed."""
    p = engine.province
    teachers: set[str] = set()
    studios: set[str] = set()
    for e in events:
        pl = e.payload
        for name in ("teacher_id", "lead_teacher_id"):
            if isinstance(v := getattr(pl, name, None), str):
                teachers.add(v)
        if isinstance(sid := getattr(pl, "studio_id", None), str):
            studios.add(sid)
        if isinstance(cid := getattr(pl, "certificate_id", None), str) and cid in p.certificates:
            teachers.add(p.certificates[cid].teacher_id)
        if isinstance(pid := getattr(pl, "programme_id", None), str) and pid in p.programmes:
            teachers.add(p.programmes[pid].teacher_id)
    # a teacher's move changes the compliance of the studios that teacher leads or belongs to
    studios |= {
        s.studio_id
        for s in p.studios.values()
        if s.lead_teacher_id in teachers or teachers & s.members.keys()
    }
    return teachers, studios


def write_current(
    store: Store, engine: Engine, now: datetime, version: int, only: tuple[set[str], set[str]] | None = None
) -> None:
    """The current-state tables at `now`: school_status (every school), and teacher_state and
    studio_state for every teacher and studio, or only those in `only` (teachers, studios)."""
    p, rules = engine.province, engine.rules
    rows = []
    for s in engine.schools(now):
        i = s.indicators
        school = p.schools[i.school_id]
        limit = rules.limits["student_teacher_ratio"].for_level(school.level)
        rows.append({
            "school_id": i.school_id, "as_of": now, "name": school.name,
            "level": i.level.value if i.level else "", "city": i.city, "circle": school.circle,
            "communities": list(school.communities), "students": _f(i.students),
            "full_time_teachers": i.full_time_teachers, "part_time_teachers": i.part_time_teachers,
            "fte_teachers": _f(i.fte_teachers), "student_teacher_ratio": _f(i.student_teacher_ratio),
            "ratio_limit": _f(limit), "professional_teachers": i.professional_teachers,
            "dual_teachers": i.dual_teachers or 0, "dual_share": _f(i.dual_share),
            "postgraduate_share": _f(i.postgraduate_share), "doctor_share": _f(i.doctor_share),
            "senior_title_share": _f(i.senior_title_share), "part_time_share": _f(i.part_time_share),
            "active_studios": i.active_studios, "compliant_studios": i.compliant_studios,
            "violations": list(s.violations), "status": s.status,
            "last_event_at": school.last_event_at or now, "version": version,
        })  # fmt: skip
    store.insert("school_status", rows)
    store.insert(
        "teacher_state",
        (
            {
                "teacher_id": t.teacher_id,
                "school_id": t.school_id or "",
                "employment": t.employment.value,
                "course_type": t.course_type.value,
                "title": t.title.value,
                "degree": t.degree.value,
                "certificates": sum(
                    1 for c in p.certificates_of.get(t.teacher_id, ()) if p.certificates[c].revoked_at is None
                ),
                "updated_at": now,
                "version": version,
            }
            for t in p.teachers.values()
            if only is None or t.teacher_id in only[0]
        ),
    )
    studios = (st for st in p.studios.values() if only is None or st.studio_id in only[1])
    store.insert("studio_state", (_studio_row(engine, st, now, version) for st in studios))


def _studio_row(engine: Engine, st: Studio, now: datetime, version: int) -> Row:
    reasons = studio_reasons(engine.province, engine.rules, st, now) if st.active else ()
    return {
        "studio_id": st.studio_id, "school_id": st.school_id, "name": st.name, "level": st.level,
        "trade": st.trade or "", "community": st.community or "", "lead_teacher_id": st.lead_teacher_id,
        "established_at": st.established_at, "active": int(st.active), "members": len(st.members),
        "compliant": int(st.active and not reasons), "reasons": list(reasons),
        "last_activity_at": st.last_activity_at,
        "last_evaluation": st.last_evaluation.value if st.last_evaluation else "", "version": version,
    }  # fmt: skip
