"""The briefing's tables as data (typed columns, raw values): the HTML and the workbook show the same rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from documents.briefing import figures as fig
from documents.briefing.data import Briefing, Restated, StudioInfo
from documents.briefing.i18n import Translator
from documents.briefing.revisions import Moved, Revision
from rules.reporting import Owed, rates

INFINITE = float("inf")  # a ratio with students and no teachers: sorts last, shown as "∞"

#: How a column's values are shown: text; name (text kept at least a few words wide); code (a short id
#: or name, kept on one line); int; num1/num2 (decimals); pct (a share); ratio; status (a status code);
#: month (a time, shown as its month in China Standard Time)
KINDS = ("text", "name", "code", "int", "num1", "num2", "pct", "ratio", "status", "month")


@dataclass(frozen=True)
class Column:
    key: str  # catalogue key of the heading
    kind: str = "text"
    label: str = ""  # a heading already translated, used instead of `key` when set

    def heading(self, tr: Translator) -> str:
        return self.label or tr.text(self.key)


@dataclass(frozen=True)
class Typed:
    """A cell whose kind differs from its column's (the overview mixes counts, shares and ratios)."""

    value: Any
    kind: str


@dataclass(frozen=True)
class Table:
    name: str  # "table.<name>" is its title, "sheet.<name>" its sheet
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]


def _ratio(s: fig.School) -> float | None:
    value = s["student_teacher_ratio"]
    if value is None:
        return INFINITE if s["students"] else None
    return float(value)


def _name(b: Briefing, school_id: str) -> str:
    info = b.schools.get(school_id)
    return info.name if info else ""


def miss_text(m: fig.Miss, tr: Translator) -> str:
    """ "ratio 27.10, above 20": one missed indicator with its value and limit."""
    label = tr.code("indicator", m.indicator)
    if m.limit is None or (m.value is None and m.indicator != "student_teacher_ratio"):
        return tr.text("miss.plain", indicator=label)
    if m.indicator == "student_teacher_ratio":
        value, limit = tr.ratio(m.value, infinite=m.value is None, against=m.limit), tr.num(m.limit)
    elif m.indicator == "full_time_teachers":
        value, limit = tr.num(m.value), tr.num(m.limit)
    else:
        value, limit = tr.pct(m.value, against=m.limit), tr.pct(m.limit, places=0)
    return tr.text(f"miss.{m.op}", indicator=label, value=value, limit=limit)


def rollup_table(name: str, kind: str, groups: Sequence[fig.Group], tr: Translator) -> Table:
    """A roll-up (circle, city or level): one row per group."""
    columns = (
        Column(f"col.{kind}", "code"),
        Column("col.schools", "int"),
        Column("col.students", "num1"),
        Column("col.fte", "num1"),
        Column("col.ratio", "ratio"),
        Column("col.dual_share", "pct"),
        Column("col.green_share", "pct"),
        Column("col.red", "int"),
    )
    rows = tuple(
        (
            tr.code(kind, g.code),
            g.totals.schools,
            float(g.totals.students),
            float(g.totals.fte_teachers),
            INFINITE if g.totals.ratio_infinite else g.totals.ratio,
            g.totals.dual_share,
            g.totals.green_share,
            g.totals.red,
        )
        for g in groups
    )
    return Table(name, columns, rows)


def shortfall_table(items: Sequence[fig.Shortfall], b: Briefing, tr: Translator) -> Table:
    columns = (
        Column("col.school_id", "code"),
        Column("col.school_name", "name"),
        Column("col.city", "code"),
        Column("col.level", "code"),
        Column("col.students", "num1"),
        Column("col.fte", "num1"),
        Column("col.ratio", "ratio"),
        Column("col.limit", "int"),
        Column("col.needed", "int"),
    )
    rows = tuple(
        (
            f.school["school_id"],
            _name(b, f.school["school_id"]),
            tr.code("city", f.school["city"]),
            tr.code("level", f.school["level"]),
            f.school["students"],
            f.school["fte_teachers"],
            _ratio(f.school),
            f.limit,
            f.needed,
        )
        for f in items
    )
    return Table("shortfalls", columns, rows)


