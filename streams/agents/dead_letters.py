"""Dead letters into ClickHouse, with the original bytes (IDs masked), reason and school."""

from __future__ import annotations

from typing import Any

from streams.app import Pipeline, guarded
from streams.records import parse_dead_letter


def register(p: Pipeline) -> Any:
    runtime, settings = p.runtime, p.settings

    @p.app.agent(p.topics["dead_letters"], name="dead_letters")
    @guarded("dead_letters")
    async def dead_letters(stream: Any) -> None:
        async for batch in stream.take(settings.stream_batch_size, within=settings.stream_batch_seconds):
            await runtime.dead_letter([parse_dead_letter(v) for v in batch])
            runtime.counters.touch()

    p.agents["dead_letters"] = dead_letters
    return dead_letters
