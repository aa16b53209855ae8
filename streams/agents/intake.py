"""Intake: every raw event is validated, once; valid ones go on to the engine in batches (one Kafka
record per batch, so the hop costs little per event), invalid ones to the dead-letter topic. This is
the work that spreads over the workers: the intake topic is partitioned by school."""

from __future__ import annotations

from typing import Any

from dualtrack.kafka_auth import school_of_topic, secured
from dualtrack.settings import Settings
from schemas.validation import Accepted, Rejected, validate
from streams.app import Pipeline, guarded
from streams.records import dead_letter_record, pack_events

#: a batch record stays well under the topics' record limit (an event is at most 1 MiB)
BATCH_BYTES = 2 * 1024 * 1024


def sender_of(settings: Settings, topic: str) -> str | None:
    """The school proven to have sent an event: on a secured broker, the school whose own topic it came
    from (only that school's user may write there, an ACL the broker enforces); None on a PLAINTEXT
    broker, where nothing is proven and no event is refused for its sender."""
    return school_of_topic(settings, topic) if secured(settings) else None


def register(p: Pipeline) -> Any:
    counters, settings = p.runtime.counters, p.settings
    accepted_topic, dead = p.topics["accepted"], p.topics["dead_letters"]
    province = settings.topic_prefix.encode()

    async def forward(batch: list[Accepted]) -> None:
        if batch:
            await accepted_topic.send(key=province, value=pack_events(batch))

    @p.app.agent(p.topics["intake"], name="intake")
    @guarded("intake")
    async def intake(stream: Any) -> None:
        async for events in stream.take_events(
            settings.stream_batch_size, within=settings.stream_batch_seconds
        ):
            counters.received += len(events)
            counters.touch()
            batch: list[Accepted] = []
            size = 0
            for event in events:
                topic = event.message.topic
                result = validate(event.value, sender=sender_of(settings, topic))
                if isinstance(result, Rejected):
                    counters.dead_lettered += 1
                    await dead.send(key=result.school_id.encode(), value=dead_letter_record(result, topic))
                    continue
                if size + len(result.raw) > BATCH_BYTES:
                    await forward(batch)
                    batch, size = [], 0
                batch.append(result)
                size += len(result.raw)
            await forward(batch)

    p.agents["intake"] = intake
    return intake
