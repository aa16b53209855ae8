"""As known on, through the real broker, worker and 18.16 server: a province sent in two batches, and
the report known on a time between them is the report of the first batch alone (docs/domain.md)."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from documents.report import report_from_store
from dualtrack.replay import replay
from rules.limits import load_rules
from sinks.embedded import EmbeddedStore
from tests.helpers import example
from tests.integration.conftest import run_cli

AS_OF = "2025-12-31T23:59:59+08:00"


def _batches(tmp_path: Path) -> tuple[Path, Path]:
    lines = example("province-small.jsonl").read_bytes().splitlines()
    rnd = random.Random(11)  # the second batch holds late events all over the history
    chosen = [rnd.random() < 0.75 for _ in lines]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"\n".join(x for x, c in zip(lines, chosen, strict=True) if c) + b"\n")
    b.write_bytes(b"\n".join(x for x, c in zip(lines, chosen, strict=True) if not c) + b"\n")
    return a, b


def _alone(path: Path, tmp_path: Path) -> dict[str, Any]:
    with EmbeddedStore(tmp_path / "alone") as st:
        replay(st, [path], load_rules())
        return _without_time(report_from_store(st, load_rules(), datetime.fromisoformat(AS_OF)))


def _without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in ("as_of", "known_on")}


def _report(env: dict[str, str], *known_on: str) -> dict[str, Any]:
    args = ["report", "--as-of", AS_OF, "--format", "json", *(["--known-on", *known_on] if known_on else [])]
    result = run_cli(args, env)
    assert result.returncode == 0, result.stderr
    return _without_time(json.loads(result.stdout))


def _between() -> str:
    """A time after everything sent so far and before anything sent next (arrivals are kept to the second)."""
    time.sleep(1.1)
    k = datetime.now(UTC)
    time.sleep(1.1)
    return k.isoformat()


def test_the_stream_reports_what_was_known_between_two_batches(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    a, b = _batches(tmp_path)
    for path in (a, b):
        sent = run_cli(["produce", "--raw", "--as-schools", str(path)], cli_env)
        assert sent.returncode == 0, sent.stderr
        worker = run_cli(["worker", "--exit-when-idle", "3"], cli_env, timeout=150)
        assert worker.returncode == 0, worker.stderr[-4000:]
        if path == a:
            between = _between()
    assert _report(cli_env, between) == _alone(a, tmp_path)
    now = _report(cli_env)
    assert now != _report(cli_env, between), "the second batch moves nothing: the test shows nothing"
    assert _report(cli_env, (datetime.now(UTC) + timedelta(seconds=1)).isoformat()) == now


def test_a_backfill_into_the_server_arrives_when_it_says(cli_env: dict[str, str], tmp_path: Path) -> None:
    a, b = _batches(tmp_path)
    k1, k2 = "2026-01-05T09:00:00+08:00", "2026-02-05T09:00:00+08:00"
    for path, k in ((a, k1), (b, k2)):
        result = run_cli(["replay", str(path), "--arrived-at", k], cli_env)
        assert result.returncode == 0, result.stderr
    assert _report(cli_env, "2026-01-20T00:00:00+08:00") == _alone(a, tmp_path)
    assert _report(cli_env, k2) == _report(cli_env)


def _open_alerts(url: str, rule: str) -> dict[str, str]:
    """school_id -> subject of the open alerts of `rule` in the server's store."""
    from sinks.base import open_store

    with open_store(url=url) as st:
        rows = st.query(
            f"SELECT school_id, subject, argMax(transition, at_us) AS last FROM {st.table('alert_transitions')} "
            "FINAL WHERE retracted = 0 AND rule = {rule:String} GROUP BY school_id, subject",
            {"rule": rule},
        )
    return {r["school_id"]: r["subject"] for r in rows if r["last"] != "resolved"}


def test_enrollment_missing_through_the_real_worker(
    cli_env: dict[str, str], server_url: str, tmp_path: Path
) -> None:
    """Every school registered by the latest deadline without that term's report is warned; the report
    arriving resolves it for that school alone."""
    from rules.reporting import deadline, terms_due
    from schemas.validation import Accepted, validate

    rules = load_rules()
    term = terms_due(datetime.now(UTC), rules, 1)[0]
    events = [
        r
        for r in map(validate, example("province-small.jsonl").read_bytes().splitlines())
        if isinstance(r, Accepted)
    ]
    registered = {
        e.school_id
        for e in events
        if e.event_type == "school.registered" and e.occurred_at <= deadline(term, rules)
    }
    reported = {
        e.school_id for e in events if e.event_type == "enrollment.reported" and e.payload["term"] == term
    }
    expected = registered - reported
    assert expected
    sent = run_cli(["produce", "--raw", "--as-schools", str(example("province-small.jsonl"))], cli_env)
    assert sent.returncode == 0, sent.stderr
    worker = run_cli(["worker", "--exit-when-idle", "3"], cli_env, timeout=150)
    assert worker.returncode == 0, worker.stderr[-4000:]
    assert _open_alerts(server_url, "enrollment_missing") == dict.fromkeys(expected, term)
    school = sorted(expected)[0]
    report = {
        "event_id": "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e", "event_type": "enrollment.reported", "schema_version": 1,
        "school_id": school, "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {"term": term, "counts": {"full_time": 900}},
    }  # fmt: skip
    late = tmp_path / "late.jsonl"
    late.write_text(json.dumps(report) + "\n")
    sent = run_cli(["produce", "--raw", "--as-schools", str(late)], cli_env)
    assert sent.returncode == 0, sent.stderr
    worker = run_cli(["worker", "--exit-when-idle", "3"], cli_env, timeout=150)
    assert worker.returncode == 0, worker.stderr[-4000:]
    assert _open_alerts(server_url, "enrollment_missing") == dict.fromkeys(expected - {school}, term)