def red_table(items: Sequence[fig.RedSchool], b: Briefing, tr: Translator, name: str = "red") -> Table:
    columns = (
        Column("col.school_id", "code"),
        Column("col.school_name", "name"),
        Column("col.city", "code"),
        Column("col.level", "code"),
        Column("col.violations"),
        Column("col.new_red"),
    )
    new = {True: "new.yes", False: "new.no", None: "new.unknown"}
    rows = tuple(
        (
            r.school["school_id"],
            _name(b, r.school["school_id"]),
            tr.code("city", r.school["city"]),
            tr.code("level", r.school["level"]),
            tr.join(miss_text(m, tr) for m in fig.misses(r.school, b)),
            tr.text(new[r.new]),
        )
        for r in items
    )
    return Table(name, columns, rows)


def studio_table(items: Sequence[StudioInfo], b: Briefing, tr: Translator) -> Table:
    columns = (
        Column("col.studio_id", "code"),
        Column("col.studio_name", "name"),
        Column("col.school_id", "code"),
        Column("col.school_name", "name"),
        Column("col.city", "code"),
        Column("col.reasons"),
    )
    city = {s["school_id"]: s["city"] for s in b.report["schools"]}
    rows = tuple(
        (
            st.studio_id,
            st.name,
            st.school_id,
            _name(b, st.school_id),
            tr.code("city", city.get(st.school_id)),
            tr.join(tr.code("reason", r) for r in st.reasons),
        )
        for st in items
    )
    return Table("studios", columns, rows)


def restated_table(items: Sequence[Restated], b: Briefing, tr: Translator) -> Table:
    """Alert history that late data restated, not told as news: what, when it happened, since when known."""
    columns = (
        Column("col.school_id", "code"),
        Column("col.school_name", "name"),
        Column("col.rule"),
        Column("col.restated", "int"),
        Column("col.happened", "text"),
        Column("col.known", "text"),
    )
    rows = tuple(
        (
            r.school_id,
            _name(b, r.school_id),
            tr.code("rule", r.rule),
            r.transitions,
            f"{tr.day(r.first)} – {tr.day(r.last)}",
            tr.day(r.known),
        )
        for r in items
    )
    return Table("restated", columns, rows)


_SCHOOL_COLUMNS: dict[str, tuple[Column, Callable[[fig.School, Briefing, Translator], Any]]] = {
    "school_id": (Column("col.school_id", "code"), lambda s, b, tr: s["school_id"]),
    "name": (Column("col.school_name", "name"), lambda s, b, tr: _name(b, s["school_id"])),
    "city": (Column("col.city", "code"), lambda s, b, tr: tr.code("city", s["city"])),
    "level": (Column("col.level", "code"), lambda s, b, tr: tr.code("level", s["level"])),
    "status": (Column("col.status", "status"), lambda s, b, tr: s["status"]),
    "students": (Column("col.students", "num1"), lambda s, b, tr: s["students"]),
    "full_time": (Column("col.full_time", "int"), lambda s, b, tr: s["full_time_teachers"]),
    "part_time": (Column("col.part_time", "int"), lambda s, b, tr: s["part_time_teachers"]),
    "fte": (Column("col.fte", "num1"), lambda s, b, tr: s["fte_teachers"]),
    "ratio": (Column("col.ratio", "ratio"), lambda s, b, tr: _ratio(s)),
    "professional": (Column("col.professional", "int"), lambda s, b, tr: s["professional_teachers"]),
    "dual": (Column("col.dual", "int"), lambda s, b, tr: s["dual_teachers"]),
    "dual_share": (Column("col.dual_share", "pct"), lambda s, b, tr: s["dual_share"]),
    "postgraduate_share": (Column("col.postgraduate_share", "pct"), lambda s, b, tr: s["postgraduate_share"]),
    "doctor_share": (Column("col.doctor_share", "pct"), lambda s, b, tr: s["doctor_share"]),
    "senior_title_share": (Column("col.senior_title_share", "pct"), lambda s, b, tr: s["senior_title_share"]),
    "studios_active": (Column("col.studios_active", "int"), lambda s, b, tr: s["active_studios"]),
    "studios_compliant": (Column("col.studios_compliant", "int"), lambda s, b, tr: s["compliant_studios"]),
    "violations": (
        Column("col.violations"),
        lambda s, b, tr: tr.join(miss_text(m, tr) for m in fig.misses(s, b)),
    ),
}
#: every column, for the workbook; the HTML city sections show CITY_COLUMNS
ALL_COLUMNS = tuple(_SCHOOL_COLUMNS)
CITY_COLUMNS = (
    "school_id",
    "name",
    "level",
    "status",
    "students",
    "fte",
    "ratio",
    "dual_share",
    "violations",
)


