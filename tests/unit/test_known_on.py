"""As known on: the report at T from only the events that had arrived by K equals the report of those
events alone, whatever arrived later (docs/domain.md, "As known on")."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from documents.briefing import render_html
from documents.briefing.history import briefing_from_store
from documents.report import report_from_store
from dualtrack.cli import app
from dualtrack.replay import replay
from rules.limits import load_rules
from schemas.validation import Accepted, validate
from sinks.embedded import EmbeddedStore
from sinks.eventlog import EventLog
from sinks.publications import Publications
from tests.helpers import example

RULES = load_rules()
K1 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the first batch arrives
K2 = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)  # the second
BETWEEN = datetime(2026, 1, 20, tzinfo=UTC)
AS_OF = [
    datetime(2024, 6, 30, 23, 59, 59, tzinfo=UTC),
    datetime(2025, 3, 31, 12, tzinfo=UTC),
    datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC),
    datetime(2030, 1, 1, tzinfo=UTC),  # after every event: the newest checkpoint is at or before it
]


def _lines() -> list[bytes]:
    return example("province-small.jsonl").read_bytes().splitlines()


def _occurred(line: bytes) -> datetime:
    """When a valid line's event occurred; a hostile line sorts first (it is dead-lettered anyway)."""
    result = validate(line)
    return result.occurred_at if isinstance(result, Accepted) else datetime.min.replace(tzinfo=UTC)


def _split(how: str) -> tuple[list[bytes], list[bytes]]:
    lines = _lines()
    if how == "by_time":  # the second batch is all newer than the first: the first's checkpoint holds
        ordered = sorted(lines, key=_occurred)
        cut = len(ordered) * 2 // 3
        return ordered[:cut], ordered[cut:]
    rnd = random.Random(7)  # late events: the second batch is spread over the whole history
    chosen = [rnd.random() < 0.8 for _ in lines]
    return [x for x, c in zip(lines, chosen, strict=True) if c], [
        x for x, c in zip(lines, chosen, strict=True) if not c
    ]


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("as_of", "known_on")}


@pytest.mark.parametrize("how", ["by_time", "late"])
def test_known_on_between_the_batches_is_the_first_batch_alone(tmp_path: Path, how: str) -> None:
    first, second = _split(how)
    a, b = _write(tmp_path / "a.jsonl", first), _write(tmp_path / "b.jsonl", second)
    with EmbeddedStore(tmp_path / "alone") as alone:
        replay(alone, [a], RULES, now=K1)
        expected = {t: report_from_store(alone, RULES, t) for t in AS_OF}
        kept_alone = EventLog(alone).kept_count()
    with EmbeddedStore(tmp_path / "both") as both:
        replay(both, [a], RULES, now=K1)
        replay(both, [b], RULES, now=K2)
        for t in AS_OF:
            known = report_from_store(both, RULES, t, known_on=BETWEEN)
            assert known["known_on"] == BETWEEN.isoformat()
            assert _without_time(known) == _without_time(expected[t]), f"as of {t}, known on {BETWEEN}"
            now = report_from_store(both, RULES, t)
            assert (
                report_from_store(both, RULES, t, known_on=K2 + timedelta(seconds=1))["schools"]
                == now["schools"]
            )
        late = [
            t for t in AS_OF if _without_time(report_from_store(both, RULES, t)) != _without_time(expected[t])
        ]
        assert late, "the second batch changes no report: the test shows nothing"
        arrived, _ = EventLog(both).arrived_after(BETWEEN)
        assert 0 < arrived == EventLog(both).kept_count() - kept_alone
        assert EventLog(both).arrived_after(K2) == (0, 0)


def test_a_backfill_arrives_when_it_says_and_a_later_copy_keeps_the_first_arrival(tmp_path: Path) -> None:
    """`replay --arrived-at` dates the lines of a backfill; a copy of a kept event, even one sent with an
    earlier arrival, never moves the arrival of the copy that was kept."""
    first, second = _split("late")
    a, b = _write(tmp_path / "a.jsonl", first), _write(tmp_path / "b.jsonl", second)
    copy = _write(tmp_path / "copy.jsonl", second[:5])
    t = AS_OF[-1]
    with EmbeddedStore(tmp_path / "alone") as alone:
        replay(alone, [a], RULES, now=K2)
        expected = _without_time(report_from_store(alone, RULES, t))
    with EmbeddedStore(tmp_path / "both") as both:
        replay(both, [a], RULES, now=K2, arrived_at=K1)
        replay(both, [b], RULES, now=K2)
        replay(both, [copy], RULES, now=K2, arrived_at=K1)  # duplicates: not kept again
        assert _without_time(report_from_store(both, RULES, t, known_on=BETWEEN)) == expected
        assert (
            _without_time(report_from_store(both, RULES, t, known_on=K1 - timedelta(seconds=1)))["schools"]
            == []
        )


def test_the_briefing_known_on_is_the_first_batchs_briefing(tmp_path: Path) -> None:
    first, second = _split("late")
    a, b = _write(tmp_path / "a.jsonl", first), _write(tmp_path / "b.jsonl", second)
    t = AS_OF[-1]
    with EmbeddedStore(tmp_path / "alone") as alone:
        replay(alone, [a], RULES, now=K1)
        expected = briefing_from_store(alone, RULES, t)
    with EmbeddedStore(tmp_path / "both") as both:
        replay(both, [a], RULES, now=K1)
        replay(both, [b], RULES, now=K2)
        got = briefing_from_store(both, RULES, t, known_on=BETWEEN)
    assert got.known_on == BETWEEN
    assert got.report == expected.report
    assert got.monthly == expected.monthly
    assert got.previous_year == expected.previous_year


