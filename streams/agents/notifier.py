"""Alert transitions to a webhook (DUALTRACK_ALERT_WEBHOOK_URL), with retries and without duplicates."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Any

from streams.app import Pipeline

log = logging.getLogger(__name__)


def post(url: str, body: bytes) -> int:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"DUALTRACK_ALERT_WEBHOOK_URL must be http(s), not {url!r}")
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - checked above
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the department's own endpoint
        return int(r.status)


def register(p: Pipeline) -> Any:
    url = p.settings.alert_webhook_url
    notified = p.app.Table("notified", default=bool, partitions=1)
    p.tables["notified"] = notified

    @p.app.agent(p.topics["alerts"], name="notifier")
    async def notifier(stream: Any) -> None:
        async for value in stream:
            if not url:
                continue
            record = json.loads(value)
            if notified[record["id"]]:
                continue  # delivered before a restart or a redelivery
            delay = 1.0
            while True:
                try:
                    await asyncio.to_thread(post, url, value)
                    break
                except OSError as err:
                    log.warning("alert webhook %s failed (%s); retrying in %.0fs", url, err, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
            notified[record["id"]] = True

    p.agents["notifier"] = notifier
    return notifier
