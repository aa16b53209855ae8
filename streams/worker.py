"""`dualtrack worker`: run the Faust app; optionally exit once the input is drained and written."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from dualtrack.settings import Settings
from streams.topics import TopicNames, ensure_topics

log = logging.getLogger(__name__)


def group_drained(settings: Settings, group: str, topics: list[str]) -> bool:
    """Whether the app's consumer group has committed every message of its input topics."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="dualtrack-idle")
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="dualtrack-idle",
        enable_auto_commit=False,
    )
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3.x
            committed = admin.list_group_offsets({group: None}).get(group, {})
        else:  # kafka-python 2.x
            committed = admin.list_consumer_group_offsets(group)
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(parts)
        for tp in parts:
            if ends[tp] == 0:
                continue
            c = committed.get(tp)
            if c is None or c.offset < ends[tp]:
                log.info(
                    "not drained: %s:%d committed %s of %d", tp.topic, tp.partition, c and c.offset, ends[tp]
                )
                return False
        return True
    finally:
        consumer.close()
        admin.close()


def run_worker(exit_when_idle: float | None = None, loglevel: str = "warning") -> None:
    settings = Settings()
    ensure_topics(settings)
    import faust

    from streams.app import app, runtime

    if exit_when_idle is not None:
        names = TopicNames.of(settings)
        inputs = [names.intake, names.valid, names.kept, names.dead_letters]
        started = time.monotonic()

        @app.timer(interval=1.0)
        async def exit_when_drained() -> None:
            now = time.monotonic()
            if (
                not runtime.ready.is_set()
                or runtime.busy()  # a batch or a clock tick is still being written
                or now - max(started, runtime.counters.last_activity) < exit_when_idle
            ):
                return
            if await asyncio.to_thread(group_drained, settings, app.conf.id, inputs):
                c = runtime.counters
                log.warning(
                    "input drained and written (received %d, kept %d, duplicates %d, dead-lettered %d, "
                    "alert transitions %d); exiting", c.received, c.kept, c.duplicates, c.dead_lettered,
                    c.transitions,
                )  # fmt: skip
                os.kill(os.getpid(), signal.SIGTERM)

    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        runtime.close()
