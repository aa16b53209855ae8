"""`dualtrack report`: the report at any time T, computed from the event log, in json, table or html."""

from __future__ import annotations

import html
import json
import pickle
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rules.engine import Engine
from rules.limits import Rules
from rules.report import build_report
from sinks.base import Store
from sinks.checkpoints import Checkpoints
from sinks.eventlog import EventLog


def engine_at(store: Store, rules: Rules, as_of: datetime) -> Engine:
    """The engine with exactly the kept events up to `as_of` applied: the newest usable checkpoint at or
    before `as_of`, and the events after it (the cost is those events, not the history)."""
    checkpoint = Checkpoints(store).latest(rules.version, until=as_of)
    engine = pickle.loads(checkpoint.state) if checkpoint else Engine(rules)  # noqa: S301 - our own state
    for page in EventLog(store).events_after(checkpoint.position if checkpoint else None, until=as_of):
        for e in page:
            engine.apply(e)
    return engine


def report_from_store(store: Store, rules: Rules, as_of: datetime) -> dict[str, Any]:
    """The report at `as_of` (docs/domain.md, "The report") from the events kept in `store`."""
    return build_report(engine_at(store, rules, as_of), as_of)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1)


def to_table(report: dict[str, Any]) -> Any:
    """A rich renderable for a terminal; every value from the data is plain text, never markup."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    colour = {"green": "green", "yellow": "yellow", "red": "red"}
    schools = Table(title=f"Schools as of {report['as_of']}", header_style="bold")
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


def _bars(rows: Sequence[tuple[str, float, float | None]], unit: str, width: int = 560) -> str:
    """An inline SVG bar chart: one bar per (label, value, limit), the limit drawn as a red tick."""
    top = max([v for _, v, _ in rows] + [lim or 0 for _, _, lim in rows] + [1e-9])
    h = 22 * len(rows) + 10
    parts = [f'<svg width="{width + 160}" height="{h}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for n, (label, value, limit) in enumerate(rows):
        y = 5 + n * 22
        w = value / top * width
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<rect x="90" y="{y}" width="{w:.1f}" height="16" fill="#4a78b5"/>')
        parts.append(f'<text x="{95 + w:.1f}" y="{y + 13}" font-size="11">{value:g}{unit}</text>')
        if limit is not None:
            x = 90 + limit / top * width
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + 18}" stroke="#c0392b" '
                         'stroke-width="2"/>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def to_html(report: dict[str, Any], rules: Rules) -> str:
    """One self-contained page (inline SVG charts, no scripts or external files)."""
    ratio_limit = rules.limits["student_teacher_ratio"]
    schools = report["schools"]
    ratio_rows = [
        (s["school_id"], s["student_teacher_ratio"] or 0.0,
         float(lim) if (lim := ratio_limit.for_level(s["level"])) is not None else None)
        for s in schools
    ]  # fmt: skip
    by_city: dict[str, list[float]] = {}
    for s in schools:
        by_city.setdefault(s["city"], []).append(s["student_teacher_ratio"] or 0.0)
    city_rows = [(c, round(sum(v) / len(v), 2), None) for c, v in sorted(by_city.items())]
    dual_rows = [(s["school_id"], round((s["dual_share"] or 0) * 100, 1), 50.0) for s in schools]
    p = report["province"]
    studio_rows = [("active", float(p["studios_active"]), float(p["studios_target"])),
                   ("compliant", float(p["studios_compliant"]), float(p["studios_target"]))]  # fmt: skip
    alert_rows = "".join(
        f"<tr><td>{html.escape(a['school_id'])}</td><td>{a['rule']}</td><td>{html.escape(a['subject'])}</td>"
        f"<td class='{a['severity']}'>{a['severity']}</td><td>{'' if a['value'] is None else a['value']}</td>"
        f"<td>{'' if a['threshold'] is None else a['threshold']}</td><td>{a['since'] or ''}</td></tr>"
        for a in report["alerts"]
    )
    school_rows = "".join(
        f"<tr><td>{html.escape(s['school_id'])}</td><td>{s['level']}</td><td>{s['city']}</td>"
        f"<td>{s['students']}</td><td>{s['fte_teachers']}</td><td>{s['student_teacher_ratio']}</td>"
        f"<td>{_pct(s['dual_share'])}</td><td>{', '.join(s['violations'])}</td>"
        f"<td class='{s['status']}'>{s['status']}</td></tr>"
        for s in schools
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dualtrack report {html.escape(report["as_of"])}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}} th{{background:#f0f0f0}}
.green{{background:#d5f5d5}} .yellow{{background:#fff3c4}} .red{{background:#f8d0d0}}
.critical{{background:#f8d0d0}} .warning{{background:#fff3c4}}
.kpi span{{display:inline-block;margin-right:2em}}
</style></head><body>
<h1>Vocational-school workforce, as of {html.escape(report["as_of"])}</h1>
<p class="kpi"><span>schools: <b>{p["schools"]}</b></span><span>students: <b>{p["students"]}</b></span>
<span>full-time teachers: <b>{p["full_time_teachers"]}</b></span>
<span>meeting every indicator: <b>{_pct(p["green_share"])}</b></span></p>
<h2>Student-teacher ratio by school (red: the level's limit)</h2>{_bars(ratio_rows, "")}
<h2>Mean ratio by city</h2>{_bars(city_rows, "")}
<h2>Dual-teacher share by school (red: 50%)</h2>{_bars(dual_rows, "%")}
<h2>Skill-master studios against the target of {p["studios_target"]}</h2>{_bars(studio_rows, "")}
<h2>Schools</h2><table><tr><th>school</th><th>level</th><th>city</th><th>students</th><th>FTE</th>
<th>ratio</th><th>dual share</th><th>violations</th><th>status</th></tr>{school_rows}</table>
<h2>Alerts firing ({len(report["alerts"])})</h2><table><tr><th>school</th><th>rule</th><th>subject</th>
<th>severity</th><th>value</th><th>threshold</th><th>since</th></tr>{alert_rows}</table>
</body></html>
"""
