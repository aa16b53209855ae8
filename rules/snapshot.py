"""The engine's state as plain data, and back: what a checkpoint stores (docs/architecture.md,
"Checkpoints").

`capture(engine)` is a dict of JSON values only (strings, numbers, lists, None), `encode` writes it as
UTF-8 JSON and `decode` reads it with `json.loads`, a parser that builds values and runs nothing. The
state holds only what cannot be derived (the indexes a fold keeps are rebuilt on `build`), under a
format name and a version: a snapshot of another format or version, or one whose shape is not the one
this code writes, raises `SnapshotError` with the reason, and the caller folds from the log instead.

    {"format": "dualtrack.engine", "version": 1,
     "schools": [[school_id, registered_at, name, level, city, county, circle, [communities], [flags],
                  [full_time, night, correspondence] | null, enrollment_term, last_event_at], ...],
     "teachers": [[teacher_id, ...], [school_id | null, ...], [employment, ...], [course_type, ...],
                  [title, ...], [degree, ...]],                                 (columns, one per field)
     "certificates": [[certificate_id, ...], [teacher_id, ...], [level, ...], [issued_on ordinal, ...],
                      [valid_until ordinal, ...], [revoked_at | null, ...], [granted_by, ...]],
     "programmes": [[programme_id, ...], [teacher_id, ...], [target, ...], [status, ...]],
     "studios": [[studio_id, school_id, name, level, lead_teacher_id, established_at, trade, community,
                  closed_at, {teacher_id: role}, last_activity_at, last_evaluation], ...],
     "applied": n, "last_applied": [occurred_at, event_id] | null,
     "alerts": [[rule, school_id, subject, severity, value, threshold, since, [reasons], [caused_by],
                 [fired_by]], ...],                        (value and threshold exact fractions "n/d")
     "failed": {event_id: why}}

Times are ISO 8601 with their offset. A row of the wrong length or a value of the wrong type is a
SnapshotError, never a half-built engine.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from rules.alerts import Alert
from rules.engine import Engine
from rules.limits import Rules
from rules.state import Certificate, Programme, Province, School, Studio, Teacher, intern

FORMAT = "dualtrack.engine"
VERSION = 1

Snapshot = dict[str, Any]


class SnapshotError(ValueError):
    """A stored state this code does not read: another format or version, or a damaged one."""


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _fr(value: Fraction | None) -> str | None:
    return None if value is None else str(value)


def capture(engine: Engine) -> Snapshot:
    """The engine's state as JSON values (shares nothing mutable with the engine)."""
    p = engine.province
    t, c, g = p.teachers.values(), p.certificates.values(), p.programmes.values()
    return {
        "format": FORMAT,
        "version": VERSION,
        "schools": [
            [s.school_id, _t(s.registered_at), s.name, s.level, s.city, s.county, s.circle,
             list(s.communities), list(s.flags), None if s.enrollment is None else list(s.enrollment),
             s.enrollment_term, _t(s.last_event_at)]
            for s in p.schools.values()
        ],
        "teachers": [
            [x.teacher_id for x in t], [x.school_id for x in t], [x.employment for x in t],
            [x.course_type for x in t], [x.title for x in t], [x.degree for x in t],
        ],
        "certificates": [
            [x.certificate_id for x in c], [x.teacher_id for x in c], [x.level for x in c],
            [x.issued_on.toordinal() for x in c], [x.valid_until.toordinal() for x in c],
            [_t(x.revoked_at) for x in c], [x.granted_by for x in c],
        ],
        "programmes": [
            [x.programme_id for x in g], [x.teacher_id for x in g], [x.target for x in g],
            [x.status for x in g],
        ],
        "studios": [
            [s.studio_id, s.school_id, s.name, s.level, s.lead_teacher_id, _t(s.established_at), s.trade,
             s.community, _t(s.closed_at), dict(s.members), _t(s.last_activity_at), s.last_evaluation]
            for s in p.studios.values()
        ],
        "applied": p.applied,
        "last_applied": None if p.last_applied is None else [_t(p.last_applied[0]), p.last_applied[1]],
        "alerts": [
            [a.rule, a.school_id, a.subject, a.severity, _fr(a.value), _fr(a.threshold), _t(a.since),
             list(a.reasons), list(a.caused_by), list(a.fired_by)]
            for a in engine.alerts.open.values()
        ],
        "failed": dict(engine.failed),
    }  # fmt: skip


def encode(snapshot: Snapshot) -> bytes:
    return json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes) -> Snapshot:
    """The snapshot in `data`; SnapshotError when it is not JSON of this format and version."""
    try:
        snapshot = json.loads(data)
    except (UnicodeDecodeError, ValueError) as err:
        raise SnapshotError(f"not JSON ({type(err).__name__} at byte {getattr(err, 'pos', '?')})") from None
    if not isinstance(snapshot, dict):
        raise SnapshotError(f"not a snapshot object but a JSON {type(snapshot).__name__}")
    kind, version = snapshot.get("format"), snapshot.get("version")
    if kind != FORMAT or version != VERSION:
        raise SnapshotError(f"format {kind!r} version {version!r}; this release reads {FORMAT!r} {VERSION}")
    return snapshot


