"""What the agents of one worker share: the store (one writer at a time), the materializer and counters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dualtrack.history import Materializer
from dualtrack.settings import Settings
from rules.limits import load_rules
from sinks import Store, open_store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Counters:
    received: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    kept: int = 0
    transitions: int = 0
    last_activity: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_activity = time.monotonic()


class Runtime:
    """Opened lazily in the worker (not at import), so unit tests can import the app without a store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = load_rules(settings.rules_file)
        self.counters = Counters()
        self._store: Store | None = None
        self._materializer: Materializer | None = None
        self._lock = asyncio.Lock()
        self.ready = asyncio.Event()

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
            self._store.migrate()
        return self._store

    @property
    def materializer(self) -> Materializer:
        if self._materializer is None:
            self._materializer = Materializer(self.store, self.rules)
        return self._materializer

    def busy(self) -> bool:
        """Whether store work (a batch or a clock tick) is in progress."""
        return self._lock.locked()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking store work in a thread, one call at a time (chDB is single-writer)."""
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    async def recover(self) -> None:
        """Rebuild the engine from the store's event log before consuming (a restart loses nothing)."""
        if self.ready.is_set():
            return
        n = await self.run(self.materializer.load)
        log.info("recovered %d kept events from the store", n)
        self.ready.set()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
