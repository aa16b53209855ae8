"""import-roster: GBK and UTF-8 (BOM) exports, the difference as events, and a second run emits nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualtrack.cli import app
from dualtrack.roster import RosterError, decode, read_roster
from tests.helpers import hire, register

runner = CliRunner()
HEADER_CN = "教师编号,用工类型,课程类型,职称,学历,证书编号,证书等级,发证日期,有效期至\n"


def _seed_store(tmp_path: Path) -> Path:
    events = [
        register("S1", "2024-01-01T08:00:00+08:00"),
        hire("S1", "2024-01-02T08:00:00+08:00", "T-keep"),
        hire("S1", "2024-01-02T08:00:00+08:00", "T-update", title="junior"),
        hire("S1", "2024-01-02T08:00:00+08:00", "T-gone"),
        hire("S2", "2024-01-02T08:00:00+08:00", "T-elsewhere"),
    ]
    src = tmp_path / "seed.jsonl"
    src.write_text("".join(json.dumps(e) + "\n" for e in events))
    store = tmp_path / "store"
    assert runner.invoke(app, ["replay", str(src), "--store", str(store)]).exit_code == 0
    return store


def _import(store: Path, roster: Path, out: Path) -> list[dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["import-roster", str(roster), "--school", "S1", "--as-of", "2025-03-01",
                                 "--store", str(store), "--output", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_gbk_roster_becomes_the_events_that_explain_the_difference(tmp_path: Path) -> None:
    store = _seed_store(tmp_path)
    roster = tmp_path / "roster.csv"
    roster.write_bytes((HEADER_CN
        + "T-keep,专任,专业课,中级,本科,,,,\n"
        + "T-update,专任,专业课,副高,硕士,C-9,中级,2024-06-01,2027-06-01\n"
        + "T-elsewhere,兼职,公共基础课,无,本科,,,,\n").encode("gbk"))  # fmt: skip
    events = _import(store, roster, tmp_path / "events.jsonl")
    got = sorted(
        (e["event_type"], e["payload"].get("teacher_id"), json.dumps(e["payload"], sort_keys=True))
        for e in events
    )
    assert [g[:2] for g in got] == [
        ("certification.granted", "T-update"),
        ("teacher.departed", "T-gone"),
        ("teacher.hired", "T-elsewhere"),  # active at another school: hired here (a transfer)
        ("teacher.updated", "T-update"),
    ]
    updated = next(e for e in events if e["event_type"] == "teacher.updated")["payload"]
    assert updated == {"teacher_id": "T-update", "title": "associate_senior", "degree": "master"}
    assert all(e["occurred_at"] == "2025-03-01T00:00:00+08:00" for e in events)

    # the same file again, before the events are applied: the same event ids (duplicates downstream)
    again = _import(store, roster, tmp_path / "again.jsonl")
    assert {e["event_id"] for e in again} == {e["event_id"] for e in events}
    # once applied, the school matches its roster and a new import emits nothing
    assert (
        runner.invoke(app, ["replay", str(tmp_path / "events.jsonl"), "--store", str(store)]).exit_code == 0
    )
    assert _import(store, roster, tmp_path / "third.jsonl") == []


def test_utf8_with_bom_and_english_headers(tmp_path: Path) -> None:
    roster = tmp_path / "r.csv"
    roster.write_bytes(
        "\ufeffteacher_id,employment,course_type,title,degree\nT1,full_time,general,none,doctor\n".encode()
    )
    [row] = read_roster(roster, secret=None)
    assert (row.teacher_id, row.degree, row.certificate) == ("T1", "doctor", None)


def test_national_ids_are_hashed_and_need_the_secret(tmp_path: Path) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text(
        "身份证号,用工类型,课程类型,职称,学历\n11010519491231002X,专任,专业课,中级,本科\n", encoding="utf-8"
    )
    with pytest.raises(RosterError, match="DUALTRACK_PRODUCER_SECRET"):
        read_roster(roster, secret=None)
    [row] = read_roster(roster, secret="s3cret")
    assert row.teacher_id.startswith("T-") and "11010519491231002X" not in row.teacher_id


def test_unreadable_rosters_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="UTF-8 nor GBK"):
        decode(b"\xff\xfe\xfd\x80\x81")
    bad = tmp_path / "r.csv"
    bad.write_text("name,degree\nX,bachelor\n")
    with pytest.raises(RosterError, match="teacher_id"):
        read_roster(bad, secret=None)


def test_an_invalid_cell_sends_nothing(tmp_path: Path) -> None:
    store = _seed_store(tmp_path)
    roster = tmp_path / "r.csv"
    roster.write_text(
        "teacher_id,employment,course_type,title,degree\nT-new,contract,general,none,bachelor\n"
    )
    out = tmp_path / "events.jsonl"
    result = runner.invoke(app, ["import-roster", str(roster), "--school", "S1", "--as-of", "2025-03-01",
                                 "--store", str(store), "--output", str(out)])  # fmt: skip
    assert result.exit_code != 0 and not out.exists()
    assert "employment" in str(result.exception)
