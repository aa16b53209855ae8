"""Intake: every raw event is validated, once; valid ones go on to the engine in batches (one Kafka
record per batch, so the hop costs little per event), invalid ones to the dead-letter topic.

This is the work that spreads over the worker pool. It is a plain aiokafka consumer of its own group
(`streams.topics.Groups.intake`), not a Faust agent: Faust gives partition N of every topic with the
same partition count to one member, so with a one-partition topic per school a second worker got none
of them; and Faust subscribes by topic name only, so new schools needed a resubscription through its
private conductor. Here the consumer subscribes by pattern (every school's topic, found again on each
metadata refresh) and a round-robin assignor spreads the school topics over every worker of the
deployment (docs/adr/0008). Offsets are committed only after what a batch became (accepted batches,
dead letters) is acknowledged by the broker, so a worker lost mid-batch leaves it to the next owner;
what that repeats, the engine's duplicate rule drops.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from foundation.kafka_auth import intake_prefix, kafka_client_options, school_of_topic, secured
from foundation.settings import Settings
from schemas.validation import Accepted, Rejected, validate
from streams.app import Pipeline, fail
from streams.records import dead_letter_record, pack_events
from streams.topics import MAX_MESSAGE_BYTES, Groups, member_name

log = logging.getLogger(__name__)
#: a batch record stays well under the topics' record limit (an event is at most 1 MiB)
BATCH_BYTES = 2 * 1024 * 1024
#: how soon a school added while the pool runs is read: the consumer's metadata refresh
METADATA_SECONDS = 15.0
#: Kafka's timestamp type of a record stamped by the broker (0 is the producer's CreateTime)
LOG_APPEND_TIME = 1


def sender_of(settings: Settings, topic: str) -> str | None:
    """The school proven to have sent an event: on a secured broker, the school whose own topic it came
    from (only that school's user may write there, an ACL the broker enforces); None on a PLAINTEXT
    broker, where nothing is proven and no event is refused for its sender."""
    return school_of_topic(settings, topic) if secured(settings) else None


def school_topic_pattern(settings: Settings) -> str:
    """Every school's intake topic, `<prefix>.intake.<school_id>` (the ids `kafka_auth` allows)."""
    return f"^{re.escape(intake_prefix(settings))}[A-Za-z0-9_-]{{1,64}}$"


def consumer(settings: Settings) -> Any:
    """The intake's consumer (not started): every school's topic on a secured broker, the shared
    `<prefix>.intake` on a PLAINTEXT one; round-robin over the pool; commits by hand."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    c = AIOKafkaConsumer(
        **kafka_client_options(settings),
        client_id=member_name(settings, "intake"),
        group_id=Groups.of(settings).intake,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        partition_assignment_strategy=(RoundRobinPartitionAssignor,),
        metadata_max_age_ms=int(METADATA_SECONDS * 1000),
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        # a worker killed without leaving the group holds its school topics until this runs out
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
    )
    if secured(settings):
        c.subscribe(pattern=school_topic_pattern(settings))
    else:
        c.subscribe([settings.topic("intake")])
    return c


def arrival(record: Any, received: datetime) -> datetime:
    """When a record reached the deployment: the broker's own timestamp (the topics are created with
    `message.timestamp.type=LogAppendTime`, `streams.topics`); on a topic that keeps the producer's
    time instead, when the intake received it (a school's clock is never the arrival)."""
    if getattr(record, "timestamp_type", None) == LOG_APPEND_TIME and record.timestamp is not None:
        return datetime.fromtimestamp(record.timestamp / 1000, UTC)
    return received


class Intake:
    """The intake of one worker: `judge` validates a batch of records, `run` consumes (an app task)."""

    def __init__(self, p: Pipeline) -> None:
        self.settings, self.counters = p.settings, p.runtime.counters
        self.accepted, self.dead = p.topics["accepted"], p.topics["dead_letters"]
        self.province = p.settings.topic_prefix.encode()

    async def judge(self, records: list[Any]) -> list[Any]:
        """Validate records (each with `.topic` and `.value`, as aiokafka gives them), send the accepted
        ones on in batches and the rejected ones to the dead letters; returns the broker's
        acknowledgements still to await."""
        sent: list[Any] = []
        batch: list[Accepted] = []
        size = 0

        async def forward() -> None:
            if batch:
                sent.append(await self.accepted.send(key=self.province, value=pack_events(batch)))

        received = datetime.now(UTC)
        for r in records:
            result = validate(r.value, sender=sender_of(self.settings, r.topic))
            arrived = arrival(r, received)
            if isinstance(result, Rejected):
                self.counters.dead_lettered += 1
                value = dead_letter_record(result, r.topic, arrived)
                sent.append(await self.dead.send(key=result.school_id.encode(), value=value))
                continue
            result = replace(result, arrived_at=arrived)
            if size + len(result.raw) > BATCH_BYTES:
                await forward()
                batch, size = [], 0
            batch.append(result)
            size += len(result.raw)
        await forward()
        return sent

    async def run(self) -> None:
        from aiokafka.errors import CommitFailedError

        c = consumer(self.settings)
        try:
            await c.start()
            while True:
                found = await c.getmany(
                    timeout_ms=int(self.settings.stream_batch_seconds * 1000),
                    max_records=self.settings.stream_batch_size,
                )
                records = [r for part in found.values() for r in part]
                if not records:
                    continue
                self.counters.received += len(records)
                self.counters.touch()
                await asyncio.gather(*await self.judge(records))  # durable before it is committed
                offsets = {tp: part[-1].offset + 1 for tp, part in found.items()}
                try:
                    await c.commit(offsets)
                except CommitFailedError as err:  # the group rebalanced meanwhile: the next owner repeats
                    log.warning("intake offsets not committed (%s); the next owner reads them again", err)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            fail("intake", err)
        finally:
            await c.stop()


def register(p: Pipeline) -> Intake:
    intake = Intake(p)
    p.app.task(intake.run)
    p.agents["intake"] = intake
    return intake