def school_table(
    schools: Sequence[fig.School], b: Briefing, tr: Translator, columns: Sequence[str] = ALL_COLUMNS
) -> Table:
    """One row per school, sorted by id."""
    chosen = [_SCHOOL_COLUMNS[c] for c in columns]
    rows = tuple(
        tuple(get(s, b, tr) for _, get in chosen) for s in sorted(schools, key=lambda s: s["school_id"])
    )
    return Table("schools", tuple(col for col, _ in chosen), rows)


_KPI_KIND = {"studios": "int", "green_share": "pct", "dual_share": "pct", "ratio": "ratio"}
_VERDICT = {True: "mark.on_track", False: "mark.off_track", None: "mark.not_judged"}


def overview_table(kpis: Sequence[fig.Kpi], tr: Translator) -> Table:
    """The headline indicators with their first target, verdict and changes (numbers, for the workbook)."""
    columns = (
        Column("col.indicator"),
        Column("col.value"),
        Column("col.target"),
        Column("col.on_track"),
        Column("col.month_change"),
        Column("col.year_change"),
    )

    def delta(k: fig.Kpi, before: float | None) -> Typed:
        value = None if k.value is None or before is None else k.value - before
        return Typed(value, _KPI_KIND[k.name])

    rows = []
    for k in kpis:
        kind = _KPI_KIND[k.name]
        value = INFINITE if k.infinite else k.value
        target = Typed(k.marks[0].value if k.marks else None, kind)
        rows.append(
            (
                tr.text(f"kpi.{k.name}"),
                Typed(value, kind),
                target,
                tr.text(_VERDICT[k.on_track]),
                delta(k, k.previous_month),
                delta(k, k.previous_year),
            )
        )
    return Table("overview", columns, tuple(rows))


_TREND_KIND = {"green_share": "pct", "dual_share": "pct", "ratio": "ratio", "studios_compliant": "int"}


def trend_table(trends: Sequence[fig.Trend], tr: Translator) -> Table:
    """Month by month, one column per indicator and series."""
    columns = [Column("col.month", "month")]
    values: list[tuple[float | None, ...]] = []
    for t in trends:
        for s in t.series:
            label = f"{tr.text(f'trend.{t.metric}')} · {tr.series(s.code)}"
            columns.append(Column(f"trend.{t.metric}", _TREND_KIND[t.metric], label))
            values.append(s.points)
    months = trends[0].months if trends else ()
    rows = tuple((m, *(v[i] for v in values)) for i, m in enumerate(months))
    return Table("trend", tuple(columns), rows)


#: how each figure a revision compares is shown, and its heading
_FIGURE = {
    "schools": ("int", "col.schools"), "students": ("num1", "col.students"),
    "full_time_teachers": ("int", "col.full_time"), "studios_active": ("int", "col.studios_active"),
    "studios_compliant": ("int", "col.studios_compliant"), "green_share": ("pct", "col.green_share"),
    "student_teacher_ratio": ("ratio", "col.ratio"), "dual_share": ("pct", "col.dual_share"),
    "postgraduate_share": ("pct", "col.postgraduate_share"),
    "senior_title_share": ("pct", "col.senior_title_share"),
    "status": ("status", "col.status"), "school": ("text", "rev.school"),
}  # fmt: skip


