"""The briefing as a workbook: one sheet per table, real numbers with number formats, frozen headings,
autofilters and status colours that follow the cell's value when a reader sorts or edits."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from documents.briefing import figures as fig
from documents.briefing import tables as tab
from documents.briefing.data import Briefing
from documents.briefing.exceptions import BriefingError
from documents.briefing.i18n import CST, Translator

_FORMATS = {"int": "#,##0", "num1": "#,##0.0", "num2": "#,##0.00", "pct": "0.0%", "ratio": "0.00"}
_STATUS_FILL = {"green": "DCEFDF", "yellow": "FCF1C9", "red": "F6D3CD"}
_HEADING_FILL = "E6E6E6"


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError:
        raise BriefingError("the XLSX briefing needs openpyxl: pip install 'openpyxl>=3.1,<4'") from None
    return openpyxl


def _text(cell: Any, value: str) -> None:
    """A string cell that stays a string: a name starting with "=" is not a formula."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    cell.value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell.data_type = "s"


def _write(cell: Any, value: Any, kind: str, tr: Translator) -> None:
    if isinstance(value, tab.Typed):
        value, kind = value.value, value.kind
    if kind == "status":
        _text(cell, tr.code("status", value))
    elif value is None:
        cell.value = None
    elif kind == "month":
        cell.value = value.astimezone(CST).replace(tzinfo=None)  # Excel has no time zones
        cell.number_format = "yyyy-mm"
        cell.alignment = _openpyxl().styles.Alignment(horizontal="left")
    elif kind == "ratio" and value == tab.INFINITE:
        _text(cell, tr.text("value.infinite"))
        cell.alignment = _openpyxl().styles.Alignment(horizontal="right")
    elif kind in _FORMATS:
        cell.value = int(value) if kind == "int" else float(value)
        cell.number_format = _FORMATS[kind]
    else:
        _text(cell, str(value))


def _width(value: Any) -> float:
    text = str(value) if value is not None else ""
    return sum(2.1 if ord(ch) > 0x2E80 else 1.1 for ch in text)


def _sheet(
    wb: Any, t: tab.Table, tr: Translator, first: bool = False, preamble: list[list[Any]] | None = None
) -> Any:
    """A sheet holding table `t` under optional preamble rows; headings frozen, filters on."""
    openpyxl = _openpyxl()
    styles = openpyxl.styles
    ws = wb.active if first else wb.create_sheet()
    ws.title = tr.text(f"sheet.{t.name}")[:31]
    for r, line in enumerate(preamble or [], start=1):
        for c, value in enumerate(line, start=1):
            cell = ws.cell(r, c)
            if isinstance(value, datetime):
                cell.value = value.astimezone(CST).replace(tzinfo=None)  # Excel has no time zones
                cell.number_format = "yyyy-mm-dd hh:mm"
                cell.alignment = styles.Alignment(horizontal="left")
            else:
                _text(cell, str(value))
            cell.font = styles.Font(bold=c == 1)
    head = len(preamble or []) + 1
    widths = [_width(c.heading(tr)) for c in t.columns]
    for c, column in enumerate(t.columns, start=1):
        cell = ws.cell(head, c)
        _text(cell, column.heading(tr))
        cell.font = styles.Font(bold=True)
        cell.fill = styles.PatternFill("solid", fgColor=_HEADING_FILL)
        cell.alignment = styles.Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(t.rows, start=head + 1):
        for c, (column, value) in enumerate(zip(t.columns, row, strict=True), start=1):
            _write(ws.cell(r, c), value, column.kind, tr)
            widths[c - 1] = max(widths[c - 1], _width(ws.cell(r, c).value))
    for c, w in enumerate(widths, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(c)].width = min(max(w + 2, 8), 60)
    last = openpyxl.utils.get_column_letter(len(t.columns))
    end = head + max(len(t.rows), 1)
    ws.freeze_panes = ws.cell(head + 1, 1 if len(t.columns) < 4 else 2)  # headings, and the id column
    ws.auto_filter.ref = f"A{head}:{last}{end}"
    for c, column in enumerate(t.columns, start=1):
        if column.kind != "status":
            continue
        letter = openpyxl.utils.get_column_letter(c)
        area = f"{letter}{head + 1}:{letter}{end}"
        for status, colour in _STATUS_FILL.items():
            rule = openpyxl.formatting.rule.CellIsRule(
                operator="equal", formula=[f'"{tr.code("status", status)}"'],
                fill=styles.PatternFill("solid", fgColor=colour, bgColor=colour),
            )  # fmt: skip
            ws.conditional_formatting.add(area, rule)
    return ws


def render_xlsx(briefing: Briefing, path: Path | str, lang: str = "zh-CN", city: str | None = None) -> Path:
    """Write the briefing's tables to an .xlsx workbook at `path` (only `city`'s schools when given)."""
    openpyxl = _openpyxl()
    tr, b = Translator(lang), briefing
    schools = fig.in_scope(b.report, city)
    ids = {s["school_id"] for s in schools}
    groups = fig.rollups(b, city)
    title = tr.text("doc.title") if city is None else tr.text("doc.title_city", city=tr.code("city", city))
    scope = tr.series("province") if city is None else tr.code("city", city)
    wb = openpyxl.Workbook()
    preamble: list[list[Any]] = [[title], [tr.text("xlsx.as_of"), b.as_of], [tr.text("xlsx.scope"), scope]]
    if b.known_on is not None:
        preamble.insert(2, [tr.text("xlsx.known_on"), b.known_on])
    _sheet(wb, tab.overview_table(fig.headline(b, city), tr), tr, first=True, preamble=preamble)
    for kind, name in (("circle", "by_circle"), ("city", "by_city"), ("level", "by_level")):
        _sheet(wb, tab.rollup_table(name, kind, groups[kind], tr), tr)
    _sheet(wb, tab.school_table(schools, b, tr), tr)
    _sheet(wb, tab.shortfall_table(fig.ratio_shortfalls(schools, b.targets.ratio_limits), b, tr), tr)
    _sheet(wb, tab.red_table(fig.red_schools(schools, b.previous_month), b, tr), tr)
    _sheet(wb, tab.studio_table(fig.noncompliant_studios(b.studios, ids), b, tr), tr)
    _sheet(wb, tab.restated_table([r for r in b.restated if r.school_id in ids], b, tr), tr)
    for table in (
        *tab.revision_tables(b.revisions, b, tr, ids),
        *tab.reporting_tables(b.reporting, b, tr, ids),
    ):
        _sheet(wb, table, tr)
    _sheet(wb, tab.trend_table(fig.trends(b, city), tr), tr)
    wb.properties.title = title
    wb.properties.creator = "dualtrack"
    out = Path(path)
    wb.save(out)
    return out
