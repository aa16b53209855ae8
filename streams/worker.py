"""`dualtrack worker`: run the Faust app; optionally exit once the input is drained and written."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from dualtrack.kafka_auth import intake_prefix, kafka_client_options, secured
from dualtrack.settings import Settings
from streams.topics import ensure_topics, input_topics

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)
#: how often the worker looks for schools added since it started, and how soon it then resubscribes
SCHOOL_TOPICS_SECONDS = 15.0
RESUBSCRIBE_SECONDS = 2.0


def group_drained(settings: Settings, group: str, topics: list[str]) -> bool:
    """Whether the app's consumer group has committed every message of its input topics."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient

    options = kafka_client_options(settings)
    admin = KafkaAdminClient(**options, client_id="dualtrack-idle")
    consumer = KafkaConsumer(**options, client_id="dualtrack-idle", enable_auto_commit=False)
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        parts = []
        for t in topics:
            known = consumer.partitions_for_topic(t)
            if not known:  # metadata not there yet: nothing can be said to be drained
                log.info("not drained: no metadata for %s yet", t)
                return False
            parts += [TopicPartition(t, n) for n in sorted(known)]
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


def _awaiting(obj: object) -> list[str]:
    """The chain of frames an awaiting coroutine or async generator is suspended in, innermost last."""
    out = []
    while obj is not None:
        frame = (
            getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None) or getattr(obj, "gi_frame", None)
        )
        if frame is not None:
            out.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        obj = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "ag_await", None)
            or getattr(obj, "gi_yieldfrom", None)
        )
    return out


def dump_tasks() -> None:
    """Log where every agent of the project waits (`kill -USR2 <worker pid>`): what a stuck worker does."""
    import gc
    import types

    for obj in gc.get_objects():
        if isinstance(obj, types.CoroutineType | types.AsyncGeneratorType):
            frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None)
            if frame is not None and (
                "/streams/" in frame.f_code.co_filename or "faust/streams.py" in frame.f_code.co_filename
            ):
                chain = "\n    ".join(_awaiting(obj))
                log.warning("coroutine %s waits in:\n    %s", frame.f_code.co_name, chain)


def first_inputs(settings: Settings, poll_seconds: float = 5.0) -> list[str]:
    """The intake topics to start with; on a secured broker, wait for the first school's topic (a
    deployment starts its worker before, or after, `dualtrack schools add`)."""
    said = False
    while not (topics := input_topics(settings)):
        if not said:
            log.warning(
                "no school can send yet: waiting for the first `dualtrack schools add` (topic %s<id>)",
                intake_prefix(settings),
            )
            said = True
        time.sleep(poll_seconds)
    return topics


def watch_school_topics(p: Pipeline) -> None:
    """Every SCHOOL_TOPICS_SECONDS, add the topics of schools added since the start to the intake's
    subscription (Faust cannot subscribe by pattern: its aiokafka driver passes topic names only). The
    consumer resubscribes and rebalances, and the new school's events flow in its topic's order."""
    intake = p.topics["intake"]
    conductor = p.app.topics
    conductor._resubscribe_sleep_lock_seconds = RESUBSCRIBE_SECONDS  # Faust waits 45 s by default

    @p.app.timer(interval=SCHOOL_TOPICS_SECONDS, name="school_topics")
    async def school_topics() -> None:
        known = set(intake.topics)
        found = await asyncio.to_thread(input_topics, p.settings)
        new = sorted(set(found) - known)
        if new:
            log.warning("%d new school topic(s), e.g. %s: subscribing", len(new), new[0])
            names = sorted(known | set(new))
            # the agent iterates over a clone of its topic, which is what the conductor holds
            for channel in [intake, *(c for c in conductor if set(c.topics) == known)]:
                channel.topics = names
            conductor._flag_changes()


def run_worker(settings: Settings, exit_when_idle: float | None = None, loglevel: str = "warning") -> None:
    import faust

    from streams.app import create_app

    ensure_topics(settings)
    (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    p = create_app(settings, intake_topics=first_inputs(settings))
    runtime = p.runtime
    if secured(settings):
        watch_school_topics(p)

    if exit_when_idle is not None:
        started = time.monotonic()

        @p.app.timer(interval=1.0, name="exit_when_drained")
        async def exit_when_drained() -> None:
            now = time.monotonic()
            if (
                not runtime.settled()  # a batch, a tick or a catch-up is still being written
                or (p.notices is not None and p.notices.busy())  # notices are being sent
                or now - max(started, runtime.counters.last_activity) < exit_when_idle
            ):
                return
            if await asyncio.to_thread(group_drained, settings, p.app.conf.id, p.inputs()):
                c = runtime.counters
                log.warning(
                    "input drained and written (received %d, kept %d, duplicates %d, dead-lettered %d, "
                    "alert transitions %d); exiting", c.received, c.kept, c.duplicates, c.dead_lettered,
                    c.transitions,
                )  # fmt: skip
                os.kill(os.getpid(), signal.SIGTERM)

    def dump() -> None:
        dump_tasks()
        c = p.app.consumer
        log.warning(
            "consumer: assigned %s; active %s; paused %s; buffered %s; flow %s; acked %s; committed %s",
            sorted(map(str, c.assignment())), sorted(map(str, c._active_partitions or ())),
            sorted(map(str, c._paused_partitions)), sorted(map(str, c._buffered_partitions)), c.flow_active,
            {str(k): (len(v), v[:3]) for k, v in c._acked.items() if v}, dict(c._committed_offset),
        )  # fmt: skip
        try:
            inner = c._thread._ensure_consumer()
            state = inner._subscription.subscription.assignment
            for tp in inner.assignment():
                log.warning(
                    "aiokafka %s position %s paused %s",
                    tp,
                    state.state_value(tp).position,
                    tp in inner.paused(),
                )
        except Exception as err:
            log.warning("aiokafka state unavailable: %r", err)

    @p.app.task
    async def debug_signal() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)

    worker = faust.Worker(p.app, loglevel=loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        runtime.close()
