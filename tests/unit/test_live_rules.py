"""Live-only behaviour: feed_stale from the clock on arrival time, and the webhook notifier."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from unittest.mock import AsyncMock, patch

from rules.engine import fold
from rules.limits import load_rules
from rules.report import build_report
from tests.helpers import accepted, close_app_loops, hire, register

RULES = load_rules()
T0 = datetime.fromisoformat("2025-01-01T08:00:00+08:00")


def test_feed_stale_fires_from_the_clock_and_resolves_when_the_school_reports_again() -> None:
    engine = fold([accepted(register("A", "2024-12-01T08:00:00+08:00")), accepted(hire("A", "2024-12-02T08:00:00+08:00", "T1"))],
                  RULES)  # fmt: skip
    arrivals = {"A": T0}
    assert not [t for t in engine.tick(T0 + timedelta(days=90), arrivals) if t.alert.rule == "feed_stale"]
    fired = [t for t in engine.tick(T0 + timedelta(days=91), arrivals) if t.alert.rule == "feed_stale"]
    assert [(t.kind, t.alert.school_id, t.alert.value, t.alert.threshold) for t in fired] == [
        ("fired", "A", 91, 90)
    ]
    assert not [
        t for t in engine.tick(T0 + timedelta(days=92), arrivals) if t.kind == "fired"
    ]  # one alert, no repeats
    arrivals["A"] = T0 + timedelta(days=93)
    resolved = [
        t for t in engine.tick(T0 + timedelta(days=93, hours=1), arrivals) if t.alert.rule == "feed_stale"
    ]
    assert [t.kind for t in resolved] == ["resolved"]
    # and it is never part of an as-of report
    engine.tick(T0 + timedelta(days=400), arrivals)
    report = build_report(engine, T0 + timedelta(days=400))
    assert "feed_stale" not in {a["rule"] for a in report["alerts"]}


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_the_notifier_tells_a_critical_alert_once_and_a_value_change_not_at_all(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through the worker's engine agent, with only DUALTRACK_ALERT_WEBHOOK_URL set: a school whose ratio
    becomes critical is posted at once; the batch delivered again and a change of value post nothing;
    a warning waits for the digest (docs/alerts.md)."""
    from foundation.settings import Settings
    from streams.app import create_app
    from streams.records import pack_events
    from tests.helpers import accepted, enroll, hire, register

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    url = f"http://127.0.0.1:{server.server_port}/hook"
    pipeline = create_app(
        Settings(topic_prefix="unit", var_dir=tmp_path, store_path=tmp_path / "store", alert_webhook_url=url,
                 stream_batch_seconds=0.1, kafka_security_protocol="PLAINTEXT")
    )  # fmt: skip
    day = "2025-03-0{}T08:00:00+08:00".format
    critical = [
        register("SD1", day(1)),
        enroll("SD1", day(1), 500),
        *(hire("SD1", day(1), f"A{n}") for n in range(10)),
    ]  # 50 students a teacher: critical
    warning = [
        register("SD2", day(2)),
        enroll("SD2", day(2), 210),
        *(hire("SD2", day(2), f"B{n}") for n in range(10)),
    ]  # 21: a warning, for the digest
    first = pack_events([accepted(e) for e in critical])
    moved = pack_events([accepted(hire("SD1", day(3), "A10"))])  # 45.45: still critical
    try:
        with patch.object(pipeline.topics["alerts"], "send", AsyncMock()):
            async with pipeline.agents["engine"].test_context() as agent:
                for batch in (first, first, moved, pack_events([accepted(e) for e in warning])):
                    await agent.put(batch)
                for _ in range(100):
                    if _Hook.received and pipeline.runtime.counters.kept >= 32:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
    finally:
        server.shutdown()
        server.server_close()
        pipeline.runtime.close()
        close_app_loops(pipeline.app)
    assert len(_Hook.received) == 1, _Hook.received
    notice = _Hook.received[0]
    assert (notice["notice"]["rule"], notice["notice"]["school_id"], notice["notice"]["severity"]) == (
        "ratio_shortfall", "SD1", "critical")  # fmt: skip


def test_the_webhook_url_is_checked_when_the_settings_load() -> None:
    import pytest
    from pydantic import ValidationError

    from foundation.settings import Settings

    for bad in ("ftp://example.org/hook", "not a url", "http://"):
        with pytest.raises(ValidationError, match="http"):
            Settings(alert_webhook_url=bad)
    assert Settings(alert_webhook_url="https://ops.example.org/hook").alert_webhook_url
