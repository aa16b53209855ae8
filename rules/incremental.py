"""An engine over a growing set of kept events that arrive in any order, in batches: what the stream
folds with, and what restates history when a late event arrives (docs/architecture.md, "Late events")."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from rules import snapshot
from rules.alerts import EVENT_RULES
from rules.engine import Engine, Step, ordered
from rules.limits import Rules
from schemas.validation import Accepted


class TooLate(Exception):
    """An event earlier than the start of the in-memory window: restate from the store instead."""


class Incremental:
    """An engine over a growing set of kept events that arrive in any order, in batches.

    Events after everything applied so far are applied in place. A late event (earlier in rule order
    than the last applied one) restores the newest in-memory checkpoint taken before it and re-applies
    the log from there, so the state is always the in-order fold and a late event costs at most
    `checkpoint_every` re-applied events plus the events after it. The log kept in memory is a window:
    it starts at `base` (an engine restored from a stored checkpoint, or the empty one) and is trimmed,
    as it grows, to the newest in-memory checkpoint at least `window` older than the newest event; an
    event earlier than the window raises TooLate.
    """

    def __init__(
        self,
        rules: Rules,
        checkpoint_every: int = 5_000,
        window: timedelta = timedelta(days=90),
        base: Engine | None = None,
    ) -> None:
        self.rules = rules
        self.engine = base if base is not None else Engine(rules)
        self.base_position = self.engine.province.last_applied
        self._base = snapshot.capture(self.engine)
        self.log: list[Accepted] = []
        self.kept: set[str] = set()
        self.checkpoint_every = checkpoint_every
        self.window = window
        #: (log index: the number of log events the copy has applied, the time of the last of them, the
        #: engine's state as plain data, `rules.snapshot`)
        self._checkpoints: list[tuple[int, datetime, snapshot.Snapshot]] = []

    def extend(
        self, events: Iterable[Accepted], on_applied: Callable[[Step], None] | None = None
    ) -> tuple[list[Accepted], datetime | None]:
        """Add and apply the events not seen before. Returns them (in order) and, when one was late,
        the time from which the state was restated (None when everything was applied in place).
        `on_applied(step)` sees every event applied, re-applied ones included."""
        new = [e for e in ordered(events) if e.event_id not in self.kept]
        new = [e for i, e in enumerate(new) if i == 0 or e.event_id != new[i - 1].event_id]
        if not new:
            return [], None
        first = new[0].order_key
        if self.base_position is not None and first <= self.base_position:
            raise TooLate(first)
        self.kept.update(e.event_id for e in new)
        last = self.engine.province.last_applied
        if last is None or first > last:
            start = len(self.log)
            self.log.extend(new)
            self._apply(start, on_applied)
            self._trim()
            return new, None
        keep = bisect.bisect_left(self.log, first, key=lambda e: e.order_key)
        self.log[keep:] = ordered([*self.log[keep:], *new])
        while self._checkpoints and self._checkpoints[-1][0] > keep:
            self._checkpoints.pop()
        # Clock-driven alerts describe the present, not the history being restated: they carry over.
        clock = {k: a for k, a in self.engine.alerts.open.items() if k[0] not in EVENT_RULES}
        start, _, saved = self._checkpoints[-1] if self._checkpoints else (0, first[0], self._base)
        self.engine = snapshot.build(saved, self.rules)
        self._apply(start, on_applied)
        self.engine.alerts.open.update(clock)
        self._trim()
        return new, first[0]

    def _apply(self, start: int, on_applied: Callable[[Step], None] | None) -> None:
        for i in range(start, len(self.log)):
            step = self.engine.apply(self.log[i])
            if on_applied is not None:
                on_applied(step)
            done = i + 1
            if done % self.checkpoint_every == 0 and (
                not self._checkpoints or self._checkpoints[-1][0] < done
            ):
                copy = snapshot.capture(self.engine)
                self._checkpoints.append((done, self.log[i].occurred_at, copy))

    def _trim(self) -> None:
        """Start the window at the newest checkpoint at least `window` older than the newest event."""
        last = self.engine.province.last_applied
        if last is None:
            return
        horizon = last[0] - self.window
        older = [n for n, (_, at, _) in enumerate(self._checkpoints) if at <= horizon]
        if not older:
            return
        cut, _, self._base = self._checkpoints[older[-1]]
        self.kept.difference_update(e.event_id for e in self.log[:cut])
        self.base_position = self.log[cut - 1].order_key
        del self.log[:cut]
        self._checkpoints = [(i - cut, at, saved) for i, at, saved in self._checkpoints[older[-1] + 1 :]]
