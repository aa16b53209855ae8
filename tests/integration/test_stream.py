"""The stream end to end on the real broker and server: kafka-python produces, the Faust worker
consumes and folds, clickhouse-driver writes, and the report read back agrees with the contract —
also when the worker is SIGKILLed midway and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from sinks.base import open_store
from tests.helpers import ROOT, example
from tests.integration.conftest import CLI, run_cli
from tests.report_compare import assert_same_report

AS_OF = "2025-12-31T23:59:59+08:00"


def produce_example(env: dict[str, str]) -> None:
    result = run_cli(["produce", "--raw", "--as-schools", str(example("province-small.jsonl"))], env)
    assert result.returncode == 0, result.stderr
    assert "sent 1085" in result.stdout


def check_report(env: dict[str, str]) -> None:
    rep = run_cli(["report", "--as-of", AS_OF, "--format", "json"], env)
    assert rep.returncode == 0, rep.stderr
    assert_same_report(example("expected-report-2025-12-31.json"), rep.stdout)


def counts(url: str) -> dict[str, int]:
    with open_store(url=url) as st:
        q = lambda sql: int(st.query(sql)[0]["n"])  # noqa: E731
        return {
            "events": q(f"SELECT count() AS n FROM {st.table('events')} FINAL"),
            "distinct_events": q(f"SELECT uniqExact(event_id) AS n FROM {st.table('events')}"),
            "dead_letters": q(f"SELECT count() AS n FROM {st.table('dead_letters')} FINAL"),
            "transitions": q(
                f"SELECT count() AS n FROM {st.table('alert_transitions')} FINAL WHERE retracted = 0"
            ),
        }


def test_round_trip_through_kafka_faust_and_clickhouse(
    cli_env: dict[str, str], server_url: str, tmp_path: Path
) -> None:
    """kafka-python produces (the whole file twice: a producer retrying everything), the Faust worker
    consumes, clickhouse-driver writes, and what is read back counts every event once."""
    produce_example(cli_env)
    produce_example(cli_env)
    worker = run_cli(["worker", "--exit-when-idle", "3", "--loglevel", "info"], cli_env, timeout=150)
    assert worker.returncode == 0, worker.stderr[-6000:]
    got = counts(server_url)
    assert got["events"] == got["distinct_events"] == 1056
    assert got["dead_letters"] == 8
    assert got["transitions"] > 0
    check_report(cli_env)


def test_worker_killed_midway_recovers_to_the_same_results(cli_env: dict[str, str], server_url: str,
                                                           tmp_path: Path) -> None:  # fmt: skip
    # small batches (the engine takes up to 5 records of up to 5 events each), so that the store is
    # written in many steps and the worker can be caught midway
    env = dict(cli_env, DUALTRACK_STREAM_BATCH_SIZE="5", DUALTRACK_STREAM_BATCH_SECONDS="0.2")
    produce_example(env)
    proc = subprocess.Popen([*CLI, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while time.monotonic() < deadline:
            try:
                seen = counts(server_url)["events"]
            except Exception:
                seen = 0
            if 100 <= seen < 1056:
                break
            time.sleep(0.05)
        assert 0 < seen < 1056, f"could not catch the worker midway (saw {seen} events)"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    restarted = run_cli(["worker", "--exit-when-idle", "3", "--loglevel", "info"], env, timeout=180)
    assert restarted.returncode == 0, restarted.stderr[-6000:]
    got = counts(server_url)
    assert got["events"] == got["distinct_events"] == 1056
    assert got["dead_letters"] == 8
    check_report(env)
    print(json.dumps({"killed_after_events": seen}))
