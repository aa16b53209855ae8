"""What the agents of one worker share: the store (one writer at a time), the materializer and counters.

Nothing here touches the store on the event loop: opening it, migrating, recovering and every write run
in a worker thread (`run`), one at a time, so a slow or absent ClickHouse server delays results but
never stops the consumer's heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from dualtrack.errors import DualtrackError
from dualtrack.settings import Settings
from rules.limits import Rules
from schemas.validation import Rejected
from sinks import Store, open_store
from sinks.eventlog import EventLog
from streams.materialize import Materializer

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Counters:
    received: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    kept: int = 0
    transitions: int = 0
    last_activity: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_activity = time.monotonic()


class Runtime:
    """The worker's store and engine, opened by `start()` (in a thread), never at import."""

    def __init__(self, settings: Settings, rules: Rules) -> None:
        self.settings = settings
        self.rules = rules
        self.counters = Counters()
        self._store: Store | None = None
        self._materializer: Materializer | None = None
        self._lock = asyncio.Lock()
        self._opening: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def materializer(self) -> Materializer:
        if self._materializer is None:
            raise DualtrackError("the worker's store is not open yet (Runtime.start)")
        return self._materializer

    @property
    def log(self) -> EventLog:
        return self.materializer.log

    def busy(self) -> bool:
        """Whether store work (a batch or a clock tick) is in progress."""
        return self._lock.locked()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking store work in a thread, one call at a time (chDB is single-writer), once the
        store is open and the engine recovered. A worker stopping meanwhile waits for the work to end:
        Faust acknowledges a batch when its agent stops, so the batch must be in the store by then."""
        await self.start()
        async with self._lock:
            work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                raise

    async def dead_letter(self, rows: list[tuple[Rejected, str, datetime]]) -> None:
        """Keep dead letters in the store (once it is open)."""
        await self.run(lambda: self.log.dead_letter(rows))

    async def start(self) -> None:
        """Open the store, migrate it and rebuild the engine from its event log, off the event loop.
        Every agent awaits the same start; the first one to ask begins it."""
        if self.ready.is_set():
            return
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        async with self._lock:
            self._store = await asyncio.to_thread(open_store, self.settings)
            await asyncio.to_thread(self._store.migrate)
            materializer = Materializer(self._store, self.rules)
            n = await asyncio.to_thread(materializer.catch_up)
            self._materializer = materializer
        log.info("recovered %d kept events from the store", n)
        self.ready.set()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
