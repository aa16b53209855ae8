"""`dualtrack report`: the report at a time T from the event log (`streams.state_at.engine_at`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rules.engine import state_key
from rules.limits import Rules
from rules.report import build_report
from sinks.base import Store, micros
from sinks.eventlog import EventLog
from sinks.live import LiveTables
from sinks.publications import Publications
from streams.state_at import engine_at


def report_from_store(
    store: Store, rules: Rules, as_of: datetime, known_on: datetime | None = None
) -> dict[str, Any]:
    """The report at `as_of` (docs/domain.md, "The report") from the events kept in `store`; with
    `known_on`, from those that had arrived by then only, and it says so ("As known on")."""
    report = build_report(engine_at(store, rules, as_of, known_on=known_on), as_of)
    return report if known_on is None else {**report, "known_on": known_on.isoformat()}


def publish(
    store: Store, rules: Rules, report: Mapping[str, Any], as_of: datetime, known_on: datetime | None
) -> tuple[datetime, str]:
    """Keep a report as published (docs/domain.md, "Published and revised"): what it was made from is
    known on `known_on`, at most now (now when None). Returns that time and the publication's id."""
    now = datetime.now(UTC)
    known = min(known_on, now) if known_on is not None else now
    body = {k: v for k, v in report.items() if k != "known_on"}
    store.migrate()
    return known, Publications(store).record(body, as_of, known, now, state_key(rules))


def report_for_now(store: Store, rules: Rules, now: datetime) -> dict[str, Any]:
    """The report at `now`: the one the engine kept (`current_report`) when it still holds (the same
    rules, the log unchanged since, `now` before anything it reads can change), with `now` as its time;
    otherwise the fold. Both are the same report (docs/domain.md, "The report for now")."""
    kept = LiveTables(store).stored_report()
    if (
        kept is not None
        and kept["rules_key"] == state_key(rules)
        and kept["as_of_us"] <= micros(now) < kept["valid_before_us"]
        and kept["events"] == EventLog(store).kept_count()
    ):
        report: dict[str, Any] = json.loads(kept["body"])
        return {**report, "as_of": now.isoformat()}
    return report_from_store(store, rules, now)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1)


def to_table(report: dict[str, Any]) -> Any:
    """A rich renderable for a terminal; every value from the data is plain text, never markup."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    colour = {"green": "green", "yellow": "yellow", "red": "red"}
    known = f", as known on {report['known_on']}" if report.get("known_on") else ""
    schools = Table(title=f"Schools as of {report['as_of']}{known}", header_style="bold")
    for col in ("school", "level", "city", "students", "FTE", "ratio", "dual", "postgrad", "studios",
                "violations", "status"):  # fmt: skip
        schools.add_column(
            col, justify="right" if col in ("students", "FTE", "ratio", "dual", "postgrad") else "left"
        )
    for s in report["schools"]:
        schools.add_row(
            *(Text(str(v)) for v in (
                s["school_id"], s["level"], s["city"], f"{s['students']:.1f}", f"{s['fte_teachers']:.1f}",
                _ratio(s), _pct(s["dual_share"]), _pct(s["postgraduate_share"]),
                f"{s['compliant_studios']}/{s['active_studios']}", ", ".join(s["violations"]) or "-",
            )),
            Text(s["status"], style=colour.get(s["status"], "")),
        )  # fmt: skip
    alerts = Table(title=f"Alerts firing ({len(report['alerts'])})", header_style="bold")
    for col in ("school", "rule", "subject", "severity", "value", "threshold", "since"):
        alerts.add_column(col)
    for a in report["alerts"]:
        alerts.add_row(
            Text(a["school_id"]), Text(a["rule"]), Text(a["subject"] or "-"),
            Text(a["severity"], style="red" if a["severity"] == "critical" else "yellow"),
            Text(_num(a["value"])), Text(_num(a["threshold"])), Text(a["since"] or "-"),
        )  # fmt: skip
    p = report["province"]
    summary = Table(title="Province", show_header=False)
    summary.add_row("schools", str(p["schools"]))
    summary.add_row("students (converted)", f"{p['students']:.1f}")
    summary.add_row("full-time teachers", str(p["full_time_teachers"]))
    summary.add_row(
        "studios active / compliant / target",
        f"{p['studios_active']} / {p['studios_compliant']} / {p['studios_target']}",
    )
    summary.add_row("schools meeting every indicator", _pct(p["green_share"]))
    return Group(summary, schools, alerts)


def _ratio(s: dict[str, Any]) -> str:
    if s["student_teacher_ratio"] is None:
        return "∞" if s["students"] else "-"
    return f"{s['student_teacher_ratio']:.2f}"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"
