"""The intake and dedup agents with Faust's test_context (no broker): what they forward and dead-letter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest

from dualtrack.settings import Settings
from schemas.validation import validate
from streams.app import Pipeline, create_app
from streams.records import parse_dead_letter
from streams.topics import CONTENT_HASH
from tests.helpers import close_app_loops, hire

GOOD = hire("SD0001", "2025-09-01T08:00:00+08:00", "T1")


@pytest.fixture()
async def pipeline(tmp_path: Any) -> AsyncIterator[Pipeline]:
    # built inside the test's running loop, so Faust makes no loop of its own for the app
    p = create_app(Settings(topic_prefix="unit", var_dir=tmp_path))
    yield p
    close_app_loops(p.app)


@pytest.fixture()
def sent(pipeline: Pipeline) -> Iterator[dict[str, AsyncMock]]:
    mocks = {name: AsyncMock() for name in ("valid", "dead_letters", "kept")}
    with patch.object(pipeline.topics["valid"], "send", mocks["valid"]), \
         patch.object(pipeline.topics["dead_letters"], "send", mocks["dead_letters"]), \
         patch.object(pipeline.topics["kept"], "send", mocks["kept"]):  # fmt: skip
        yield mocks


async def test_intake_forwards_valid_events_keyed_by_event_id_with_their_hash(pipeline, sent) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps(GOOD).encode()
    async with pipeline.agents["intake"].test_context() as agent:
        await agent.put(raw)
    sent["valid"].assert_awaited_once()
    kwargs = sent["valid"].await_args.kwargs
    assert kwargs["key"] == GOOD["event_id"].encode() and kwargs["value"] == raw
    assert kwargs["headers"][CONTENT_HASH] == validate(raw).content_hash.encode()  # type: ignore[union-attr]
    sent["dead_letters"].assert_not_awaited()


async def test_intake_dead_letters_invalid_events_with_bytes_reason_and_school(pipeline, sent) -> None:  # type: ignore[no-untyped-def]
    bad = dict(GOOD, schema_version=2)
    raw = json.dumps(bad).encode()
    async with pipeline.agents["intake"].test_context() as agent:
        await agent.put(raw)
    sent["valid"].assert_not_awaited()
    kwargs = sent["dead_letters"].await_args.kwargs
    rejected, origin, _ = parse_dead_letter(kwargs["value"])
    assert (rejected.reason.value, rejected.school_id, rejected.raw) == (
        "unsupported_schema_version",
        "SD0001",
        raw,
    )
    assert origin.endswith(".intake") and kwargs["key"] == b"SD0001"


async def test_dedup_keeps_the_first_copy_and_dead_letters_a_conflicting_one(pipeline, sent) -> None:  # type: ignore[no-untyped-def]
    conflicting = dict(GOOD, payload=dict(GOOD["payload"], degree="doctor"))
    async with pipeline.agents["dedup"].test_context() as agent:
        for obj in (GOOD, GOOD, conflicting):
            raw = json.dumps(obj).encode()
            digest = validate(raw).content_hash.encode()  # type: ignore[union-attr]
            await agent.put(raw, key=obj["event_id"].encode(), headers={CONTENT_HASH: digest})
    # the first copy and the identical duplicate go on (the engine ignores ids it kept)
    assert sent["kept"].await_count == 2
    rejected, _, _ = parse_dead_letter(sent["dead_letters"].await_args.kwargs["value"])
    assert rejected.reason.value == "conflicting_duplicate" and rejected.event_id == GOOD["event_id"]


async def test_an_agent_that_fails_stops_the_worker_with_a_reason_and_commits_nothing(
    pipeline, capsys
) -> None:  # type: ignore[no-untyped-def]
    """A crashed agent must never look like a drained input: the process exits at once (non-zero), so
    Faust commits no offset for the batch that failed and a restart processes it again."""
    import streams.app as app_module

    exits: list[int] = []

    def fake_exit(code: int) -> None:  # records, and lets the agent return instead of ending the tests
        exits.append(code)

    async def broken(*args: object) -> None:
        raise RuntimeError("the store broke")

    raw = json.dumps(GOOD).encode()
    digest = validate(raw).content_hash.encode()  # type: ignore[union-attr]
    with patch.object(app_module.os, "_exit", fake_exit), \
         patch.object(pipeline.runtime, "start", AsyncMock()), \
         patch.object(pipeline.runtime, "run", broken), \
         patch.object(pipeline.runtime, "_materializer", type("M", (), {"kept": set()})()):  # fmt: skip
        async with pipeline.agents["engine"].test_context() as agent:
            await agent.put(raw, headers={CONTENT_HASH: digest})
            for _ in range(50):  # the batch closes after stream_batch_seconds
                if exits:
                    break
                await asyncio.sleep(0.1)
    assert exits == [70]
    assert "the engine agent failed (RuntimeError: the store broke)" in capsys.readouterr().err
