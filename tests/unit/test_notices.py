"""The notifier's memory in the store (streams/notices.py): a cycle lands whole or not at all, a worker
that takes over continues where the last stopped, and nothing decided is lost or sent twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from foundation.errors import StoreError
from rules.alerts import Alert, AlertKey, Transition
from rules.limits import load_rules
from rules.recipients import SchoolInfo, parse_recipients
from sinks.embedded import EmbeddedStore
from sinks.notifications import NotificationLog
from streams.notices import Notifier, load_state

RULES = load_rules()
T0 = datetime.fromisoformat("2025-09-01T10:00:00+08:00")
SCHOOLS = {"SD0001": SchoolInfo("济南第一职业学校", "jinan")}
RECIPIENTS = parse_recipients({"province": [{"id": "prov", "webhook": "http://hooks.invalid/prov"}]})
KEY: AlertKey = ("ratio_shortfall", "SD0001", "")


def ratio(severity: str = "critical", since: datetime = T0, value: str = "43.19") -> Alert:
    return Alert("ratio_shortfall", "SD0001", "", severity, Fraction(value), Fraction(20), since=since,  # type: ignore[arg-type]
                 caused_by=("ev-1",))  # fmt: skip


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with EmbeddedStore(tmp_path / "store") as s:
        s.migrate()
        yield s


def worker(store: EmbeddedStore) -> Notifier:
    """A worker's notifier, fresh from the store (as after a restart or a move)."""
    n = Notifier(store, RULES, RECIPIENTS)
    n.load()
    return n


def test_a_cycle_is_in_the_store_before_anything_is_sent_and_the_next_owner_sends_it(store) -> None:  # type: ignore[no-untyped-def]
    first = worker(store)
    fired = Transition("fired", ratio(), T0, RULES.version)
    [out] = first.cycle([fired], {KEY: ratio()}, T0, False, SCHOOLS)
    assert (out.kind, out.recipient, out.payload["notice"]["kind"]) == ("notice", "prov", "fired")
    # the worker dies before sending: the next owner finds the message and the policy's state
    second = Notifier(store, RULES, RECIPIENTS)
    again = second.cycle([], {KEY: ratio()}, T0 + timedelta(minutes=1), False, SCHOOLS)
    assert [o.notice_id for o in again] == [out.notice_id]  # the same message, not a new decision
    assert second.policy == first.policy
    # once it is settled, a later cycle removes it from the table
    NotificationLog(store).record([out.settled_row("delivered")])
    second.settle({out.notice_id})
    second.cycle([], {KEY: ratio()}, T0 + timedelta(minutes=2), False, SCHOOLS)
    assert worker(store).pending == {}
    assert worker(store).cycle([], {KEY: ratio()}, T0 + timedelta(minutes=3), True, SCHOOLS) == []


def test_a_cycle_whose_write_fails_leaves_nothing_and_is_decided_again(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n = worker(store)
    fired = Transition("fired", ratio(), T0, RULES.version)

    def down(*args: object, **kwargs: object) -> int:
        raise StoreError("ClickHouse server unreachable")

    monkeypatch.setattr(n.table, "write", down)
    with pytest.raises(StoreError):
        n.cycle([fired], {KEY: ratio()}, T0, False, SCHOOLS)
    monkeypatch.undo()
    assert load_state(n.table).policy.tracks == {}  # nothing of the cycle is in the store
    # the restarted worker compares the present with what was told: the same notice, decided once
    [out] = worker(store).cycle([], {KEY: ratio()}, T0 + timedelta(minutes=5), True, SCHOOLS)
    assert out.payload["notice"]["transition_id"] == fired.id


def test_a_held_resolution_survives_a_move_and_is_told_by_the_next_owner(store) -> None:  # type: ignore[no-untyped-def]
    a = worker(store)
    a.cycle([Transition("fired", ratio(), T0, RULES.version)], {KEY: ratio()}, T0, False, SCHOOLS)
    resolved = Transition("resolved", ratio(), T0 + timedelta(days=1), RULES.version)
    assert a.cycle([resolved], {}, T0 + timedelta(days=1), False, SCHOOLS) == []  # held for 7 days
    b = worker(store)  # the engine moved to another worker
    assert b.policy.tracks[KEY].status == "held"
    assert b.cycle([], {}, T0 + timedelta(days=7), False, SCHOOLS) == []
    [told] = b.cycle([], {}, T0 + timedelta(days=8), False, SCHOOLS)
    assert (told.payload["notice"]["kind"], told.payload["notice"]["why"]) == ("resolved", "resolved_held")
    assert worker(store).policy.tracks == {}


def test_digest_items_wait_in_the_store_for_their_window(store) -> None:  # type: ignore[no-untyped-def]
    warn = ratio("warning", value="21")
    a = worker(store)
    assert a.cycle([Transition("fired", warn, T0, RULES.version)], {KEY: warn}, T0, False, SCHOOLS) == []
    b = worker(store)
    assert len(b.policy.queued) == 1
    [digest] = b.cycle([], {KEY: warn}, T0 + timedelta(days=1), False, SCHOOLS)
    assert digest.kind == "digest" and worker(store).policy.queued == ()
