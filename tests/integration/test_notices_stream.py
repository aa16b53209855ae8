"""Every alert is told, once, on the real broker and server: a simulated 20-school province is streamed
and the worker stops; then late departures of one school that met its ratio, dated 40 days before the
newest event, arrive; the restarted worker tells one critical `ratio_shortfall` notice for that school,
saying since when it is known; and so it does when the worker is killed right after writing the late
events to the store, before anything else."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sinks.base import open_store
from tests.integration.conftest import run_cli
from tests.webhooks import Receiver, receiver

CRITICAL_FACTOR = 1.3  # the departures make the ratio this far above its limit (critical is 1.2)


def stream(env: dict[str, str], events: Path, **extra: str) -> Any:
    sent = run_cli(["produce", "--raw", "--as-schools", str(events)], env)
    assert sent.returncode == 0, sent.stderr
    return run_cli(["worker", "--exit-when-idle", "5"], dict(env, **extra), timeout=240)


def late_departures(url: str) -> tuple[str, list[dict[str, Any]], datetime]:
    """A school that meets its ratio now, and departures of its full-time teachers dated 40 days before
    the newest event that make its ratio critical (teachers hired before that day, still there)."""
    with open_store(url=url) as st:
        newest = st.query(f"SELECT max(occurred_at) AS at FROM {st.table('events')}")[0]["at"]
        when = newest - timedelta(days=40)
        schools = st.query(
            f"SELECT school_id, students, fte_teachers, ratio_limit FROM {st.table('school_status')} FINAL "
            "WHERE ratio_limit IS NOT NULL AND student_teacher_ratio <= ratio_limit AND fte_teachers > 0 "
            "ORDER BY students DESC"
        )
        present = {(r["school_id"], r["teacher_id"]) for r in st.query(
            f"SELECT school_id, teacher_id FROM {st.table('teacher_state')} FINAL WHERE employment = 'full_time'"
        )}  # fmt: skip
        hired = st.query(
            f"SELECT school_id, body FROM {st.table('events')} WHERE event_type = 'teacher.hired' "
            f"AND occurred_at < toDateTime('{when.strftime('%Y-%m-%d %H:%M:%S')}')"
        )
    before = Counter[str]()
    teachers: dict[str, list[str]] = {}
    for r in hired:
        tid = json.loads(r["body"])["payload"]["teacher_id"]
        if (r["school_id"], tid) in present and json.loads(r["body"])["payload"]["employment"] == "full_time":
            teachers.setdefault(r["school_id"], []).append(tid)
            before[r["school_id"]] += 1
    for s in schools:
        need = next((k for k in range(1, int(s["fte_teachers"]))
                     if s["students"] / (s["fte_teachers"] - k) > CRITICAL_FACTOR * s["ratio_limit"]), None)  # fmt: skip
        if need is not None and need <= len(teachers.get(s["school_id"], [])) - 1:
            at = when.astimezone().isoformat()
            events = [
                {"event_id": str(uuid.uuid4()), "event_type": "teacher.departed", "schema_version": 1,
                 "school_id": s["school_id"], "occurred_at": at, "payload": {"teacher_id": t, "reason": "resigned"}}
                for t in sorted(set(teachers[s["school_id"]]))[:need]
            ]  # fmt: skip
            return s["school_id"], events, when
    pytest.fail("no school of the simulated province can be made to fall short")


def notices_for(got: Receiver, school: str) -> list[dict[str, Any]]:
    return [b for b in got.bodies() if b["kind"] == "notice" and b["notice"]["school_id"] == school]


def scenario(cli_env: dict[str, str], server_url: str, tmp_path: Path, crash: bool) -> None:
    run_cli(["simulate", str(tmp_path / "province.jsonl"), "--schools", "20", "--years", "1", "--seed", "3"],
            cli_env)  # fmt: skip
    with receiver() as got:
        recipients = tmp_path / "recipients.yaml"
        recipients.write_text(
            f"province:\n  - id: duty\n    webhook: {got.url}\n    severities: [critical]\n"
        )
        env = dict(cli_env, DUALTRACK_RECIPIENTS_FILE=str(recipients))
        first = stream(env, tmp_path / "province.jsonl")
        assert first.returncode == 0, first.stderr[-4000:]
        ids = [b["notice_id"] for b in got.bodies()]
        assert len(ids) == len(set(ids)), "a notice of the first run was received twice"
        school, departures, when = late_departures(server_url)
        (tmp_path / "late.jsonl").write_text("".join(json.dumps(e) + "\n" for e in departures))
        got.clear()
        if crash:
            marker = tmp_path / "crashed"
            killed = stream(env, tmp_path / "late.jsonl", DUALTRACK_FAILPOINT=f"after_store_write:{marker}")
            assert killed.returncode == 137 and marker.exists(), killed.stderr[-4000:]
            assert got.bodies() == [], "nothing may be told before the notice is decided in the store"
            with open_store(url=server_url) as st:  # the late events and what they change are written
                rows = st.query(f"SELECT count() AS n FROM {st.table('events')} WHERE occurred_at_us = "
                                f"{int(when.timestamp()) * 1_000_000}")  # fmt: skip
                assert rows[0]["n"] == len(departures)
            again = run_cli(["worker", "--exit-when-idle", "5"], env, timeout=240)  # the restart
        else:
            again = stream(env, tmp_path / "late.jsonl")
        assert again.returncode == 0, again.stderr[-4000:]
        told = notices_for(got, school)
        report = run_cli(
            ["report", "--format", "json", "--as-of", datetime.now().astimezone().isoformat()], env
        )
    assert [(n["notice"]["rule"], n["notice"]["kind"], n["notice"]["severity"]) for n in told] == [
        ("ratio_shortfall", "fired", "critical")
    ], told
    [n] = told
    at = datetime.fromisoformat(n["notice"]["at"])
    assert at >= when and datetime.now(at.tzinfo) - at > timedelta(days=1)  # it happened weeks ago ...
    assert "获知时间" in n["text"]  # ... and the message says since when it is known
    if at == when:
        assert set(n["notice"]["caused_by"]) <= {e["event_id"] for e in departures}
    assert len(got.bodies()) == 1, got.bodies()  # nothing else was told by the late events
    alerts = json.loads(report.stdout)["alerts"]
    assert any(a["school_id"] == school and a["rule"] == "ratio_shortfall" and a["severity"] == "critical"
               for a in alerts)  # fmt: skip


def test_late_departures_after_a_restart_are_told_once(cli_env, server_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    scenario(cli_env, server_url, tmp_path, crash=False)


def test_a_worker_killed_after_the_store_write_still_tells_the_notice_once(
    cli_env, server_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    scenario(cli_env, server_url, tmp_path, crash=True)
