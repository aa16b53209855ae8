"""Dead letters into ClickHouse, with the original bytes, reason and school (for counts per school)."""

from __future__ import annotations

from typing import Any

from dualtrack.history import dead_letter_row
from streams.app import app, dead_letter_topic, runtime
from streams.records import parse_dead_letter


@app.agent(dead_letter_topic)
async def dead_letters(stream: Any) -> None:
    settings = runtime.settings
    async for batch in stream.take(settings.sink_batch_size, within=settings.sink_flush_seconds):
        rows = [dead_letter_row(*parse_dead_letter(v)) for v in batch]
        await runtime.run(runtime.store.insert, "dead_letters", rows)
        runtime.counters.touch()
