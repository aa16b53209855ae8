"""Who is told what, and when (docs/alerts.md): the notification policy runs on the worker that holds the
province's engine, in cycles right after the engine writes (streams.notices), with its memory in the
store. This module builds the notifier from the recipients file and adds the timer that sends digests
and held resolutions when no event arrives. Without a recipients file, DUALTRACK_ALERT_WEBHOOK_URL is
one province-wide contact that receives every rule; with neither, nobody is told and no cycle runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from rules.recipients import Recipient, load_recipients
from streams.app import Pipeline, fail
from streams.delivery import senders
from streams.notices import Notices, province_wide

#: how often due digests and held resolutions are looked at when no transition arrives
DIGEST_CHECK_SECONDS = 60.0


def recipients_of(p: Pipeline) -> list[Recipient]:
    if p.settings.recipients_file is not None:
        return load_recipients(p.settings.recipients_file)
    if p.settings.alert_webhook_url:
        return [province_wide(p.settings.alert_webhook_url)]
    return []


def register(p: Pipeline) -> Any:
    runtime = p.runtime
    recipients = recipients_of(p)
    if not recipients:
        return None
    runtime.recipients = recipients
    p.notices = Notices(runtime, senders(p.settings))

    @p.app.timer(interval=DIGEST_CHECK_SECONDS, name="digests")
    async def digests() -> None:
        if not runtime.ready.is_set() or p.notices is None:  # only the engine's worker tells anything
            return
        try:
            out = await runtime.run(runtime.notify, [], False, datetime.now(UTC))
            p.notices.start(out)
            p.notices.retry()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("notifier", err)

    return digests