def test_the_cli_takes_known_on_and_arrived_at(tmp_path: Path) -> None:
    first, second = _split("late")
    a, b = _write(tmp_path / "a.jsonl", first), _write(tmp_path / "b.jsonl", second)
    store = str(tmp_path / "store")
    runner = CliRunner()
    for path, when in ((a, K1), (b, K2)):
        result = runner.invoke(app, ["replay", str(path), "--store", store, "--arrived-at", when.isoformat()])
        assert result.exit_code == 0, result.output
    t = AS_OF[-1].isoformat()
    result = runner.invoke(
        app, ["report", "--store", store, "--as-of", t, "--known-on", BETWEEN.isoformat(), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    known = json.loads(result.stdout)
    with EmbeddedStore(tmp_path / "alone") as alone:
        replay(alone, [a], RULES, now=K1)
        assert _without_time(known) == _without_time(report_from_store(alone, RULES, AS_OF[-1]))
        arrived = EventLog(alone).kept_count()
    result = runner.invoke(app, ["status", "--store", store, "--known-on", BETWEEN.isoformat()])
    assert result.exit_code == 0, result.output
    with EmbeddedStore(tmp_path / "store") as st:
        arrived = EventLog(st).kept_count() - arrived
    assert f"{arrived} events arrived" in result.stdout
    for bad in (["report", "--store", store, "--known-on", "yesterday"],
                ["replay", str(a), "--store", store, "--arrived-at", "2999-01-01T00:00:00+00:00"]):  # fmt: skip
        result = runner.invoke(app, bad)
        assert result.exit_code != 0
        assert "Traceback" not in result.output


def test_a_publication_then_late_events_names_exactly_the_schools_they_moved(tmp_path: Path) -> None:
    """Publish a month end (as known on a day after the first batch), send late events, and the next
    briefing's revisions list that publication, its late events per school, and the schools whose
    indicators moved past the rules' thresholds."""
    first, second = _split("late")
    a, b = _write(tmp_path / "a.jsonl", first), _write(tmp_path / "b.jsonl", second)
    month_end = datetime.fromisoformat("2025-11-30T23:59:59+08:00")
    store = str(tmp_path / "store")
    runner = CliRunner()
    assert (
        runner.invoke(app, ["replay", str(a), "--store", store, "--arrived-at", K1.isoformat()]).exit_code
        == 0
    )
    published = runner.invoke(
        app,
        [
            "report",
            "--store",
            store,
            "--as-of",
            month_end.isoformat(),
            "--known-on",
            BETWEEN.isoformat(),
            "--publish",
            "--format",
            "json",
        ],
    )
    assert published.exit_code == 0, published.output
    assert "published the report as of 2025-11-30T23:59:59+08:00" in published.stderr
    assert (
        runner.invoke(app, ["replay", str(b), "--store", store, "--arrived-at", K2.isoformat()]).exit_code
        == 0
    )
    with EmbeddedStore(tmp_path / "store") as st:
        before = report_from_store(st, RULES, month_end, known_on=BETWEEN)
        after = report_from_store(st, RULES, month_end)
        briefing = briefing_from_store(st, RULES, AS_OF[2])
        late_dated = [
            e for e in EventLog(st).events(until=month_end) if e.event_id in _ids(second) - _ids(first)
        ]
    assert json.loads(published.stdout)["schools"] == before["schools"]  # what was published is kept
    [rev] = briefing.revisions
    assert rev.as_of == month_end
    assert rev.late_events == len(late_dated) > 0
    was = {x["school_id"]: x for x in before["schools"]}
    now = {x["school_id"]: x for x in after["schools"]}
    moved = set(was.keys() ^ now.keys())  # a school that appeared or vanished
    for sid in was.keys() & now.keys():
        p, n = was[sid], now[sid]
        if p["status"] != n["status"] or any(
            p[k] is None or n[k] is None or abs(p[k] - n[k]) > getattr(RULES.revisions, k)
            for k in ("student_teacher_ratio", "dual_share", "postgraduate_share", "senior_title_share")
            if p[k] != n[k]
        ):
            moved.add(sid)
    assert moved, "the late events move no school: the test shows nothing"
    assert {m.school_id for m in rev.schools} == moved
    assert moved <= {e.school_id for e in late_dated}
    assert {m.figure for m in rev.headline} == {
        k for k in before["province"] if before["province"][k] != after["province"][k]
    }
    html = render_html(briefing, lang="en")
    assert 'id="revisions"' in html and all(sid in html for sid in moved)
    zh = render_html(briefing)
    assert "修订说明" in zh


def test_a_briefing_known_before_a_publication_does_not_list_it(tmp_path: Path) -> None:
    first, _ = _split("late")
    a = _write(tmp_path / "a.jsonl", first)
    with EmbeddedStore(tmp_path / "store") as st:
        replay(st, [a], RULES, now=K1)
        st.migrate()
        Publications(st).record(report_from_store(st, RULES, AS_OF[1]), AS_OF[1], K1, K2, "k")
        assert len(briefing_from_store(st, RULES, AS_OF[2]).revisions) == 1
        assert briefing_from_store(st, RULES, AS_OF[2], known_on=BETWEEN).revisions == []
        assert briefing_from_store(st, RULES, AS_OF[2]).revisions[0].late_events == 0


def _ids(lines: list[bytes]) -> set[str]:
    return {r.event_id for r in map(validate, lines) if isinstance(r, Accepted)}