def _moved(m: Moved, tr: Translator) -> tuple[str, Typed, Typed]:
    kind, heading = _FIGURE[m.figure]
    if m.figure == "school":  # the school itself appeared in or vanished from the report
        shown = {True: tr.text("rev.listed"), False: tr.text("rev.not_listed")}
        return tr.text(heading), Typed(shown[m.published], "text"), Typed(shown[m.now], "text")
    return tr.text(heading), Typed(m.published, kind), Typed(m.now, kind)


def revision_tables(
    items: Sequence[Revision], b: Briefing, tr: Translator, ids: set[str]
) -> tuple[Table, ...]:
    """修订说明 / Revisions: each publication with its late events, the headline figures that differ
    from what was published, and the schools (of `ids`) whose indicators moved past their thresholds."""
    publications = Table(
        "revisions",
        (
            Column("col.as_of"), Column("col.published_on"), Column("col.known_on"),
            Column("col.late_events", "int"), Column("col.late_schools", "int"),
            Column("col.revised_figures", "int"), Column("col.revised_schools", "int"),
        ),
        tuple(
            (
                tr.when(r.as_of), tr.when(r.published_at), tr.when(r.known_on), r.late_events, r.late_schools,
                len(r.headline), len({m.school_id for m in r.schools if m.school_id in ids}),
            )
            for r in items
        ),
    )  # fmt: skip
    headline = Table(
        "revised_headline",
        (Column("col.as_of"), Column("col.indicator"), Column("col.published"), Column("col.now")),
        tuple((tr.when(r.as_of), *_moved(m, tr)) for r in items for m in r.headline),
    )
    schools = Table(
        "revised_schools",
        (
            Column("col.as_of"), Column("col.school_id", "code"), Column("col.school_name", "name"),
            Column("col.indicator"), Column("col.published"), Column("col.now"),
            Column("col.late_events", "int"),
        ),
        tuple(
            (tr.when(r.as_of), m.school_id, _name(b, m.school_id), *_moved(m, tr), m.late_events)
            for r in items
            for m in r.schools
            if m.school_id in ids
        ),
    )  # fmt: skip
    return publications, headline, schools


def reporting_tables(
    items: Sequence[Owed], b: Briefing, tr: Translator, ids: set[str]
) -> tuple[Table, Table]:
    """数据报送情况 / Reporting: completeness and timeliness by term and city (and the whole scope), and
    the schools whose report of a term is missing, by city."""
    mine = [o for o in items if o.school_id in ids]
    rows = []
    for term in dict.fromkeys(o.term for o in mine):
        of_term = [o for o in mine if o.term == term]
        groups = [*rates(of_term, "city").items(), (None, rates(of_term)["province"])]
        rows += [
            (
                term, tr.series("province") if city is None else tr.code("city", city), r.owed, r.on_time,
                r.late, r.missing, r.completeness, r.timeliness,
            )
            for city, r in groups
        ]  # fmt: skip
    summary = Table(
        "reporting",
        (
            Column("col.term", "code"), Column("col.city"), Column("col.owed", "int"),
            Column("col.on_time", "int"), Column("col.late", "int"), Column("col.missing", "int"),
            Column("col.completeness", "pct"), Column("col.timeliness", "pct"),
        ),
        tuple(rows),
    )  # fmt: skip
    missing = Table(
        "missing_reports",
        (
            Column("col.term", "code"),
            Column("col.city"),
            Column("col.school_id", "code"),
            Column("col.school_name", "name"),
        ),
        tuple(
            (o.term, tr.code("city", o.city), o.school_id, _name(b, o.school_id))
            for o in sorted(mine, key=lambda o: (o.term, o.city, o.school_id))
            if o.status == "missing"
        ),
    )
    return summary, missing
