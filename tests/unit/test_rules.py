"""The rules of docs/domain.md sections 3-8, one behaviour per test, on small hand-made provinces."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

import pytest

from rules.engine import fold
from rules.limits import load_rules
from rules.report import build_report
from tests.helpers import accepted, enroll, ev, hire, register

RULES = load_rules()
T = "2025-12-31T23:59:59+08:00"


def report(events: list[dict[str, Any]], at: str = T) -> dict[str, Any]:
    t = datetime.fromisoformat(at)
    return build_report(fold([accepted(e) for e in events], RULES, t), t)


def school(rep: dict[str, Any], sid: str = "A") -> dict[str, Any]:
    return next(s for s in rep["schools"] if s["school_id"] == sid)


def alerts(rep: dict[str, Any], rule: str | None = None) -> list[dict[str, Any]]:
    return [a for a in rep["alerts"] if rule is None or a["rule"] == rule]


def staff(
    sid: str, n: int, at: str = "2024-01-01T09:00:00+08:00", prefix: str = "T", **kw: str
) -> list[dict[str, Any]]:
    return [hire(sid, at, f"{prefix}{sid}{i}", **kw) for i in range(n)]


def test_ratio_is_exact_at_the_limit() -> None:
    # 1 + 7 × 0.3 + 169 × 0.1 = 20 students over one teacher: exactly 20, not a violation
    events = [register("A", "2024-01-01T08:00:00+08:00"), enroll("A", "2024-02-01T08:00:00+08:00", 1, 7, 169),
              hire("A", "2024-01-02T08:00:00+08:00", "T1")]  # fmt: skip
    s = school(report(events))
    assert s["students"] == 20.0 and s["student_teacher_ratio"] == 20.0
    assert "student_teacher_ratio" not in s["violations"]
    assert not alerts(report(events), "ratio_shortfall")


def test_part_time_teachers_count_half() -> None:
    events = [register("A", "2024-01-01T08:00:00+08:00"), enroll("A", "2024-02-01T08:00:00+08:00", 30),
              *staff("A", 1), *staff("A", 2, prefix="P", employment="part_time")]  # fmt: skip
    s = school(report(events))
    assert s["fte_teachers"] == 2.0 and s["student_teacher_ratio"] == 15.0 and s["part_time_teachers"] == 2


def test_students_without_teachers_is_an_infinite_ratio() -> None:
    events = [register("A", "2024-01-01T08:00:00+08:00"), enroll("A", "2024-02-01T08:00:00+08:00", 10)]
    rep = report(events)
    s = school(rep)
    assert s["student_teacher_ratio"] is None and "student_teacher_ratio" in s["violations"]
    [a] = alerts(rep, "ratio_shortfall")
    assert a["severity"] == "critical" and a["value"] is None and a["threshold"] == 20.0
    assert a["since"] == "2024-02-01T08:00:00+08:00"


def test_no_students_is_ratio_zero_and_null_shares() -> None:
    s = school(report([register("A", "2024-01-01T08:00:00+08:00")]))
    assert s["student_teacher_ratio"] == 0.0
    assert s["dual_share"] is None and s["postgraduate_share"] is None and s["senior_title_share"] is None
    assert s["violations"] == ["full_time_teachers"] and s["status"] == "yellow"


def test_ratio_severity_critical_above_limit_times_1_2() -> None:
    base = [register("A", "2024-01-01T08:00:00+08:00", level="higher"), *staff("A", 10)]
    warn = report([*base, enroll("A", "2024-03-01T08:00:00+08:00", 216)])  # 21.6 = 18 × 1.2: warning
    crit = report([*base, enroll("A", "2024-03-01T08:00:00+08:00", 217)])
    assert alerts(warn, "ratio_shortfall")[0]["severity"] == "warning"
    assert alerts(crit, "ratio_shortfall")[0]["severity"] == "critical"


def test_alert_since_survives_severity_change_and_resets_after_mending() -> None:
    events = [register("A", "2024-01-01T08:00:00+08:00"), *staff("A", 10, "2024-01-01T09:00:00+08:00"),
              enroll("A", "2024-03-01T08:00:00+08:00", 210),   # 21: warning from March
              enroll("A", "2024-04-01T08:00:00+08:00", 300),   # 30: critical, same alert
              ]  # fmt: skip
    [a] = alerts(report(events), "ratio_shortfall")
    assert a["since"] == "2024-03-01T08:00:00+08:00" and a["severity"] == "critical"
    mended = [
        *events,
        enroll("A", "2024-05-01T08:00:00+08:00", 100),
        enroll("A", "2024-06-01T08:00:00+08:00", 250),
    ]
    [b] = alerts(report(mended), "ratio_shortfall")
    assert b["since"] == "2024-06-01T08:00:00+08:00"


def test_unregistered_school_is_not_reported_until_registration() -> None:
    events = [*staff("A", 3), register("A", "2025-06-01T08:00:00+08:00")]
    assert report(events, "2025-01-01T00:00:00+08:00")["schools"] == []
    rep = report(events)
    assert school(rep)["full_time_teachers"] == 3
    [a] = alerts(rep, "full_time_teachers_below_minimum")
    assert a["since"] == "2025-06-01T08:00:00+08:00"  # fires at registration


def test_transfer_in_either_order_and_updates_only_from_the_active_school() -> None:
    at1, at2 = "2024-01-01T08:00:00+08:00", "2024-09-01T08:00:00+08:00"
    both = [register("A", at1), register("B", at1), hire("A", "2024-01-02T08:00:00+08:00", "T1")]
    depart = ev("teacher.departed", "A", at2, {"teacher_id": "T1", "reason": "transfer"})
    rehire = hire("B", "2024-08-31T08:00:00+08:00", "T1", degree="master")
    # hired at B before A's departure arrives: the departure from A no longer applies
    rep = report([*both, rehire, depart])
    assert school(rep, "A")["full_time_teachers"] == 0 and school(rep, "B")["full_time_teachers"] == 1
    assert school(rep, "B")["postgraduate_share"] == 1.0
    stray = ev(
        "teacher.updated", "A", "2024-10-01T08:00:00+08:00", {"teacher_id": "T1", "degree": "below_bachelor"}
    )
    assert school(report([*both, rehire, depart, stray]), "B")["postgraduate_share"] == 1.0


def cert(
    teacher: str, cid: str, issued: str, until: str, at: str = "2024-01-05T08:00:00+08:00"
) -> dict[str, Any]:
    return ev("certification.granted", "A", at, {"certificate_id": cid, "teacher_id": teacher, "level": "junior",
                                                  "issued_on": issued, "valid_until": until})  # fmt: skip


def test_dual_share_counts_valid_unrevoked_certificates_on_the_day_in_china_time() -> None:
    events = [register("A", "2024-01-01T08:00:00+08:00"), *staff("A", 2),
              cert("TA0", "C0", "2024-01-01", "2026-01-01"), cert("TA1", "C1", "2024-01-01", "2025-12-31")]  # fmt: skip
    # 2025-12-30T16:30Z is 2025-12-31 00:30 in China: C1 (valid until 12-31) no longer counts
    assert school(report(events, "2025-12-30T16:30:00+00:00"))["dual_teachers"] == 1
    assert school(report(events, "2025-12-30T15:30:00+00:00"))["dual_teachers"] == 2
    revoked = [
        *events,
        ev("certification.revoked", "A", "2025-03-01T08:00:00+08:00", {"certificate_id": "C0"}),
    ]
    assert school(report(revoked, "2025-02-28T08:00:00+08:00"))["dual_teachers"] == 2
    assert school(report(revoked, "2025-03-01T08:00:00+08:00"))["dual_teachers"] == 1


def test_certificate_expiring_unless_a_successor_takes_over() -> None:
    events = [register("A", "2024-01-01T08:00:00+08:00"), *staff("A", 1),
              cert("TA0", "C0", "2023-01-01", "2026-02-15")]  # fmt: skip
    rep = report(events)  # 46 days left on 2025-12-31
    assert [a["subject"] for a in alerts(rep, "certificate_expiring")] == ["C0"]
    renewed = [*events, cert("TA0", "C1", "2026-02-01", "2029-02-01", at="2025-12-01T08:00:00+08:00")]
    assert not alerts(report(renewed), "certificate_expiring")


def test_certificate_expired_names_the_latest_ended_certificate_once_per_teacher() -> None:
    events = [register("A", "2024-01-01T08:00:00+08:00"), *staff("A", 1),
              cert("TA0", "C-b", "2022-01-01", "2025-06-01"), cert("TA0", "C-a", "2022-01-01", "2025-06-01"),
              cert("TA0", "C-old", "2020-01-01", "2023-01-01")]  # fmt: skip
    expired = alerts(report(events), "certificate_expired")
    assert [(a["subject"], a["school_id"], a["since"]) for a in expired] == [("C-a", "A", None)]


def test_studio_compliance_reasons_in_order() -> None:
    at = "2024-01-01T08:00:00+08:00"
    found = ev("studio.established", "A", "2024-02-01T08:00:00+08:00",
               {"studio_id": "S1", "name": "CNC", "level": "provincial", "lead_teacher_id": "L"})  # fmt: skip
    members = [ev("studio.member_joined", "A", "2024-02-02T08:00:00+08:00", {"studio_id": "S1", "teacher_id": t,
                                                                          "role": "member"}) for t in ("M1", "M2")]  # fmt: skip
    failed = ev(
        "studio.evaluated",
        "A",
        "2024-12-01T08:00:00+08:00",
        {"studio_id": "S1", "year": 2024, "result": "fail"},
    )
    events = [register("A", at), hire("A", at, "M1"), hire("A", at, "M2"), found, *members, failed]
    [a] = alerts(report(events, "2025-12-31T23:59:59+08:00"), "studio_noncompliant")
    assert a["subject"] == "S1"
    assert a["reasons"] == ["lead_inactive", "too_few_members", "inactive", "failed_evaluation"]
    # a studio event from another school changes nothing
    foreign = ev("studio.closed", "B", "2025-01-01T08:00:00+08:00", {"studio_id": "S1"})
    assert school(report([*events, foreign]))["active_studios"] == 1


def test_studio_becomes_compliant_with_lead_members_and_activity() -> None:
    at = "2024-01-01T08:00:00+08:00"
    people = [hire("A", at, t) for t in ("L", "M1", "M2", "M3")]
    found = ev("studio.established", "A", "2024-02-01T08:00:00+08:00",
               {"studio_id": "S1", "name": "CNC", "level": "school", "lead_teacher_id": "L"})  # fmt: skip
    joins = [ev("studio.member_joined", "A", "2024-02-02T08:00:00+08:00",
                {"studio_id": "S1", "teacher_id": t, "role": "member"}) for t in ("M1", "M2", "M3", "L")]  # fmt: skip
    activity = ev(
        "studio.activity_reported", "A", "2025-07-15T08:00:00+08:00", {"studio_id": "S1", "period": "2025-07"}
    )
    rep = report([register("A", at), *people, found, *joins, activity])
    assert school(rep)["compliant_studios"] == 1 and not alerts(rep, "studio_noncompliant")
    # 180 days after the last activity (timestamps), it becomes inactive
    assert alerts(report([register("A", at), *people, found, *joins, activity], "2026-01-11T08:00:01+08:00"),
                  "studio_noncompliant")[0]["reasons"] == ["inactive"]  # fmt: skip


def test_degree_conferral_raises_degree_once_and_only_when_enrolled() -> None:
    at = "2024-01-01T08:00:00+08:00"
    enrol = ev("degree.enrolled", "A", "2024-02-01T08:00:00+08:00", {"programme_id": "P", "teacher_id": "T1",
                                                                      "target_degree": "master"})  # fmt: skip
    confer = ev("degree.conferred", "A", "2025-07-01T08:00:00+08:00", {"programme_id": "P"})
    withdraw = ev("degree.withdrawn", "A", "2025-06-01T08:00:00+08:00", {"programme_id": "P"})
    base = [register("A", at, level="higher"), hire("A", at, "T1")]
    assert school(report([*base, enrol, confer]))["postgraduate_share"] == 1.0
    assert school(report([*base, enrol, withdraw, confer]))["postgraduate_share"] == 0.0
    assert school(report([*base, confer]))["postgraduate_share"] == 0.0


def test_status_card_rule() -> None:
    at = "2024-01-01T08:00:00+08:00"
    green = report([register("A", at, level="technician"), *staff("A", 2, course="general")])
    assert school(green)["violations"] == [] and school(green)["status"] == "green"
    assert green["province"]["green_share"] == 1.0


def test_rules_file_is_exact_and_versioned() -> None:
    assert RULES.limits["dual_share"].for_level(None) is None
    assert RULES.student_weights["night"] == Fraction(3, 10)
    assert RULES.version


@pytest.mark.parametrize("broken", ["version: 1\nlimits: {}\n", "- a list\n", "limits: [\n"])
def test_a_broken_rules_file_names_the_problem(tmp_path, broken: str) -> None:  # type: ignore[no-untyped-def]
    from foundation.errors import ConfigError

    f = tmp_path / "rules.yaml"
    f.write_text(broken)
    with pytest.raises(ConfigError, match="rules file"):
        load_rules(f)


def test_a_wrong_rules_file_names_the_file_the_key_path_and_the_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from foundation.errors import ConfigError
    from rules.limits import DEFAULT_RULES_FILE

    lines = DEFAULT_RULES_FILE.read_text(encoding="utf-8").splitlines()
    at: dict[str, int] = {}
    for n, line in enumerate(lines):  # each key's first line (`revisions:` repeats the indicators' names)
        if name := line.strip().partition(":")[0]:
            at.setdefault(name, n)
    op = next(n for n in range(at["dual_share"], len(lines)) if lines[n].strip().startswith("op:"))
    lines[op] = "    op: minimum"
    lines[at["digest_hour"]] = "  digest_hour: 25"
    lines.insert(at["feed_stale_days"], "feed_stael_days: 90")  # a typo is an error, not a default
    f = tmp_path / "rules.yaml"
    f.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_rules(f)
    text = str(err.value)
    assert text.startswith(f"rules file {f}: ")
    assert f"limits.dual_share.op (line {op + 1}): Input should be 'max' or 'min'" in text
    assert (
        f"notifications.digest_hour (line {at['digest_hour'] + 2}): Input should be less than or equal to 23"
        in text
    )
    assert f"feed_stael_days (line {at['feed_stale_days'] + 1}): unknown key" in text
    # a fraction is read from its decimal digits, never through a binary float
    assert load_rules().student_weights["night"] == Fraction(3, 10)
