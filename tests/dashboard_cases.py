"""Shared by the chDB and server tests: every panel's and alert rule's SQL, expanded as the plugin
would, and the check of what it returns."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from dashboards.alerting import alert_rules
from dashboards.catalog import all_panels
from dashboards.macros import ALL, expand
from dashboards.model import Column
from rules.engine import fold
from rules.forecast import forecasts
from rules.limits import load_rules
from schemas.validation import Accepted, validate
from sinks.base import Store
from streams.health import Counts, forecast_rows, sample_pipeline

START = datetime.fromisoformat("2023-01-01T00:00:00+08:00")
END = datetime.fromisoformat("2026-12-31T00:00:00+08:00")
#: panels that may be empty over the example (nothing of that kind happens there)
MAY_BE_EMPTY = {
    "Certificates expiring within 90 days (alerts firing)",  # the example's certificates have ended by now
    "Stale feeds (no event for the configured period)",  # a replay's events all arrive at once
}
SELECTIONS = {
    "all": {"circle": ALL, "city": ALL, "level": ALL, "school": ALL},
    "one school": {"circle": ["jiaodong"], "city": ["qingdao", "weihai"], "level": ALL, "school": ["SD0002"]},
}


def cases() -> list[tuple[str, str, str, tuple[Column, ...]]]:
    """(case id, panel title, expanded SQL, expected columns) for every panel and selection."""
    out = []
    rules = load_rules()
    for dash, panel in all_panels(rules):
        for name, variables in SELECTIONS.items():
            sql = expand(panel.sql, variables, START, END, interval_s=86_400)
            out.append((f"{dash.uid}: {panel.title} [{name}]", panel.title, sql, panel.columns))
    for rule in alert_rules(rules):
        sql = rule["data"][0]["model"]["rawSql"]
        out.append((f"alert {rule['uid']}", rule["title"], sql, ()))
    return out


_KINDS = {
    "time": re.compile(r"^(Nullable\()?(DateTime|Date)"),
    "number": re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)"),
    "string": re.compile(r"^(Nullable\()?(String|LowCardinality\(String\)|FixedString)"),
}


def check(types: list[tuple[str, str]], expected: tuple[Column, ...]) -> None:
    got = dict(types)
    for col in expected:
        assert col.name in got, f"column {col.name} missing from {list(got)}"
        assert _KINDS[col.kind].match(got[col.name]), f"{col.name}: {got[col.name]} is not a {col.kind}"


#: when the example's health tables are sampled: SD0001 and SD0005 are warned then (within 90 days)
HEALTH_AT = datetime.fromisoformat("2025-03-31T23:59:59+08:00")


def fill_health(store: Store, events_file: Path) -> None:
    """What the worker would have written to pipeline_metrics and dual_share_forecasts over the example
    province: an hour of samples (two topics, lag falling), and the forecasts at HEALTH_AT."""
    rules = load_rules()
    events = [
        r for line in events_file.read_bytes().splitlines() if isinstance(r := validate(line), Accepted)
    ]
    province = fold(events, rules, HEALTH_AT).province
    last = {sid: s.last_event_at for sid, s in province.schools.items() if s.last_event_at is not None}
    rows, before, reported = [], None, None
    for minute in range(0, 60, 5):
        at = HEALTH_AT - timedelta(minutes=60 - minute)
        now = Counts(at, received=100 * minute, kept=95 * minute, dead_lettered=minute // 5)
        lag = {("dualtrack.intake", 0): 60 - minute, ("dualtrack.kept", 0): (60 - minute) // 2}
        rows += sample_pipeline(now, before, lag, last, reported)
        before, reported = now, last
    store.insert("pipeline_metrics", rows)
    store.insert(
        "dual_share_forecasts", forecast_rows(province, forecasts(province, rules, HEALTH_AT), HEALTH_AT, 1)
    )
