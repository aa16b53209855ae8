"""The agents without a broker (Faust's test_context; the intake's `judge` on records): what the intake
forwards and dead-letters, how the engine applies the duplicate rule, and what a failing agent does to
the worker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest

from foundation.settings import Settings
from sinks.embedded import EmbeddedStore
from streams.app import Pipeline, create_app
from streams.records import pack_events, parse_dead_letter, unpack_events
from tests.helpers import accepted, close_app_loops, hire

GOOD = hire("SD0001", "2025-09-01T08:00:00+08:00", "T1")


@dataclass(frozen=True)
class Record:
    """What the intake reads from aiokafka: the topic and the raw bytes."""

    topic: str
    value: bytes


@pytest.fixture()
async def pipeline(tmp_path: Any) -> AsyncIterator[Pipeline]:
    # built inside the test's running loop, so Faust makes no loop of its own for the app
    p = create_app(
        Settings(
            topic_prefix="unit",
            var_dir=tmp_path,
            store_path=tmp_path / "store",
            stream_batch_seconds=0.1,
            kafka_security_protocol="PLAINTEXT",  # no broker here: the agents run in memory
        )
    )
    yield p
    p.runtime.close()
    close_app_loops(p.app)


@pytest.fixture()
def sent(pipeline: Pipeline) -> Iterator[dict[str, AsyncMock]]:
    mocks = {name: AsyncMock() for name in ("accepted", "dead_letters", "alerts")}
    with patch.object(pipeline.topics["accepted"], "send", mocks["accepted"]), \
         patch.object(pipeline.topics["dead_letters"], "send", mocks["dead_letters"]), \
         patch.object(pipeline.topics["alerts"], "send", mocks["alerts"]):  # fmt: skip
        yield mocks


async def _settle(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def test_intake_forwards_valid_events_in_one_batch_record_with_their_hashes(pipeline, sent) -> None:  # type: ignore[no-untyped-def]
    raws = [json.dumps(hire("SD0001", "2025-09-01T08:00:00+08:00", f"T{n}")).encode() for n in range(3)]
    acks = await pipeline.agents["intake"].judge([Record("unit.intake", raw) for raw in raws])
    assert len(acks) == 1  # what the consumer awaits before it commits
    sent["accepted"].assert_awaited_once()
    kwargs = sent["accepted"].await_args.kwargs
    assert kwargs["key"] == b"unit"  # the province: one partition, one order
    events = unpack_events(kwargs["value"])
    assert [e.raw for e in events] == raws
    assert [e.content_hash for e in events] == [accepted(json.loads(r)).content_hash for r in raws]
    sent["dead_letters"].assert_not_awaited()


async def test_intake_dead_letters_invalid_events_with_bytes_reason_and_school(pipeline, sent) -> None:  # type: ignore[no-untyped-def]
    bad = dict(GOOD, schema_version=2)
    raw = json.dumps(bad).encode()
    acks = await pipeline.agents["intake"].judge([Record("unit.intake", raw)])
    assert len(acks) == 1
    sent["accepted"].assert_not_awaited()
    kwargs = sent["dead_letters"].await_args.kwargs
    rejected, origin, _ = parse_dead_letter(kwargs["value"])
    assert (rejected.reason.value, rejected.school_id, rejected.raw) == (
        "unsupported_schema_version",
        "SD0001",
        raw,
    )
    assert origin.endswith(".intake") and kwargs["key"] == b"SD0001"


async def test_engine_keeps_the_first_copy_and_dead_letters_a_conflicting_one(
    pipeline, sent, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    conflicting = dict(GOOD, payload=dict(GOOD["payload"], degree="doctor"))
    first, again, other = (accepted(o) for o in (GOOD, GOOD, conflicting))
    async with pipeline.agents["engine"].test_context() as agent:
        await agent.put(pack_events([first, again]))
        await _settle(lambda: pipeline.runtime.counters.kept)
        await agent.put(pack_events([other]))  # a later batch: checked against the store's log
        await _settle(lambda: pipeline.runtime.counters.duplicates + pipeline.runtime.counters.kept >= 2)
        await asyncio.sleep(0.3)
    pipeline.runtime.close()
    with EmbeddedStore(tmp_path / "store") as st:
        events = st.query(f"SELECT event_id, content_hash FROM {st.table('events')}")
        dead = st.query(f"SELECT reason, event_id FROM {st.table('dead_letters')}")
    assert events == [{"event_id": first.event_id, "content_hash": first.content_hash}]
    assert dead == [{"reason": "conflicting_duplicate", "event_id": first.event_id}]
    assert pipeline.runtime.counters.duplicates == 1


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

    with patch.object(app_module.os, "_exit", fake_exit), patch.object(pipeline.runtime, "run", broken):
        async with pipeline.agents["engine"].test_context() as agent:
            await agent.put(pack_events([accepted(GOOD)]))
            await _settle(lambda: exits)
    assert exits == [70]
    assert "the engine agent failed (RuntimeError: the store broke)" in capsys.readouterr().err
