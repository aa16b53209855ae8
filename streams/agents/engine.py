"""The engine: folds kept events into state, indicators and alerts, and writes the live tables.

Batches are written to the store (the event log first) before the agent takes the next batch, so
the offsets Faust commits never run ahead of what ClickHouse holds. The clock timer evaluates the
clock-driven rules (certificate expiry, studio inactivity) when no event arrives.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from rules.alerts import Transition
from schemas.validation import Accepted, decode
from streams.app import Pipeline, fail, guarded
from streams.records import transition_record
from streams.topics import CONTENT_HASH


def register(p: Pipeline) -> Any:
    runtime, settings = p.runtime, p.settings
    counters = runtime.counters
    alerts = p.topics["alerts"]

    async def publish(transitions: list[Transition]) -> None:
        for t in transitions:
            await alerts.send(key=t.alert.school_id.encode(), value=json.dumps(transition_record(t)).encode())
        counters.transitions += len(transitions)

    def write(events: list[Accepted], now: datetime) -> list[Transition]:
        runtime.log.append(events, now)
        return runtime.materializer.apply(events, now=now)

    @p.app.agent(p.topics["kept"], name="engine")
    @guarded("engine")
    async def engine(stream: Any) -> None:
        await runtime.start()
        async for batch in stream.take_events(
            settings.stream_batch_size, within=settings.stream_batch_seconds
        ):
            counters.touch()
            fresh: dict[str, Accepted] = {}
            kept = runtime.materializer.kept
            for event in batch:
                e = decode(event.value, dict(event.headers or ())[CONTENT_HASH].decode())
                if e.event_id not in kept and e.event_id not in fresh:
                    fresh[e.event_id] = e
            if not fresh:
                continue
            transitions = await runtime.run(write, list(fresh.values()), datetime.now(UTC))
            counters.kept += len(fresh)
            await publish(transitions)
            counters.touch()

    @p.app.timer(interval=settings.clock_tick_seconds, name="clock")
    async def clock() -> None:
        if not runtime.ready.is_set():
            return
        try:
            transitions = await runtime.run(lambda: runtime.materializer.tick(datetime.now(UTC)))
            counters.touch()
            if p.app.should_stop:  # stopping: the tick is in the store; the restarted worker publishes again
                return
            await publish(transitions)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("clock", err)

    p.agents["engine"] = engine
    return engine
