"""Hypothesis: arrival order, duplicates and late events never change the result (docs/domain.md sections 3-6)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dualtrack.replay import intake
from rules.dedup import Deduplicator
from rules.engine import fold
from rules.incremental import Incremental, TooLate
from rules.limits import load_rules
from rules.report import build_report
from tests.helpers import accepted, ev

RULES = load_rules()
CST = timezone(timedelta(hours=8))
START = datetime(2024, 1, 1, 8, tzinfo=CST)
AS_OF = datetime(2026, 6, 30, 23, 59, 59, tzinfo=CST)
SCHOOLS = ["A", "B"]
TEACHERS = [f"T{i}" for i in range(8)]


def _at(minutes: int) -> str:
    # some events share an instant (ties broken by event_id); offsets vary, instants are compared
    t = START + timedelta(minutes=minutes * 600)
    return t.astimezone(timezone(timedelta(hours=minutes % 3))).isoformat()


@st.composite
def provinces(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = [ev("school.registered", s, _at(draw(st.integers(0, 40))),
                 {"name": s, "level": draw(st.sampled_from(["secondary", "higher", "undergraduate"])),
                  "city": "jinan"}) for s in SCHOOLS]  # fmt: skip
    for _ in range(draw(st.integers(5, 40))):
        kind = draw(
            st.sampled_from(["hire", "hire", "update", "depart", "enroll", "cert", "revoke", "degree"])
        )
        school, teacher = draw(st.sampled_from(SCHOOLS)), draw(st.sampled_from(TEACHERS))
        at = _at(draw(st.integers(0, 120)))
        if kind == "hire":
            p = {"teacher_id": teacher, "employment": draw(st.sampled_from(["full_time", "part_time"])),
                 "course_type": draw(st.sampled_from(["professional", "general"])),
                 "title": draw(st.sampled_from(["none", "senior"])),
                 "degree": draw(st.sampled_from(["bachelor", "master", "doctor"]))}  # fmt: skip
            events.append(ev("teacher.hired", school, at, p))
        elif kind == "update":
            events.append(ev("teacher.updated", school, at, {"teacher_id": teacher, "degree": "doctor"}))
        elif kind == "depart":
            events.append(ev("teacher.departed", school, at, {"teacher_id": teacher, "reason": "resigned"}))
        elif kind == "enroll":
            counts = {"full_time": draw(st.integers(0, 300)), "night": draw(st.integers(0, 50))}
            events.append(ev("enrollment.reported", school, at, {"term": "2024-autumn", "counts": counts}))
        elif kind == "cert":
            y = draw(st.integers(2022, 2026))
            events.append(ev("certification.granted", school, at, {
                "certificate_id": f"C{draw(st.integers(0, 5))}", "teacher_id": teacher, "level": "junior",
                "issued_on": f"{y}-01-01", "valid_until": f"{y + draw(st.integers(1, 3))}-01-01"}))  # fmt: skip
        elif kind == "revoke":
            events.append(
                ev("certification.revoked", school, at, {"certificate_id": f"C{draw(st.integers(0, 5))}"})
            )
        else:
            pid = f"P{draw(st.integers(0, 3))}"
            events.append(ev("degree.enrolled", school, at, {"programme_id": pid, "teacher_id": teacher,
                                                              "target_degree": "master"}))  # fmt: skip
            events.append(
                ev("degree.conferred", school, _at(draw(st.integers(0, 120))), {"programme_id": pid})
            )
    return events


def _report(events: list[dict[str, Any]]) -> dict[str, Any]:
    return build_report(fold([accepted(e) for e in events], RULES, AS_OF), AS_OF)


@given(provinces(), st.randoms(use_true_random=False), st.data())
def test_shuffled_and_duplicated_arrival_gives_the_same_report(events, rnd, data) -> None:  # type: ignore[no-untyped-def]
    expected = _report(events)
    copies = events + [e for e in events if data.draw(st.booleans())]
    rnd.shuffle(copies)
    lines = [json.dumps(e).encode() for e in copies]
    result = intake(lines, Deduplicator())
    assert not result.rejected
    assert len(result.new) == len(events)
    assert result.duplicates == len(copies) - len(events)
    assert build_report(fold(result.new, RULES, AS_OF), AS_OF) == expected


@given(
    provinces(), st.randoms(use_true_random=False), st.integers(1, 12), st.integers(1, 7), st.integers(0, 400)
)
def test_late_events_in_batches_restate_to_the_in_order_result(events, rnd, batch, every, days) -> None:  # type: ignore[no-untyped-def]
    """The stream's path: events arrive shuffled, in batches, with redeliveries; late ones restore a
    checkpoint and re-apply; one earlier than the in-memory window (TooLate) is restated from the whole
    log, as the materializer does from the store. The state after the last batch is the in-order fold,
    including the `since` of every event-driven alert."""
    kept = [accepted(e) for e in events]
    arrivals = kept + rnd.sample(kept, k=min(3, len(kept)))
    rnd.shuffle(arrivals)
    inc = Incremental(RULES, checkpoint_every=every, window=timedelta(days=days))
    seen: dict[str, Any] = {}
    for i in range(0, len(arrivals), batch):
        part = arrivals[i : i + batch]
        try:
            inc.extend(part)
        except TooLate:
            inc = Incremental(RULES, checkpoint_every=every, window=timedelta(days=days))
            inc.extend([*seen.values(), *part])
        seen.update((e.event_id, e) for e in part)
    # the engine holds each kept event exactly once (checkpoint state plus what was re-applied)
    assert inc.engine.province.applied == len(kept)
    assert len(inc.log) <= len(kept)
    assert build_report(inc.engine, AS_OF) == _report(events)
