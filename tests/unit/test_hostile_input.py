"""Nothing a school sends can stop the province (issue 11's findings, each with its test): hostile lines
are dead-lettered per line with their bytes (national IDs masked), valid ones are kept and read back
exactly, and replay, report and the CLI go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from documents.report import report_from_store
from dualtrack.replay import replay
from rules.limits import load_rules
from schemas.national_id import mask
from schemas.validation import Accepted, validate
from sinks.embedded import EmbeddedStore
from sinks.eventlog import EventLog
from tests.helpers import ROOT, example, national_ids_in
from tests.hostile import HOSTILE, NATIONAL_ID
from tests.report_compare import assert_same_report

RULES = load_rules()
AS_OF = datetime.fromisoformat("2025-12-31T23:59:59+08:00")


def _mixed(tmp_path: Path) -> tuple[Path, Path]:
    """The example with every hostile line mixed in (and blank lines), and the example with only the
    valid hostile lines: both must give the same report."""
    example_lines = example("province-small.jsonl").read_bytes().split(b"\n")
    mixed, valid = list(example_lines), list(example_lines)
    for n, (_, raw, reason) in enumerate(HOSTILE):
        mixed.insert((n * 37) % len(mixed), raw)
        if reason is None:
            valid.insert((n * 37) % len(valid), raw)
    mixed.insert(5, b"   ")
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join(mixed))
    (tmp_path / "valid.jsonl").write_bytes(b"\n".join(valid))
    return tmp_path / "mixed.jsonl", tmp_path / "valid.jsonl"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(counts, the store of the mixed file, the report of the valid lines alone). chDB opens one store
    per process at a time, so the valid lines' store is made and closed first."""
    tmp = tmp_path_factory.mktemp("hostile")
    mixed, valid = _mixed(tmp)
    with EmbeddedStore(tmp / "valid") as b:
        replay(b, [valid], RULES)
        valid_report = report_from_store(b, RULES, AS_OF)
    with EmbeddedStore(tmp / "mixed") as a:
        counts = replay(a, [mixed], RULES)
        seen = {
            "reasons": {r["reason"]: r["n"] for r in a.query(
                f"SELECT reason, count() AS n FROM {a.table('dead_letters')} FINAL GROUP BY reason")},
            "dead_raw": {r["raw"] for r in a.query(
                f"SELECT raw FROM {a.table('dead_letters')} FINAL", binary=("raw",))},
            "kept": {e.event_id: e.raw for e in EventLog(a).events()},
            "ids": national_ids_in(a),
            "report": report_from_store(a, RULES, AS_OF),
        }  # fmt: skip
    return counts, seen, valid_report, tmp / "mixed"


def test_every_line_is_judged_alone_and_the_counts_add_up(stores) -> None:  # type: ignore[no-untyped-def]
    counts, seen, _, _ = stores
    c = counts.as_dict()
    assert c["applied"] + c["duplicates"] + c["dead_lettered"] + c["blank"] == c["lines"]
    assert c["dead_lettered"] == 8 + sum(1 for _, _, reason in HOSTILE if reason is not None)
    assert c["blank"] == 1
    got = seen["reasons"]
    for _, _, reason in HOSTILE:
        if reason is not None:
            assert got.get(reason, 0) >= 1, reason


def test_hostile_lines_do_not_change_the_report_of_the_valid_ones(stores) -> None:  # type: ignore[no-untyped-def]
    _, seen, valid_report, _ = stores
    assert seen["report"] == valid_report


def test_the_example_still_agrees_with_its_expected_report_among_hostile_lines(tmp_path: Path) -> None:
    mixed = [raw for _, raw, reason in HOSTILE if reason is not None]
    lines = example("province-small.jsonl").read_bytes().split(b"\n") + mixed
    (tmp_path / "f.jsonl").write_bytes(b"\n".join(lines))
    with EmbeddedStore(tmp_path / "s") as st:
        replay(st, [tmp_path / "f.jsonl"], RULES)
        assert_same_report(example("expected-report-2025-12-31.json"), report_from_store(st, RULES, AS_OF))


def test_valid_events_are_read_back_exactly_whatever_unicode_they_hold(stores) -> None:  # type: ignore[no-untyped-def]
    kept = stores[1]["kept"]
    for name, raw, reason in HOSTILE:
        if reason is None:
            e = validate(raw)
            assert isinstance(e, Accepted)
            assert kept[e.event_id] == raw, name


def test_dead_letters_keep_the_bytes_exactly_with_ids_masked(stores) -> None:  # type: ignore[no-untyped-def]
    raws = stores[1]["dead_raw"]
    for name, raw, reason in HOSTILE:
        if reason is not None and reason != "too_large":
            assert mask(raw) in raws, name
    assert b'{"school_id": "SD\xff\xfe", "x": "\xc3\x28"}' in raws  # not UTF-8: kept as it was


def test_no_national_id_in_any_table(stores) -> None:  # type: ignore[no-untyped-def]
    assert stores[1]["ids"] == []


