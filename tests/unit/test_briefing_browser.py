"""The briefing in a real headless Chromium: what a reader sees on a desktop screen and on A4 paper.

Skipped, saying why, where no Chromium is installed. Set DUALTRACK_SCREENSHOTS=DIR to keep the
screenshots these tests take, to look at them.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from documents.briefing import Chromium, ChromiumNotFound, Page, find_chromium, render_html, render_pdf
from foundation.errors import DualtrackError
from tests.fixtures.briefing.sample import simulated_briefing

try:
    find_chromium()
    HAVE_CHROMIUM = True
except ChromiumNotFound:
    HAVE_CHROMIUM = False
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM, reason="headless Chromium is not installed (Debian: apt-get install chromium)"
)
needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None,
    reason="pdftotext is not installed (Debian: apt-get install poppler-utils)",
)

DESKTOP = (1366, 900)
A4 = (794, 1123)  # 210 × 297 mm at 96 px per inch


# --- a PNG reader (8-bit, non-interlaced: what Chromium writes) ----------------------------------


def grey_rows(png: bytes) -> list[list[int]]:
    """The image as rows of grey levels 0-255."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, chunk = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0, (depth, interlace)
    n = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride = zlib.decompress(bytes(idat)), width * n
    prev, out = bytearray(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - n] if i >= n else 0
            b, c = prev[i], prev[i - n] if i >= n else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        if n >= 3:
            out.append(
                [(299 * line[i] + 587 * line[i + 1] + 114 * line[i + 2]) // 1000 for i in range(0, stride, n)]
            )
        else:
            out.append(list(line[::n]))
    return out


def ink(rows: list[list[int]]) -> float:
    """The share of pixels that are not (near) white."""
    pixels = [v for row in rows for v in row]
    return sum(1 for v in pixels if v < 200) / len(pixels)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if not HAVE_CHROMIUM:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("DUALTRACK_SCREENSHOTS")
    folder = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser: Chromium, html: str, size: tuple[int, int], media: str = "screen") -> Page:
    page = browser.new_page(*size)
    page.emulate_media(media)
    page.load(html)
    return page


def clip(page: Page, selector_index: tuple[str, int]) -> bytes:
    """A screenshot of the `n`th element matching a CSS selector."""
    selector, n = selector_index
    box = page.evaluate(
        f"(() => {{ const r = document.querySelectorAll({selector!r})[{n}].getBoundingClientRect();"
        " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })()"
    )
    data = page.send(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**box, "scale": 1}},
    )["data"]
    return base64.b64decode(data)


CASES = [
    pytest.param("zh-CN", DESKTOP, "screen", id="zh-desktop"),
    pytest.param("en", DESKTOP, "screen", id="en-desktop"),
    pytest.param("zh-CN", A4, "print", id="zh-a4"),
    pytest.param("en", A4, "print", id="en-a4"),
]


# --- layout and charts ----------------------------------------------------------------------------


@needs_chromium
@pytest.mark.parametrize(("lang", "size", "media"), CASES)
def test_nothing_overflows_the_page(
    browser: Chromium, shots: Path, lang: str, size: tuple[int, int], media: str
) -> None:
    page = open_page(browser, render_html(simulated_briefing(), lang=lang), size, media)
    (shots / f"{lang}-{media}-{size[0]}.png").write_bytes(page.screenshot(full_page=True))
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    wide: list[Any] = page.evaluate(
        "Array.from(document.querySelectorAll('table, svg, .kpi, figure'))"
        f".filter(e => e.getBoundingClientRect().right > {width} + 0.5)"
        ".map(e => e.tagName + ' ' + (e.className.baseVal ?? e.className) + ' ' + e.getBoundingClientRect().right)"
    )
    assert wide == []
    # the four headline cards sit two by two on page one, on a screen and on paper alike
    tops = page.evaluate(
        "Array.from(document.querySelectorAll('.kpi')).map(e => Math.round(e.getBoundingClientRect().top))"
    )
    assert len(tops) == 4 and tops[0] == tops[1] and tops[2] == tops[3] and tops[2] > tops[0]


