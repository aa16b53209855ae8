"""HTML building blocks: escaping, tables, the stylesheet and the one small sorting script."""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import Any

from documents.briefing.i18n import Translator
from documents.briefing.tables import INFINITE, Table, Typed

_STATUS_RANK = {"green": 0, "yellow": 1, "red": 2}
_NUMERIC = ("int", "num1", "num2", "pct", "ratio", "status")
#: an id or name of a city or level up to this length stays on one line; longer ones may wrap
_NOWRAP_MAX = 24


def e(text: object) -> str:
    """Text as HTML (quotes too, so it is safe in attributes)."""
    return escape(str(text), quote=True)


def cell_text(value: Any, kind: str, tr: Translator) -> str:
    """A cell as the reader sees it (plain text)."""
    if kind == "status":
        return tr.code("status", value)
    if kind == "month" and value is not None:
        return tr.month(value)
    if value is None:
        return tr.text("value.none")
    if kind == "int":
        return tr.num(value)
    if kind in ("num1", "num2"):
        return tr.num(value, 1 if kind == "num1" else 2)
    if kind == "pct":
        return tr.pct(value)
    if kind == "ratio":
        return tr.ratio(None, infinite=True) if value == INFINITE else tr.ratio(value)
    return str(value)


def _sort_key(value: Any, kind: str) -> str:
    if kind == "status":
        return str(_STATUS_RANK.get(value, ""))
    if value is None:
        return ""
    return "Infinity" if value == INFINITE else repr(float(value))


def table_html(t: Table, tr: Translator, caption: str, limit: int | None = None, note: str = "") -> str:
    """A sortable table; with `limit`, only its first rows and a note saying how many there are."""
    if not t.rows:
        return f'<h3>{e(caption)}</h3><p class="empty">{e(tr.text("table.empty"))}</p>'
    shown = t.rows if limit is None else t.rows[:limit]
    head = "".join(
        f'<th scope="col" class="{"num" if c.kind in _NUMERIC and c.kind != "status" else "text"}">'
        f"{e(c.heading(tr))}</th>"
        for c in t.columns
    )
    body = []
    for row in shown:
        cells = []
        for col, raw in zip(t.columns, row, strict=True):
            value, kind = (raw.value, raw.kind) if isinstance(raw, Typed) else (raw, col.kind)
            text = e(cell_text(value, kind, tr))
            if kind == "status":
                cells.append(
                    f'<td class="status st-{e(value)}" data-v="{_sort_key(value, kind)}">{text}</td>'
                )
            elif kind in _NUMERIC:
                cells.append(f'<td class="num" data-v="{_sort_key(value, kind)}">{text}</td>')
            elif kind == "code" and len(str(value)) <= _NOWRAP_MAX:
                cells.append(f'<td class="nw">{text}</td>')
            elif kind == "name":
                cells.append(f'<td class="name">{text}</td>')
            else:
                cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    notes = [note] if note else []
    if len(shown) < len(t.rows):
        notes.append(tr.text("table.truncated", shown=len(shown), total=len(t.rows)))
    foot = "".join(f'<p class="note">{e(n)}</p>' for n in notes)
    return (
        f'<table class="sortable t-{e(t.name)}"><caption>{e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{foot}"
    )


# Sorting is the one thing HTML cannot do alone; the table reads fine unsorted without it, and the
# Content-Security-Policy admits exactly this script by its hash. Headings are plain text made
# focusable here, not <button>s: Chromium does not paint buttons in a header row repeated on a new page.
SCRIPT = """document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("thead th").forEach(function (th, i) {
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      t.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(t.tBodies[0].rows);
      rows.sort(function (r, s) {
        var a = r.cells[i], b = s.cells[i];
        if (a.dataset.v === undefined) {
          var c = a.textContent.localeCompare(b.textContent, document.documentElement.lang);
          return asc ? c : -c;
        }
        if (a.dataset.v === "" || b.dataset.v === "") { return (a.dataset.v === "") - (b.dataset.v === ""); }
        var x = parseFloat(a.dataset.v), y = parseFloat(b.dataset.v);
        var d = x === y ? 0 : (x < y ? -1 : 1);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { t.tBodies[0].appendChild(r); });
    }
    th.tabIndex = 0;
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sort(); }
    });
  });
});"""

