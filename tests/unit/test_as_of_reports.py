"""An as-of report read from a stored checkpoint plus the events after it equals a full refold of the
log up to that time, at many random times (docs/architecture.md, "Checkpoints"). Checkpoints are taken
every few hundred events here, so most times fall between two checkpoints and a month's tail."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from documents.report import report_from_store
from dualtrack.replay import replay
from dualtrack.simulate import Simulator, write_jsonl
from rules import snapshot
from rules.engine import fold, state_key
from rules.limits import load_rules
from rules.report import build_report
from schemas.validation import Accepted, validate
from sinks.checkpoints import Checkpoints
from sinks.embedded import EmbeddedStore
from sinks.eventlog import EventLog
from streams import materialize
from streams.state_at import engine_at

RULES = load_rules()


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStore, list[Accepted]]]:
    tmp = tmp_path_factory.mktemp("as-of")
    events = Simulator(schools=10, seed=11, years=2).events()
    write_jsonl(events, str(tmp / "events.jsonl"))
    kept: dict[str, Accepted] = {}
    for line in (tmp / "events.jsonl").read_bytes().splitlines():
        result = validate(line)
        if isinstance(result, Accepted):
            kept.setdefault(result.event_id, result)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(materialize, "CHECKPOINT_EVENTS", 100)
        mp.setattr(materialize.Materializer.__init__, "__defaults__", (100, materialize.LATE_WINDOW))
        with EmbeddedStore(tmp / "store") as store:
            replay(store, [tmp / "events.jsonl"], RULES)
            yield store, list(kept.values())


def test_the_replay_left_many_checkpoints(province: tuple[EmbeddedStore, list[Accepted]]) -> None:
    store, _ = province
    table = store.table("engine_checkpoints")
    n = store.query(f"SELECT uniqExact(position_us, position_id) AS n FROM {table}")[0]["n"]
    assert n >= 5, "the test needs several checkpoints to choose from"
    assert Checkpoints(store).latest(state_key(RULES)) is not None


def test_as_of_reports_from_checkpoints_equal_a_full_refold(
    province: tuple[EmbeddedStore, list[Accepted]],
) -> None:
    store, kept = province
    times = sorted(e.occurred_at for e in kept)
    rnd = random.Random(3)
    picks = [times[0] - timedelta(days=1), times[-1] + timedelta(days=30)]
    picks += [times[rnd.randrange(len(times))] for _ in range(12)]  # exactly at an event
    picks += [times[0] + (times[-1] - times[0]) * rnd.random() for _ in range(12)]  # between events
    for as_of in picks:
        expected = build_report(fold(kept, RULES, as_of), as_of)
        got = report_from_store(store, RULES, as_of)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True), as_of


def test_a_late_event_passes_over_the_checkpoints_it_invalidates(
    province: tuple[EmbeddedStore, list[Accepted]], tmp_path: Path
) -> None:
    """After an event older than most checkpoints arrives, reports still equal the refold: the
    checkpoints that counted fewer events before their position are not used."""
    store, kept = province
    first, last = min(e.occurred_at for e in kept), max(e.occurred_at for e in kept)
    school = kept[0].school_id
    at = first + (last - first) / 5
    late = {"event_id": "0f8b7c1e-7a35-4c1d-9f7e-3b1f0d2a9c55", "event_type": "enrollment.reported",
            "schema_version": 1, "school_id": school, "occurred_at": at.isoformat(),
            "emitted_at": (last + timedelta(days=1)).isoformat(), "source": f"hr-{school}",
            "payload": {"term": "2024-autumn", "counts": {"full_time": 99_999}}}  # fmt: skip
    (tmp_path / "late.jsonl").write_text(json.dumps(late) + "\n")
    replay(store, [tmp_path / "late.jsonl"], RULES)
    late_event = validate(json.dumps(late).encode())
    assert isinstance(late_event, Accepted)
    everything = [*kept, late_event]
    for as_of in (at + timedelta(days=1), first + (last - first) / 2, last):
        expected = build_report(fold(everything, RULES, as_of), as_of)
        assert engine_at(store, RULES, as_of).province.applied == sum(
            e.occurred_at <= as_of for e in everything
        )
        got = report_from_store(store, RULES, as_of)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True), as_of


def test_a_checkpoint_of_other_limits_is_never_restored(
    province: tuple[EmbeddedStore, list[Accepted]],
) -> None:
    """A checkpoint is the fold under one set of limits and one version of the rules' code: a report
    under changed limits is the full refold, not a stale state (an upgrade costs one refold, never a
    wrong report or a crash at start)."""
    store, _ = province
    events = list(store_events(store))
    as_of = max(e.occurred_at for e in events) + timedelta(days=1)
    stricter = dataclasses.replace(RULES, studio_min_members=RULES.studio_min_members + 3)
    assert state_key(stricter) != state_key(RULES)
    checkpoints = Checkpoints(store)
    newest = checkpoints.latest(state_key(RULES))
    assert newest is not None
    assert checkpoints.latest(state_key(stricter)) is None
    assert report_from_store(store, stricter, as_of) == build_report(fold(events, stricter, as_of), as_of)


#: a stored checkpoint whose bytes are not what this release writes: each is refused with its reason
DAMAGED = {
    # a pickle that would run a shell command if anything unpickled it
    "a pickle": (b"cos\nsystem\n(S'touch {marker}'\ntR.", "not JSON"),
    "truncated": (b'{"format": "dualtrack.engine", "version": 1, "schools": [', "not JSON"),
    "another version": (b'{"format": "dualtrack.engine", "version": 99}', "version 99"),
    "another format": (b"[1, 2, 3]", "not a snapshot object"),
    "columns of different lengths": (None, "columns of different lengths"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_a_damaged_or_foreign_checkpoint_is_refused_with_its_reason(
    province: tuple[EmbeddedStore, list[Accepted]],
    damage: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """A checkpoint is read by a JSON parser that builds values and runs nothing: bytes that are not a
    snapshot of this format and version are passed over with the reason in the log, and the report is
    the full refold (never a crash, a half-built state, or code run from the store)."""
    store, _ = province
    events = list(store_events(store))
    as_of = max(e.occurred_at for e in events) + timedelta(days=1)
    checkpoints = Checkpoints(store)
    newest = checkpoints.latest(state_key(RULES))
    assert newest is not None
    marker = tmp_path / "ran"
    data, reason = DAMAGED[damage]
    if data is None:  # a real snapshot with one column cut short
        state = json.loads(newest.state)
        state["teachers"][0] = state["teachers"][0][:-1]
        data = json.dumps(state).encode()
    data = data.replace(b"{marker}", str(marker).encode())
    # the same position rewritten (the newer row replaces the old)
    checkpoints.save(newest.position, newest.events, state_key(RULES), data)
    try:
        caplog.set_level("WARNING", logger="streams.state_at")
        assert report_from_store(store, RULES, as_of) == build_report(fold(events, RULES, as_of), as_of)
        refused = [r.getMessage() for r in caplog.records if "is not used" in r.getMessage()]
        assert refused and reason in refused[0], refused
        assert not marker.exists()
    finally:
        checkpoints.save(newest.position, newest.events, state_key(RULES), newest.state)


def test_a_stored_checkpoint_is_json_that_restores_the_same_state(
    province: tuple[EmbeddedStore, list[Accepted]],
) -> None:
    """What the store holds is plain JSON of a named format and version, and the engine built from it
    captures to the same data: nothing of the state is lost or changed in the round trip."""
    store, _ = province
    newest = Checkpoints(store).latest(state_key(RULES))
    assert newest is not None
    data = json.loads(newest.state)
    assert (data["format"], data["version"]) == (snapshot.FORMAT, snapshot.VERSION)
    engine = snapshot.load(newest.state, RULES)
    assert snapshot.capture(engine) == data
    assert engine.province.applied == newest.events


def store_events(store: EmbeddedStore) -> Iterator[Accepted]:
    for page in EventLog(store).events_after(None):
        yield from page


def test_after_a_restart_late_events_in_and_before_the_window_restate_to_the_in_order_fold(
    province: tuple[EmbeddedStore, list[Accepted]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted worker folds history older than the late window with the bare engine and keeps the
    in-memory window only from its edge on (`Materializer.catch_up`). A late event inside the window is
    restated in memory, one before it from a stored checkpoint: both leave the in-order fold."""
    from streams.keep import keep

    store, _ = province
    log = EventLog(store)
    kept = list(store_events(store))
    newest = max(e.occurred_at for e in kept)
    m = materialize.Materializer(store, RULES)
    with monkeypatch.context() as mp:  # no stored checkpoint: the catch-up folds the whole log
        mp.setattr(materialize, "restored", lambda *_: (None, None))
        m.catch_up(newest + timedelta(days=1))
    assert m.state.base_position is not None, "the window starts after the first event"
    assert m.state.base_position[0] < newest - materialize.LATE_WINDOW
    assert m.engine.province.applied == len(kept)
    school = kept[0].school_id
    from_store: list[object] = []
    catch_up = m.catch_up
    monkeypatch.setattr(m, "catch_up", lambda *a, **k: from_store.append(k) or catch_up(*a, **k))
    for days, counts in ((30, 77_777), (400, 55_555)):  # inside the window, then far before it
        at = newest - timedelta(days=days)
        late = validate(json.dumps({
            "event_id": f"0f8b7c1e-7a35-4c1d-9f7e-3b1f0d2a9{days:03d}", "event_type": "enrollment.reported",
            "schema_version": 1, "school_id": school, "occurred_at": at.isoformat(),
            "source": f"hr-{school}", "payload": {"term": "2024-autumn", "counts": {"full_time": counts}},
        }).encode())  # fmt: skip
        assert isinstance(late, Accepted)
        assert keep(log, [late], "late.jsonl", newest).new == [late]
        from_store.clear()
        applied = m.apply([late], newest + timedelta(days=1))
        assert applied.restated
        assert bool(from_store) == (days == 400), "restated in memory inside the window, else from the store"
        kept.append(late)
        assert m.engine.province.applied == len(kept)
        as_of = newest + timedelta(days=1)
        expected = build_report(fold(kept, RULES, as_of), as_of)
        assert json.dumps(build_report(m.engine, as_of), sort_keys=True) == json.dumps(
            expected, sort_keys=True
        ), days