def build(snapshot: Snapshot, rules: Rules) -> Engine:
    """An engine in the captured state, under `rules`; SnapshotError when the shape is not this format's."""
    try:
        return _build(snapshot, rules)
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise SnapshotError(f"damaged state ({type(err).__name__}: {str(err)[:200]})") from None


def load(data: bytes, rules: Rules) -> Engine:
    """`build(decode(data), rules)`."""
    return build(decode(data), rules)


def _when(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SnapshotError(f"a time is a {type(value).__name__}, not a string")
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise SnapshotError(f"a time without its offset: {value[:40]!r}")
    return at


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise SnapshotError(f"expected a string, found a {type(value).__name__}")
    return value


def _opt(value: object) -> str | None:
    return None if value is None else _str(value)


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SnapshotError(f"expected a list, found a {type(value).__name__}")
    return tuple(_str(v) for v in value)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SnapshotError(f"expected an integer, found a {type(value).__name__}")
    return value


def _fraction(value: object) -> Fraction | None:
    return None if value is None else Fraction(_str(value))


def _columns(value: object, width: int) -> list[list[Any]]:
    if not isinstance(value, list) or len(value) != width or not all(isinstance(c, list) for c in value):
        raise SnapshotError(f"expected {width} columns")
    if len({len(c) for c in value}) > 1:
        raise SnapshotError("columns of different lengths")
    return value


def _rows(value: object, width: int) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(r, list) and len(r) == width for r in value):
        raise SnapshotError(f"expected rows of {width} values")
    return value


def _build(s: Snapshot, rules: Rules) -> Engine:
    engine = Engine(rules)
    p = Province()
    for (sid, registered, name, level, city, county, circle, communities, flags, enrollment, term,
         last) in _rows(s["schools"], 12):  # fmt: skip
        counts = None
        if enrollment is not None:
            full, night, corr = (_int(v) for v in _rows([enrollment], 3)[0])
            counts = (full, night, corr)
        p.schools[_str(sid)] = School(
            _str(sid),
            _when(registered),
            _str(name),
            _opt(level),
            _str(city),
            _opt(county),
            _str(circle),
            _strs(communities),
            _strs(flags),
            counts,
            _str(term),
            _when(last),
        )
    for tid, sid, emp, course, title, degree in zip(*_columns(s["teachers"], 6), strict=True):
        teacher = Teacher(_str(tid), None, intern(_str(emp)), intern(_str(course)), intern(_str(title)),
                          intern(_str(degree)))  # fmt: skip
        p.place(teacher, None if sid is None else _str(sid))
    ordinal = date.fromordinal
    for cid, tid, level, issued, until, revoked, by in zip(*_columns(s["certificates"], 7), strict=True):
        p.certificates[_str(cid)] = Certificate(
            _str(cid),
            _str(tid),
            intern(_str(level)),
            ordinal(_int(issued)),
            ordinal(_int(until)),
            _when(revoked),
            _str(by),
        )
        p.certificates_of[tid].add(cid)
    for pid, tid, target, status in zip(*_columns(s["programmes"], 4), strict=True):
        p.programmes[_str(pid)] = Programme(_str(pid), _str(tid), intern(_str(target)), intern(_str(status)))
    for (sid, school, name, level, lead, established, trade, community, closed, members, activity,
         evaluation) in _rows(s["studios"], 12):  # fmt: skip
        if not isinstance(members, dict):
            raise SnapshotError("a studio's members are not an object")
        established_at = _when(established)
        if established_at is None:
            raise SnapshotError("a studio without its founding time")
        studio = Studio(
            _str(sid),
            _str(school),
            _str(name),
            _str(level),
            _str(lead),
            established_at,
            _opt(trade),
            _opt(community),
            _when(closed),
            {_str(k): _str(v) for k, v in members.items()},
            _when(activity),
            _opt(evaluation),
        )
        p.add_studio(studio)
    p.applied = _int(s["applied"])
    last = s["last_applied"]
    if last is not None:
        at, event_id = _rows([last], 2)[0]
        when = _when(at)
        if when is None:
            raise SnapshotError("the last applied position has no time")
        p.last_applied = (when, _str(event_id))
    engine.province = p
    for (rule, school_id, subject, severity, value, threshold, since, reasons, caused_by,
         fired_by) in _rows(s["alerts"], 10):  # fmt: skip
        if severity not in ("warning", "critical"):
            raise SnapshotError(f"an alert of severity {str(severity)[:20]!r}")
        alert = Alert(
            _str(rule),
            _str(school_id),
            _str(subject),
            severity,
            _fraction(value),
            _fraction(threshold),
            _when(since),
            _strs(reasons),
            _strs(caused_by),
            _strs(fired_by),
        )
        engine.alerts.open[alert.key] = alert
    failed = s["failed"]
    if not isinstance(failed, dict):
        raise SnapshotError("the failed events are not an object")
    engine.failed = {_str(k): _str(v) for k, v in failed.items()}
    return engine
