"""Hostile input through the real broker and the 18.16 server: the example mixed with a line of every
hostile class, sent with `produce --raw --as-schools` (each line as its school, logged in) and processed
by the worker, gives the same report as a replay of the same file, except the lines of school ids that
cannot have a Kafka login, which the stream refuses as foreign_school; every table is free of national ID numbers; and replay survives fuzzing there too."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from foundation.kafka_auth import valid_school_id
from foundation.settings import Settings
from sinks.base import open_store
from streams.producer import school_key
from tests.fuzz import check, streams
from tests.helpers import example, national_ids_in
from tests.hostile import HOSTILE
from tests.integration.conftest import clickhouse_url, run_cli
from tests.report_compare import assert_same_report

AS_OF = "2025-12-31T23:59:59+08:00"


def test_a_hostile_file_through_the_stream_equals_its_replay(
    cli_env: dict[str, str], server_url: str, tmp_path: Path
) -> None:
    lines = example("province-small.jsonl").read_bytes().split(b"\n")
    for n, (_, raw, _) in enumerate(HOSTILE):
        lines.insert((n * 31) % len(lines), raw)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(lines))
    # each line goes as the school it names; a school id that cannot name a Kafka user and topic has no
    # login, so its lines go as another school and are refused as foreign_school (a replay has no sender)
    unsendable = [raw for raw in lines if (k := school_key(raw)) and not valid_school_id(k)]
    assert unsendable, "the hostile lines include school ids that cannot name a topic"
    sendable = tmp_path / "sendable.jsonl"
    sendable.write_bytes(b"\n".join(raw for raw in lines if raw not in unsendable))
    sent = run_cli(["produce", "--raw", "--as-schools", str(mixed)], cli_env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    worker = run_cli(["worker", "--exit-when-idle", "3"], cli_env, timeout=240)
    assert worker.returncode == 0, worker.stderr[-4000:]
    streamed = run_cli(["report", "--as-of", AS_OF, "--format", "json"], cli_env)
    assert streamed.returncode == 0, streamed.stderr

    replay_env = dict(cli_env, DUALTRACK_CLICKHOUSE_URL=server_url + "_replay")
    replayed = run_cli(["replay", str(sendable), "--format", "json"], replay_env)
    assert replayed.returncode == 0, replayed.stderr
    counts = json.loads(replayed.stdout)
    assert (
        counts["applied"] + counts["duplicates"] + counts["dead_lettered"] + counts["blank"]
        == counts["lines"]
    )
    report = run_cli(["report", "--as-of", AS_OF, "--format", "json"], replay_env)
    assert_same_report(json.loads(report.stdout), streamed.stdout)

    dead = {}
    for url in (server_url, server_url + "_replay"):
        with open_store(url=url) as st:
            dead[url] = {
                r["reason"]: r["n"]
                for r in st.query(
                    f"SELECT reason, count() AS n FROM {st.table('dead_letters')} FINAL GROUP BY reason"
                )
            }
    assert (
        dead[server_url].get("foreign_school", 0) > 0 and "foreign_school" not in dead[server_url + "_replay"]
    )
    assert sum(dead[server_url].values()) == sum(dead[server_url + "_replay"].values()) + len(unsendable)
    for url in (server_url, server_url + "_replay"):
        with open_store(url=url) as st:
            assert national_ids_in(st) == []
            reasons = {
                r["reason"] for r in st.query(f"SELECT DISTINCT reason FROM {st.table('dead_letters')}")
            }
            assert {r for _, _, r in HOSTILE if r} <= reasons


_n = itertools.count()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(streams())
def test_replay_survives_fuzzing_on_the_server(
    services: Settings,
    run_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    stream: tuple[list[bytes], list[bytes]],
) -> None:
    n = next(_n)
    tmp = tmp_path_factory.mktemp(f"fuzz{n}")
    check(
        lambda name: open_store(url=clickhouse_url(services, f"{run_database}_fuzz{n}_{name}")),
        tmp,
        *stream,
    )
