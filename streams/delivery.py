"""Delivery of planned messages (docs/alerts.md, "Delivery"): a webhook (JSON POST) and e-mail (SMTP,
plain text), each message once.

Before sending, the ledger (the `notifications` table) is asked which messages are settled already, so
a restarted worker sends nothing twice. A permanent refusal (HTTP 4xx other than 408 and 429, SMTP 5xx)
is recorded and skipped; a transient failure is retried with backoff and jitter in its own task, so one
endpoint that is down never holds up the others, and recorded as failed once `retry_for` runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import smtplib
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

from foundation.settings import Settings
from sinks.base import Row
from sinks.notifications import NotificationLog
from streams.outbox import Outgoing

log = logging.getLogger(__name__)


class Permanent(Exception):
    """The endpoint refused the message for good: retrying cannot mend it."""


class Sender(Protocol):
    def send(self, out: Outgoing) -> None:
        """Deliver one message (blocking); Permanent for a refusal, OSError for a transient failure."""


class WebhookSender:
    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def send(self, out: Outgoing) -> None:
        body = json.dumps(out.payload, ensure_ascii=False).encode("utf-8")
        # the notice id, the same on every attempt and after a restart: a receiver that keeps the ids
        # it has seen sees each notice once even in the rare resend (docs/alerts.md, "Delivery")
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": out.notice_id}
        req = urllib.request.Request(out.address, data=body, method="POST", headers=headers)  # noqa: S310 - the scheme is checked when the recipients file loads
        try:
            with urllib.request.urlopen(req, timeout=self.timeout):  # noqa: S310 - as above
                return
        except urllib.error.HTTPError as err:  # an OSError too: tell permanent from transient first
            err.close()  # the answer's connection: not left for the garbage collector
            if 400 <= err.code < 500 and err.code not in (408, 429):
                raise Permanent(f"HTTP {err.code}") from None
            raise OSError(f"HTTP {err.code}") from None


@dataclass(frozen=True)
class SmtpSender:
    """Plain-text mail through an SMTP server (STARTTLS when `starttls`, SMTPS when `ssl`)."""

    host: str
    port: int = 25
    sender: str = "dualtrack@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0

    def message(self, out: Outgoing) -> EmailMessage:
        m = EmailMessage()
        m["From"] = self.sender
        m["To"] = out.address
        m["Subject"] = out.title  # one line (rules.messages.one_line): no header can be forged
        m["Date"] = formatdate(localtime=False)
        # the same notice sent again has the same Message-ID, so mail systems and clients can drop the copy
        domain = self.sender.rpartition("@")[2].strip("<> ") or "dualtrack.invalid"
        m["Message-ID"] = f"<{out.notice_id}@{domain}>"
        m["X-Dualtrack-Notice"] = out.notice_id
        m.set_content(out.body, subtype="plain", charset="utf-8")  # plain text: data is never markup
        return m

    def send(self, out: Outgoing) -> None:
        cls = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        try:
            with cls(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(self.message(out))
        except smtplib.SMTPRecipientsRefused as err:
            if all(code >= 500 for code, _ in err.recipients.values()):
                raise Permanent(
                    f"SMTP recipient refused {sorted(c for c, _ in err.recipients.values())}"
                ) from None
            raise
        except smtplib.SMTPResponseException as err:
            if err.smtp_code >= 500:
                raise Permanent(f"SMTP {err.smtp_code}") from None
            raise


class Ledger(Protocol):
    async def settled(self, notice_ids: list[str]) -> set[str]: ...

    async def record(self, rows: list[Row]) -> None: ...


class StoreLedger:
    """The notifications table, called off the event loop; pass the worker's `Runtime.run` as `run` so
    the calls take their turn with its other store work (chDB has one writer)."""

    def __init__(
        self, notifications: NotificationLog, run: Callable[..., Awaitable[Any]] | None = None
    ) -> None:
        self.log = notifications
        self._run = run or self._one_at_a_time
        self._lock = asyncio.Lock()

    async def _one_at_a_time(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A store is used by one thread at a time (chDB's session is not safe across threads)."""
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    async def settled(self, notice_ids: list[str]) -> set[str]:
        found: set[str] = await self._run(self.log.settled, notice_ids)
        return found

    async def record(self, rows: list[Row]) -> None:
        await self._run(self.log.record, rows)


@dataclass
class Report:
    """What one `deliver` call did, by outcome (delivered, refused, failed, skipped)."""

    outcomes: Counter[str]
    sent: list[str]  # notice ids delivered, in order


#: messages sent at once; also the most a worker killed mid-delivery can leave sent and unrecorded
CONCURRENCY = 8


