"""The gateway on the real broker and server: one school of the example province posts its lines over
HTTP, another produces with confluent-kafka (librdkafka) as its own Kafka user, the rest with
kafka-python, and the worker's report is the replay's. On the way: a wrong token is refused, a line
naming another school is answered foreign_school and reaches no intake topic, a 6 MB body gets 413,
and each school's own view shows its dead letters and no other school's."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dualtrack.schools import open_deployment
from foundation.settings import Settings
from infra.kafka.acls import ensure_gateway
from sinks.base import open_store
from streams.topics import ensure_topics
from tests.helpers import ROOT, example, hire
from tests.integration.conftest import CLI, free_port, run_cli
from tests.integration.test_stream import check_report

VIA_HTTP, VIA_LIBRDKAFKA = "SD0001", "SD0002"


def call(
    url: str, body: bytes | None = None, token: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, JSON answer) of one request (to the test's own gateway); a non-2xx answer is read too."""
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers.setdefault("Content-Type", "application/x-ndjson")
    request = urllib.request.Request(  # noqa: S310 - the test's own http://127.0.0.1
        url, data=body, headers=headers, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as r:  # noqa: S310 - http://127.0.0.1 only
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture()
def gateway(cli_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`dualtrack gateway` on a free port of this machine, for the test's deployment."""
    settings = Settings(topic_prefix=cli_env["DUALTRACK_TOPIC_PREFIX"])
    open_deployment(settings, [VIA_LIBRDKAFKA])  # the worker's ACLs, and a school's user and topic
    ensure_topics(settings)
    ensure_gateway(settings)
    port = free_port()
    log = (tmp_path / "gateway.log").open("w")
    proc = subprocess.Popen([*CLI, "gateway", "--port", str(port)], env=cli_env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).close()  # noqa: S310 - the test's own URL
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "gateway.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _school_of(line: bytes) -> str | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value.get("school_id") if isinstance(value, dict) else None


def _produce_with_librdkafka(kafka: dict[str, Any], lines: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": kafka["bootstrap_servers"], "security.protocol": kafka["security_protocol"],
        "sasl.mechanism": kafka["sasl_mechanism"], "sasl.username": kafka["username"],
        "sasl.password": kafka["password"], "acks": "all", "enable.idempotence": True,
    })  # fmt: skip
    failed: list[str] = []
    for line in lines:
        producer.produce(
            kafka["topic"], line, on_delivery=lambda err, _: failed.append(str(err)) if err else None
        )
    assert producer.flush(60) == 0 and failed == [], failed


def test_a_school_posting_through_the_gateway_gives_the_report_the_replay_gives(
    gateway: str, cli_env: dict[str, str], server_url: str, tmp_path: Path
) -> None:
    added = run_cli(["schools", "add", VIA_HTTP, "--format", "json"], cli_env)
    assert added.returncode == 0, added.stderr
    token = json.loads(added.stdout)["http_token"]
    lines = example("province-small.jsonl").read_bytes().splitlines()
    mine = [line for line in lines if _school_of(line) == VIA_HTTP]
    theirs = [line for line in lines if _school_of(line) == VIA_LIBRDKAFKA]
    rest = tmp_path / "rest.jsonl"
    rest.write_bytes(
        b"".join(line + b"\n" for line in lines if _school_of(line) not in (VIA_HTTP, VIA_LIBRDKAFKA))
    )

    # refused: no token, a wrong one, a body over 5 MB
    assert call(f"{gateway}/v1/events", mine[0])[0] == 401
    assert call(f"{gateway}/v1/events", mine[0], "dtk_wrong")[0] == 401
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 6_000_000)
    curl = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{gateway}/v1/events", "-H", f"Authorization: Bearer {token}",
         "-H", "Content-Type: application/x-ndjson", "--data-binary", f"@{big}", "-w", "\\n%{http_code}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    body, code = curl.stdout.rsplit("\n", 1)
    assert code == "413" and "5000000 bytes" in json.loads(body)["error"], curl.stderr

    # the school's part of the province, in bodies of 100 lines, and one line forged for another school
    tally = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for start in range(0, len(mine), 100):
        status, answer = call(f"{gateway}/v1/events", b"\n".join(mine[start : start + 100]), token)
        assert status == 200, answer
        for key in tally:
            tally[key] += answer[key]
    assert sum(tally.values()) == len(mine)
    forged = hire(VIA_LIBRDKAFKA, "2025-02-01T09:00:00+08:00", "T-forged")
    status, answer = call(f"{gateway}/v1/events", json.dumps(forged).encode(), token)
    assert status == 200 and [(a["status"], a["reason"]) for a in answer["lines"]] == [
        ("rejected", "foreign_school")
    ]

    # another school with a librdkafka client (confluent-kafka) as its own Kafka user, the rest as themselves
    rotated = run_cli(["schools", "rotate", VIA_LIBRDKAFKA, "--format", "json"], cli_env)
    assert rotated.returncode == 0, rotated.stderr
    _produce_with_librdkafka(json.loads(rotated.stdout)["kafka"], theirs)
    produced = run_cli(["produce", "--raw", "--as-schools", str(rest)], cli_env)
    assert produced.returncode == 0, produced.stderr

    worker = run_cli(["worker", "--exit-when-idle", "3"], cli_env, timeout=180)
    assert worker.returncode == 0, worker.stderr[-4000:]
    check_report(cli_env)
    with open_store(url=server_url) as st:
        events = {r["event_id"] for r in st.query(f"SELECT event_id FROM {st.table('events')}")}
        dead = st.query(f"SELECT reason, origin, event_id FROM {st.table('dead_letters')} FINAL")
    assert len(events) == 1056 and forged["event_id"] not in events
    # the forged line was refused at the gateway (its dead letter's origin), never read from a topic
    assert [(d["reason"], d["origin"]) for d in dead if d["event_id"] == forged["event_id"]] == [
        ("foreign_school", f"gateway/{VIA_HTTP}")
    ]
    assert len(dead) == 8 + 1  # the example's eight, wherever they came in, and the forged one

    # each school's own view: its dead letters, none of another school's
    status, view = call(f"{gateway}/v1/school", token=token, headers={"Accept-Language": "en"})
    assert status == 200 and view["school_id"] == VIA_HTTP
    origins = {d["origin"] for d in dead}
    own = [d for d in dead if d["origin"] == f"gateway/{VIA_HTTP}"]
    assert sorted(d["reason"] for d in view["dead_letters"]) == sorted(d["reason"] for d in own)
    assert len(origins) > 1 and view["indicators"]["school_id"] == VIA_HTTP
    assert sum(d["kept"] for d in view["days"]) == tally["accepted"]