CSS = """
:root { --ink: #1a1a1a; --muted: #555; --line: #c8c8c8; --ok: #1e6b3a; --bad: #a93226; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); font-size: 14px; line-height: 1.45;
  font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
    "WenQuanYi Zen Hei", "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 25px; margin: 0 0 2px; }
h2 { font-size: 19px; border-bottom: 2px solid #333; padding-bottom: 3px; margin: 26px 0 10px; }
h3 { font-size: 15.5px; margin: 16px 0 6px; }
p { margin: 4px 0; }
a { color: #1f4f8a; }
.meta { color: var(--muted); }
.asof { font-weight: 700; color: var(--ink); }
nav.toc ol { display: flex; flex-wrap: wrap; gap: 4px 18px; padding: 0; margin: 6px 0 0; list-style: none; }
.kpis { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.kpi { border: 1px solid var(--line); border-left: 7px solid #888; padding: 8px 12px 10px;
  break-inside: avoid; min-width: 0; }
.kpi.on { border-left-color: var(--ok); }
.kpi.off { border-left: 7px double var(--bad); }
.kpi h3 { margin: 0 0 2px; font-size: 15px; }
.kpi .now { display: flex; align-items: baseline; flex-wrap: wrap; gap: 4px 12px; }
.kpi .value { font-size: 28px; font-weight: 700; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; font-weight: 700; padding: 0 8px; border: 1.5px solid currentColor;
  border-radius: 3px; }
.verdict.on { color: var(--ok); }
.verdict.off { color: var(--bad); background: #fbeae7; }
.verdict.na { color: var(--muted); border-style: dashed; }
.kpi ul { margin: 2px 0; padding-left: 18px; }
.changes { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; margin: 4px 0; }
.changes dt { color: var(--muted); }
.changes dd { margin: 0; }
.note { color: var(--muted); font-size: 12.5px; }
.actions li { margin: 3px 0; }
figure { margin: 8px 0; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 6px 0; }
svg.chart text { font-family: inherit; fill: #1a1a1a; }
svg.chart text.c-rule { font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg.chart text.c-value { font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.trends { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px 18px; }
.trends figure { margin: 0; min-width: 0; break-inside: avoid; }
.trends figcaption { font-weight: 700; }
table { border-collapse: collapse; width: auto; max-width: 100%; font-size: 13px; margin: 4px 0 6px; }
caption { text-align: left; font-weight: 700; padding: 4px 0; }
th, td { border: 1px solid var(--line); padding: 3px 6px; vertical-align: top; text-align: left;
  overflow-wrap: anywhere; }
th { background: #ececec; }
th[tabindex] { cursor: pointer; }
th:focus-visible { outline: 2px solid #1f4f8a; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.nw { white-space: nowrap; }
td.name { min-width: 7em; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.status { white-space: nowrap; font-weight: 700; }
.st-green { background: #dcefdf; }
.st-yellow { background: #fcf1c9; }
.st-red { background: #f6d3cd; }
.city { margin-top: 22px; }
.city + .city { border-top: 3px double #333; }
.city h3 { font-size: 18px; }
.back { font-size: 12.5px; }
footer { margin-top: 30px; border-top: 1px solid var(--line); padding-top: 6px; }
@media screen {
  .kpi svg.chart { width: 100%; max-width: 400px; }
  .trends svg.chart { width: 100%; max-width: 560px; }
}
@media screen and (max-width: 760px) { .kpis, .trends { grid-template-columns: minmax(0, 1fr); } }
@page { size: A4; margin: 17mm 12mm 15mm 12mm; }
@media print {
  body { font-size: 9.5pt; }
  main { max-width: none; padding: 0; }
  nav.toc, .back, .sort-hint { display: none; }
  h2 { margin-top: 14px; }
  .page-one { break-after: page; }
  .kpis { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; }
  .kpi { padding: 6px 8px; }
  .kpi .value { font-size: 18pt; }
  table { font-size: 8.5pt; }
  th, td { padding: 2px 4px; }
  thead { display: table-header-group; }
  tr, .kpi, svg.chart, figure { break-inside: avoid; }
  h2, h3, caption { break-after: avoid; }
  #cities { break-before: page; }
  .city { border-top: none; margin-top: 0; }
  .city + .city { break-before: page; border-top: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def csp_hash(source: str) -> str:
    """The CSP source expression that admits exactly this inline script or style."""
    digest = base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode()
    return f"'sha256-{digest}'"
