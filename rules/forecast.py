"""Early warning (docs/alerts.md, "Early warning"): the first day each school's dual-teacher share would
fall below its target if nothing were renewed and nobody hired, from the certificates already known.

The staff is the school's full-time professional teachers at T. A teacher counts as dual on a day that
one of the teacher's non-revoked certificates covers (`issued_on <= day < valid_until`, as in the
indicator), so a renewal already granted that takes over (issued on or before the old certificate's
end) keeps the teacher dual without a gap. A school below target at T is not forecast: it has its
`dual_share_below_target` alert already.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from fractions import Fraction
from typing import Any

from rules.alerts import Alert, AlertKey, Transition
from rules.indicators import day_of
from rules.limits import Rules
from rules.rounding import rounded
from rules.state import Certificate, Province

RULE = "dual_share_forecast"


@dataclass(frozen=True, slots=True)
class Forecast:
    school_id: str
    level: str
    professional_teachers: int
    dual_teachers: int  # at T
    dual_share: Fraction  # at T
    target: Fraction
    falls_below_on: date  # the first day the share is below target
    dual_teachers_then: int  # on that day
    days_left: int  # from the day of T
    certificates: tuple[str, ...]  # whose expiry causes it, by end date then id
    caused_by: tuple[str, ...]  # the events that granted those certificates
    warning: bool  # within `notifications.forecast_days`


def _runs(certs: Iterable[Certificate], day: date) -> list[tuple[date, date, Certificate]]:
    """The stretches (start, end, the certificate that ends it) a teacher's certificates cover without a
    gap, from `day` on: a certificate issued on or before another's end continues its stretch."""
    out: list[tuple[date, date, Certificate]] = []
    for c in sorted(certs, key=lambda c: (c.issued_on, c.valid_until, c.certificate_id)):
        if c.valid_until <= day:
            continue
        if out and c.issued_on <= out[-1][1]:
            start, end, _ = out[-1]
            if c.valid_until > end:
                out[-1] = (start, c.valid_until, c)
        else:
            out.append((max(c.issued_on, day), c.valid_until, c))
    return out


def forecast_school(province: Province, rules: Rules, school_id: str, at: datetime) -> Forecast | None:
    """The school's forecast at `at`, or None: not registered, no limit or no staff at its level, below
    target already, or the share never falls below target within the certificates known."""
    school = province.schools.get(school_id)
    limit_def = rules.limits["dual_share"]
    target = limit_def.for_level(school.level if school else None)
    if school is None or not school.registered or target is None:
        return None
    day = day_of(at)
    staff = sorted(
        tid
        for tid in province.teachers_at.get(school_id, ())
        if province.teachers[tid].full_time_professional
    )
    if not staff:
        return None
    changes: dict[date, int] = {}
    stretches: list[tuple[date, date, str, Certificate]] = []  # (start, end, teacher, ending certificate)
    for tid in staff:
        live = (
            c
            for cid in province.certificates_of.get(tid, ())
            if (c := province.certificates[cid]).revoked_at is None
        )
        for start, end, last in _runs(live, day):
            stretches.append((start, end, tid, last))
            changes[start] = changes.get(start, 0) + 1
            changes[end] = changes.get(end, 0) - 1
    dual = len({tid for start, _, tid, _ in stretches if start <= day})
    share = Fraction(dual, len(staff))
    if limit_def.missed(share, target):
        return None
    count = dual
    for when in sorted(w for w in changes if w > day):
        count += changes[when]
        if not limit_def.missed(Fraction(count, len(staff)), target):
            continue
        covered = {tid for start, end, tid, _ in stretches if start <= when < end}
        lost = sorted((end, last.certificate_id, last.granted_by)
                      for _, end, tid, last in stretches if end <= when and tid not in covered)  # fmt: skip
        days = (when - day).days
        return Forecast(
            school_id, school.level or "", len(staff), dual, share, target, when, count, days,
            tuple(cid for _, cid, _ in lost), tuple(dict.fromkeys(g for _, _, g in lost if g)),
            days <= rules.notifications.forecast_days,
        )  # fmt: skip
    return None


def forecasts(province: Province, rules: Rules, at: datetime) -> list[Forecast]:
    """The forecast of every registered school that meets its target at `at` and would fall below it
    within the certificates known, by school_id."""
    out = (forecast_school(province, rules, sid, at) for sid in sorted(province.schools))
    return [f for f in out if f is not None]


def forecast_dict(f: Forecast) -> dict[str, Any]:
    """A forecast as the JSON report's `forecasts` list shows it (shares to 4 places)."""
    return {
        "school_id": f.school_id, "level": f.level, "professional_teachers": f.professional_teachers,
        "dual_teachers": f.dual_teachers, "dual_share": rounded(f.dual_share, 4),
        "target": rounded(f.target, 4), "falls_below_on": f.falls_below_on.isoformat(),
        "dual_teachers_then": f.dual_teachers_then, "days_left": f.days_left,
        "certificates": list(f.certificates), "warning": f.warning,
    }  # fmt: skip


def forecast_alerts(found: Iterable[Forecast]) -> dict[AlertKey, Alert]:
    """The `dual_share_forecast` warnings: value the share at T, threshold the target, `reasons` the
    projected day (ISO), `caused_by` the events that granted the certificates whose expiry causes it."""
    out = {}
    for f in found:
        if f.warning:
            a = Alert(RULE, f.school_id, "", "warning", f.dual_share, f.target,
                      reasons=(f.falls_below_on.isoformat(),), caused_by=f.caused_by)  # fmt: skip
            out[a.key] = a
    return out


def forecast_transitions(
    open_: Mapping[AlertKey, Alert], current: Mapping[AlertKey, Alert], at: datetime, rule_version: str
) -> tuple[dict[AlertKey, Alert], list[Transition]]:
    """Fired / updated / resolved transitions that bring the open forecast warnings in line with the
    current ones, and the new open set. Unlike `AlertBook` each keeps its own `caused_by`."""
    now, out = dict(open_), []
    for key in sorted(set(open_) | set(current)):
        new, old = current.get(key), open_.get(key)
        if new is not None and old is None:
            now[key] = replace(new, since=at, fired_by=new.caused_by)
            out.append(Transition("fired", now[key], at, rule_version))
        elif new is not None and old is not None and not new.same_state(old):
            now[key] = replace(new, since=old.since, fired_by=old.fired_by)
            out.append(Transition("updated", now[key], at, rule_version))
        elif new is None and old is not None:
            del now[key]
            out.append(Transition("resolved", old, at, rule_version))
    return now, out
