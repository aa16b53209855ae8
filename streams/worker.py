"""`dualtrack worker`: run the Faust app; optionally exit once the input is drained and written."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from foundation.kafka_auth import intake_prefix, secured
from foundation.settings import Settings
from streams.lag import Offsets
from streams.topics import ensure_topics, input_topics

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


def pool_drained(p: Pipeline) -> bool:
    """Whether every consumer group of the pool has committed every message of its input topics."""
    with Offsets(p.settings, client_id="dualtrack-idle") as offsets:
        for group, topics in p.inputs().items():
            if topics and not offsets.drained(group, topics):
                log.info("not drained: group %s", group)
                return False
    return True


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


def say_if_no_school(settings: Settings) -> None:
    """On a secured broker, say once that no school can send yet; the intake reads each school's topic
    as soon as `dualtrack schools add` makes it (its subscription is a pattern)."""
    if secured(settings) and not input_topics(settings):
        log.warning(
            "no school can send yet: the intake reads %s<id> as soon as `dualtrack schools add` makes it",
            intake_prefix(settings),
        )


def run_worker(settings: Settings, exit_when_idle: float | None = None, loglevel: str = "warning") -> None:
    import faust

    from streams.app import create_app

    replication = ensure_topics(settings)
    (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    say_if_no_school(settings)
    p = create_app(settings, replication=replication)
    runtime = p.runtime

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
            if await asyncio.to_thread(pool_drained, p):
                c = runtime.counters
                log.warning(
                    "input drained and written (received %d, kept %d, duplicates %d, dead-lettered %d, "
                    "alert transitions %d); exiting", c.received, c.kept, c.duplicates, c.dead_lettered,
                    c.transitions,
                )  # fmt: skip
                os.kill(os.getpid(), signal.SIGTERM)

    def dump() -> None:
        dump_tasks()
        log.warning("engine group: assigned %s", sorted(map(str, p.app.consumer.assignment())))

    @p.app.task
    async def debug_signal() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)

    worker = faust.Worker(p.app, loglevel=loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        runtime.close()
