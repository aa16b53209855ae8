"""`dualtrack replay`: apply JSON-lines event files to a store without a broker, through the same rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dualtrack.errors import DualtrackError
from dualtrack.history import (
    Deduplicator,
    Materializer,
    dead_letter_row,
    event_row,
    intake,
    kept_hashes,
)
from rules.limits import Rules
from sinks.base import Store


@dataclass(frozen=True)
class ReplayCounts:
    applied: int
    duplicates: int
    dead_lettered: int

    def as_dict(self) -> dict[str, int]:
        return {"applied": self.applied, "duplicates": self.duplicates, "dead_lettered": self.dead_lettered}


def _lines(files: Iterable[Path]) -> Iterable[tuple[str, bytes]]:
    for f in files:
        try:
            with open(f, "rb") as fh:
                for line in fh:
                    yield str(f), line
        except OSError as err:
            raise DualtrackError(f"cannot read {f}: {err.strerror}") from None


def replay(store: Store, files: list[Path], rules: Rules, now: datetime | None = None) -> ReplayCounts:
    """Keep the new valid events of `files`, dead-letter the invalid ones, and rebuild the live tables."""
    store.migrate()
    now = now or datetime.now(UTC)
    dedup = Deduplicator(kept_hashes(store))
    applied = duplicates = dead = 0
    for f in files:
        result = intake((line for _, line in _lines([f])), dedup)
        store.insert("events", (event_row(e, now) for e in result.new))
        store.insert("dead_letters", (dead_letter_row(r, str(f), now) for r in result.rejected))
        applied += len(result.new)
        duplicates += result.duplicates
        dead += len(result.rejected)
    if applied:
        Materializer(store, rules).load(now)
    return ReplayCounts(applied, duplicates, dead)
