"""The storm test: a simulated province's alert transitions through the notification policy, batch by
batch as the worker runs it (with the alerts open at the end of each batch). Notices must be at least
100 times fewer than transitions, no fired or resolved critical alert may be lost, and after every
batch what was told is exactly what holds."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from dualtrack.simulate import Simulator
from rules.engine import Step
from rules.incremental import Incremental
from rules.limits import load_rules
from rules.notifications import EMPTY, Notice, Suppression, decide
from schemas.validation import Accepted, validate
from streams.records import transition_record

RULES = load_rules()
BATCH = 2_000


Batch = tuple[datetime, list[dict[str, Any]], dict[Any, Any], bool]


def province_transitions() -> list[Batch]:
    """Per batch, as the worker folds and ticks (the events in arrival order, 2,000 at a time): the
    simulated now (the latest arrival of the batch), the transition records, the alerts open at the end
    of the batch, and whether a late event restated history."""
    events = Simulator(150, seed=7).events()
    state = Incremental(RULES)
    last_arrival: dict[str, datetime] = {}
    out = []
    for start in range(0, len(events), BATCH):
        raw = events[start : start + BATCH]
        batch = [r for e in raw if isinstance(r := validate(json.dumps(e).encode()), Accepted)]
        now = max(datetime.fromisoformat(e["emitted_at"]) for e in raw if "emitted_at" in e)
        unseen = [e.occurred_at for e in batch if e.event_id not in state.kept]
        earliest = min(unseen) if unseen else None
        steps: list[Step] = []

        def collect(step: Step, earliest: datetime | None = earliest, steps: list[Step] = steps) -> None:
            # as streams.materialize: steps re-applied before the earliest new event are not republished
            if earliest is not None and step.event.occurred_at >= earliest:
                steps.append(step)

        new, since = state.extend(batch, collect)
        last_arrival.update((e.school_id, now) for e in new)
        found = [t for s in steps for t in s.transitions] + state.engine.tick(now, last_arrival)
        out.append(
            (now, [transition_record(t) for t in found], dict(state.engine.alerts.open), since is not None)
        )
    return out


@pytest.fixture(scope="module")
def storm() -> tuple[list[dict[str, Any]], list[Notice], int, list[Suppression], list[Notice]]:
    batches = province_transitions()
    state, immediate, digests, suppressed, queued = EMPTY, [], 0, [], []
    for now, records, present, restated in batches:
        d = decide(state, records, now, RULES.notifications, present, restated)
        state, digests = d.state, digests + len(d.digests)
        immediate += d.immediate
        suppressed += d.suppressed
        queued += d.queued
        # what was told is what holds: every open alert told at its severity, nothing else told open
        told = {k: t.severity for k, t in state.tracks.items() if t.status == "open"}
        assert told == {k: a.severity for k, a in present.items()}
    # the clock runs on past the last batch: held resolutions are told, then their digest goes out
    end = batches[-1][0] + timedelta(days=RULES.notifications.flapping_days + 1)
    for now in (end, end + timedelta(days=1)):
        d = decide(state, [], now, RULES.notifications, batches[-1][2])
        state, digests = d.state, digests + len(d.digests)
        immediate += d.immediate
        queued += d.queued
    assert state.queued == () and all(t.status == "open" for t in state.tracks.values())
    records = [r for _, rs, _, _ in batches for r in rs]
    return records, immediate, digests, suppressed, queued


def test_notices_are_at_least_a_hundred_times_fewer_than_transitions(storm) -> None:  # type: ignore[no-untyped-def]
    records, immediate, digests, suppressed, _ = storm
    kinds = Counter(r["transition"] for r in records)
    notices = len(immediate) + digests
    print(f"\nstorm: {len(records)} transitions ({dict(kinds)}) -> {notices} notices "
          f"({len(immediate)} immediate, {digests} digests; {len(records) / notices:.0f}x fewer); "
          f"suppressed {dict(Counter(s.reason for s in suppressed))}")  # fmt: skip
    assert len(records) > 10_000 and kinds["fired"] > 3_000  # a storm indeed
    assert notices * 100 <= len(records)


def test_every_critical_fired_or_resolved_transition_not_flapping_is_told_at_once(storm) -> None:  # type: ignore[no-untyped-def]
    records, immediate, _, suppressed, _ = storm
    critical = {
        r["id"]: r
        for r in records
        if r["severity"] == "critical" and r["transition"] in ("fired", "resolved")
    }
    flapping = {s.transition_id for s in suppressed if s.reason == "flapping"}
    told = {n.transition_id for n in immediate if n.kind in ("fired", "resolved")}
    assert critical, "the simulated province raises critical alerts"
    missing = sorted(set(critical) - flapping - told)
    assert missing == [], f"critical transitions lost: {missing[:5]}"
    # and a change to or from critical is told at once too
    changes = [n for n in immediate if n.kind == "severity_changed"]
    assert changes and all("critical" in (n.severity, n.previous_severity) for n in changes)


def test_nothing_is_lost_silently(storm) -> None:  # type: ignore[no-untyped-def]
    """Each transition is told at once, queued for a digest, suppressed with a reason, or a republished
    copy of one that was (a late event refolds and republishes)."""
    records, immediate, _, suppressed, queued = storm
    accounted = {n.transition_id for n in immediate + queued} | {s.transition_id for s in suppressed}
    copies = Counter(r["id"] for r in records)
    unaccounted = [r["id"] for r in records if r["id"] not in accounted]
    assert unaccounted == [] and max(copies.values()) > 1  # republished copies exist, and are not told twice
    told = Counter(n.transition_id for n in immediate + queued)
    assert max(told.values()) == 1
