"""The duplicate rule, partitioned by event_id: the first copy is kept, later copies are duplicates
or, with other content, conflicting duplicates (dead-lettered)."""

from __future__ import annotations

from typing import Any

from dualtrack.history import content_hash
from schemas.validation import Accepted, Reason, Rejected, validate
from streams.app import app, dead_letter_topic, event_hashes, kept_topic, names, runtime, valid_topic
from streams.records import dead_letter_record


@app.agent(valid_topic)
async def dedup(stream: Any) -> None:
    province = runtime.settings.topic_prefix.encode()
    async for value in stream:
        runtime.counters.touch()
        e = validate(value)
        if not isinstance(e, Accepted):  # validated upstream; kept here so nothing is ever lost
            await dead_letter_topic.send(key=e.school_id.encode(), value=dead_letter_record(e, names.valid))
            continue
        digest = content_hash(e.content)
        first = event_hashes[e.event_id]
        if first and first != digest:
            conflict = Rejected(
                Reason.conflicting_duplicate,
                f"event_id {e.event_id} was already kept with other content; send a new event_id",
                e.raw, e.school_id, e.event_id, e.event_type,
            )  # fmt: skip
            runtime.counters.dead_lettered += 1
            await dead_letter_topic.send(
                key=e.school_id.encode(), value=dead_letter_record(conflict, names.valid)
            )
            continue
        if first:
            runtime.counters.duplicates += 1
        else:
            event_hashes[e.event_id] = digest
        # A duplicate is forwarded too: if a crash fell between the table write and this send, the
        # redelivered copy still reaches the engine, which ignores event ids it has already kept.
        await kept_topic.send(key=province, value=value)
