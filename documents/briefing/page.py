"""The briefing as one self-contained HTML page: page one answers "are we on track?", then roll-ups,
worst-first lists, trends and one section per city. No network: inline CSS, inline SVG, one hashed script."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from documents.briefing import charts
from documents.briefing import figures as fig
from documents.briefing import tables as tab
from documents.briefing.data import CITY_CIRCLE, Briefing
from documents.briefing.i18n import Translator
from documents.briefing.markup import CSS, SCRIPT, csp_hash, e, table_html

#: rows shown in the province-wide worst-first lists (the city sections and the workbook have them all)
TOP = 20
#: the natural widths of the charts: about half the A4 column, so that they print at their size
_KPI_WIDTH, _TREND_WIDTH, _WIDE = 330, 400, 600
_VERDICT = {True: ("on", "mark.on_track"), False: ("off", "mark.off_track"), None: ("na", "mark.not_judged")}


def _ids() -> Callable[[], str]:
    counter = iter(range(1, 1_000_000))
    return lambda: f"c{next(counter)}"


def _label_width(labels: list[str]) -> int:
    """Room for bar labels: CJK characters are about twice as wide as Latin ones."""
    widest = max((sum(12.5 if ord(ch) > 0x2E80 else 6.8 for ch in label) for label in labels), default=40)
    return int(min(max(widest + 12, 48), 200))


class _Page:
    def __init__(self, b: Briefing, tr: Translator, city: str | None) -> None:
        self.b, self.tr, self.city = b, tr, city
        self.uid = _ids()
        self.schools = fig.in_scope(b.report, city)

    # --- page one ----------------------------------------------------------------------------------

    def fmt(
        self, name: str, value: float | None, infinite: bool = False, against: float | None = None
    ) -> str:
        tr = self.tr
        if name == "studios":
            return tr.num(value)
        if name == "ratio":
            return tr.ratio(value, infinite=infinite, against=against)
        return tr.pct(value, against=against)

    def kpi_chart(self, k: fig.Kpi) -> str:
        tr, title = self.tr, self.tr.text(f"kpi.{k.name}")
        if k.name == "ratio":
            items = [
                charts.Bar(
                    tr.code("level", p.code),
                    p.value,
                    tr.ratio(p.value, infinite=p.value is None, against=p.limit),
                    p.ok,
                    p.limit,
                )
                for p in k.parts
            ]
            top = max([p.value or 0 for p in k.parts] + [p.limit or 0 for p in k.parts] + [1.0]) * 1.12
            width = _label_width([i.label for i in items])
            note = tr.text("chart.limit_tick")
            return charts.bars(
                items, [], top, title, self.uid(), width=_KPI_WIDTH, label_width=width, note=note
            )
        if k.name == "studios":
            # only the compliant studios count towards the target; the active ones are context
            items = [
                charts.Bar(
                    tr.text(f"part.{p.code}_label"),
                    p.value,
                    tr.num(p.value),
                    None if self.city or p.code == "active" else p.ok,
                    light=p.code == "active",
                )
                for p in k.parts
            ]
            rules = [] if self.city else [charts.Rule(k.marks[0].value, self.mark_label(k.marks[0], k.name))]
            top = max([p.value or 0 for p in k.parts] + [r.value for r in rules] + [1.0]) * 1.08
            width = _label_width([i.label for i in items])
            return charts.bars(items, rules, top, title, self.uid(), width=_KPI_WIDTH, label_width=width)
        item = charts.Bar(
            tr.text("series.province") if self.city is None else tr.code("city", self.city),
            k.value,
            self.fmt(k.name, k.value, against=k.marks[0].value),
            k.on_track,
        )
        rules = [charts.Rule(m.value, self.mark_label(m, k.name)) for m in k.marks]
        return charts.bars(
            [item], rules, 1.0, title, self.uid(), width=_KPI_WIDTH, label_width=_label_width([item.label])
        )

    def mark_label(self, m: fig.Mark, name: str) -> str:
        tr = self.tr
        if m.key == "target.ratio":
            levels = tr.join(tr.code("level", lv) for lv in m.levels)
            return tr.text(m.key, value=tr.num(m.value), levels=levels)
        value = tr.num(m.value) if name in ("studios", "studios_compliant") else tr.pct(m.value, places=0)
        return tr.text(m.key, value=value)

    def kpi_card(self, k: fig.Kpi) -> str:
        tr = self.tr
        cls, verdict = _VERDICT[k.on_track]
        against = k.marks[0].value if k.marks and k.name != "ratio" else None
        lines = []
        if k.name == "studios":
            lines = [tr.text(f"part.{p.code}", value=tr.num(p.value)) for p in k.parts]
            lines.append(
                tr.text("kpi.studios_city_note", target=tr.num(k.marks[0].value))
                if self.city
                else self.mark_label(k.marks[0], k.name)
            )
        elif k.name == "ratio":
            lines = [
                tr.text(
                    "part.level_ratio",
                    level=tr.code("level", p.code),
                    value=tr.ratio(p.value, infinite=p.value is None, against=p.limit),
                    limit=tr.num(p.limit),
                )
                + " "
                + tr.text(_VERDICT[p.ok][1])
                for p in k.parts
            ]
        else:
            oks = {p.code: p.ok for p in k.parts}
            for m in k.marks:
                ok = oks.get(m.key.removeprefix("target."), k.on_track)
                lines.append(f"{self.mark_label(m, k.name)} {tr.text(_VERDICT[ok][1])}")
        kind = {"studios": "int", "ratio": "ratio"}.get(k.name, "pct")
        changes = "".join(
            f"<dt>{e(tr.text(key))}</dt><dd>{e(tr.change(k.value, before, kind, k.higher_is_better))}</dd>"
            for key, before in (("change.month", k.previous_month), ("change.year", k.previous_year))
        )
        items = "".join(f"<li>{e(line)}</li>" for line in lines)
        return (
            f'<article class="kpi {cls}" data-kpi="{e(k.name)}"><h3>{e(tr.text(f"kpi.{k.name}"))}</h3>'
            f'<p class="now"><span class="value">{e(self.fmt(k.name, k.value, k.infinite, against))}</span>'
            f'<span class="verdict {cls}">{e(tr.text(verdict))}</span></p>'
            f'<ul>{items}</ul><dl class="changes">{changes}</dl>{self.kpi_chart(k)}</article>'
        )

    def actions(self, kpis: list[fig.Kpi]) -> str:
        tr, b = self.tr, self.b
        out = []
        short = fig.ratio_shortfalls(self.schools, b.targets.ratio_limits)
        if short:
            out.append(
                tr.text(
                    "act.teachers", schools=tr.num(len(short)), teachers=tr.num(sum(f.needed for f in short))
                )
            )
        else:
            out.append(tr.text("act.teachers_none"))
        red = fig.red_schools(self.schools, b.previous_month)
        if b.previous_month is None:
            out.append(tr.text("act.red_no_history", red=tr.num(len(red))))
        else:
            out.append(tr.text("act.red", red=tr.num(len(red)), new=tr.num(sum(1 for r in red if r.new))))
        n, target = len(self.schools), b.targets.green_share_plan
        green = sum(1 for s in self.schools if s["status"] == "green")
        needed = -(-round(target * n * 10_000) // 10_000) - green  # ceil(target × n) without float noise
        if needed > 0:
            out.append(tr.text("act.green_gap", schools=tr.num(needed), target=tr.pct(target, places=0)))
        elif n:
            out.append(tr.text("act.green_met", target=tr.pct(target, places=0)))
        studios = fig.noncompliant_studios(b.studios, {s["school_id"] for s in self.schools})
        if studios:
            reason, _ = (
                Counter(r for st in studios for r in st.reasons).most_common(1)[0]
                if any(st.reasons for st in studios)
                else (None, 0)
            )
            out.append(tr.text("act.studios", count=tr.num(len(studios)), reason=tr.code("reason", reason)))
        else:
            out.append(tr.text("act.studios_none"))
        items = "".join(f"<li>{e(line)}</li>" for line in out)
        return f'<h3>{e(tr.text("sec.actions"))}</h3><ul class="actions">{items}</ul>'

    def page_one(self) -> str:
        kpis = fig.headline(self.b, self.city)
        cards = "".join(self.kpi_card(k) for k in kpis)
        return (
            f'<section id="on-track" class="page-one"><h2>{e(self.tr.text("sec.on_track"))}</h2>'
            f'<div class="kpis">{cards}</div>{self.actions(kpis)}</section>'
        )

    # --- the rest ----------------------------------------------------------------------------------

    def rollups(self) -> str:
        tr = self.tr
        groups = fig.rollups(self.b, self.city)
        parts = [
            f'<section id="rollups"><h2>{e(tr.text("sec.rollups"))}</h2>',
            f'<p class="note sort-hint">{e(tr.text("doc.sort_hint"))}</p>',
        ]
        for kind, name in (("circle", "by_circle"), ("level", "by_level"), ("city", "by_city")):
            if kind == "city" and len(groups["city"]) > 1:
                parts.append(self.green_by_city(groups["city"]))
            parts.append(
                table_html(tab.rollup_table(name, kind, groups[kind], tr), tr, tr.text(f"table.{name}"))
            )
        parts.append("</section>")
        return "".join(parts)

    def green_by_city(self, groups: list[fig.Group]) -> str:
        tr, tg = self.tr, self.b.targets
        items = [
            charts.Bar(
                tr.code("city", g.code),
                g.totals.green_share,
                tr.pct(g.totals.green_share),
                None if g.totals.green_share is None else g.totals.green_share >= tg.green_share_plan,
            )
            for g in groups
        ]
        rules = [
            charts.Rule(
                tg.green_share_plan, tr.text("target.plan", value=tr.pct(tg.green_share_plan, places=0))
            ),
            charts.Rule(
                tg.green_share_shandong,
                tr.text("target.shandong", value=tr.pct(tg.green_share_shandong, places=0)),
            ),
        ]
        title = tr.text("chart.green_by_city")
        svg = charts.bars(
            items,
            rules,
            1.0,
            title,
            self.uid(),
            width=_WIDE,
            row=20,
            label_width=_label_width([i.label for i in items]),
        )
        return f"<figure><figcaption><strong>{e(title)}</strong></figcaption>{svg}</figure>"

    def worst(self) -> str:
        tr, b = self.tr, self.b
        short = fig.ratio_shortfalls(self.schools, b.targets.ratio_limits)
        red = fig.red_schools(self.schools, b.previous_month)
        new = [r for r in red if r.new]
        studios = fig.noncompliant_studios(b.studios, {s["school_id"] for s in self.schools})
        total = tr.text("table.shortfall_total", teachers=tr.num(sum(f.needed for f in short)))
        parts = [
            f'<section id="worst"><h2>{e(tr.text("sec.worst"))}</h2>',
            table_html(tab.shortfall_table(short, b, tr), tr, tr.text("table.shortfalls"), TOP, total),
        ]
        if b.previous_month is not None:
            parts.append(table_html(tab.red_table(new, b, tr, "new_red"), tr, tr.text("table.new_red")))
        parts.append(table_html(tab.red_table(red, b, tr), tr, tr.text("table.red"), TOP))
        parts.append(table_html(tab.studio_table(studios, b, tr), tr, tr.text("table.studios"), TOP))
        restated = [r for r in b.restated if r.school_id in {s["school_id"] for s in self.schools}]
        if restated:
            parts.append(table_html(tab.restated_table(restated, b, tr), tr, tr.text("table.restated"), TOP))
        parts.append("</section>")
        return "".join(parts)

    def revisions(self) -> str:
        """修订说明 / Revisions: what each publication said and what is known now (docs/domain.md)."""
        tr, b = self.tr, self.b
        parts = [f'<section id="revisions"><h2>{e(tr.text("sec.revisions"))}</h2>']
        if not b.revisions:
            parts.append(f'<p class="empty">{e(tr.text("rev.none"))}</p></section>')
            return "".join(parts)
        ids = {s["school_id"] for s in self.schools}
        publications, headline, schools = tab.revision_tables(b.revisions, b, tr, ids)
        parts.append(f'<p class="note">{e(tr.text("rev.note"))}</p>')
        parts.append(table_html(publications, tr, tr.text("table.revisions")))
        parts.append(table_html(headline, tr, tr.text("table.revised_headline")))
        parts.append(table_html(schools, tr, tr.text("table.revised_schools")))  # all: the point of it
        parts.append("</section>")
        return "".join(parts)

    def reporting(self) -> str:
        """数据报送情况 / Reporting: who sent the term's enrollment report on time, late, or not yet."""
        tr, b = self.tr, self.b
        ids = {s["school_id"] for s in self.schools}
        summary, missing = tab.reporting_tables(b.reporting, b, tr, ids)
        return (
            f'<section id="reporting"><h2>{e(tr.text("sec.reporting"))}</h2>'
            f'<p class="note">{e(tr.text("rep.note"))}</p>'
            f"{table_html(summary, tr, tr.text('table.reporting'))}"
            f"{table_html(missing, tr, tr.text('table.missing_reports'))}</section>"
        )

    def trends(self) -> str:
        tr = self.tr
        if not self.b.monthly:  # one line says it; four empty frames would only take a page
            return (
                f'<section id="trends"><h2>{e(tr.text("sec.trends"))}</h2>'
                f'<p class="note">{e(tr.text("chart.no_data"))}</p></section>'
            )
        figures = []
        for t in fig.trends(self.b, self.city):
            title = tr.text(f"trend.{t.metric}")
            fmt = self._trend_format(t.metric)
            series = [charts.LineSeries(tr.series(s.code), s.points) for s in t.series]
            rules = [charts.Rule(m.value, self.mark_label(m, t.metric)) for m in t.marks]
            svg = charts.line_chart(
                series,
                [tr.month(m, short=True) for m in t.months],
                rules,
                title,
                self.uid(),
                fmt,
                tr.text("chart.no_data"),
                floor_zero=t.metric == "studios_compliant",
                ceiling=1.0 if t.metric.endswith("_share") else None,
                width=_TREND_WIDTH,
            )
            figures.append(f"<figure><figcaption>{e(title)}</figcaption>{svg}</figure>")
        months = [m for m, _ in self.b.monthly]
        period = f"{tr.month(months[0])} – {tr.month(months[-1])}" if months else tr.text("chart.no_data")
        return (
            f'<section id="trends"><h2>{e(tr.text("sec.trends"))}</h2><p class="note">{e(period)}</p>'
            f'<div class="trends">{"".join(figures)}</div></section>'
        )

    def _trend_format(self, metric: str) -> Callable[[float], str]:
        if metric in ("green_share", "dual_share"):
            return lambda v: self.tr.pct(v, places=0)
        if metric == "ratio":
            return lambda v: self.tr.num(v, 1)
        return lambda v: self.tr.num(v)

    def city_sections(self) -> Iterator[str]:
        tr, b = self.tr, self.b
        yield f'<section id="cities"><h2>{e(tr.text("sec.cities"))}</h2>'
        for code in fig.cities(b, self.city):
            schools = fig.in_scope(b.report, code)
            t = fig.totals(schools)
            heading = tr.text(
                "city.heading", city=tr.code("city", code), circle=tr.code("circle", CITY_CIRCLE.get(code))
            )
            summary = tr.text(
                "city.summary",
                schools=tr.num(t.schools),
                students=tr.num(t.students, 1),
                fte=tr.num(t.fte_teachers, 1),
                ratio=tr.ratio(t.ratio, infinite=t.ratio_infinite),
                dual=tr.pct(t.dual_share),
                green=tr.pct(t.green_share),
                red=tr.num(t.red),
            )
            short = fig.ratio_shortfalls(schools, b.targets.ratio_limits)
            studios = fig.noncompliant_studios(b.studios, {s["school_id"] for s in schools})
            total = tr.text("table.shortfall_total", teachers=tr.num(sum(f.needed for f in short)))
            yield (
                f'<section class="city" id="city-{e(code)}" data-city="{e(code)}"><h3>{e(heading)}</h3>'
                f"<p>{e(summary)}</p>"
                + table_html(tab.school_table(schools, b, tr, tab.CITY_COLUMNS), tr, tr.text("table.schools"))
                + table_html(tab.shortfall_table(short, b, tr), tr, tr.text("table.shortfalls"), note=total)
                + table_html(tab.studio_table(studios, b, tr), tr, tr.text("table.studios"))
                + f'<p class="back"><a href="#top">{e(tr.text("city.back"))}</a></p></section>'
            )
        yield "</section>"

    # --- the document ------------------------------------------------------------------------------

    def title(self) -> str:
        if self.city is None:
            return self.tr.text("doc.title")
        return self.tr.text("doc.title_city", city=self.tr.code("city", self.city))

    def header(self) -> str:
        tr, b = self.tr, self.b
        if self.city is None:
            scope = tr.text("doc.scope", cities=tr.num(len(fig.cities(b))), schools=tr.num(len(self.schools)))
        else:
            scope = tr.text(
                "doc.scope_city",
                city=tr.code("city", self.city),
                circle=tr.code("circle", CITY_CIRCLE.get(self.city)),
                schools=tr.num(len(self.schools)),
            )
        toc = [
            ("on-track", "sec.on_track"),
            ("rollups", "sec.rollups"),
            ("worst", "sec.worst"),
            ("revisions", "sec.revisions"),
            ("reporting", "sec.reporting"),
            ("trends", "sec.trends"),
            ("cities", "sec.cities"),
        ]
        links = "".join(f'<li><a href="#{a}">{e(tr.text(k))}</a></li>' for a, k in toc)
        known = ""
        if b.known_on is not None:
            known = f'<span class="knownon">{e(tr.text("doc.known_on", time=tr.when(b.known_on)))}</span> · '
        return (
            f'<header id="top"><h1>{e(self.title())}</h1>'
            f'<p class="meta"><span class="asof">{e(tr.text("doc.as_of", time=tr.when(b.as_of)))}</span> · '
            f"{known}{e(scope)}</p>"
            f'<nav class="toc" aria-label="{e(tr.text("doc.contents"))}"><ol>{links}</ol></nav></header>'
        )

    def print_templates(self) -> str:
        """The PDF's running header and footer (Chromium fills the pageNumber/totalPages spans)."""
        tr = self.tr
        style = (
            "<style>div{font-family:'Noto Sans CJK SC','Noto Sans SC','Microsoft YaHei','DejaVu Sans',"
            "sans-serif;font-size:8pt;color:#444;width:100%;margin:0 12mm;display:flex;"
            "justify-content:space-between;gap:8mm}</style>"
        )
        as_of = e(tr.text("doc.as_of", time=tr.when(self.b.as_of)))
        page = e(tr.text("pdf.page", page="\x00P", pages="\x00T"))
        page = page.replace("\x00P", '<span class="pageNumber"></span>')
        page = page.replace("\x00T", '<span class="totalPages"></span>')
        header = f"{style}<div><span>{e(self.title())}</span><span>{as_of}</span></div>"
        footer = f"{style}<div><span>{as_of}</span><span>{page}</span></div>"
        return f'<template id="pdf-header">{header}</template><template id="pdf-footer">{footer}</template>'

    def document(self) -> str:
        tr = self.tr
        body = "".join(
            [
                self.header(),
                self.page_one(),
                self.rollups(),
                self.worst(),
                self.revisions(),
                self.reporting(),
                self.trends(),
                *self.city_sections(),
                f'<footer class="note"><p>{e(tr.text("doc.status_rule"))}</p>'
                f"<p>{e(tr.text('doc.source'))}</p></footer>",
            ]
        )
        csp = (
            f"default-src 'none'; img-src data:; style-src {csp_hash(CSS)}; script-src {csp_hash(SCRIPT)}; "
            "base-uri 'none'; form-action 'none'"
        )
        return (
            f'<!doctype html>\n<html lang="{e(tr.lang)}"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(self.title())} · {e(tr.when(self.b.as_of))}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main>{self.print_templates()}<script>{SCRIPT}</script></body></html>\n"
        )


def render_html(briefing: Briefing, lang: str = "zh-CN", city: str | None = None) -> str:
    """The briefing as one self-contained HTML page (only `city`'s schools when given)."""
    return _Page(briefing, Translator(lang), city).document()
