"""Shared by the chDB and server tests: every panel's and alert rule's SQL, expanded as the plugin
would, and the check of what it returns."""

from __future__ import annotations

import re
from datetime import datetime

from dashboards.alerting import alert_rules
from dashboards.catalog import all_panels
from dashboards.macros import ALL, expand
from dashboards.model import Column
from rules.limits import load_rules

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
