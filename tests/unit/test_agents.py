"""The intake and dedup agents with Faust's test_context (no broker): what they forward and dead-letter."""

from __future__ import annotations

import json
from unittest.mock import AsyncMock, patch

import pytest

from tests.helpers import hire

pytest.importorskip("faust")

from streams import app as app_module
from streams.agents.dedup import dedup
from streams.agents.intake import intake
from streams.records import parse_dead_letter

GOOD = hire("SD0001", "2025-09-01T08:00:00+08:00", "T1")


@pytest.fixture()
def sent():  # type: ignore[no-untyped-def]
    mocks = {name: AsyncMock() for name in ("valid_topic", "dead_letter_topic", "kept_topic")}
    with patch.object(app_module.valid_topic, "send", mocks["valid_topic"]), \
         patch.object(app_module.dead_letter_topic, "send", mocks["dead_letter_topic"]), \
         patch.object(app_module.kept_topic, "send", mocks["kept_topic"]):  # fmt: skip
        yield mocks


async def test_intake_forwards_valid_events_keyed_by_event_id(sent) -> None:  # type: ignore[no-untyped-def]
    async with intake.test_context() as agent:
        await agent.put(json.dumps(GOOD).encode())
    sent["valid_topic"].assert_awaited_once()
    assert sent["valid_topic"].await_args.kwargs["key"] == GOOD["event_id"].encode()
    sent["dead_letter_topic"].assert_not_awaited()


async def test_intake_dead_letters_invalid_events_with_bytes_reason_and_school(sent) -> None:  # type: ignore[no-untyped-def]
    bad = dict(GOOD, schema_version=2)
    raw = json.dumps(bad).encode()
    async with intake.test_context() as agent:
        await agent.put(raw)
    sent["valid_topic"].assert_not_awaited()
    kwargs = sent["dead_letter_topic"].await_args.kwargs
    rejected, origin, _ = parse_dead_letter(kwargs["value"])
    assert (rejected.reason.value, rejected.school_id, rejected.raw) == (
        "unsupported_schema_version",
        "SD0001",
        raw,
    )
    assert origin.endswith(".intake") and kwargs["key"] == b"SD0001"


async def test_dedup_keeps_the_first_copy_and_dead_letters_a_conflicting_one(sent) -> None:  # type: ignore[no-untyped-def]
    conflicting = dict(GOOD, payload=dict(GOOD["payload"], degree="doctor"))
    async with dedup.test_context() as agent:
        for obj in (GOOD, GOOD, conflicting):
            await agent.put(json.dumps(obj).encode())
    # the first copy and the identical duplicate go on (the engine ignores ids it kept)
    assert sent["kept_topic"].await_count == 2
    rejected, _, _ = parse_dead_letter(sent["dead_letter_topic"].await_args.kwargs["value"])
    assert rejected.reason.value == "conflicting_duplicate" and rejected.event_id == GOOD["event_id"]
