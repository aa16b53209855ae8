"""Compare a report (the `dualtrack report --format json` contract, docs/domain.md) with an expected one.

Counts and ratios must agree within 0.01 and shares within 0.0001 (the report rounds them to 2 and 4
places); alerts are matched on (rule, school_id, subject), their severity must agree, and so must
`since` for the event-driven rules. `differences()` lists every disagreement in words a reader can act
on; `assert_same_report()` fails a test with the first few of them.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

#: school fields and their tolerance (None: must be equal)
SCHOOL_FIELDS: dict[str, float | None] = {
    "level": None, "city": None, "students": 0.01, "full_time_teachers": 0, "part_time_teachers": 0,
    "fte_teachers": 0.01, "student_teacher_ratio": 0.01, "professional_teachers": 0, "dual_teachers": 0,
    "dual_share": 0.0001, "postgraduate_share": 0.0001, "doctor_share": 0.0001, "senior_title_share": 0.0001,
    "active_studios": 0, "compliant_studios": 0, "violations": None, "status": None,
}  # fmt: skip
PROVINCE_FIELDS: dict[str, float | None] = {
    "schools": 0, "students": 0.01, "full_time_teachers": 0, "studios_active": 0, "studios_compliant": 0,
    "studios_target": 0, "green_share": 0.0001,
}  # fmt: skip
EVENT_DRIVEN = {"ratio_shortfall", "postgraduate_share_below_target", "full_time_teachers_below_minimum"}
_ABSENT = "<absent>"


def _agree(expected: Any, actual: Any, tolerance: float | None) -> bool:
    if tolerance is None or expected is None or actual is None:
        return bool(expected == actual)
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    return abs(float(expected) - float(actual)) <= tolerance + 1e-9


def _same_instant(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return bool(expected == actual)
    try:
        return datetime.fromisoformat(expected) == datetime.fromisoformat(actual)
    except (TypeError, ValueError):
        return bool(expected == actual)


def _alert_key(alert: dict[str, Any]) -> tuple[str, str, str]:
    return (alert.get("rule", ""), alert.get("school_id", ""), alert.get("subject", ""))


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every way `actual` disagrees with `expected`, one line each (empty when they agree)."""
    out: list[str] = []
    want = {s["school_id"]: s for s in expected["schools"]}
    got = {s.get("school_id"): s for s in actual.get("schools", [])}
    for sid in sorted(want.keys() - got.keys()):
        out.append(f"school {sid}: missing from the report")
    for sid in sorted(k for k in got.keys() - want.keys() if k is not None):
        out.append(f"school {sid}: reported but not expected")
    for sid in sorted(want.keys() & got.keys()):
        for name, tolerance in SCHOOL_FIELDS.items():
            e, a = want[sid].get(name), got[sid].get(name, _ABSENT)
            if not _agree(e, a, tolerance):
                out.append(f"school {sid}.{name}: expected {e!r}, got {a!r}")
    province = actual.get("province", {})
    for name, tolerance in PROVINCE_FIELDS.items():
        e, a = expected["province"].get(name), province.get(name, _ABSENT)
        if not _agree(e, a, tolerance):
            out.append(f"province.{name}: expected {e!r}, got {a!r}")
    want_a = {_alert_key(a): a for a in expected["alerts"]}
    got_a = {_alert_key(a): a for a in actual.get("alerts", [])}
    out += [f"alert {k}: expected, not reported" for k in sorted(want_a.keys() - got_a.keys())]
    out += [f"alert {k}: reported, not expected" for k in sorted(got_a.keys() - want_a.keys())]
    for k in sorted(want_a.keys() & got_a.keys()):
        e, a = want_a[k], got_a[k]
        if e.get("severity") != a.get("severity"):
            out.append(f"alert {k}: severity expected {e.get('severity')!r}, got {a.get('severity')!r}")
        if k[0] in EVENT_DRIVEN and not _same_instant(e.get("since"), a.get("since")):
            out.append(f"alert {k}: since expected {e.get('since')!r}, got {a.get('since')!r}")
    return out


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_same_report(expected: dict[str, Any] | Path, actual: dict[str, Any] | str) -> None:
    """Fail with the first differences when `actual` (a dict, or the JSON text a command printed)
    disagrees with `expected` (a dict or a file)."""
    want = load(expected) if isinstance(expected, Path) else expected
    got = json.loads(actual) if isinstance(actual, str) else actual
    found = differences(want, got)
    assert not found, f"{len(found)} differences from the expected report:\n" + "\n".join(found[:40])
