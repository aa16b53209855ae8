"""`dualtrack replay`: apply JSON-lines event files to a store without a broker, through the same rules.

Every line is judged on its own: a line that is not a valid event is dead-lettered with its reason and
bytes, and nothing one line holds can stop the others. The counts add up: applied + duplicates +
dead-lettered + blank = lines read. A replay that is interrupted and run again leaves the store an
uninterrupted replay leaves: events and dead letters are keyed, and the live tables are always rebuilt
from the whole log at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from foundation.errors import DualtrackError
from rules.dedup import Deduplicator
from rules.limits import Rules
from schemas.jsonlines import KEPT_OF_A_LONG_LINE, is_blank, read_lines
from schemas.validation import MAX_LINE_BYTES, Accepted, Reason, Rejected, rejected, validate
from sinks.base import Store
from sinks.eventlog import EventLog
from streams.keep import judge, keep
from streams.materialize import Materializer

#: lines validated and written at a time
CHUNK_LINES = 20_000


@dataclass(frozen=True)
class ReplayCounts:
    lines: int
    applied: int
    duplicates: int
    dead_lettered: int
    blank: int

    def as_dict(self) -> dict[str, int]:
        return {
            "applied": self.applied, "duplicates": self.duplicates, "dead_lettered": self.dead_lettered,
            "blank": self.blank, "lines": self.lines,
        }  # fmt: skip


@dataclass
class IntakeResult:
    new: list[Accepted] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    blank: int = 0
    lines: int = 0


def validated(lines: Iterable[bytes]) -> IntakeResult:
    """Validate raw events, one per line without its ending (blank lines are counted): `new` holds every
    valid one, before the duplicate rule."""
    out = IntakeResult()
    for raw in lines:
        out.lines += 1
        if is_blank(raw):
            out.blank += 1
            continue
        result = validate(raw)
        if isinstance(result, Rejected):
            out.rejected.append(_too_long(result.raw) if len(result.raw) >= KEPT_OF_A_LONG_LINE else result)
        else:
            out.new.append(result)
    return out


def intake(lines: Iterable[bytes], dedup: Deduplicator) -> IntakeResult:
    """Validate and deduplicate raw events without a store (`streams.keep.judge`, the stream's rule)."""
    out = validated(lines)
    verdicts = judge(out.new, dedup)
    out.new, out.duplicates = verdicts.new, verdicts.duplicates
    out.rejected += verdicts.conflicting
    return out


def _lines(path: Path) -> Iterator[bytes]:
    try:
        yield from read_lines(path)
    except OSError as err:
        raise DualtrackError(f"cannot read {path}: {err.strerror}") from None


def _chunks(lines: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _too_long(raw: bytes) -> Rejected:
    return rejected(
        Reason.too_large,
        f"the line has more than {KEPT_OF_A_LONG_LINE} bytes; the limit is {MAX_LINE_BYTES} "
        f"(the first {KEPT_OF_A_LONG_LINE} bytes are kept)",
        raw,
    )


def replay(
    store: Store,
    files: list[Path],
    rules: Rules,
    now: datetime | None = None,
    arrived_at: datetime | None = None,
) -> ReplayCounts:
    """Keep the new valid events of `files`, dead-letter the invalid ones, and rebuild the live tables.
    Their lines arrive `now` (the time of the run), or at `arrived_at` for a backfill whose arrival is
    known (docs/domain.md, "As known on")."""
    store.migrate()
    log = EventLog(store)
    now = now or datetime.now(UTC)
    arrived = arrived_at or now
    dedup = Deduplicator(log.kept_hashes())
    lines = applied = duplicates = dead = blank = 0
    new_ids: set[str] = set()
    for f in files:
        for chunk in _chunks(_lines(f), CHUNK_LINES):  # bounded memory, whatever the file's size
            result = validated(chunk)
            kept = keep(log, result.new, str(f), arrived, rule=dedup)
            log.dead_letter([(r, str(f), arrived) for r in result.rejected])
            lines += result.lines
            applied += len(kept.new)
            new_ids.update(e.event_id for e in kept.new)
            duplicates += kept.duplicates
            dead += len(result.rejected) + len(kept.conflicting)
            blank += result.blank
            store.release_memory()
    materializer = Materializer(store, rules)
    materializer.catch_up(now)
    # an event whose application failed is kept in the log but dead-lettered as apply_failed
    failed = len(new_ids & materializer.engine.failed.keys())
    return ReplayCounts(lines, applied - failed, duplicates, dead + failed, blank)