class Dispatcher:
    def __init__(
        self,
        senders: Mapping[str, Sender],
        ledger: Ledger,
        retry_for: float = 3600.0,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        concurrency: int = CONCURRENCY,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.senders, self.ledger = senders, ledger
        self.retry_for, self.first_delay, self.max_delay = retry_for, first_delay, max_delay
        self.sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)

    async def deliver(self, outgoing: Sequence[Outgoing]) -> Report:
        """Send what is not settled yet, each message in its own task, and record each as it settles."""
        report = Report(Counter(), [])
        settled = await self.ledger.settled([o.notice_id for o in outgoing])
        todo = [o for o in outgoing if o.notice_id not in settled]
        if len(todo) < len(outgoing):
            report.outcomes["skipped"] += len(outgoing) - len(todo)
        await asyncio.gather(*(self._one(o, report) for o in todo))
        return report

    async def record(self, rows: Sequence[Row]) -> int:
        """Record suppressions not recorded before (a restarted worker decides them again); returns how
        many were new."""
        settled = await self.ledger.settled([r["notice_id"] for r in rows])
        fresh = [r for r in rows if r["notice_id"] not in settled]
        if fresh:
            await self.ledger.record(fresh)
        return len(fresh)

    async def _one(self, out: Outgoing, report: Report) -> None:
        sender = self.senders.get(out.channel)
        if sender is None:
            await self._settle(out, report, "failed", f"no {out.channel} sender configured", 0)
            return
        delay, waited, attempts = self.first_delay, 0.0, 0
        while True:
            attempts += 1
            try:
                # the slot is held until the message is recorded: at most `concurrency` messages are
                # ever sent and not yet recorded, which is all a worker killed at any moment can leave
                # to be sent again by the next owner (with the same notice id, the idempotency key)
                async with self._slots:
                    await self._send(sender, out, report, attempts)
                    await self._settle(out, report, "delivered", "", attempts)
                return
            except Permanent as err:
                log.error("%s refused notice %s (%s); recorded and skipped", out.channel, out.notice_id, err)
                await self._settle(out, report, "refused", str(err), attempts)
                return
            except OSError as err:
                why = f"{type(err).__name__}: {err}"[:300]
                if waited >= self.retry_for:
                    log.error("%s unreachable for notice %s (%s); given up", out.channel, out.notice_id, why)
                    await self._settle(out, report, "failed", why, attempts)
                    return
                pause = delay * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not secrecy
                log.warning(
                    "%s failed (%s); retrying notice %s in %.1fs", out.channel, why, out.notice_id, pause
                )
                await self.sleep(pause)
                waited += pause
                delay = min(delay * 2, self.max_delay)

    async def _send(self, sender: Sender, out: Outgoing, report: Report, attempts: int) -> None:
        """Send in a thread. Cancelled meanwhile (the engine moved to another worker), the send is
        awaited to its end and, when it went through, recorded before letting go: a message that was
        sent is never left unrecorded for the next owner to send again."""
        work = asyncio.ensure_future(asyncio.to_thread(sender.send, out))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait([work])
            if not work.cancelled() and work.exception() is None:
                await self._settle(out, report, "delivered", "", attempts)
            raise

    async def _settle(self, out: Outgoing, report: Report, status: str, detail: str, attempts: int) -> None:
        work = asyncio.ensure_future(self.ledger.record([out.settled_row(status, detail, attempts)]))
        try:
            await asyncio.shield(work)  # a record under way is finished, even when cancelled meanwhile
        except asyncio.CancelledError:
            await asyncio.wait([work])
            raise
        report.outcomes[status] += 1
        if status == "delivered":
            report.sent.append(out.notice_id)


def smtp_sender(url: str, sender: str) -> SmtpSender:
    """An SmtpSender from `DUALTRACK_SMTP_URL` (`smtp://`, `smtp+starttls://` or `smtps://`)."""
    from urllib.parse import unquote, urlparse

    u = urlparse(url)
    ssl = u.scheme == "smtps"
    return SmtpSender(
        host=u.hostname or "127.0.0.1",
        port=u.port or (465 if ssl else 587 if u.scheme == "smtp+starttls" else 25),
        sender=sender,
        user=unquote(u.username) if u.username else None,
        password=unquote(u.password) if u.password else None,
        starttls=u.scheme == "smtp+starttls",
        ssl=ssl,
    )


def senders(settings: Settings) -> dict[str, Sender]:
    """The channels the settings configure: the webhook always (its URLs are the recipients'), e-mail
    when `DUALTRACK_SMTP_URL` is set."""
    out: dict[str, Sender] = {"webhook": WebhookSender()}
    if settings.smtp_url is not None:
        out["email"] = smtp_sender(settings.smtp_url.get_secret_value(), settings.smtp_from)
    return out
