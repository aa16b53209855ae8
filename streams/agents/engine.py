"""The engine: folds kept events into state, indicators and alerts, and writes the live tables.

Batches are written to the store (the event log first) before the agent takes the next batch, so
the offsets Faust commits never run ahead of what ClickHouse holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dualtrack.history import event_row
from rules.alerts import Transition
from schemas.validation import Accepted, validate
from streams.app import alerts_topic, app, kept_topic, runtime
from streams.records import transition_record


async def publish(transitions: list[Transition]) -> None:
    for t in transitions:
        record = transition_record(t)
        await alerts_topic.send(key=t.alert.school_id.encode(), value=json.dumps(record).encode())
    runtime.counters.transitions += len(transitions)


def _write(events: list[Accepted], now: datetime) -> list[Transition]:
    runtime.store.insert("events", [event_row(e, now) for e in events])
    return runtime.materializer.extend(events, now=now)


@app.agent(kept_topic)
async def engine(stream: Any) -> None:
    await runtime.recover()
    settings = runtime.settings
    async for batch in stream.take(settings.sink_batch_size, within=settings.sink_flush_seconds):
        runtime.counters.touch()
        seen: set[str] = set()
        fresh = []
        for value in batch:
            e = validate(value)
            if (
                isinstance(e, Accepted)
                and e.event_id not in seen
                and e.event_id not in runtime.materializer.kept
            ):
                seen.add(e.event_id)
                fresh.append(e)
        if not fresh:
            continue
        transitions = await runtime.run(_write, fresh, datetime.now(UTC))
        runtime.counters.kept += len(fresh)
        await publish(transitions)
        runtime.counters.touch()


@app.timer(interval=runtime.settings.clock_tick_seconds)
async def clock() -> None:
    """Clock-driven rules (certificate expiry, studio inactivity) fire with no event."""
    if not runtime.ready.is_set():
        return
    transitions = await runtime.run(runtime.materializer.tick, datetime.now(UTC))
    runtime.counters.touch()
    if app.should_stop:  # stopping: the tick is in the store; the restarted worker publishes again
        return
    await publish(transitions)