def test_the_id_scan_can_see_an_id(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as st:
        st.migrate()
        st.execute(f"INSERT INTO {st.table('dead_letters')} (raw) VALUES ('{NATIONAL_ID}')")
        assert national_ids_in(st) == [("dead_letters", "raw")]


def test_a_file_spanning_more_than_a_hundred_months_replays(tmp_path: Path) -> None:
    lines = [
        json.dumps({"event_id": f"00000000-0000-4000-8000-{n:012d}", "event_type": "enrollment.reported",
                    "schema_version": 1, "school_id": "SD1", "occurred_at": f"{1990 + n // 12}-{n % 12 + 1:02d}-15T08:00:00+08:00",
                    "payload": {"term": f"{1990 + n // 12}-autumn", "counts": {"full_time": n}}})
        for n in range(12 * 40)
    ]  # fmt: skip
    (tmp_path / "decades.jsonl").write_text("\n".join(lines))
    with EmbeddedStore(tmp_path / "s") as st:
        assert replay(st, [tmp_path / "decades.jsonl"], RULES).applied == 480


def test_a_replay_interrupted_after_its_first_insert_then_run_again_equals_one_run(tmp_path: Path) -> None:
    events = [e for line in example("province-small.jsonl").read_bytes().split(b"\n")
              if isinstance(e := validate(line), Accepted)]  # fmt: skip
    tables = ("school_status", "teacher_state", "studio_state", "school_snapshots", "alert_transitions")

    def contents(st: EmbeddedStore) -> dict[str, int]:
        return {t: st.query(f"SELECT count() AS n FROM {st.table(t)} FINAL")[0]["n"] for t in tables}

    with EmbeddedStore(tmp_path / "once") as once:
        replay(once, [example("province-small.jsonl")], RULES)
        expected, expected_report = contents(once), report_from_store(once, RULES, AS_OF)
    with EmbeddedStore(tmp_path / "twice") as twice:
        twice.migrate()
        EventLog(twice).append(events[:300], datetime.now().astimezone())  # the first insert, then killed
        replay(twice, [example("province-small.jsonl")], RULES)
        assert contents(twice) == expected
        assert all(expected.values())
        assert report_from_store(twice, RULES, AS_OF) == expected_report


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DUALTRACK_PRODUCER_SECRET="test-secret", COLUMNS="250")
    return subprocess.run([sys.executable, "-m", "dualtrack.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_data_is_never_read_as_markup(stores, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _cli(
        "report", "--store", str(stores[3]), "--as-of", "2025-12-31T23:59:59+08:00", "--format", "table"
    )
    assert result.returncode == 0, result.stderr
    assert "[/x]" in result.stdout  # printed as it is, and did not break the table
    assert ":smile:[bold]" in result.stdout  # no emoji, no style


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["report", "--store", "{tmp}/s", "-o", "/missing/dir/r.html", "--format", "html"], "does not exist"),
        (["schema", "export", "{tmp}/file.txt"], "file.txt"),
        (["dashboards", "build", "{tmp}/file.txt"], "file.txt"),
        (["simulate", "{tmp}/x.jsonl", "--years", "0"], "--years"),
        (["simulate", "{tmp}/x.jsonl", "--schools", "-5"], "--schools"),
        (["simulate", "{tmp}/x.jsonl", "--schools", "0"], "--schools"),
        (["simulate", "{tmp}/missing/x.jsonl", "--schools", "1"], "missing"),
        (["replay", "{tmp}/missing.jsonl"], "missing.jsonl"),
        (["dashboards", "publish", "--url", "not-a-url", "--token", "t", "--dry-run"], "--url"),
        (["worker", "--exit-when-idle", "-3"], "--exit-when-idle"),
        (["dashboards", "publish", "--url", "http://127.0.0.1:1", "--token", "t", "--dry-run"], "cannot reach Grafana"),
        (["report", "--as-of", "yesterday", "--store", "{tmp}/s"], "--as-of"),
        (["import-roster", "{tmp}/huge.csv", "--school", "SD1", "--as-of", "2025-01-01", "--store", "{tmp}/s"],
         "readable"),
        (["import-roster", "{tmp}/ids.csv", "--school", "SD1", "--as-of", "2025-01-01", "--store", "{tmp}/s"],
         "row 2"),
    ],
)  # fmt: skip
def test_bad_arguments_get_one_line_and_a_non_zero_exit(args: list[str], needle: str, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "huge.csv").write_text(
        "teacher_id,employment,course_type,title,degree\n" + "x" * 131_073 + ",a,b,c,d\n"
    )
    (tmp_path / "ids.csv").write_text(
        f"national_id,employment,course_type,title,degree\n{NATIONAL_ID[:-1]}0,专任,专业课,中级,本科\n"
    )
    result = _cli(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stderr.strip(), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # typer's usage line, then the error
    assert needle in result.stderr
    assert NATIONAL_ID[:-1] not in result.stderr


def test_an_event_the_rules_fail_on_is_dead_lettered_apply_failed_and_the_rest_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect in the rules (simulated: applying one event raises) costs that event only: it is
    dead-lettered as apply_failed with the error, and every other event is folded."""
    from rules.state import Province

    lines = example("province-small.jsonl").read_bytes().splitlines()
    victim = next(
        r for r in map(validate, lines) if isinstance(r, Accepted) and r.event_type == "teacher.hired"
    )
    apply = Province.apply

    def defective(self: Province, event: Accepted) -> object:
        if event.event_id == victim.event_id:
            raise ZeroDivisionError("a defect")
        return apply(self, event)

    monkeypatch.setattr(Province, "apply", defective)
    with EmbeddedStore(tmp_path / "store") as st:
        counts = replay(st, [example("province-small.jsonl")], RULES)
        dead = st.query(f"SELECT reason, event_id, message FROM {st.table('dead_letters')} FINAL "
                        "WHERE reason = 'apply_failed'")  # fmt: skip
        assert [(d["event_id"], "ZeroDivisionError: a defect" in d["message"]) for d in dead] == [
            (victim.event_id, True)
        ]
        assert counts.applied == 1056 - 1 and counts.dead_lettered == 8 + 1
        report = report_from_store(st, RULES, datetime.fromisoformat("2025-12-31T23:59:59+08:00"))
        assert report["province"]["schools"] > 0
