"""The report contract (docs/domain.md section 10): one JSON-ready dict for a time T."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from fractions import Fraction
from typing import Any

from rules.alerts import EVENT_RULES, Alert
from rules.engine import Engine, SchoolStatus
from rules.forecast import forecast_dict, forecasts
from rules.indicators import CST, day_of
from rules.rounding import rounded

_SHARE_RULES = ("dual_share_below_target", "postgraduate_share_below_target")


def _school(s: SchoolStatus) -> dict[str, Any]:
    i = s.indicators
    return {
        "school_id": i.school_id,
        "level": i.level,
        "city": i.city,
        "students": rounded(i.students, 2),
        "full_time_teachers": i.full_time_teachers,
        "part_time_teachers": i.part_time_teachers,
        "fte_teachers": rounded(i.fte_teachers, 2),
        "student_teacher_ratio": rounded(i.student_teacher_ratio, 2),
        "professional_teachers": i.professional_teachers,
        "dual_teachers": i.dual_teachers,
        "dual_share": rounded(i.dual_share, 4),
        "postgraduate_share": rounded(i.postgraduate_share, 4),
        "doctor_share": rounded(i.doctor_share, 4),
        "senior_title_share": rounded(i.senior_title_share, 4),
        "active_studios": i.active_studios,
        "compliant_studios": i.compliant_studios,
        "violations": list(s.violations),
        "status": s.status,
    }


def alert_dict(a: Alert) -> dict[str, Any]:
    """An alert as the report shows it (values rounded: ratios to 2 places, shares to 4)."""
    places = 4 if a.rule in _SHARE_RULES else 2
    out: dict[str, Any] = {
        "rule": a.rule,
        "school_id": a.school_id,
        "subject": a.subject,
        "severity": a.severity,
        "value": rounded(a.value, places),
        "threshold": rounded(a.threshold, 4),
        "since": a.since.isoformat() if a.since is not None and a.rule in EVENT_RULES else None,
    }
    if a.rule == "studio_noncompliant":
        out["reasons"] = list(a.reasons)
    return out


def build_report(engine: Engine, as_of: datetime) -> dict[str, Any]:
    """The report at `as_of` of an engine that has applied exactly the events up to `as_of`."""
    schools = engine.schools(as_of)
    alerts = engine.alerts_at(as_of, schools)
    n = len(schools)
    green = sum(1 for s in schools if s.status == "green")
    return {
        "as_of": as_of.isoformat(),
        "schools": [_school(s) for s in schools],
        "alerts": [alert_dict(a) for a in alerts],
        "province": {
            "schools": n,
            "students": rounded(sum((s.indicators.students for s in schools), Fraction(0)), 2),
            "full_time_teachers": sum(s.indicators.full_time_teachers for s in schools),
            "studios_active": sum(s.indicators.active_studios for s in schools),
            "studios_compliant": sum(s.indicators.compliant_studios for s in schools),
            "studios_target": engine.rules.studios_target,
            "green_share": rounded(Fraction(green, n), 4) if n else None,
        },
        # early warnings (not alerts, like feed_stale): schools projected to fall below the dual-share target
        "forecasts": [forecast_dict(f) for f in forecasts(engine.province, engine.rules, as_of)],
    }


def unchanged_before(engine: Engine, as_of: datetime) -> datetime:
    """The first time after `as_of` at which the report of the same events can differ from the report at
    `as_of` (apart from the time it names): the next midnight in China Standard Time (certificates, the
    forecast and every rule that counts days go by the calendar day) or the first instant an active
    studio's activity window ends or its founding window closes (studio inactivity goes by the instant).
    Requires that no applied event is later than `as_of`."""
    edge = datetime.combine(day_of(as_of) + timedelta(days=1), time(0), tzinfo=CST)
    window = timedelta(days=engine.rules.studio_inactive_days)
    tick = timedelta(microseconds=1)
    for studio in engine.province.studios.values():
        if not studio.active:
            continue
        # inactivity holds once `at - last_activity_at > window` and `at - established_at > window`
        for start in (studio.last_activity_at, studio.established_at):
            if start is not None and start + window >= as_of:
                edge = min(edge, start + window + tick)
    return edge
