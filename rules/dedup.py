"""The duplicate rule (docs/domain.md, "Duplicates"): the only rule that depends on arrival order.

The first copy of an event_id in the log (or file) is kept; a later identical copy is a duplicate and
changes nothing; a later copy with other content is dead-lettered as a conflicting duplicate.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Literal

from schemas.validation import Accepted, Reason, Rejected, rejected

Verdict = Literal["new", "duplicate", "conflicting"]


class Deduplicator:
    """Remembers the content of the first copy of every event_id it has kept."""

    def __init__(self, kept: MutableMapping[str, str] | None = None) -> None:
        #: event_id -> content hash of the first copy; updated in place (the stream and replay pass the
        #: hashes the event log holds for a batch's event_ids, `sinks.eventlog.EventLog`)
        self.kept: MutableMapping[str, str] = kept if kept is not None else {}

    def verdict(self, event_id: str, content_hash: str) -> Verdict:
        """Whether a copy is new (and now remembered), a duplicate, or a conflicting duplicate."""
        first = self.kept.get(event_id)
        if not first:
            self.kept[event_id] = content_hash
            return "new"
        return "duplicate" if first == content_hash else "conflicting"

    def check(self, e: Accepted) -> Literal["new", "duplicate"] | Rejected:
        """The verdict on an event, with the dead letter of a conflicting copy."""
        verdict = self.verdict(e.event_id, e.content_hash)
        return conflicting(e) if verdict == "conflicting" else verdict


def conflicting(e: Accepted) -> Rejected:
    """The dead letter of a copy whose event_id was kept with other content."""
    return rejected(
        Reason.conflicting_duplicate,
        f"event_id {e.event_id} was already kept with other content; send a new event_id for a new event",
        e.raw,
        school_id=e.school_id,
        event_id=e.event_id,
        event_type=e.event_type,
    )
