"""Intake validation: every raw event is validated; invalid ones go to the dead-letter topic."""

from __future__ import annotations

from typing import Any

from schemas.validation import Rejected, validate
from streams.app import app, dead_letter_topic, intake_topic, names, runtime, valid_topic
from streams.records import dead_letter_record


def sender_of(headers: Any) -> str | None:
    """The school proven to have sent an event. Transport authentication (signed headers or per-school
    credentials) is not wired yet, so nothing is proven and no event is refused for its sender."""
    return None


@app.agent(intake_topic)
async def intake(stream: Any) -> None:
    async for event in stream.events():
        value: bytes = event.value
        runtime.counters.received += 1
        runtime.counters.touch()
        result = validate(value, sender=sender_of(event.headers))
        if isinstance(result, Rejected):
            runtime.counters.dead_lettered += 1
            await dead_letter_topic.send(
                key=result.school_id.encode(), value=dead_letter_record(result, names.intake)
            )
            continue
        runtime.counters.accepted += 1
        await valid_topic.send(key=result.event_id.encode(), value=value)
