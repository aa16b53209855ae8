"""Losing a broker: three local KRaft brokers (`dualtrack infra up --brokers 3`, each its own process,
ports and data folder), every topic the project makes with three copies and `min.insync.replicas` 2; the
broker that leads the engine's topic is SIGKILLed while a province streams; the stream goes on, nothing
is lost or doubled (the report equals a replay of the same events), and the broker rejoins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.kafka_auth import kafka_admin_options
from foundation.settings import Settings
from infra.kafka import bootstrap_servers, port_of
from tests.helpers import ROOT
from tests.integration.conftest import CLI, free_port, run_cli
from tests.integration.test_pool import kept, kept_reference, wait_for
from tests.report_compare import assert_same_report

AS_OF = "2030-01-01T00:00:00+08:00"


def free_base() -> int:
    """A base port whose broker, controller and TLS ports for three nodes are all free."""
    import socket

    for _ in range(50):
        base = free_port() // 100 * 100
        if base + 30 > 65_000:
            continue
        ports = [port_of(base + k, n) for k in (0, 1, 2) for n in (1, 2, 3)]
        try:
            for p in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise AssertionError("no free ports for three brokers")


@pytest.fixture()
def three_brokers(cli_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    base = free_base()
    env = dict(cli_env, DUALTRACK_VAR_DIR=str(tmp_path / "var"), DUALTRACK_KAFKA_PORT=str(base),
               DUALTRACK_KAFKA_CONTROLLER_PORT=str(base + 1), DUALTRACK_KAFKA_TLS_PORT=str(base + 2))  # fmt: skip
    up = run_cli(["infra", "up", "--brokers", "3", "--only", "kafka"], env, timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    every = bootstrap_servers(Settings(kafka_port=base), 3)
    assert f"DUALTRACK_KAFKA_BOOTSTRAP_SERVERS={every}" in up.stdout
    env["DUALTRACK_KAFKA_BOOTSTRAP_SERVERS"] = every
    try:
        yield env
    finally:
        down = run_cli(["infra", "down", "--only", "kafka"], env, timeout=240)
        assert down.returncode == 0, down.stdout + down.stderr


def admin(env: dict[str, str]) -> Any:
    from kafka.admin import KafkaAdminClient

    settings = Settings(var_dir=Path(env["DUALTRACK_VAR_DIR"]),
                        kafka_bootstrap_servers=env["DUALTRACK_KAFKA_BOOTSTRAP_SERVERS"])  # fmt: skip
    return KafkaAdminClient(**kafka_admin_options(settings), client_id="test-broker-loss")


def partition(env: dict[str, str], topic: str) -> dict[str, Any]:
    """Leader, replicas and in-sync replicas of partition 0 of `topic`."""
    a = admin(env)
    try:
        [t] = a.describe_topics([topic])
        [p] = t["partitions"]
        return {
            "leader": p["leader_id"],
            "replicas": sorted(p["replica_nodes"]),
            "isr": sorted(p["isr_nodes"]),
        }
    finally:
        a.close()


def min_insync(env: dict[str, str], topic: str) -> str:
    from kafka.admin import ConfigResource, ConfigResourceType

    a = admin(env)
    try:
        found = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="All")
        [configs] = [by_name[topic] for by_name in found.values() if topic in by_name]
        entry = configs["min.insync.replicas"]
        return str(entry.get("value", entry) if isinstance(entry, dict) else entry)
    finally:
        a.close()


def test_a_province_streams_on_when_the_broker_leading_its_engine_topic_is_killed(
    three_brokers: dict[str, str], server_url: str, tmp_path: Path
) -> None:
    env = three_brokers
    province = tmp_path / "province.jsonl"
    assert (
        run_cli(["simulate", str(province), "--schools", "20", "--years", "1", "--seed", "9"], env).returncode
        == 0
    )
    lines = province.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "first.jsonl").write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    (tmp_path / "second.jsonl").write_text("".join(lines[len(lines) // 2 :]), encoding="utf-8")
    reference = {k: v for k, v in env.items() if k != "DUALTRACK_CLICKHOUSE_URL"}
    reference["DUALTRACK_STORE_PATH"] = str(tmp_path / "reference")
    assert run_cli(["replay", str(province)], reference, timeout=300).returncode == 0
    want = run_cli(["report", "--as-of", AS_OF, "--format", "json"], reference)
    expected = kept_reference(reference)

    sent = run_cli(["produce", "--raw", "--as-schools", str(tmp_path / "first.jsonl")], env, timeout=300)
    assert sent.returncode == 0, sent.stderr
    prefix = env["DUALTRACK_TOPIC_PREFIX"]
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([*CLI, "worker", "--loglevel", "info"], env=env, cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_for("the engine keeps events", lambda: kept(server_url)[0] > 0, 120)
        accepted = f"{prefix}.accepted"
        school = next(t for t in _topics(env) if t.startswith(f"{prefix}.intake."))
        for topic in (accepted, school):  # every topic the project makes: three copies, two must ack
            assert partition(env, topic)["replicas"] == [1, 2, 3], topic
            assert min_insync(env, topic) == "2", topic
        leader = partition(env, accepted)["leader"]
        var = Path(env["DUALTRACK_VAR_DIR"]) / ("kafka" if leader == 1 else f"kafka-{leader}")
        pid = int((var / f"{var.name}.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        # the province goes on sending, and the worker goes on keeping, with two brokers of three
        sent = run_cli(["produce", "--raw", "--as-schools", str(tmp_path / "second.jsonl")], env, timeout=300)
        assert sent.returncode == 0, sent.stderr
        wait_for("every event kept once with a broker down", lambda: kept(server_url) == expected, 240)
        kept_in = time.monotonic() - killed_at
        moved = partition(env, accepted)
        assert moved["leader"] != leader and leader not in moved["isr"]

        again = run_cli(["infra", "up", "--brokers", "3", "--only", "kafka"], env, timeout=240)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("already running") == 2, again.stdout
        rejoined = wait_for("the broker back in sync",
                            lambda: (p := partition(env, accepted))["isr"] == [1, 2, 3] and p, 120)  # fmt: skip
        print(json.dumps({"killed_broker": leader, "leader_after": moved["leader"],
                          "all_kept_seconds_after_kill": round(kept_in, 1), "rejoined": rejoined}))  # fmt: skip
        time.sleep(3)
        report = run_cli(["report", "--as-of", AS_OF, "--format", "json"], env)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            raise
    assert report.returncode == 0, report.stderr
    assert_same_report(json.loads(want.stdout), report.stdout)
    assert kept(server_url) == expected  # nothing doubled either


def _topics(env: dict[str, str]) -> list[str]:
    a = admin(env)
    try:
        return sorted(a.list_topics())
    finally:
        a.close()
