"""The notification policy (rules/notifications.py): what is told, when, and why the rest is not."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from foundation.errors import ConfigError
from rules.alerts import Alert, transition_id
from rules.limits import Notifications, load_rules, parse_notifications
from rules.notifications import EMPTY, Decision, PolicyState, decide, next_digest

CFG = Notifications()  # flapping 7 days, digest daily at 08:00 CST, critical immediate
T0 = datetime.fromisoformat("2025-09-01T10:00:00+08:00")


def rec(kind: str, at: datetime, rule: str = "ratio_shortfall", school: str = "SD0001", subject: str = "",
        severity: str = "warning", value: float | None = 19.5, caused_by: tuple[str, ...] = ("e1",)) -> dict[str, Any]:  # fmt: skip
    """A transition record as streams.records.transition_record makes it."""
    at_us = int(at.timestamp() * 1_000_000)
    return {"rule": rule, "school_id": school, "subject": subject, "severity": severity, "value": value,
            "threshold": 18.0, "since": None, "reasons": [], "transition": kind, "at": at.isoformat(),
            "rule_version": "2025.1", "caused_by": list(caused_by),
            "id": f"{rule}|{school}|{subject}|{at_us}|{kind}"}  # fmt: skip


def run(records: list[dict[str, Any]], now: datetime, state: PolicyState = EMPTY) -> Decision:
    return decide(state, records, now, CFG)


def test_critical_fired_is_told_at_once_with_its_causing_events() -> None:
    d = run([rec("fired", T0, severity="critical", caused_by=("ev-1", "ev-2"))], T0)
    [n] = d.immediate
    assert (n.kind, n.severity, n.why, n.caused_by, n.immediate) == (
        "fired",
        "critical",
        "fired",
        ("ev-1", "ev-2"),
        True,
    )
    assert d.queued == [] and d.suppressed == []


def test_warning_waits_for_the_daily_digest_at_eight_china_time() -> None:
    d = run([rec("fired", T0)], T0)
    assert d.immediate == [] and d.digests == []
    [item] = d.queued
    assert item.due == datetime.fromisoformat("2025-09-02T08:00:00+08:00")
    before = run([], datetime.fromisoformat("2025-09-02T07:59:00+08:00"), d.state)
    assert before.digests == [] and len(before.state.queued) == 1
    after = run([], datetime.fromisoformat("2025-09-02T08:00:00+08:00"), d.state)
    [digest] = after.digests
    assert digest.items == (item,) and after.state.queued == ()


def test_next_digest_follows_the_configured_hour_and_period() -> None:
    weekly = Notifications(digest_hour=17, digest_every_days=7)
    t = next_digest(T0, weekly)
    assert t.hour == 17 and t.date().toordinal() % 7 == 0 and timedelta(0) < t - T0 <= timedelta(days=7)
    # 23:30 UTC is already the next day in China: the 08:00 digest of that day is 8.5 hours later
    assert next_digest(datetime.fromisoformat("2025-09-01T23:30:00+00:00"), CFG) == datetime.fromisoformat(
        "2025-09-02T08:00:00+08:00"
    )


def test_a_change_of_value_updates_silently_and_a_change_of_severity_is_told() -> None:
    d1 = run([rec("fired", T0)], T0)
    d2 = run([rec("updated", T0 + timedelta(days=1), value=19.9)], T0 + timedelta(days=1), d1.state)
    assert d2.immediate == [] and d2.queued == []
    [s] = d2.suppressed
    assert s.reason == "value_only" and s.caused_by == ("e1",)
    d3 = run([rec("updated", T0 + timedelta(days=2), severity="critical", value=22.0, caused_by=("e9",))],
             T0 + timedelta(days=2), d2.state)  # fmt: skip
    [n] = d3.immediate
    assert (n.kind, n.previous_severity, n.severity, n.caused_by) == (
        "severity_changed",
        "warning",
        "critical",
        ("e9",),
    )
    # back to warning: a downgrade of a critical alert is told at once, to whoever was told of it
    d4 = run([rec("updated", T0 + timedelta(days=3), value=19.0)], T0 + timedelta(days=3), d3.state)
    [down] = d4.immediate
    assert (down.kind, down.severity, down.routing_severity) == ("severity_changed", "warning", "critical")


def test_flapping_resolve_and_refire_within_the_window_is_one_continuing_notice() -> None:
    fired = run([rec("fired", T0, severity="critical")], T0)
    assert len(fired.immediate) == 1
    resolved = run([rec("resolved", T0 + timedelta(days=2), severity="critical", caused_by=("e2",))],
                   T0 + timedelta(days=2), fired.state)  # fmt: skip
    assert resolved.immediate == [] and resolved.suppressed == []  # held, not told yet
    again = run([rec("fired", T0 + timedelta(days=5), severity="critical", caused_by=("e3",))],
                T0 + timedelta(days=5), resolved.state)  # fmt: skip
    assert again.immediate == [] and again.queued == []
    assert sorted((s.transition, s.reason, s.caused_by) for s in again.suppressed) == [
        ("fired", "flapping", ("e3",)), ("resolved", "flapping", ("e2",))]  # fmt: skip
    # weeks later nothing about that pair is told; the alert is still open
    later = run([], T0 + timedelta(days=30), again.state)
    assert later.immediate == [] and later.state.tracks[("ratio_shortfall", "SD0001", "")].status == "open"


def test_a_resolution_that_holds_for_the_window_is_told_then() -> None:
    fired = run([rec("fired", T0, severity="critical")], T0)
    resolved = run([rec("resolved", T0 + timedelta(days=1), severity="critical", caused_by=("e2",))],
                   T0 + timedelta(days=1), fired.state)  # fmt: skip
    early = run([], T0 + timedelta(days=7, hours=23), resolved.state)
    assert early.immediate == []
    told = run([], T0 + timedelta(days=8), early.state)
    [n] = told.immediate
    assert (n.kind, n.why, n.caused_by, n.at) == (
        "resolved",
        "resolved_held",
        ("e2",),
        T0 + timedelta(days=1),
    )
    assert told.state.tracks == {}
    # a fire after the window is a new notice
    new = run(
        [rec("fired", T0 + timedelta(days=20), severity="critical")], T0 + timedelta(days=20), told.state
    )
    assert [n.kind for n in new.immediate] == ["fired"]


def test_a_refire_after_the_window_tells_the_held_resolution_and_the_new_firing() -> None:
    fired = run([rec("fired", T0, severity="critical")], T0)
    resolved = run(
        [rec("resolved", T0 + timedelta(days=1), severity="critical")], T0 + timedelta(days=1), fired.state
    )
    # both arrive in one batch (a worker that was down): the refire is 9 days after the resolution
    both = run([rec("fired", T0 + timedelta(days=10), severity="critical")], T0 + timedelta(days=1, hours=1),
               resolved.state)  # fmt: skip
    assert [(n.kind, n.why) for n in both.immediate] == [("resolved", "resolved_held"), ("fired", "fired")]


def test_flapping_window_zero_tells_resolutions_at_once() -> None:
    cfg = Notifications(flapping_days=0)
    fired = decide(EMPTY, [rec("fired", T0, severity="critical")], T0, cfg)
    resolved = decide(fired.state, [rec("resolved", T0, severity="critical")], T0, cfg)
    assert [n.kind for n in resolved.immediate] == ["resolved"]


def test_republished_transitions_are_ignored_and_restated_history_is_suppressed() -> None:
    first = rec("fired", T0)
    d1 = run([first, first], T0)
    assert len(d1.queued) == 1  # the same id twice: once
    d2 = run([rec("updated", T0 + timedelta(days=3), value=20.0)], T0 + timedelta(days=3), d1.state)
    d3 = run([first, rec("updated", T0 + timedelta(days=1), value=19.7)], T0 + timedelta(days=3), d2.state)
    assert d3.queued == [] and d3.immediate == []
    [s] = d3.suppressed
    assert s.reason == "restated"


def test_state_round_trips_through_json() -> None:
    d1 = run([rec("fired", T0), rec("fired", T0, rule="dual_share_below_target", value=0.4)], T0)
    d2 = run([rec("resolved", T0 + timedelta(hours=1))], T0 + timedelta(hours=1), d1.state)
    text = json.dumps(d2.state.to_dict())
    back = PolicyState.from_dict(json.loads(text))
    assert back == d2.state
    later = T0 + timedelta(days=9)
    assert run([], later, back) == run([], later, d2.state)


def test_the_rules_file_configures_the_policy_and_names_wrong_entries() -> None:
    assert load_rules().notifications == Notifications()  # the shipped file holds the defaults
    assert parse_notifications(None) == Notifications()
    assert parse_notifications({"digest_hour": 18, "immediate": ["warning", "critical"]}) == Notifications(
        digest_hour=18, immediate=("warning", "critical"))  # fmt: skip
    for bad, message in [
        ({"digest_hour": 24}, "notifications.digest_hour: Input should be less than or equal to 23"),
        ({"flapping_days": "7"}, "notifications.flapping_days: Input should be a valid integer"),
        ({"immediate": ["urgent"]}, "notifications.immediate[0]: Input should be 'warning' or 'critical'"),
        ({"digest_evry_days": 1}, "notifications.digest_evry_days: unknown key"),
        ([1], "notifications: must be a mapping"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_notifications(bad)


# --- the present decides: late events, restarts, changes undone within a cycle -------------------------

KEY = ("ratio_shortfall", "SD0001", "")
LATER = T0 + timedelta(days=40)


def alert(severity: str = "critical", since: datetime = T0, school: str = "SD0001",
          caused_by: tuple[str, ...] = ("e1",)) -> Alert:  # fmt: skip
    return Alert("ratio_shortfall", school, "", severity, Fraction(4319, 100), Fraction(20), since=since,  # type: ignore[arg-type]
                 caused_by=caused_by)  # fmt: skip


def test_a_late_event_that_fires_an_alert_holding_now_is_told_with_when_it_became_known() -> None:
    late = rec("fired", T0, severity="critical", value=43.19, caused_by=("late-1",))
    d = decide(EMPTY, [late], LATER, CFG, present={KEY: alert(caused_by=("late-1",))}, restated=True)
    [n] = d.immediate
    assert (n.kind, n.at, n.known_at, n.late, n.caused_by, n.transition_id) == (
        "fired", T0, LATER, True, ("late-1",), late["id"])  # fmt: skip
    assert d.suppressed == []


def test_a_late_event_that_resolves_an_alert_told_as_firing_is_told_once_its_window_has_passed() -> None:
    fired = decide(EMPTY, [rec("fired", T0, severity="critical")], T0, CFG)
    resolved = rec("resolved", T0 + timedelta(days=1), severity="critical", caused_by=("hire-1",))
    d = decide(fired.state, [resolved], LATER, CFG, present={}, restated=True)
    [n] = d.immediate  # resolved 39 days ago: the flapping window is long past
    assert (n.kind, n.why, n.at, n.caused_by) == (
        "resolved",
        "resolved_held",
        T0 + timedelta(days=1),
        ("hire-1",),
    )
    assert d.state.tracks == {}


def test_history_a_late_event_restated_that_no_longer_holds_is_recorded_not_told() -> None:
    history = [rec("fired", T0, severity="critical", caused_by=("late",)),
               rec("resolved", T0 + timedelta(days=2), severity="critical", caused_by=("other",))]  # fmt: skip
    d = decide(EMPTY, history, LATER, CFG, present={}, restated=True)
    assert d.immediate == [] and d.queued == [] and d.state.tracks == {}
    assert sorted((s.transition, s.reason) for s in d.suppressed) == [
        ("fired", "restated"),
        ("resolved", "restated"),
    ]


def test_an_alert_told_as_firing_that_a_late_event_erased_is_told_resolved() -> None:
    fired = decide(
        EMPTY, [rec("fired", T0 + timedelta(days=10), severity="critical")], T0 + timedelta(days=10), CFG
    )
    gone = decide(fired.state, [], LATER, CFG, present={}, restated=True)
    assert gone.immediate == [] and gone.state.tracks[KEY].status == "held"  # the window counts from now
    told = decide(gone.state, [], LATER + timedelta(days=7), CFG, present={})
    [n] = told.immediate
    assert (n.kind, n.at) == ("resolved", LATER)


def test_a_worker_that_starts_tells_what_holds_and_was_not_told_and_nothing_twice() -> None:
    present = {KEY: alert(), ("ratio_shortfall", "SD0002", ""): alert("warning", school="SD0002")}
    first = decide(EMPTY, [], LATER, CFG, present=present, restated=True)
    [n] = first.immediate
    assert (n.kind, n.why, n.transition_id) == ("fired", "fired", transition_id(KEY, T0, "fired"))
    assert [q.school_id for q in first.queued] == ["SD0002"]
    again = decide(first.state, [], LATER + timedelta(hours=1), CFG, present=present, restated=True)
    assert again.immediate == [] and again.queued == [] and again.suppressed == []


def test_a_change_undone_within_one_cycle_is_recorded_as_transient() -> None:
    blip = [
        rec("fired", T0, severity="critical"),
        rec("resolved", T0 + timedelta(seconds=1), severity="critical"),
    ]
    d = decide(EMPTY, blip, T0 + timedelta(seconds=1), CFG, present={})
    assert d.immediate == [] and [s.reason for s in d.suppressed] == ["transient", "transient"]
