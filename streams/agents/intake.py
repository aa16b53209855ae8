"""Intake: every raw event is validated, once; invalid ones go to the dead-letter topic."""

from __future__ import annotations

from typing import Any

from schemas.validation import Rejected, validate
from streams.app import Pipeline, guarded
from streams.records import dead_letter_record
from streams.topics import CONTENT_HASH


def sender_of(headers: Any) -> str | None:
    """The school proven to have sent an event. Transport authentication (signed headers or per-school
    credentials) is not wired yet, so nothing is proven and no event is refused for its sender."""
    return None


def register(p: Pipeline) -> Any:
    counters = p.runtime.counters
    valid, dead = p.topics["valid"], p.topics["dead_letters"]

    @p.app.agent(p.topics["intake"], name="intake")
    @guarded("intake")
    async def intake(stream: Any) -> None:
        async for event in stream.events():
            value: bytes = event.value
            counters.received += 1
            counters.touch()
            result = validate(value, sender=sender_of(event.headers))
            if isinstance(result, Rejected):
                counters.dead_lettered += 1
                await dead.send(
                    key=result.school_id.encode(), value=dead_letter_record(result, p.names.intake)
                )
                continue
            await valid.send(
                key=result.event_id.encode(),
                value=value,
                headers={CONTENT_HASH: result.content_hash.encode()},
            )

    p.agents["intake"] = intake
    return intake
