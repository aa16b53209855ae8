"""Delivery (streams/delivery.py): a webhook on a local HTTP server, e-mail to a local aiosmtpd server,
and exactly-once across a restart against a chDB-backed notifications table."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller

from rules.limits import Notifications
from rules.messages import Context
from rules.notifications import EMPTY, decide
from rules.recipients import SchoolInfo, parse_recipients
from sinks.base import Row
from sinks.embedded import EmbeddedStore
from sinks.notifications import NotificationLog
from streams.delivery import Dispatcher, Permanent, SmtpSender, StoreLedger, WebhookSender, smtp_sender
from streams.outbox import Outgoing, plan
from tests.unit.test_notification_policy import rec

T0 = datetime.fromisoformat("2025-09-01T10:00:00+08:00")
SCHOOLS = {"SD0001": SchoolInfo("济南第一职业学校", "jinan"), "SD0002": SchoolInfo("青岛职校", "qingdao")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hooks(BaseHTTPRequestHandler):
    """/ok answers 200, /gone 404, /busy 429, /down 503; /flaky 503 twice, then 200."""

    hits: ClassVar[dict[str, int]] = {}
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        n = Hooks.hits[self.path] = Hooks.hits.get(self.path, 0) + 1
        code = {"/ok": 200, "/gone": 404, "/busy": 429, "/down": 503}.get(self.path, 200 if n > 2 else 503)
        if code == 200:
            Hooks.bodies.append(body)
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def hooks() -> Iterator[str]:
    Hooks.hits, Hooks.bodies = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class MemoryLedger:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    async def settled(self, notice_ids: list[str]) -> set[str]:
        return {r["notice_id"] for r in self.rows} & set(notice_ids)

    async def record(self, rows: list[Row]) -> None:
        self.rows += rows


def outgoing(nid: str, address: str, channel: str = "webhook") -> Outgoing:
    return Outgoing(nid * 64, "notice", "r1", channel, address, "en", "title", "body\n", {"notice_id": nid * 64},
                    {"rule": "ratio_shortfall", "school_id": "SD0001", "decided_at": T0.isoformat()})  # fmt: skip


async def test_webhook_permanent_refusals_are_recorded_and_transient_failures_retried_without_holding_others(
    hooks: str,
) -> None:
    pauses: list[float] = []

    async def quick(seconds: float) -> None:  # the backoff is recorded, not waited for
        pauses.append(seconds)
        await asyncio.sleep(0.01)

    ledger = MemoryLedger()
    d = Dispatcher({"webhook": WebhookSender(timeout=5)}, ledger, retry_for=20.0, sleep=quick)
    out = [outgoing("a", f"{hooks}/down"), outgoing("b", f"{hooks}/gone"), outgoing("c", f"{hooks}/flaky"),
           outgoing("d", f"{hooks}/busy"), outgoing("e", f"{hooks}/ok")]  # fmt: skip
    report = await d.deliver(out)
    status = {r["notice_id"][0]: (r["status"], r["attempts"], r["detail"]) for r in ledger.rows}
    assert status["b"] == ("refused", 1, "HTTP 404")  # permanent: recorded and skipped, never retried
    assert status["e"][:2] == ("delivered", 1) and status["c"][:2] == ("delivered", 3)
    assert status["a"][0] == status["d"][0] == "failed"  # 503 and 429 are transient: retried, then given up
    assert "503" in status["a"][2] and Hooks.hits["/down"] > 3 and Hooks.hits["/gone"] == 1
    # the endpoint that was down did not hold the others: they settled before it gave up
    order = [r["notice_id"][0] for r in ledger.rows]
    assert order.index("e") < order.index("a") and order.index("b") < order.index("a")
    assert 0.5 <= pauses[0] <= 1.5  # the first pause: 1 s with jitter (test_backoff_doubles_with_jitter)
    assert report.outcomes == {"delivered": 2, "refused": 1, "failed": 2}
    assert sorted(b["notice_id"][0] for b in Hooks.bodies) == ["c", "e"]


def test_backoff_doubles_with_jitter() -> None:
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    class Down:
        def send(self, out: Outgoing) -> None:
            raise ConnectionRefusedError("refused")

    d = Dispatcher(
        {"webhook": Down()}, MemoryLedger(), retry_for=100.0, first_delay=1.0, max_delay=8.0, sleep=record
    )
    report = asyncio.run(d.deliver([outgoing("a", "http://127.0.0.1:9/")]))
    assert report.outcomes == {"failed": 1}
    for n, p in enumerate(pauses):
        base = min(2**n, 8)
        assert 0.5 * base <= p <= 1.5 * base
    assert len(set(pauses)) > 1 and sum(pauses[:-1]) < 100.0 <= sum(pauses)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


@pytest.fixture()
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_email_is_delivered_to_a_local_smtp_server_as_plain_text(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    sender = smtp_sender(f"smtp://127.0.0.1:{port}", "dualtrack@edu.example.cn")
    assert isinstance(sender, SmtpSender) and (sender.port, sender.starttls) == (port, False)
    d = decide(EMPTY, [rec("fired", T0, severity="critical", caused_by=("ev-1",))], T0, Notifications())
    rs = parse_recipients({"schools": {"SD0001": [{"id": "hr1", "email": "hr@sd1.example.cn"}]}})
    [out], _ = plan(d, rs, Context(SCHOOLS), T0)
    sender.send(out)
    [(to, raw)] = inbox.messages
    m = message_from_bytes(raw, policy=default_policy)
    assert to == ["hr@sd1.example.cn"] and m["To"] == "hr@sd1.example.cn"
    assert (
        str(m["Subject"]) == "【严重】济南第一职业学校：生师比超过限值"
        and m["X-Dualtrack-Notice"].strip() == out.notice_id
    )
    assert m.get_content_type() == "text/plain"
    body = m.get_content()
    assert "依据：由事件 ev-1 引起" in body and "时间：2025-09-01 10:00（北京时间）" in body
    refused = Outgoing(**{**out.to_dict(), "address": "nobody@sd1.example.cn"})
    with pytest.raises(Permanent, match="550"):
        sender.send(refused)


def test_an_unreachable_smtp_server_is_a_transient_failure() -> None:
    with pytest.raises(OSError):
        SmtpSender("127.0.0.1", free_port(), timeout=2).send(outgoing("a", "x@y.cn", "email"))


class Recording:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, out: Outgoing) -> None:
        self.sent.append(out.notice_id)


def records() -> list[dict[str, Any]]:
    return [rec("fired", T0, severity="critical", caused_by=("e1",)),
            rec("fired", T0, school="SD0002", severity="critical", caused_by=("e2",)),
            rec("fired", T0, rule="certificate_expiring", subject="C1", value=None, caused_by=("e3",)),
            rec("updated", T0 + timedelta(hours=1), value=23.0, severity="critical", caused_by=("e4",))]  # fmt: skip


def one_run(store_path: Path, upto: int | None = None) -> tuple[list[str], list[str]]:
    """A worker's run from scratch (no saved state): the policy over the same transitions, then delivery.
    `upto` cuts the delivery short, as a crash would. Returns (planned ids, ids sent)."""
    rs = parse_recipients({"cities": {"jinan": [{"id": "jinan", "email": "a@jinan.cn", "webhook": "http://x.invalid/"}]},
                           "province": [{"id": "prov", "webhook": "http://y.invalid/"}]})  # fmt: skip
    d1 = decide(EMPTY, records(), T0, Notifications())
    d2 = decide(d1.state, [], T0 + timedelta(days=1), Notifications())  # the digest is due
    out1, suppressed = plan(d1, rs, Context(SCHOOLS), T0)
    out2, _ = plan(d2, rs, Context(SCHOOLS), T0 + timedelta(days=1))
    out = out1 + out2
    sender = Recording()
    with EmbeddedStore(store_path) as store:
        store.migrate()
        dispatcher = Dispatcher({"webhook": sender, "email": sender}, StoreLedger(NotificationLog(store)))

        async def go() -> None:
            await dispatcher.record(suppressed)
            await dispatcher.deliver(out[:upto])

        asyncio.run(go())
    return [o.notice_id for o in out], sender.sent


def test_exactly_once_across_a_restart(tmp_path: Path) -> None:
    planned, first = one_run(tmp_path, upto=3)  # the worker dies after three messages
    assert len(planned) == 7 and sorted(first) == sorted(planned[:3])
    again, second = one_run(tmp_path)
    assert again == planned and sorted(second) == sorted(planned[3:])  # the rest, and nothing twice
    _, third = one_run(tmp_path)
    assert third == []  # a third run sends nothing
    with EmbeddedStore(tmp_path) as store:
        rows = NotificationLog(store).rows()
        raw = store.query(f"SELECT count() AS n FROM {store.table('notifications')}")[0]["n"]
    assert raw == len(rows) == len(planned) + 1  # each notice once, and the one silent update, recorded once
    kinds = sorted((r["kind"], r["recipient"], r["channel"], r["status"]) for r in rows)
    # SD0001 (Jinan) fires critical: jinan on two channels and prov; SD0002 (Qingdao): prov only; the
    # certificate warning goes to the next day's digest of jinan (two channels) and prov
    assert kinds == [
        ("digest", "jinan", "email", "delivered"), ("digest", "jinan", "webhook", "delivered"),
        ("digest", "prov", "webhook", "delivered"), ("notice", "jinan", "email", "delivered"),
        ("notice", "jinan", "webhook", "delivered"), ("notice", "prov", "webhook", "delivered"),
        ("notice", "prov", "webhook", "delivered"), ("suppressed", "", "", "suppressed"),
    ]  # fmt: skip
    [s] = [r for r in rows if r["kind"] == "suppressed"]
    assert (s["why"], s["caused_by"]) == ("value_only", ["e4"])
    digest = next(r for r in rows if r["kind"] == "digest")
    assert digest["caused_by"] == ["e3"] and digest["window_end"] is not None
