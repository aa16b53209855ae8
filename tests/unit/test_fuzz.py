"""Fuzzing replay on chDB: arbitrary bytes and mutated events mixed into a valid stream (tests/fuzz.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings

from sinks.embedded import EmbeddedStore
from tests.fuzz import check, streams

_n = itertools.count()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(streams())
def test_replay_survives_anything_mixed_into_a_valid_stream(
    tmp_path_factory: pytest.TempPathFactory, stream: tuple[list[bytes], list[bytes]]
) -> None:
    tmp = tmp_path_factory.mktemp(f"fuzz{next(_n)}")
    check(lambda name: EmbeddedStore(tmp / name), tmp, *stream)
