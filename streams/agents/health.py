"""The pipeline's own health, sampled on a timer into `pipeline_metrics`: consumer lag per topic and
partition, events in and out and dead letters per second, and each school's last event time (what
the pipeline dashboard and `dualtrack status` show)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sinks.health import HealthTables
from streams.app import Pipeline, fail
from streams.health import Counts, sample_pipeline
from streams.lag import Offsets, Partition

#: how often the worker samples its health
SAMPLE_SECONDS = 30.0


def pool_lag(p: Pipeline) -> dict[Partition, int]:
    """The lag of each of the pool's groups on its own topics (blocking)."""
    with Offsets(p.settings, client_id="dualtrack-health") as offsets:
        return {tp: n for group, topics in p.inputs().items() for tp, n in offsets.lag(group, topics).items()}


def register(p: Pipeline) -> Any:
    runtime = p.runtime
    before: list[Counts] = []
    reported: dict[str, datetime] = {}

    def write(rows: list[dict[str, Any]]) -> int:
        if not runtime.opened:
            return 0
        return HealthTables(runtime.store).metrics(rows)

    @p.app.timer(interval=SAMPLE_SECONDS, name="health")
    async def health() -> None:
        try:
            c = runtime.counters
            now = Counts(datetime.now(UTC), c.received, c.kept, c.dead_lettered)
            lag = await asyncio.to_thread(pool_lag, p)
            last_event: dict[str, datetime] = {}
            if runtime.ready.is_set():  # the engine's worker knows each school's last event
                province = runtime.materializer.engine.province
                last_event = {sid: s.last_event_at for sid, s in province.schools.items() if s.last_event_at}
            rows = sample_pipeline(now, before[0] if before else None, lag, last_event, reported)
            await runtime.store_call(write, rows)
            reported.update(last_event)
            before[:] = [now]
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("health", err)

    return health
