"""Alert transitions to a webhook (DUALTRACK_ALERT_WEBHOOK_URL): each delivered once (a Faust table
remembers what was delivered), permanent refusals (4xx other than 408 and 429) recorded and skipped,
transient failures retried with backoff and jitter in the background, so one alert never holds up
the others."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import urllib.error
import urllib.request
from typing import Any

from streams.app import Pipeline, guarded

log = logging.getLogger(__name__)
#: how long a transient failure is retried before the notice is given up (and logged)
RETRY_FOR_SECONDS = 3600.0


class Permanent(Exception):
    """The endpoint refused the notice for good (a 4xx other than 408 and 429)."""


def post(url: str, body: bytes) -> int:
    """POST one notice; Permanent for a refusal that retrying cannot mend, OSError for a transient one."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")  # noqa: S310 - scheme checked when the settings load
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the department's own endpoint
            return int(r.status)
    except urllib.error.HTTPError as err:  # an OSError too: tell permanent from transient first
        if 400 <= err.code < 500 and err.code not in (408, 429):
            raise Permanent(f"HTTP {err.code}") from None
        raise


def register(p: Pipeline) -> Any:
    url = p.settings.alert_webhook_url
    notified = p.app.Table("notified", default=bool, partitions=1)
    p.tables["notified"] = notified
    retrying: set[asyncio.Task[None]] = set()

    async def deliver(url: str, key: str, value: bytes) -> None:
        delay, waited = 1.0, 0.0
        while True:
            try:
                await asyncio.to_thread(post, url, value)
                notified[key] = True
                return
            except Permanent as err:
                log.error("alert webhook refused notice %s (%s); recorded and skipped", key, err)
                notified[key] = True  # retrying cannot mend it: do not send it again
                return
            except OSError as err:
                if waited >= RETRY_FOR_SECONDS:
                    log.error(
                        "alert webhook unreachable for notice %s (%s); given up", key, type(err).__name__
                    )
                    return
                pause = delay * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not secrecy
                log.warning(
                    "alert webhook failed (%s); retrying notice %s in %.1fs", type(err).__name__, key, pause
                )
                await asyncio.sleep(pause)
                waited += pause
                delay = min(delay * 2, 60.0)

    @p.app.agent(p.topics["alerts"], name="notifier")
    @guarded("notifier")
    async def notifier(stream: Any) -> None:
        async for value in stream:
            if not url:
                continue
            key = json.loads(value)["id"]
            if notified[key]:
                continue  # delivered before a restart or a redelivery
            task = asyncio.ensure_future(deliver(url, key, value))
            retrying.add(task)
            task.add_done_callback(retrying.discard)
            await asyncio.wait([task], timeout=0.5)  # in order while the endpoint answers promptly

    p.agents["notifier"] = notifier
    return notifier
