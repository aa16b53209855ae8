"""The duplicate rule, partitioned by event_id: the first copy is kept, later copies are duplicates
or, with other content, conflicting duplicates (dead-lettered)."""

from __future__ import annotations

from typing import Any

from dualtrack.history import Deduplicator
from schemas.validation import Accepted, Rejected, validate
from streams.app import app, dead_letter_topic, event_hashes, kept_topic, names, runtime, valid_topic
from streams.records import dead_letter_record


@app.agent(valid_topic)
async def dedup(stream: Any) -> None:
    province = runtime.settings.topic_prefix.encode()
    rule = Deduplicator(event_hashes)  # the same rule as replay, over the changelog-backed table
    async for value in stream:
        runtime.counters.touch()
        e = validate(value)
        verdict = rule.check(e) if isinstance(e, Accepted) else e  # invalid: validated upstream, kept anyway
        if isinstance(verdict, Rejected):
            runtime.counters.dead_lettered += 1
            await dead_letter_topic.send(
                key=verdict.school_id.encode(), value=dead_letter_record(verdict, names.valid)
            )
            continue
        if verdict == "duplicate":
            runtime.counters.duplicates += 1
        # A duplicate is forwarded too: if a crash fell between the table write and this send, the
        # redelivered copy still reaches the engine, which ignores event ids it has already kept.
        await kept_topic.send(key=province, value=value)
