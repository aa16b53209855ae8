"""A worker started while its ClickHouse server is down: the store is opened off the event loop, so the
consumer keeps its group membership (heartbeats go on) for the 30 seconds the server is away, and once
the server is up every event is kept, exactly once."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from kafka.admin import KafkaAdminClient

from foundation.kafka_auth import kafka_admin_options
from foundation.settings import Settings
from infra.clickhouse import ClickHouse
from tests.helpers import ROOT, example
from tests.integration.conftest import CLI, clickhouse_url, free_port, run_cli
from tests.integration.test_stream import counts
from tests.report_compare import assert_same_report

OUTAGE_SECONDS = 30


def _members(settings: Settings, group: str) -> tuple[str, list[str]]:
    admin = KafkaAdminClient(**kafka_admin_options(settings), client_id="dualtrack-test")
    try:
        desc = admin.describe_groups([group])[group]
        return desc["group_state"], sorted(m["member_id"] for m in desc["members"])
    finally:
        admin.close()


def test_worker_keeps_its_group_while_clickhouse_is_down_and_loses_nothing(
    cli_env: dict[str, str], services: Settings, tmp_path: Path
) -> None:
    native, http = free_port(), free_port()
    settings = Settings(var_dir=tmp_path / "var", clickhouse_port=native, clickhouse_http_port=http)
    server = ClickHouse(settings)
    url = clickhouse_url(settings, "late", create=True)  # the password the server will start with
    env = dict(cli_env, DUALTRACK_CLICKHOUSE_URL=url, DUALTRACK_SINK_RETRY_SECONDS="180")
    produced = run_cli(["produce", "--raw", "--as-schools", str(example("province-small.jsonl"))], env)
    assert produced.returncode == 0, produced.stderr
    group = f"{env['DUALTRACK_TOPIC_PREFIX']}-worker"
    worker = subprocess.Popen([*CLI, "worker", "--exit-when-idle", "3"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        seen: list[tuple[str, list[str]]] = []
        deadline = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(5)
            seen.append(_members(services, group))
        joined = [s for s in seen if s[1]]
        assert joined, f"the worker never joined its group: {seen}"
        first = joined[0]
        # once joined, the same single member stays, and the group stays stable: no session expired
        assert all(s == first for s in seen[seen.index(first) :]), seen
        assert first[0] == "Stable" and len(first[1]) == 1
        assert worker.poll() is None, "the worker gave up while the server was away"
        assert " started " in server.up()
        _, stderr = worker.communicate(timeout=240)
        assert worker.returncode == 0, stderr[-4000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    try:
        got = counts(url)
        assert got["events"] == got["distinct_events"] == 1056
        assert got["dead_letters"] == 8
        rep = run_cli(["report", "--as-of", "2025-12-31T23:59:59+08:00", "--format", "json"], env)
        assert rep.returncode == 0, rep.stderr
        assert_same_report(example("expected-report-2025-12-31.json"), rep.stdout)
    finally:
        server.down()
