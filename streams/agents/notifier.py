"""Who is told what, and when: alert transitions (the alerts topic) through the notification policy
(rules.notifications: critical at once, warnings in digests, value changes silent, flapping
suppressed), routed to the recipients file's contacts and delivered by webhook or e-mail, each notice
once (the notifications table) across restarts. Without a recipients file, DUALTRACK_ALERT_WEBHOOK_URL
is one province-wide contact that receives every rule."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from rules.limits import SEVERITIES
from rules.messages import Context
from rules.notifications import decide
from rules.recipients import RULES, Recipient, SchoolInfo, load_recipients
from sinks.notifications import NotificationLog, school_directory
from streams.app import Pipeline, fail, guarded
from streams.delivery import Dispatcher, StoreLedger, senders
from streams.outbox import Saved, plan, settle

log = logging.getLogger(__name__)
#: how often due digests and held resolutions are looked at when no transition arrives
DIGEST_CHECK_SECONDS = 60.0


def recipients_of(p: Pipeline) -> list[Recipient]:
    if p.settings.recipients_file is not None:
        return load_recipients(p.settings.recipients_file)
    if p.settings.alert_webhook_url:
        url = p.settings.alert_webhook_url
        return [
            Recipient(
                "webhook", "webhook", "province", "", url, None, frozenset(SEVERITIES), frozenset(RULES)
            )
        ]
    return []


def register(p: Pipeline) -> Any:
    runtime, settings, rules = p.runtime, p.settings, p.rules
    state_file = settings.var_dir / "faust" / f"{settings.topic_prefix}-notices.json"
    recipients = recipients_of(p)
    saved: list[Saved] = []  # loaded at the first batch (a file, read off the event loop's start)
    sending: set[asyncio.Task[None]] = set()

    async def dispatcher() -> Dispatcher:
        store = await runtime.open()
        return Dispatcher(senders(settings), StoreLedger(NotificationLog(store), runtime.store_call))

    async def deliver(d: Dispatcher, out: list[Any]) -> None:
        report = await d.deliver(out)
        done = set(report.sent) | {o.notice_id for o in out}  # delivered, refused or given up: settled
        saved[0] = Saved(saved[0].policy, settle(saved[0].outbox, done))
        await asyncio.to_thread(saved[0].save, state_file)

    async def run(records: list[dict[str, Any]]) -> None:
        if not saved:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            saved.append(await asyncio.to_thread(Saved.load, state_file))
            if saved[0].outbox:  # notices decided before a restart and not yet settled
                _start(await dispatcher(), list(saved[0].outbox))
        now = datetime.now(UTC)
        decision = decide(saved[0].policy, records, now, rules.notifications)
        store = await runtime.open()
        names = await runtime.store_call(school_directory, store)
        ctx = Context({sid: SchoolInfo(n, c) for sid, (n, c) in names.items()},
                      rules.certificate_expiring_days, rules.notifications.flapping_days)  # fmt: skip
        out, rows = plan(decision, recipients, ctx, now)
        saved[0] = Saved(decision.state, [*saved[0].outbox, *out])
        await asyncio.to_thread(saved[0].save, state_file)  # before sending: a crash resends, never loses
        d = await dispatcher()
        await d.record(rows)
        if out:
            _start(d, out)

    def _start(d: Dispatcher, out: list[Any]) -> None:
        task = asyncio.ensure_future(deliver(d, out))
        sending.add(task)
        task.add_done_callback(sending.discard)

    @p.app.agent(p.topics["alerts"], name="notifier")
    @guarded("notifier")
    async def notifier(stream: Any) -> None:
        async for batch in stream.take(settings.stream_batch_size, within=settings.stream_batch_seconds):
            if recipients:
                await run([json.loads(v) for v in batch])

    @p.app.timer(interval=DIGEST_CHECK_SECONDS, name="digests")
    async def digests() -> None:
        if not recipients or not saved:
            return
        try:
            await run([])
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("notifier", err)

    p.agents["notifier"] = notifier
    return notifier
