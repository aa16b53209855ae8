"""The country as provinces on the real server: 31 simulated provinces, each replayed into a database of
its own as its department would, and the Ministry's roll-up over them (`dualtrack report --national`) in
every format, agreeing with each province's own report; the page as a browser shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from documents.report import report_from_store
from dualtrack.replay import replay
from rules.limits import load_rules
from schemas.provinces import PROVINCES
from sinks.base import open_store
from tests.integration.conftest import run_cli


@pytest.fixture()
def country(cli_env: dict[str, str], server_url: str, tmp_path: Path) -> Path:
    """31 provinces of 62 schools in all, one year, each in its own database; the provinces file."""
    folder = tmp_path / "country"
    made = run_cli(
        ["simulate", str(folder), "--scale", "national", "--schools", "62", "--years", "1"], cli_env
    )
    assert made.returncode == 0, made.stderr
    assert "of 31 provinces" in made.stdout
    rules = load_rules()
    lines = ["provinces:"]
    for f in sorted(folder.glob("*.jsonl")):
        url = f"{server_url}_{f.name[:6]}"
        with open_store(url=url) as st:
            replay(st, [f], rules)
        lines.append(f'  "{f.name[:6]}": {{store: "{url}", studios_target: 20}}')
    listing = tmp_path / "provinces.yaml"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


def test_the_ministry_rolls_up_every_province_from_its_own_database(
    country: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    got = run_cli(["report", "--national", "--provinces", str(country), "--format", "json"], cli_env)
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert data["provinces_reporting"] == 31 and data["provinces_missing"] == []
    assert data["national"]["schools"] == 62 and data["national"]["studios_target"] == 31 * 20
    assert sum(lv["schools"] for lv in data["levels"]) == 62
    # each province's line is what that province's own report says of itself now
    rules, now = load_rules(), datetime.now(UTC)
    entries = {line.split('"')[1]: line.split('store: "')[1].split('"')[0]
               for line in country.read_text().splitlines()[1:]}  # fmt: skip
    for p in data["provinces"]:
        with open_store(url=entries[p["code"]]) as st:
            own = report_from_store(st, rules, now)["province"]
        assert p["schools"] == own["schools"], p["code"]
        assert p["students"] == pytest.approx(own["students"], abs=0.01), p["code"]
        assert p["full_time_teachers"] == own["full_time_teachers"], p["code"]
        assert (p["studios_active"], p["studios_compliant"]) == (
            own["studios_active"],
            own["studios_compliant"],
        )
        assert p["green_share"] == pytest.approx(own["green_share"], abs=0.0001), p["code"]
    assert sum(p["students"] for p in data["provinces"]) == pytest.approx(
        data["national"]["students"], abs=0.1
    )

    for fmt in ("table", "html", "xlsx"):
        target = tmp_path / f"national.{fmt}"
        done = run_cli(["report", "--national", "--provinces", str(country), "--format", fmt, "-o", str(target)],
                       cli_env)  # fmt: skip
        assert done.returncode == 0 and target.stat().st_size > 0, done.stderr
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "national.xlsx")["national"]
    assert sheet.max_row == 1 + 1 + len(data["levels"]) + 31
    assert "山东省" in (tmp_path / "national.table").read_text(encoding="utf-8")

    wrong = run_cli(["report", "--national", "--provinces", str(country), "--as-of", "2025-01-01T00:00:00+08:00"],
                    cli_env)  # fmt: skip
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr


def test_a_province_whose_store_is_down_is_reported_missing_and_the_others_still_count(
    country: Path, cli_env: dict[str, str]
) -> None:
    text = country.read_text()
    code = PROVINCES[0].code
    broken = country.with_name("broken.yaml")
    line = next(x for x in text.splitlines() if x.startswith(f'  "{code}"'))
    broken.write_text(text.replace(line, f'  "{code}": "clickhouse://nobody:wrong@127.0.0.1:1/none"'))
    got = run_cli(
        ["report", "--national", "--provinces", str(broken), "--format", "json"], cli_env, timeout=180
    )
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert data["provinces_reporting"] == 30 and [m["code"] for m in data["provinces_missing"]] == [code]
    assert "wrong" not in got.stdout  # the reason never carries the password


def test_the_national_page_in_a_browser(country: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    from documents.briefing import Chromium, ChromiumNotFound

    page_file = tmp_path / "national.html"
    assert run_cli(["report", "--national", "--provinces", str(country), "--format", "html", "-o", str(page_file)],
                   cli_env).returncode == 0  # fmt: skip
    try:
        browser = Chromium()
    except ChromiumNotFound:
        pytest.skip("headless Chromium is not installed")
    with browser:
        page = browser.new_page(1366, 900)
        page.load(page_file.read_text(encoding="utf-8"))
        rows = page.evaluate("document.querySelectorAll('tbody tr').length")
        title = page.evaluate("document.querySelector('h1').textContent")
        shot = page.screenshot(full_page=True)
    assert rows >= 1 + 31 and "全国" in title
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    (tmp_path / "national.png").write_bytes(shot)
