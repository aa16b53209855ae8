"""The early warning (rules/forecast.py) against a case computed by hand, and its edge cases."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from rules.engine import fold
from rules.forecast import forecast_alerts, forecast_dict, forecast_transitions, forecasts
from rules.limits import load_rules
from rules.state import Province
from tests.helpers import accepted, ev, hire, register

RULES = load_rules()
AT = datetime.fromisoformat("2026-01-10T12:00:00+08:00")


def grant(school: str, cert: str, teacher: str, issued: str, until: str, at: str = "2025-02-01T09:00:00+08:00") -> dict[str, Any]:  # fmt: skip
    return ev("certification.granted", school, at, {"certificate_id": cert, "teacher_id": teacher,
              "level": "intermediate", "issued_on": issued, "valid_until": until}, event_id=None)  # fmt: skip


def province(renewed: bool = True, revoked: bool = True) -> tuple[Province, dict[str, str]]:
    """SD0001, a secondary school (dual_share >= 0.5, inclusive):

    teacher  staff?                        certificates
    T1       full-time professional        C1 2024-01-01 .. 2026-03-01
    T2       full-time professional        C2 2023-02-01 .. 2026-02-01, renewed by C2R 2026-01-05 .. 2030-01-05
    T3       full-time professional        C3 2023-05-01 .. 2026-05-01
    T4       full-time professional        none
    T5       full-time professional        C5 2024-01-01 .. 2027-01-01, revoked 2025-06-01
    T8       full-time professional        C8 2025-04-01 .. 2026-04-01
    T6       full-time general             C6 (not staff for the share)
    T7       part-time professional        C7 (not staff for the share)
    """
    sid = "SD0001"
    events = [register(sid, "2025-01-01T08:00:00+08:00")]
    events += [hire(sid, "2025-01-02T08:00:00+08:00", t) for t in ("T1", "T2", "T3", "T4", "T5", "T8")]
    events += [hire(sid, "2025-01-02T08:00:00+08:00", "T6", course="general"),
               hire(sid, "2025-01-02T08:00:00+08:00", "T7", employment="part_time")]  # fmt: skip
    grants = [grant(sid, "C1", "T1", "2024-01-01", "2026-03-01"), grant(sid, "C2", "T2", "2023-02-01", "2026-02-01"),
              grant(sid, "C3", "T3", "2023-05-01", "2026-05-01"), grant(sid, "C5", "T5", "2024-01-01", "2027-01-01"),
              grant(sid, "C8", "T8", "2025-04-01", "2026-04-01"), grant(sid, "C6", "T6", "2025-01-01", "2030-01-01"),
              grant(sid, "C7", "T7", "2025-01-01", "2030-01-01")]  # fmt: skip
    if renewed:
        grants.append(grant(sid, "C2R", "T2", "2026-01-05", "2030-01-05", at="2026-01-05T09:00:00+08:00"))
    events += grants
    if revoked:
        events.append(ev("certification.revoked", sid, "2025-06-01T09:00:00+08:00", {"certificate_id": "C5"}))
    granted_by = {e["payload"]["certificate_id"]: e["event_id"] for e in grants}
    return fold([accepted(e) for e in events], RULES).province, granted_by


def test_the_hand_computed_case() -> None:
    """Staff: T1, T2, T3, T4, T5, T8 = 6 full-time professional teachers (T6 general, T7 part-time).
    On 2026-01-10 dual: T1, T2, T3, T8 = 4 (T4 has none, T5's is revoked): 4/6 = 0.667 >= 0.5.
    2026-02-01: C2 ends, but C2R (issued 2026-01-05 <= 2026-02-01) takes over: still 4.
    2026-03-01: C1 ends: 3/6 = 0.5, which meets the target (inclusive).
    2026-04-01: C8 ends: 2/6 = 0.333 < 0.5: the first day below target.
    Days left: 2026-01-10 to 2026-04-01 = 21 (rest of January) + 1 + 28 + 31 = 81 <= 90: a warning.
    The cause: C1 (T1, 2026-03-01) and C8 (T8, 2026-04-01), whose teachers are not dual that day."""
    p, granted_by = province()
    [f] = forecasts(p, RULES, AT)
    assert (f.school_id, f.professional_teachers, f.dual_teachers, f.dual_share) == (
        "SD0001",
        6,
        4,
        Fraction(2, 3),
    )
    assert (f.falls_below_on, f.dual_teachers_then, f.days_left, f.warning) == (date(2026, 4, 1), 2, 81, True)
    assert f.certificates == ("C1", "C8") and f.caused_by == (granted_by["C1"], granted_by["C8"])
    assert forecast_dict(f) == {
        "school_id": "SD0001", "level": "secondary", "professional_teachers": 6, "dual_teachers": 4,
        "dual_share": 0.6667, "target": 0.5, "falls_below_on": "2026-04-01", "dual_teachers_then": 2,
        "days_left": 81, "certificates": ["C1", "C8"], "warning": True,
    }  # fmt: skip


def test_the_horizon_is_inclusive_at_ninety_days() -> None:
    """2026-01-01 to 2026-04-01 is 90 days: warned; from 2025-12-31 it is 91: projected, not warned.
    (C2R is granted on 2026-01-05: from these days the fold up to T does not know it, so the forecast
    is taken from the province as of 2026-01-10, as the live worker holds it.)"""
    p, _ = province()
    [f90] = forecasts(p, RULES, datetime.fromisoformat("2026-01-01T09:00:00+08:00"))
    [f91] = forecasts(p, RULES, datetime.fromisoformat("2025-12-31T09:00:00+08:00"))
    assert (f90.days_left, f90.warning) == (90, True) and (f91.days_left, f91.warning) == (91, False)


def test_without_the_renewal_the_school_falls_short_a_month_earlier() -> None:
    """Without C2R: 2026-02-01 C2 ends: 3/6 = 0.5 meets; 2026-03-01 C1 ends: 2/6 < 0.5."""
    p, _ = province(renewed=False)
    [f] = forecasts(p, RULES, AT)
    assert (f.falls_below_on, f.certificates, f.days_left) == (date(2026, 3, 1), ("C2", "C1"), 50)


def test_a_revoked_certificate_does_not_count() -> None:
    """Were C5 not revoked: 5/6 now; 2026-04-01: 3/6 meets; 2026-05-01 (C3 ends): 2/6 < 0.5."""
    p, _ = province(revoked=False)
    [f] = forecasts(p, RULES, AT)
    assert (f.dual_teachers, f.falls_below_on, f.certificates) == (5, date(2026, 5, 1), ("C1", "C8", "C3"))


def test_schools_already_below_target_or_without_staff_are_not_forecast_and_far_ones_not_warned() -> None:
    p, _ = province()
    # on 2026-04-02 the school is below target already (2/6): its dual_share alert says so, not a forecast
    assert forecasts(p, RULES, datetime.fromisoformat("2026-04-02T09:00:00+08:00")) == []
    events = [register("SD0002", "2025-01-01T08:00:00+08:00"), hire("SD0002", "2025-01-02T08:00:00+08:00", "U1"),
              grant("SD0002", "CU1", "U1", "2025-01-01", "2099-01-01"), register("SD0003", "2025-01-01T08:00:00+08:00"),
              hire("SD0003", "2025-01-02T08:00:00+08:00", "U2", course="general")]  # fmt: skip
    other = fold([accepted(e) for e in events], RULES).province
    [far] = forecasts(other, RULES, AT)  # SD0003 has no professional staff: no share, no forecast
    assert (far.school_id, far.falls_below_on, far.warning) == ("SD0002", date(2099, 1, 1), False)
    assert forecast_alerts([far]) == {}


def test_warnings_become_transitions_with_the_causing_events() -> None:
    p, granted_by = province()
    found = forecasts(p, RULES, AT)
    current = forecast_alerts(found)
    opened, fired = forecast_transitions({}, current, AT, RULES.version)
    [t] = fired
    assert (t.kind, t.alert.rule, t.alert.reasons, t.alert.caused_by) == (
        "fired", "dual_share_forecast", ("2026-04-01",), (granted_by["C1"], granted_by["C8"]))  # fmt: skip
    assert forecast_transitions(opened, current, AT + timedelta(hours=1), RULES.version)[1] == []
    _, resolved = forecast_transitions(opened, {}, AT + timedelta(days=1), RULES.version)
    assert [t.kind for t in resolved] == ["resolved"]
