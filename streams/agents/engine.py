"""The engine: the duplicate rule, then the fold into state, indicators and alerts, writing the event
log and the live tables.

It consumes the batches the intake accepted, from one partition per province: the first copy of an
event_id in this order is the one kept (a later identical copy is a duplicate, one with other content a
conflicting duplicate, dead-lettered). Batches are written to the store (the event log first) before
the agent takes the next one, so the offsets Faust commits never run ahead of what ClickHouse holds.
The clock timer evaluates the clock-driven rules (certificate expiry, studio inactivity) with no event.

Right after each write, in the same thread, the notifier's cycle decides what to tell from what holds
now and writes that into the store too (streams.notices); only then are its messages sent and the
transitions published on the alerts topic (a live feed for views such as the demo's: no notice comes
from it, and a worker that stops before publishing leaves the feed short, never a notice untold).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from rules.alerts import Transition
from schemas.validation import Accepted
from streams import failpoints
from streams.app import Pipeline, fail, guarded
from streams.keep import keep
from streams.outbox import Outgoing
from streams.records import transition_record, unpack_events


def register(p: Pipeline) -> Any:
    runtime, settings = p.runtime, p.settings
    counters = runtime.counters
    alerts = p.topics["alerts"]
    engine_topic = p.names.accepted

    async def publish(transitions: list[Transition]) -> None:
        for t in transitions:
            await alerts.send(key=t.alert.school_id.encode(), value=json.dumps(transition_record(t)).encode())
        counters.transitions += len(transitions)

    def write(events: list[Accepted], now: datetime) -> tuple[list[Transition], int, list[Outgoing]]:
        """The duplicate rule against the log (and the batch itself), then keep, fold and write; then
        the notice cycle."""
        materializer = runtime.materializer
        kept = keep(materializer.log, events, engine_topic, now)
        applied = materializer.apply(kept.new, now=now)
        if materializer.checkpoint_due():
            materializer.save_checkpoint()
        failpoints.reach(settings, "after_store_write")
        out = runtime.notify(applied.transitions, applied.restated, now)
        return applied.transitions, kept.duplicates, out

    def tick(now: datetime) -> tuple[list[Transition], list[Outgoing]]:
        transitions = runtime.materializer.tick(now)
        return transitions, runtime.notify(transitions, False, now)

    def tell(out: list[Outgoing]) -> None:
        if p.notices is not None:
            p.notices.start(out)

    @p.app.agent(p.topics["accepted"], name="engine")
    @guarded("engine")
    async def engine(stream: Any) -> None:
        async for records in stream.take(settings.stream_batch_size, within=settings.stream_batch_seconds):
            counters.touch()
            events = [e for value in records for e in unpack_events(value)]
            if not events:
                continue
            transitions, duplicates, out = await runtime.run(write, events, datetime.now(UTC))
            counters.kept += len(events) - duplicates
            counters.duplicates += duplicates
            tell(out)
            await publish(transitions)
            counters.touch()

    starting: set[asyncio.Task[None]] = set()

    async def catch_up() -> None:
        try:
            await runtime.start_engine()
            # what was decided and not sent, and what holds but was not told, before anything new
            tell(await runtime.run(runtime.notify, [], True, datetime.now(UTC)))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("engine", err)

    @p.app.on_partitions_assigned.connect
    async def engine_partition_assigned(app: Any, assigned: Any, **_: Any) -> None:
        # Catch up as soon as this worker owns the province's engine, not at its first batch: a worker
        # that crashed after keeping events but before writing what they change left work to finish.
        if any(tp.topic == engine_topic for tp in assigned):
            runtime.owns_engine = True
            task = asyncio.ensure_future(catch_up())
            starting.add(task)
            task.add_done_callback(starting.discard)

    @p.app.on_partitions_revoked.connect
    async def engine_partition_revoked(app: Any, revoked: Any, **_: Any) -> None:
        if any(tp.topic == engine_topic for tp in revoked):
            runtime.owns_engine = False
            runtime.stop_engine()  # caught up again if the partition comes back
            if p.notices is not None:
                await p.notices.stop()  # the next owner sends what is left (it is in the store)

    @p.app.timer(interval=settings.clock_tick_seconds, name="clock")
    async def clock() -> None:
        if not runtime.ready.is_set():
            return
        try:
            transitions, out = await runtime.run(tick, datetime.now(UTC))
            counters.touch()
            if p.app.should_stop:  # stopping: the tick and its notices are in the store for the next owner
                return
            tell(out)
            await publish(transitions)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("clock", err)

    p.agents["engine"] = engine
    return engine
