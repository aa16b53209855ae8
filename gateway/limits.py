"""The gateway's memory of each school: its rate (a token bucket) and the events it sent lately.

Both are per school, so one school that floods the gateway spends only its own bucket.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class Buckets:
    """A token bucket per school: `rate` events per second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._level: dict[str, tuple[float, float]] = {}  # school -> (tokens, at)

    def _tokens(self, school_id: str, now: float) -> float:
        """The school's tokens at `now`: what it had, refilled at `rate` since, at most `burst`."""
        tokens, at = self._level.get(school_id, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def wait(self, school_id: str) -> float:
        """The seconds until the school has one token (0.0: it has), taking none."""
        tokens = self._tokens(school_id, self.clock())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, school_id: str, n: int) -> float:
        """Take `n` tokens: 0.0 when taken, else the seconds until they would be there (none taken)."""
        now = self.clock()
        tokens = self._tokens(school_id, now)
        if n <= tokens:
            self._level[school_id] = (tokens - n, now)
            return 0.0
        self._level[school_id] = (tokens, now)
        return (min(n, self.burst) - tokens) / self.rate if n <= self.burst else float("inf")


class Recent:
    """(school, event_id) -> content hash of the newest `size` events the gateway sent: a copy posted
    again before the worker has kept the first is still answered a duplicate. The worker keeps an
    event within seconds, so the memory needs to span only that; a million events is about 200 MB."""

    def __init__(self, size: int = 1_000_000) -> None:
        self.size = size
        self._sent: OrderedDict[tuple[str, str], str] = OrderedDict()

    def remember(self, school_id: str, pairs: Iterable[tuple[str, str]]) -> None:
        for event_id, content_hash in pairs:
            self._sent[(school_id, event_id)] = content_hash
            self._sent.move_to_end((school_id, event_id))
        while len(self._sent) > self.size:
            self._sent.popitem(last=False)

    def hashes(self, school_id: str, event_ids: Iterable[str]) -> dict[str, str]:
        found = ((e, self._sent.get((school_id, e))) for e in event_ids)
        return {e: h for e, h in found if h is not None}
