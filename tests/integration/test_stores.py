"""The same migrations and queries on the Debian ClickHouse 18.16 server and on chDB (current)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sinks.base import migrations, open_store
from sinks.embedded import EmbeddedStore
from tests.helpers import example
from tests.integration.conftest import run_cli
from tests.report_compare import assert_same_report

TABLES = ["alert_transitions", "current_report", "dead_letters", "dual_share_forecasts", "engine_checkpoints", "events",
          "notifications", "notifier_state", "pipeline_metrics", "publications", "schema_migrations", "school_snapshots", "school_status",
          "school_tokens",
          "studio_state", "teacher_state"]  # fmt: skip
VERSIONS = [v for v, _, _ in migrations()]


def columns(store) -> dict[str, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    rows = store.query(
        f"SELECT table, name, type FROM system.columns WHERE database = '{store.database}' ORDER BY table, name"
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r["table"], []).append((r["name"], r["type"]))
    return out


def test_migrations_are_the_same_on_both_backends_and_safe_twice(server_url: str, tmp_path: Path) -> None:
    with open_store(url=server_url) as server, EmbeddedStore(tmp_path / "chdb") as embedded:
        assert server.migrate() == VERSIONS and server.migrate() == []
        assert embedded.migrate() == VERSIONS and embedded.migrate() == []
        version = server.query("SELECT version() AS v")[0]["v"]
        on_server, on_chdb = columns(server), columns(embedded)
        assert sorted(on_server) == sorted(on_chdb) == TABLES
        assert on_server == on_chdb, f"server {version} and chDB disagree on column types"
        assert server.applied_migrations() == embedded.applied_migrations() == VERSIONS


def test_workers_starting_together_migrate_a_new_database_once(server_url: str) -> None:
    """The workers of a deployment start at once: each migration runs exactly once, none of them fails
    (without the lock, two copies of a copy-and-rename migration trip over each other)."""
    applied: list[list[int]] = []
    errors: list[str] = []

    def start() -> None:
        try:
            with open_store(url=server_url) as st:
                applied.append(st.migrate())
        except Exception as err:  # collected, asserted below
            errors.append(repr(err))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(applied) == [[], [], [], VERSIONS]
    with open_store(url=server_url) as st:
        rows = st.query(f"SELECT version, count() AS n FROM {st.table('schema_migrations')} GROUP BY version")
        assert sorted((r["version"], r["n"]) for r in rows) == [(v, 1) for v in VERSIONS]
        assert sorted(columns(st)) == TABLES  # and the lock is gone


@pytest.mark.parametrize("day", ["2024-06-30", "2025-12-31"])
def test_replay_and_report_on_the_server(cli_env: dict[str, str], tmp_path: Path, day: str) -> None:
    replayed = run_cli(["replay", str(example("province-small.jsonl")), "--format", "json"], cli_env)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {
        "applied": 1056,
        "duplicates": 21,
        "dead_lettered": 8,
        "blank": 0,
        "lines": 1085,
    }
    rep = run_cli(["report", "--as-of", f"{day}T23:59:59+08:00", "--format", "json"], cli_env)
    assert rep.returncode == 0, rep.stderr
    assert_same_report(example(f"expected-report-{day}.json"), rep.stdout)


def test_the_duplicate_rule_takes_a_backlog_batch_on_the_server(server_url: str) -> None:
    """After a backlog the engine takes batches of thousands of events; their id lookup must fit the
    server's 256 KiB query limit (a worker once stopped here with 'Max query size exceeded')."""
    import uuid
    from datetime import UTC, datetime

    from schemas.validation import Accepted, validate
    from sinks.eventlog import EventLog

    lines = example("province-small.jsonl").read_bytes().splitlines()
    kept = list({e.event_id: e for line in lines if isinstance(e := validate(line), Accepted)}.values())
    with open_store(url=server_url) as st:
        st.migrate()
        log = EventLog(st)
        log.append(kept[:500], datetime.now(UTC))
        unknown = [str(uuid.UUID(int=i)) for i in range(12_000)]
        found = log.hashes_of([*unknown, *(e.event_id for e in kept)])
    assert found == {e.event_id: e.content_hash for e in kept[:500]}


#: values a school's data could carry into a lookup: quotes, backslashes, control characters, SQL
HOSTILE = [
    "it's",
    "a\\b",
    "tab\there",
    "line\nbreak",
    "\\N",
    "\\",
    "'); DROP TABLE events; --",
    "中文",
    "%(x)s %s {x:String}",
]


def test_bound_values_reach_both_backends_as_they_are(server_url: str, tmp_path: Path) -> None:
    """Every value enters a statement through the driver's binding (`{name:Type}`): on the 18.16 server
    (clickhouse-driver) and on chDB, a scalar and a list for IN come back exactly as sent, and none of
    them is read as SQL."""
    with open_store(url=server_url) as server, EmbeddedStore(tmp_path / "chdb") as embedded:
        for store in (server, embedded):
            for value in HOSTILE:
                got = store.query("SELECT {v:String} AS v, {n:Int64} AS n", {"v": value, "n": -7})
                assert got == [{"v": value, "n": -7}], (store.kind, value)
            rows = store.query(
                "SELECT x FROM (SELECT arrayJoin(['it''s', 'a\\\\b', 'other']) AS x) "
                "WHERE x IN {ids:Array(String)} ORDER BY x",
                {"ids": HOSTILE},
            )
            assert [r["x"] for r in rows] == ["a\\b", "it's"], store.kind
