"""The workbook read back as a spreadsheet user meets it: real numbers, every school, the report's totals."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from documents.briefing import render_xlsx
from foundation.messages import MESSAGES
from tests.fixtures.briefing.sample import (
    HOSTILE_ID,
    HOSTILE_NAME,
    HOSTILE_STUDIO,
    hostile_briefing,
    simulated_briefing,
)

openpyxl = pytest.importorskip("openpyxl")

SHEETS = (
    "overview",
    "by_circle",
    "by_city",
    "by_level",
    "schools",
    "shortfalls",
    "red",
    "studios",
    "restated",
    "revisions",
    "revised_headline",
    "revised_schools",
    "reporting",
    "missing_reports",
    "trend",
)


def rows(ws: Any) -> list[dict[str, Any]]:
    """The sheet's table as dicts keyed by heading: the headings are the row above the frozen pane."""
    head = openpyxl.utils.cell.coordinate_to_tuple(ws.freeze_panes)[0] - 1
    keys = [c.value for c in ws[head]]
    return [dict(zip(keys, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=head + 1)]


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = render_xlsx(simulated_briefing(), tmp_path_factory.mktemp("xlsx") / "briefing.xlsx")
    return openpyxl.load_workbook(path)


def col(key: str, lang: str = "zh-CN") -> str:
    return MESSAGES[lang][key]


def test_one_sheet_per_table_named_in_the_language(book: Any, tmp_path: Path) -> None:
    assert book.sheetnames == [col(f"sheet.{s}") for s in SHEETS]
    english = openpyxl.load_workbook(render_xlsx(simulated_briefing(), tmp_path / "en.xlsx", lang="en"))
    assert english.sheetnames == [col(f"sheet.{s}", "en") for s in SHEETS]
    assert all(
        len(name) <= 31 and not set(name) & set("[]:*?/\\") for name in english.sheetnames + book.sheetnames
    )


def test_every_school_is_there_with_numbers_that_add_up_to_the_report(book: Any) -> None:
    b = simulated_briefing()
    schools = rows(book[col("sheet.schools")])
    assert sorted(r[col("col.school_id")] for r in schools) == sorted(
        s["school_id"] for s in b.report["schools"]
    )
    assert all(r[col("col.school_name")] == b.schools[r[col("col.school_id")]].name for r in schools)
    for key in ("col.students", "col.full_time", "col.fte", "col.dual_share", "col.studios_compliant"):
        assert all(isinstance(r[col(key)], int | float) for r in schools), key
    province = b.report["province"]
    assert len(schools) == province["schools"]
    assert sum(r[col("col.students")] for r in schools) == pytest.approx(province["students"], abs=0.01)
    assert sum(r[col("col.full_time")] for r in schools) == province["full_time_teachers"]
    assert sum(r[col("col.studios_active")] for r in schools) == province["studios_active"]
    assert sum(r[col("col.studios_compliant")] for r in schools) == province["studios_compliant"]
    green = sum(1 for r in schools if r[col("col.status")] == col("status.green"))
    share = (Decimal(green) / len(schools)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert float(share) == province["green_share"]


def test_rollups_and_overview_carry_the_same_totals(book: Any) -> None:
    province = simulated_briefing().report["province"]
    for sheet in ("sheet.by_circle", "sheet.by_city", "sheet.by_level"):
        table = rows(book[col(sheet)])
        assert sum(r[col("col.schools")] for r in table) == province["schools"]
        assert sum(r[col("col.students")] for r in table) == pytest.approx(province["students"], abs=0.01)
    overview = {r[col("col.indicator")]: r for r in rows(book[col("sheet.overview")])}
    assert overview[col("kpi.studios")][col("col.value")] == province["studios_compliant"]
    assert overview[col("kpi.studios")][col("col.target")] == 500
    assert overview[col("kpi.green_share")][col("col.value")] == pytest.approx(
        province["green_share"], abs=5e-5
    )
    assert isinstance(overview[col("kpi.dual_share")][col("col.month_change")], float)


def test_sheets_are_ready_to_filter_and_read(book: Any) -> None:
    for ws in book.worksheets:
        assert ws.freeze_panes is not None and ws.auto_filter.ref, ws.title
    schools = book[col("sheet.schools")]
    heads = {c.value: c.column_letter for c in schools[1]}
    assert schools[f"{heads[col('col.dual_share')]}2"].number_format == "0.0%"
    assert schools[f"{heads[col('col.students')]}2"].number_format == "#,##0.0"
    # status colours follow the cell's value, so they survive sorting and editing
    rules = [r for cf in schools.conditional_formatting for r in cf.rules]
    assert {r.formula[0] for r in rules} == {f'"{col(f"status.{s}")}"' for s in ("green", "yellow", "red")}
    assert all(r.dxf.fill is not None for r in rules)
    overview = book[col("sheet.overview")]
    assert overview["B2"].is_date and overview["B2"].value.strftime("%Y-%m-%d %H:%M") == "2025-12-31 23:59"


def test_a_city_workbook_has_only_that_city(tmp_path: Path) -> None:
    b = simulated_briefing()
    wb = openpyxl.load_workbook(render_xlsx(b, tmp_path / "qd.xlsx", city="qingdao"))
    ids = {s["school_id"] for s in b.report["schools"] if s["city"] == "qingdao"}
    values = {
        str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None
    }
    assert ids <= values
    others = {s["school_id"] for s in b.report["schools"]} - ids
    assert not any(o in v for o in others for v in values)


def test_hostile_text_stays_text(tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(render_xlsx(hostile_briefing(), tmp_path / "h.xlsx"))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    studio = [c for c in cells if c.value == HOSTILE_STUDIO]
    assert studio and all(c.data_type == "s" for c in studio)  # a string, not a formula
    assert any(c.value == HOSTILE_ID for c in cells) and any(c.value == HOSTILE_NAME for c in cells)
    assert not any(c.data_type == "f" for c in cells)


def test_an_infinite_ratio_is_written_as_such(tmp_path: Path) -> None:
    b = simulated_briefing()
    first = dict(b.report["schools"][0], fte_teachers=0.0, full_time_teachers=0, part_time_teachers=0,
                 student_teacher_ratio=None, violations=["student_teacher_ratio"])  # fmt: skip
    report = dict(b.report, schools=[first, *b.report["schools"][1:]])
    wb = openpyxl.load_workbook(render_xlsx(dataclasses.replace(b, report=report), tmp_path / "inf.xlsx"))
    shortfalls = rows(wb[col("sheet.shortfalls")])
    assert shortfalls[0][col("col.school_id")] == first["school_id"]  # infinite ratios come first
    assert shortfalls[0][col("col.ratio")] == "∞"
    assert shortfalls[0][col("col.needed")] == -(-int(first["students"] * 100) // (20 * 100))


def test_the_trend_sheet_has_a_month_per_row_and_numbers(book: Any) -> None:
    b = simulated_briefing()
    trend = rows(book[col("sheet.trend")])
    assert [r[col("col.month")].strftime("%Y-%m") for r in trend] == [
        t.strftime("%Y-%m") for t, _ in b.monthly
    ]
    green = next(
        k for k in trend[0] if str(k).startswith(col("trend.green_share")) and col("series.province") in k
    )
    assert [r[green] for r in trend][-1] == pytest.approx(b.report["province"]["green_share"], abs=5e-5)
