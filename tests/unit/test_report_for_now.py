"""The report for now: the one the engine kept is the report at any time it holds for, and anything that
could change it (the calendar, a studio's activity window, a new event, other rules) sends the
report back to the fold (docs/domain.md, "The report for now")."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import documents.report as report_module
from documents.report import report_for_now, report_from_store
from dualtrack.replay import replay
from dualtrack.simulate import Simulator, write_jsonl
from rules.engine import Engine, fold
from rules.limits import load_rules
from rules.report import build_report, unchanged_before
from schemas.validation import Accepted, validate
from sinks.embedded import EmbeddedStore
from sinks.eventlog import EventLog
from tests.helpers import example

RULES = load_rules()


def _events(path: Path) -> list[Accepted]:
    found = (validate(line) for line in path.read_bytes().splitlines())
    return sorted(
        {e.event_id: e for e in found if isinstance(e, Accepted)}.values(), key=lambda e: e.order_key
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> list[Accepted]:
    path = tmp_path_factory.mktemp("sim") / "events.jsonl"
    write_jsonl(Simulator(schools=8, seed=3, years=3).events(), str(path))
    return _events(path)


def _times(history: list[Accepted]) -> list[datetime]:
    """Times across the history, and the instants just before a studio's activity window closes."""
    first, last = history[0].occurred_at, history[-1].occurred_at
    spread = [first + (last - first) * k / 7 for k in range(1, 8)]
    window = timedelta(days=RULES.studio_inactive_days)
    edges = [
        e.occurred_at + window - timedelta(minutes=1)
        for e in history
        if e.event_type == "studio.activity_reported"
    ]
    return spread + edges[:: max(1, len(edges) // 6)]


def _without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "as_of"}


@pytest.fixture(scope="module")
def engines(history: list[Accepted]) -> list[tuple[datetime, Engine]]:
    return [(t, fold(history, RULES, t)) for t in _times(history)]


@settings(max_examples=60, deadline=None)
@given(which=st.integers(min_value=0), share=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_the_report_is_the_same_at_every_time_before_the_edge(
    engines: list[tuple[datetime, Engine]], which: int, share: float
) -> None:
    at, engine = engines[which % len(engines)]
    edge = unchanged_before(engine, at)
    assert at < edge <= at + timedelta(days=1)
    kept = _without_time(build_report(engine, at))
    last = edge - timedelta(microseconds=1)
    for t in (min(at + (edge - at) * share, last), last):
        assert _without_time(build_report(engine, t)) == kept, f"the report at {t} differs from {at}"


def test_a_studio_window_closing_is_an_edge(engines: list[tuple[datetime, Engine]]) -> None:
    """The times a minute before an activity window closes have their edge within that minute."""
    near = [(at, unchanged_before(engine, at)) for at, engine in engines]
    assert any(edge - at <= timedelta(minutes=1, microseconds=1) for at, edge in near)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = example("province-small.jsonl")
    newest = _events(path)[-1].occurred_at
    with EmbeddedStore(tmp_path / "store") as st:
        replay(st, [path], RULES, now=newest + timedelta(hours=1))
        yield st, newest + timedelta(hours=1)


def _no_fold(*_: object) -> None:
    raise AssertionError("the report folded although the kept one holds")


def test_the_kept_report_is_the_fold_while_it_holds(store, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    st, now = store
    row = st.query(f"SELECT valid_before_us FROM {st.table('current_report')} FINAL")[0]
    later = now + timedelta(minutes=5)
    assert later.timestamp() * 1e6 < row["valid_before_us"]
    expected = report_from_store(st, RULES, later)
    monkeypatch.setattr(report_module, "report_from_store", _no_fold)
    assert report_for_now(st, RULES, later) == expected


def test_after_its_edge_the_report_is_folded(store) -> None:  # type: ignore[no-untyped-def]
    st, now = store
    row = st.query(f"SELECT valid_before_us FROM {st.table('current_report')} FINAL")[0]
    edge = datetime.fromtimestamp(row["valid_before_us"] / 1e6, tz=now.tzinfo)
    for t in (edge, edge + timedelta(days=40)):
        assert report_for_now(st, RULES, t) == report_from_store(st, RULES, t)
        assert report_for_now(st, RULES, t)["as_of"] == t.isoformat()


def test_a_new_event_or_other_rules_send_the_report_to_the_fold(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    st, now = store
    later = now + timedelta(minutes=5)
    folds: list[datetime] = []
    fold_ = report_module.report_from_store

    def counted(s: Any, r: Any, t: datetime) -> dict[str, Any]:
        folds.append(t)
        return fold_(s, r, t)

    monkeypatch.setattr(report_module, "report_from_store", counted)
    other = dataclasses.replace(RULES, version=RULES.version + "-other")
    report_for_now(st, other, later)
    assert len(folds) == 1  # the rules it was built with are not these
    hire = {
        "event_id": "5d1a9a52-0f33-4b77-9a53-1d3f0c1b2a11", "event_type": "teacher.hired", "schema_version": 1,
        "school_id": "SD0001", "occurred_at": now.isoformat(),
        "payload": {"teacher_id": "T-NEW-1", "employment": "full_time", "course_type": "professional",
                    "title": "junior", "degree": "master"},
    }  # fmt: skip
    event = validate(json.dumps(hire))
    assert isinstance(event, Accepted)
    EventLog(st).append([event], now)  # kept, and not yet applied by any engine
    got = report_for_now(st, RULES, later)
    assert len(folds) == 2
    assert got == fold_(st, RULES, later)


def test_a_quiet_tick_keeps_the_report_and_a_tick_after_the_edge_renews_it(store) -> None:  # type: ignore[no-untyped-def]
    """The engine builds the report again only when the kept one no longer holds."""
    from streams.materialize import Materializer

    st, now = store
    table = st.table("current_report")
    m = Materializer(st, RULES)
    m.catch_up(now)
    first = st.query(f"SELECT count() AS n FROM {table}")[0]["n"]
    m.tick(now + timedelta(minutes=1))
    assert st.query(f"SELECT count() AS n FROM {table}")[0]["n"] == first
    edge = datetime.fromtimestamp(
        st.query(f"SELECT valid_before_us AS v FROM {table} FINAL")[0]["v"] / 1e6, now.tzinfo
    )
    m.tick(edge)
    assert st.query(f"SELECT count() AS n FROM {table}")[0]["n"] == first + 1
    assert report_for_now(st, RULES, edge + timedelta(seconds=1)) == report_from_store(
        st, RULES, edge + timedelta(seconds=1)
    )
