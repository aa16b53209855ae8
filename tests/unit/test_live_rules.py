"""Live-only behaviour: feed_stale from the clock on arrival time, and the webhook notifier."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from unittest.mock import patch

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
    fail_first = 0
    refuse: ClassVar[set[str]] = set()  # notice ids answered 400 (for good)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["id"] in _Hook.refuse:
            self.send_response(400)
            self.end_headers()
            return
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Hook.received.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_notifier_delivers_each_transition_once_with_retries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dualtrack.settings import Settings
    from streams.agents import notifier as mod
    from streams.app import create_app

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received, _Hook.fail_first = [], 1
    record = {
        "id": "ratio_shortfall|SD1||1|fired",
        "rule": "ratio_shortfall",
        "school_id": "SD1",
        "transition": "fired",
    }
    url = f"http://127.0.0.1:{server.server_port}/hook"
    pipeline = create_app(Settings(topic_prefix="unit", var_dir=tmp_path, alert_webhook_url=url))
    try:
        with patch.object(mod.asyncio, "sleep", _no_sleep):
            async with pipeline.agents["notifier"].test_context() as agent:
                await agent.put(json.dumps(record).encode())
                await agent.put(json.dumps(record).encode())  # redelivered: not posted again
    finally:
        server.shutdown()
        server.server_close()
        close_app_loops(pipeline.app)
    assert [r["id"] for r in _Hook.received] == [record["id"]]


async def _no_sleep(_: float) -> None:
    return None


async def test_a_permanent_refusal_is_skipped_and_does_not_hold_up_later_alerts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dualtrack.settings import Settings
    from streams.agents import notifier as mod
    from streams.app import create_app

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received, _Hook.fail_first, _Hook.refuse = [], 0, {"bad|SD1||1|fired"}
    url = f"http://127.0.0.1:{server.server_port}/hook"
    pipeline = create_app(Settings(topic_prefix="unit", var_dir=tmp_path, alert_webhook_url=url))
    bad, good = (
        {"id": i, "rule": "r", "school_id": "SD1"} for i in ("bad|SD1||1|fired", "good|SD1||2|fired")
    )
    posts = 0
    real_post = mod.post

    def counting_post(u: str, body: bytes) -> int:
        nonlocal posts
        posts += 1
        return real_post(u, body)

    try:
        with patch.object(mod, "post", counting_post), patch.object(mod.asyncio, "sleep", _no_sleep):
            async with pipeline.agents["notifier"].test_context() as agent:
                await agent.put(json.dumps(bad).encode())
                await agent.put(json.dumps(good).encode())
                await agent.put(json.dumps(bad).encode())  # redelivered: recorded as done, not posted again
    finally:
        server.shutdown()
        server.server_close()
        close_app_loops(pipeline.app)
    assert [r["id"] for r in _Hook.received] == ["good|SD1||2|fired"]
    assert posts == 2  # the refused one once, not retried


def test_the_webhook_url_is_checked_when_the_settings_load() -> None:
    import pytest
    from pydantic import ValidationError

    from dualtrack.settings import Settings

    for bad in ("ftp://example.org/hook", "not a url", "http://"):
        with pytest.raises(ValidationError, match="http"):
            Settings(alert_webhook_url=bad)
    assert Settings(alert_webhook_url="https://ops.example.org/hook").alert_webhook_url