@needs_chromium
@pytest.mark.parametrize(("lang", "size", "media"), CASES[:1] + CASES[2:3])
def test_every_chart_is_drawn(
    browser: Chromium, shots: Path, lang: str, size: tuple[int, int], media: str
) -> None:
    page = open_page(browser, render_html(simulated_briefing(), lang=lang), size, media)
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('svg.chart')).map(e => [e.getBoundingClientRect().width,"
        " e.getBoundingClientRect().height])"
    )
    assert len(sizes) == 9
    for n, (w, h) in enumerate(sizes):
        assert w > 200 and h > 40, n
        png = clip(page, ("svg.chart", n))
        (shots / f"chart-{media}-{n}.png").write_bytes(png)
        rows = grey_rows(png)
        assert 0.01 < ink(rows) < 0.6, n  # lines, bars and labels, not a blank (or black) box
        assert len({v // 16 for row in rows for v in row}) >= 4, n


@needs_chromium
def test_a_missed_target_reads_in_grey(browser: Chromium) -> None:
    """An off-track bar is hatched: across it the grey level alternates, so no colour is needed."""
    page = open_page(browser, render_html(simulated_briefing()), DESKTOP)
    widths = page.evaluate(
        "Array.from(document.querySelectorAll('rect[fill^=\"url(\"]')).map(r => r.getBoundingClientRect().width)"
    )
    assert widths, "no hatched bar: the sample province misses targets, so there should be some"
    rows = grey_rows(clip(page, ('rect[fill^="url("]', widths.index(max(widths)))))
    middle = rows[len(rows) // 2][2:-2]
    changes = sum(1 for a, b in pairwise(middle) if (a < 150) != (b < 150))
    assert changes >= 4, middle


@needs_chromium
def test_tables_sort_by_their_numbers_and_their_names(browser: Chromium) -> None:
    page = open_page(browser, render_html(simulated_briefing(), lang="en"), DESKTOP)
    column = (
        "Array.from(document.querySelector('table.t-by_city').tBodies[0].rows).map(r => r.cells[{n}].{what})"
    )
    ratio_th = "document.querySelectorAll('table.t-by_city thead th')[4]"
    before = page.evaluate(column.format(n=0, what="textContent"))
    page.evaluate(f"{ratio_th}.click()")
    ratios = [float(v) for v in page.evaluate(column.format(n=4, what="dataset.v"))]
    assert ratios == sorted(ratios) and page.evaluate(f"{ratio_th}.getAttribute('aria-sort')") == "ascending"
    page.evaluate(f"{ratio_th}.dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter'}}))")
    assert [float(v) for v in page.evaluate(column.format(n=4, what="dataset.v"))] == sorted(
        ratios, reverse=True
    )
    page.evaluate("document.querySelectorAll('table.t-by_city thead th')[0].click()")
    assert page.evaluate(column.format(n=0, what="textContent")) == sorted(before)


# --- the PDF --------------------------------------------------------------------------------------


def pdf_pages(path: Path) -> list[str]:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")[:-1]


@pytest.fixture(scope="module")
def zh_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_CHROMIUM:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    return render_pdf(render_html(simulated_briefing()), tmp_path_factory.mktemp("pdf") / "briefing.pdf")


@needs_chromium
def test_the_pdf_is_a4(zh_pdf: Path) -> None:
    data = zh_pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    boxes = set(re.findall(rb"/MediaBox \[([^\]]+)\]", data))
    assert boxes and all([round(float(v)) for v in box.split()] == [0, 0, 595, 842] for box in boxes)


@needs_chromium
@needs_pdftotext
def test_every_pdf_page_has_its_number_and_the_as_of_time(zh_pdf: Path) -> None:
    pages = pdf_pages(zh_pdf)
    assert len(pages) > 5
    for n, text in enumerate(pages, start=1):
        flat = re.sub(r"\s+", " ", text)
        assert f"第 {n} 页，共 {len(pages)} 页" in flat, n
        assert "数据截至 2025年12月31日 23:59（北京时间）" in flat, n


@needs_chromium
@needs_pdftotext
def test_page_one_of_the_pdf_answers_are_we_on_track(zh_pdf: Path) -> None:
    first = re.sub(r"\s+", "", pdf_pages(zh_pdf)[0])
    for title in ("是否按计划推进？", "技能大师工作室（合规）", "全部指标达标的学校占比", "双师型教师占专业课教师比例",
                  "生师比", "本期需要处理的事项"):  # fmt: skip
        assert title in first
    assert "分组汇总" not in first  # the roll-ups start on page two


@needs_chromium
@needs_pdftotext
def test_an_english_city_pdf_has_only_that_city(tmp_path: Path) -> None:
    b = simulated_briefing()
    pdf = render_pdf(render_html(b, lang="en", city="weihai"), tmp_path / "weihai.pdf")
    pages = pdf_pages(pdf)
    text = " ".join(pages)
    assert f"Page 1 of {len(pages)}" in text and "Data as of 31 Dec 2025 23:59 CST" in text
    ids = set(re.findall(r"SD\d{5}", text))
    assert ids == {s["school_id"] for s in b.report["schools"] if s["city"] == "weihai"}


def test_without_chromium_the_pdf_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ChromiumNotFound, match="apt-get install chromium") as err:
        render_pdf("<p>x</p>", tmp_path / "x.pdf")
    assert isinstance(err.value, DualtrackError)
    with pytest.raises(ChromiumNotFound):
        render_pdf("<p>x</p>", tmp_path / "x.pdf", executable=tmp_path / "no-such-chromium")
    assert not (tmp_path / "x.pdf").exists()


def revised_briefing() -> Any:
    """The simulated briefing with a publication whose figures have since moved: the one of a month
    earlier stands in for "as published", with late events from some of its schools."""
    import dataclasses

    from documents.briefing.revisions import revision
    from rules.limits import Revisions
    from rules.reporting import Owed

    b = simulated_briefing()
    when, published = b.monthly[-2]
    late = {s["school_id"]: 3 for s in published["schools"][:12]}
    moved = revision(published, b.report, late, Revisions(), (when, when, when))
    statuses = ("on_time", "on_time", "late", "missing")
    reporting = [
        Owed("2025-autumn", s["school_id"], s["city"], "", s["level"], statuses[i % 4], None)
        for i, s in enumerate(b.report["schools"])
    ]
    return dataclasses.replace(b, revisions=[moved], reporting=reporting)


@needs_chromium
@pytest.mark.parametrize(("lang", "size", "media"), [CASES[0], CASES[3]])
def test_the_revisions_and_reporting_sections_read_on_screen_and_paper(
    browser: Chromium, shots: Path, lang: str, size: tuple[int, int], media: str
) -> None:
    b = revised_briefing()
    assert b.revisions[0].schools and b.revisions[0].headline, "nothing moved: the page shows nothing"
    page = open_page(browser, render_html(b, lang=lang), size, media)
    (shots / f"revisions-{lang}-{media}.png").write_bytes(clip(page, ("#revisions", 0)))
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    rows = page.evaluate("document.querySelectorAll('#revisions table tbody tr').length")
    assert rows >= 3  # the publication, a headline figure, a school
    heading = page.evaluate("document.querySelector('#revisions h2').textContent")
    assert heading == ("修订说明" if lang == "zh-CN" else "Revisions")
    (shots / f"reporting-{lang}-{media}.png").write_bytes(clip(page, ("#reporting", 0)))
    heading = page.evaluate("document.querySelector('#reporting h2').textContent")
    assert heading == ("数据报送情况" if lang == "zh-CN" else "Reporting")
    missing = page.evaluate(
        "document.querySelectorAll('#reporting table')[1].querySelectorAll('tbody tr').length"
    )
    assert missing == len([o for o in b.reporting if o.status == "missing"])
