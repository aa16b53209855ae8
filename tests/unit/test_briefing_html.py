"""The HTML briefing as a reader and a security reviewer see its markup (the browser tests see its pixels)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from documents.briefing import render_html
from documents.briefing.markup import SCRIPT
from foundation.messages import MESSAGES
from tests.fixtures.briefing.sample import (
    HOSTILE_ID,
    HOSTILE_NAME,
    HOSTILE_STUDIO,
    example_briefing,
    hostile_briefing,
    simulated_briefing,
    without_history,
)


class Page(HTMLParser):
    """Elements with their attributes, scripts, and the visible text (not inside script/style/template)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._hidden = 0
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style", "template"):
            self._hidden += 1
            self._in_script = tag == "script"
            if self._in_script:
                self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self._hidden -= 1
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif not self._hidden:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(self.text)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.elements if t == tag]


@pytest.fixture(scope="module")
def zh() -> str:
    return render_html(simulated_briefing())


@pytest.fixture(scope="module")
def en() -> str:
    return render_html(simulated_briefing(), lang="en")


def test_chinese_by_default_english_on_request(zh: str, en: str) -> None:
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    assert "是否按计划推进？" in Page(zh).visible and "Are we on track?" in Page(en).visible
    assert "数据截至 2025年12月31日 23:59（北京时间）" in Page(zh).visible
    assert "Data as of 31 Dec 2025 23:59 CST" in Page(en).visible


def test_the_english_page_has_no_untranslated_chinese(en: str) -> None:
    """Only the names of the plans and documents stay in Chinese (as an English reader would cite them)."""
    text = Page(en).visible
    for proper_name in ("达标工程", "教发〔2004〕2号"):
        text = text.replace(proper_name, "")
    assert re.findall(r"[\u4e00-\u9fff]+", text) == []


def test_page_one_answers_whether_we_are_on_track(zh: str) -> None:
    page = Page(zh)
    cards = [a for a in page.all("article") if "kpi" in (a.get("class") or "")]
    assert [a["data-kpi"] for a in cards] == ["studios", "green_share", "dual_share", "ratio"]
    verdicts = {MESSAGES["zh-CN"][k] for k in ("mark.on_track", "mark.off_track", "mark.not_judged")}
    # the verdict is said in words and symbols, not by colour alone
    card_html = re.findall(r'<article class="kpi[^"]*".*?</article>', zh)
    for html in card_html:
        assert any(v in html for v in verdicts)
        assert "较上月" in html and "较去年同期" in html
    for target in (
        "目标约 500 个",
        "达标工程 90%（2025年底）",
        "山东方案 100%",
        "目标 50%",
        "限值 20（中职、技工院校）",
    ):
        assert target in zh
    assert zh.index('id="on-track"') < zh.index('id="rollups"')


def test_without_history_changes_say_no_data() -> None:
    html = render_html(without_history(example_briefing()))
    cards = re.findall(r'<article class="kpi[^"]*".*?</article>', html)
    assert len(cards) == 4 and all(c.count("无数据") == 2 for c in cards)
    assert "无月度数据" in html  # the trend charts say so rather than draw nothing


def test_every_school_is_shown_with_its_name(zh: str) -> None:
    b = simulated_briefing()
    text = Page(zh).visible
    for s in b.report["schools"]:
        assert s["school_id"] in text and b.schools[s["school_id"]].name in text


def test_worst_first_lists_lead_with_the_largest_needs(zh: str) -> None:
    table = re.search(r'<table class="sortable t-shortfalls">.*?</table>', zh, re.S)
    assert table is not None
    needed = [
        float(v) for v in re.findall(r'<td class="num" data-v="([^"]+)">[^<]*</td></tr>', table.group(0))
    ]
    assert needed == sorted(needed, reverse=True) and len(needed) == 20
    assert "仅列出前 20 项，共 33 项" in zh
    assert "较上月新增的红牌学校" in zh and "不合规的技能大师工作室及原因" in zh
    assert "成员少于 3 人" in zh  # reason codes are translated


def test_a_city_report_contains_only_that_citys_schools() -> None:
    b = simulated_briefing()
    for lang in ("zh-CN", "en"):
        html = render_html(b, lang=lang, city="qingdao")
        for s in b.report["schools"]:
            name = b.schools[s["school_id"]].name
            if s["city"] == "qingdao":
                assert s["school_id"] in html and name in html
            else:
                assert s["school_id"] not in html and name not in html, s["school_id"]
        assert [a.get("data-city") for a in Page(html).all("section") if a.get("data-city")] == ["qingdao"]
    assert "青岛职业院校师资队伍简报" in render_html(b, city="qingdao")


def test_nothing_is_fetched_and_only_our_script_runs(zh: str) -> None:
    page = Page(zh)
    assert page.scripts == [SCRIPT]
    assert not page.all("link") and not page.all("img") and not page.all("iframe")
    assert all(not any(k == "src" for k in attrs) for _, attrs in page.elements)
    assert all((a.get("href") or "").startswith("#") for a in page.all("a"))
    assert "@import" not in zh and "url(http" not in zh and "//fonts." not in zh
    csp = next(a["content"] for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and "default-src 'none'" in csp and "script-src 'sha256-" in csp


def test_charts_are_inline_svg_labelled_and_patterned(zh: str) -> None:
    svgs = re.findall(r"<svg .*?</svg>", zh, re.S)
    assert len(svgs) >= 9  # four headline charts, the city chart, four trends
    for svg in svgs:
        assert "<title" in svg and "<script" not in svg and " on" not in re.sub(r"<text.*?</text>", "", svg)
    # a missed target is drawn with a hatch pattern, not only in another colour
    green = next(s for s in svgs if "全部指标达标的学校占比" in s)
    assert 'fill="url(#' in green and "达标工程 90%（2025年底）" in green and "山东方案 100%" in green


def test_data_is_never_markup() -> None:
    html = render_html(hostile_briefing())
    page = Page(html)
    assert page.scripts == [SCRIPT]
    assert not page.all("img")
    assert "<script>alert" not in html and "<img src=x" not in html
    text = page.visible
    assert HOSTILE_ID in text and HOSTILE_NAME in text and HOSTILE_STUDIO in text  # shown as the text it is
    # and in the PDF's running header and footer, which Chromium renders as HTML too
    templates = re.findall(r"<template.*?</template>", html, re.S)
    assert len(templates) == 2 and all("<script" not in t for t in templates)


def test_alert_history_restated_by_late_data_is_shown_with_when_it_happened_and_became_known() -> None:
    from dataclasses import replace
    from datetime import datetime

    from documents.briefing.data import Restated

    b = example_briefing()
    school = b.report["schools"][0]["school_id"]
    t = datetime.fromisoformat
    late = Restated(school, "ratio_shortfall", 3, t("2025-10-21T10:00:00+08:00"), t("2025-11-02T10:00:00+08:00"),
                    t("2025-12-01T09:00:00+08:00"))  # fmt: skip
    assert "迟到数据重述" not in " ".join(Page(render_html(b)).text)  # nothing restated: no table
    en = " ".join(Page(render_html(replace(b, restated=[late]), "en")).text)
    assert "Alert history restated by late data (not told as news)" in en
    assert (
        "Student-teacher ratio above the limit" in en
        and "21 Oct 2025 – 2 Nov 2025" in en
        and "1 Dec 2025" in en
    )
    zh = " ".join(Page(render_html(replace(b, restated=[late]))).text)
    assert "生师比超过限值" in zh and "2025年12月1日" in zh
