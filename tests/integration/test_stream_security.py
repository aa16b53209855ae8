"""The worker on the secured broker: the topic an event arrives on proves its sender (only that school's
user may write there), so an event a school sends for another school is dead-lettered foreign_school;
and a school added while the worker runs is read without a restart."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from kafka import KafkaProducer

from dualtrack.schools import open_deployment
from foundation.kafka_auth import kafka_client_options
from foundation.settings import Settings
from sinks.base import open_store
from tests.helpers import ROOT, ev, hire
from tests.integration.conftest import CLI, run_cli

REGISTERED = {"name": "x", "level": "higher", "city": "jinan"}


def _send_as(settings: Settings, topic: str, events: list[dict[str, object]]) -> None:
    """Write events to `topic`, logged in as `settings` say (a school's HR system with its login)."""
    producer = KafkaProducer(**kafka_client_options(settings), acks="all")
    try:
        for e in events:
            producer.send(topic, json.dumps(e).encode()).get(timeout=30)
    finally:
        producer.close()


def _rows(url: str, sql: str) -> list[dict[str, object]]:
    with open_store(url=url) as st:
        return st.query(sql.format(db=st.database))


def test_an_event_a_school_sends_for_another_is_dead_lettered_foreign_school(
    cli_env: dict[str, str], server_url: str
) -> None:
    settings = Settings(topic_prefix=cli_env["DUALTRACK_TOPIC_PREFIX"])
    logins = open_deployment(settings, ["SA", "SB"])
    a = logins["SA"].settings(settings)
    own = [ev("school.registered", "SA", "2025-01-02T08:00:00+08:00", REGISTERED),
           hire("SA", "2025-02-01T08:00:00+08:00", "T-A1")]  # fmt: skip
    claims_b = hire("SB", "2025-02-01T09:00:00+08:00", "T-forged")  # written by SA, on SA's own topic
    _send_as(a, logins["SA"].topic, [*own, claims_b])
    worker = run_cli(["worker", "--exit-when-idle", "3"], cli_env, timeout=180)
    assert worker.returncode == 0, worker.stderr[-4000:]
    kept = {r["event_id"] for r in _rows(server_url, "SELECT event_id FROM {db}.events FINAL")}
    assert kept == {own[0]["event_id"], own[1]["event_id"]}
    dead = _rows(server_url, "SELECT reason, school_id, event_id, origin FROM {db}.dead_letters FINAL")
    assert [(d["reason"], d["school_id"], d["event_id"]) for d in dead] == [
        ("foreign_school", "SB", claims_b["event_id"])
    ]
    assert dead[0]["origin"] == logins["SA"].topic  # where it came from: SA's topic
    teachers = _rows(server_url, "SELECT teacher_id FROM {db}.teacher_state FINAL")
    assert "T-forged" not in {t["teacher_id"] for t in teachers}


def test_a_school_added_while_the_worker_runs_is_read_without_a_restart(
    cli_env: dict[str, str], server_url: str, tmp_path: Path
) -> None:
    settings = Settings(topic_prefix=cli_env["DUALTRACK_TOPIC_PREFIX"])
    first = open_deployment(settings, ["SA"])["SA"]
    _send_as(first.settings(settings), first.topic,
             [ev("school.registered", "SA", "2025-01-02T08:00:00+08:00", REGISTERED)])  # fmt: skip
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([*CLI, "worker", "--exit-when-idle", "40"], env=cli_env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _count(server_url):
            time.sleep(0.5)
        assert _count(server_url) == 1, "the worker did not read the first school"
        later = open_deployment(settings, ["SC"])["SC"]  # `dualtrack schools add SC`, with the worker up
        _send_as(later.settings(settings), later.topic,
                 [ev("school.registered", "SC", "2025-01-03T08:00:00+08:00", REGISTERED)])  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _count(server_url) < 2:
            time.sleep(0.5)
        assert _count(server_url) == 2, "the school added later was not read"
        assert worker.wait(timeout=180) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()


def _count(url: str) -> int:
    try:
        return int(_rows(url, "SELECT count() AS n FROM {db}.events FINAL")[0]["n"])  # type: ignore[call-overload]
    except Exception:  # the worker has not made its tables yet
        return 0
