"""The example province through `replay` into the embedded chDB store, against the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents.report import report_from_store
from dualtrack.replay import replay
from rules.limits import load_rules
from sinks.embedded import EmbeddedStore
from tests.helpers import example
from tests.report_compare import assert_same_report

RULES = load_rules()
AS_OF = {"2024-06-30": "2024-06-30T23:59:59+08:00", "2025-12-31": "2025-12-31T23:59:59+08:00"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with EmbeddedStore(tmp_path_factory.mktemp("store")) as st:
        counts = replay(st, [example("province-small.jsonl")], RULES)
        assert counts.as_dict() == {
            "applied": 1056,
            "duplicates": 21,
            "dead_lettered": 8,
            "blank": 0,
            "lines": 1085,
        }
        yield st


@pytest.mark.parametrize("day", sorted(AS_OF))
def test_report_matches_expected(store: EmbeddedStore, day: str, tmp_path: Path) -> None:
    from datetime import datetime

    rep = report_from_store(store, RULES, datetime.fromisoformat(AS_OF[day]))
    assert_same_report(example(f"expected-report-{day}.json"), rep)


def test_replaying_again_changes_nothing(store: EmbeddedStore) -> None:
    before = store.query(f"SELECT count() AS n FROM {store.table('events')}")[0]["n"]
    again = replay(store, [example("province-small.jsonl")], RULES)
    assert again.as_dict() == {
        "applied": 0,
        "duplicates": 1077,
        "dead_lettered": 8,
        "blank": 0,
        "lines": 1085,
    }
    assert store.query(f"SELECT count() AS n FROM {store.table('events')}")[0]["n"] == before == 1056
    dead = store.query(f"SELECT count() AS n FROM {store.table('dead_letters')} FINAL")[0]["n"]
    assert dead == 8


def test_dead_letters_are_counted_per_school_and_reason_with_original_bytes(store: EmbeddedStore) -> None:
    rows = store.query(
        f"SELECT reason, count() AS n FROM {store.table('dead_letters')} FINAL GROUP BY reason ORDER BY reason"
    )
    assert {r["reason"]: r["n"] for r in rows} == {
        "envelope_invalid": 2, "national_id": 1, "not_json": 1, "payload_invalid": 3, "unknown_event_type": 1,
    }  # fmt: skip
    raws = store.query(
        f"SELECT raw FROM {store.table('dead_letters')} FINAL WHERE reason = 'unknown_event_type'"
    )
    assert '"teacher.promoted"' in raws[0]["raw"]


def test_report_for_now_agrees_with_the_live_tables(store: EmbeddedStore) -> None:
    """The live school_status table (what dashboards read) says what the report computes for its time."""
    from datetime import UTC

    live = store.query(
        f"SELECT school_id, argMax(status, version) AS status, argMax(full_time_teachers, version) AS ft, "
        f"argMax(violations, version) AS violations, argMax(as_of, version) AS as_of "
        f"FROM {store.table('school_status')} GROUP BY school_id ORDER BY school_id"
    )
    as_of = live[0]["as_of"]
    assert as_of.tzinfo == UTC  # both backends give aware UTC times
    rep = report_from_store(store, RULES, as_of)
    assert [
        (s["school_id"], s["status"], s["full_time_teachers"], s["violations"]) for s in rep["schools"]
    ] == [(r["school_id"], r["status"], r["ft"], r["violations"]) for r in live]
