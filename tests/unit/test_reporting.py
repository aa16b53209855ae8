"""Reporting completeness and timeliness, and the live enrollment_missing alert, against a hand-computed
case (docs/domain.md, "Reporting")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rules.engine import Engine
from rules.limits import load_rules
from rules.reporting import deadline, owed, rates, terms_due
from tests.helpers import accepted, ev, register

RULES = load_rules()
CST = timezone(timedelta(hours=8))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def engine() -> Engine:
    e = Engine(RULES)
    for sid, when, city in (("SD1", "2024-09-01T08:00", "jinan"), ("SD2", "2024-09-01T08:00", "jinan"),
                            ("SD3", "2024-09-01T08:00", "qingdao"), ("SD4", "2025-05-01T08:00", "qingdao")):  # fmt: skip
        e.apply(accepted(register(sid, f"{when}:00+08:00", city=city)))
    return e


#: SD1 on time, SD2 two days late, SD3 never; SD4 registered after the spring deadline owes nothing
ARRIVALS = {("SD1", "2025-spring"): at("2025-03-20T10:00"), ("SD2", "2025-spring"): at("2025-04-02T09:00")}


def test_the_deadline_is_the_last_second_of_its_day_in_china() -> None:
    assert deadline("2025-spring", RULES) == at("2025-03-31T23:59:59")
    assert deadline("2025-autumn", RULES) == at("2025-10-15T23:59:59")
    assert terms_due(at("2025-04-01T00:00"), RULES, 2) == ["2025-spring", "2024-autumn"]
    assert terms_due(at("2025-03-31T23:00"), RULES, 1) == ["2024-autumn"]


def test_on_time_late_and_missing_and_their_rates() -> None:
    rows = owed(engine().province, RULES, ARRIVALS, at("2025-05-02T00:00"), ["2025-spring"])
    assert {(r.school_id, r.status) for r in rows} == {
        ("SD1", "on_time"),
        ("SD2", "late"),
        ("SD3", "missing"),
    }
    by_city = rates(rows, "city")
    assert (by_city["jinan"].owed, by_city["jinan"].on_time, by_city["jinan"].late) == (2, 1, 1)
    assert by_city["jinan"].completeness == 1.0 and by_city["jinan"].timeliness == 0.5
    assert by_city["qingdao"].completeness == 0.0
    whole = rates(rows)["province"]
    assert (whole.owed, whole.missing) == (3, 1) and whole.completeness == 2 / 3
    # as known before SD2's report arrived, it is missing
    earlier = owed(engine().province, RULES, ARRIVALS, at("2025-04-01T12:00"), ["2025-spring"])
    assert {r.school_id for r in earlier if r.status == "missing"} == {"SD2", "SD3"}


def test_enrollment_missing_fires_at_the_deadline_and_resolves_on_arrival() -> None:
    e = engine()

    def open_at(t: datetime) -> set[str]:
        e.tick(t, {}, ARRIVALS)
        return {a.school_id for a in e.alerts.open.values() if a.rule == "enrollment_missing"}

    assert open_at(at("2025-03-31T23:59:00")) == {"SD1", "SD2", "SD3"}  # autumn 2024 is still owed
    assert {a.subject for a in e.alerts.open.values() if a.rule == "enrollment_missing"} == {"2024-autumn"}

    assert open_at(at("2025-04-01T00:00:30")) == {"SD2", "SD3"}  # SD1's came on time
    assert open_at(at("2025-04-02T09:00:01")) == {"SD3"}  # SD2's arrived late: resolved
    # the autumn deadline passes: SD3 now owes autumn, like every school that has not sent it
    assert open_at(at("2025-10-16T00:00:01")) == {"SD1", "SD2", "SD3", "SD4"}
    assert {a.subject for a in e.alerts.open.values() if a.rule == "enrollment_missing"} == {"2025-autumn"}


def test_a_report_of_another_term_or_school_does_not_count() -> None:
    e = engine()
    e.apply(accepted(ev("enrollment.reported", "SD3", "2025-03-01T08:00:00+08:00",
                        {"term": "2024-autumn", "counts": {"full_time": 10}})))  # fmt: skip
    wrong = {("SD3", "2024-autumn"): at("2025-03-01T08:00"), ("SD1", "2025-spring"): at("2025-03-02T08:00")}
    rows = owed(e.province, RULES, wrong, at("2025-04-10T00:00"), ["2025-spring"])
    assert {r.school_id for r in rows if r.status == "missing"} == {"SD2", "SD3"}
