"""The country as provinces: how the simulator deals out the schools, the Ministry's roll-up computed
from sums (never an average of shares), the provinces file, and a page that never reads data as markup."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from documents.national import load_provinces, rollup, to_html, to_xlsx
from foundation.errors import ConfigError
from schemas.provinces import BY_CODE, PROVINCES, schools_per_province

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_31_provincial_divisions_have_their_codes_and_share_the_schools_by_population() -> None:
    assert (
        len(PROVINCES) == 31 and len({p.code for p in PROVINCES}) == len({p.letters for p in PROVINCES}) == 31
    )
    assert BY_CODE["370000"].name_zh == "山东省" and BY_CODE["110000"].letters == "BJ"
    for total in (31, 62, 550, 11_000):
        counts = schools_per_province(total)
        assert sum(counts.values()) == total and min(counts.values()) >= 1
    country = schools_per_province(11_000)
    assert max(country, key=lambda c: country[c]) == "440000"  # Guangdong, the most populous
    assert country["540000"] < country["370000"]
    with pytest.raises(ValueError, match="at least 31"):
        schools_per_province(30)


def school(sid: str, level: str, **kw: Any) -> dict[str, Any]:
    row = {"school_id": sid, "level": level, "students": 1000.0, "full_time_teachers": 50, "part_time_teachers": 10,
           "fte_teachers": 55.0, "professional_teachers": 30, "dual_teachers": 15, "postgraduate_share": 0.2,
           "doctor_share": 0.0, "senior_title_share": 0.1, "active_studios": 1, "compliant_studios": 1,
           "status": "green", "last_event_at": datetime(2026, 11, 30, tzinfo=UTC)}  # fmt: skip
    return row | kw


def test_the_roll_up_adds_counts_and_computes_shares_from_the_sums() -> None:
    rows = {
        "370000": [school("SD1", "secondary"), school("SD2", "higher", students=3000.0, full_time_teachers=100,
                   fte_teachers=110.0, professional_teachers=70, dual_teachers=56, postgraduate_share=0.35,
                   status="red", active_studios=2, compliant_studios=0)],
        "110000": [school("BJ1", "secondary", students=500.0, fte_teachers=25.0, full_time_teachers=20,
                   professional_teachers=10, dual_teachers=1, postgraduate_share=0.5, status="yellow")],
    }  # fmt: skip
    r = rollup(rows, {"370000": 500, "110000": None}, {"120000": "cannot reach the store"}, NOW)
    n = r["national"]
    assert (n["schools"], n["students"], n["fte_teachers"]) == (3, 4500.0, 190.0)
    assert n["student_teacher_ratio"] == round(4500 / 190, 2)  # 23.68, not the mean of 18.18, 27.27, 20
    assert n["dual_share"] == round((15 + 56 + 1) / (30 + 70 + 10), 4)
    assert n["postgraduate_share"] == round((10 + 35 + 10) / (50 + 100 + 20), 4)
    assert n["green_share"] == round(1 / 3, 4) and (n["studios_active"], n["studios_compliant"]) == (4, 2)
    assert n["studios_target"] == 500  # the sum of the provinces' plans that are known
    sd = next(p for p in r["provinces"] if p["code"] == "370000")
    assert (sd["schools"], sd["name_zh"], sd["studios_target"]) == (2, "山东省", 500)
    assert {lv["level"]: lv["schools"] for lv in r["levels"]} == {"secondary": 2, "higher": 1}
    assert r["provinces_reporting"] == 2 and len(r["provinces_missing"]) == 29
    tj = next(m for m in r["provinces_missing"] if m["code"] == "120000")
    assert tj["reason"] == "cannot reach the store"
    assert (
        next(m for m in r["provinces_missing"] if m["code"] == "130000")["reason"]
        == "not in the provinces file"
    )
    json.dumps(r)  # the json format is this, as it is


def test_a_wrong_provinces_file_names_the_entry_and_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text('provinces:\n  "370000": clickhouse://reader@h:9000/sd\n'
                    '  "110000": {store: /var/lib/dualtrack/bj, studios_target: 40}\n')  # fmt: skip
    entries = load_provinces(good)
    assert entries["370000"].store.startswith("clickhouse://") and entries["110000"].studios_target == 40
    bad = tmp_path / "bad.yaml"
    bad.write_text('provinces:\n  "370000": /a\n  "999999": /b\n')
    with pytest.raises(
        ConfigError, match=r"provinces file .*bad.yaml: provinces\.999999 \(line 3\): not the GB/T 2260 code"
    ):
        load_provinces(bad)
    bad.write_text('provinces:\n  "370000": {store: /a, target: 5}\n')
    with pytest.raises(ConfigError, match=r"provinces\.370000\.target \(line 2\): unknown key$"):
        load_provinces(bad)


def test_the_page_and_the_workbook_never_read_data_as_markup_or_formulas(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    r = rollup({"370000": [school("SD1", "secondary")]}, {}, {"110000": "<script>alert(1)</script>"}, NOW)
    page = to_html(r)
    assert "<script>" not in page and "&lt;script&gt;" in page
    r["provinces_missing"][0]["reason"] = '=HYPERLINK("http://x")'
    wb = load_workbook(to_xlsx(r, tmp_path / "n.xlsx"))
    cell = wb["missing"]["C2"]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"
    assert wb["national"].max_row == 1 + 1 + 1 + 1  # the header, the country, one level, one province


def test_the_country_is_simulated_as_one_file_per_province(tmp_path: Path) -> None:
    from datetime import date

    from dualtrack.simulate import simulate_country

    files, total = simulate_country(tmp_path, 31, 3, date(2025, 1, 1), 1)
    assert [f.name for f in files][:2] == ["110000-BJ.jsonl", "120000-TJ.jsonl"] and len(files) == 31
    first = json.loads((tmp_path / "370000-SD.jsonl").read_text().splitlines()[0])
    assert first["school_id"].startswith("SD")
    assert total == sum(len(f.read_text().splitlines()) for f in files)
    again = tmp_path / "again"
    simulate_country(again, 31, 3, date(2025, 1, 1), 1)
    assert (again / "650000-XJ.jsonl").read_bytes() == (tmp_path / "650000-XJ.jsonl").read_bytes()
