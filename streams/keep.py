"""Keeping accepted events: the duplicate rule, the dead letter of a conflicting copy, the append to the
event log. The one path from "validated" to "kept", used by the engine agent and by `dualtrack replay`;
what is kept is then folded by `streams.materialize.Materializer`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from rules.dedup import Deduplicator
from schemas.validation import Accepted, Rejected
from sinks.eventlog import EventLog


@dataclass
class Kept:
    new: list[Accepted] = field(default_factory=list)  # kept now, in the order given
    duplicates: int = 0  # identical copies of events kept before (or earlier in the batch)
    conflicting: list[Rejected] = field(default_factory=list)  # dead-lettered: same id, other content


def judge(events: Iterable[Accepted], rule: Deduplicator) -> Kept:
    """The duplicate rule's verdict on each event, in order (`rule` remembers the new ones)."""
    out = Kept()
    for e in events:
        verdict = rule.check(e)
        if verdict == "new":
            out.new.append(e)
        elif verdict == "duplicate":
            out.duplicates += 1
        else:
            out.conflicting.append(verdict)
    return out


def keep(
    log: EventLog, events: Iterable[Accepted], origin: str, now: datetime, rule: Deduplicator | None = None
) -> Kept:
    """Judge `events` by the duplicate rule (`rule`, or one that knows the log's hashes of these
    event_ids), dead-letter the conflicting copies (from `origin`) and append the new ones to the log."""
    events = list(events)
    if rule is None:
        rule = Deduplicator(log.hashes_of(e.event_id for e in events))
    out = judge(events, rule)
    if out.conflicting:
        log.dead_letter([(r, origin, now) for r in out.conflicting])
    log.append(out.new, now)
    return out
