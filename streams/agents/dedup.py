"""The duplicate rule, partitioned by event_id: the first copy is kept, later copies are duplicates
or, with other content, conflicting duplicates (dead-lettered). Events are not parsed again here: the
key is the canonical event_id and a header carries the content hash the intake computed."""

from __future__ import annotations

from typing import Any

from rules.dedup import Deduplicator, conflicting
from schemas.validation import decode
from streams.app import Pipeline, guarded
from streams.records import dead_letter_record
from streams.topics import CONTENT_HASH


def register(p: Pipeline) -> Any:
    counters = p.runtime.counters
    kept, dead = p.topics["kept"], p.topics["dead_letters"]
    province = p.settings.topic_prefix.encode()
    rule = Deduplicator(p.tables["event_hashes"])  # the same rule as replay, over the changelog-backed table

    @p.app.agent(p.topics["valid"], name="dedup")
    @guarded("dedup")
    async def dedup(stream: Any) -> None:
        async for event in stream.events():
            counters.touch()
            digest = dict(event.headers or ())[CONTENT_HASH]
            verdict = rule.verdict(event.key.decode(), digest.decode())
            if verdict == "conflicting":
                rejected = conflicting(decode(event.value, digest.decode()))
                counters.dead_lettered += 1
                await dead.send(
                    key=rejected.school_id.encode(), value=dead_letter_record(rejected, p.names.valid)
                )
                continue
            if verdict == "duplicate":
                counters.duplicates += 1
            # A duplicate is forwarded too: if a crash fell between the table write and this send, the
            # redelivered copy still reaches the engine, which ignores event ids it has already kept.
            await kept.send(key=province, value=event.value, headers={CONTENT_HASH: digest})

    p.agents["dedup"] = dedup
    return dedup
