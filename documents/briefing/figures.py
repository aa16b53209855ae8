"""The numbers a briefing shows, from report-contract dicts: scope, totals, headline indicators, roll-ups,
worst-first lists and trends. Language-free: the renderers translate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from documents.briefing.data import CIRCLES, CITY_CIRCLE, LEVELS, Briefing, Report, StudioInfo

School = Mapping[str, Any]


def in_scope(report: Report | None, city: str | None) -> list[School]:
    """The report's schools (all, or one city's); [] when there is no report."""
    if report is None:
        return []
    return [s for s in report["schools"] if city is None or s.get("city") == city]


def _dec(value: Any) -> Decimal:
    # through str: the contract's 2-place figures add up exactly, without binary-float residue
    return Decimal(str(value)) if value is not None else Decimal(0)


@dataclass(frozen=True)
class Totals:
    """Sums over a group of schools, and the shares and ratio they make."""

    schools: int = 0
    students: Decimal = Decimal(0)
    full_time_teachers: int = 0
    fte_teachers: Decimal = Decimal(0)
    professional_teachers: int = 0
    dual_teachers: int = 0
    green: int = 0
    red: int = 0
    studios_active: int = 0
    studios_compliant: int = 0

    @property
    def ratio_infinite(self) -> bool:
        return self.fte_teachers == 0 and self.students > 0

    @property
    def ratio(self) -> float | None:
        """Students per FTE teacher; None when infinite (students but no teachers)."""
        if self.fte_teachers == 0:
            return None if self.students > 0 else 0.0
        return float(self.students / self.fte_teachers)

    @property
    def dual_share(self) -> float | None:
        return self.dual_teachers / self.professional_teachers if self.professional_teachers else None

    @property
    def green_share(self) -> float | None:
        return self.green / self.schools if self.schools else None


def totals(schools: Iterable[School]) -> Totals:
    """The totals of `schools` (contract school dicts)."""
    rows = list(schools)
    return Totals(
        schools=len(rows),
        students=sum((_dec(s["students"]) for s in rows), Decimal(0)),
        full_time_teachers=sum(int(s["full_time_teachers"]) for s in rows),
        fte_teachers=sum((_dec(s["fte_teachers"]) for s in rows), Decimal(0)),
        professional_teachers=sum(int(s["professional_teachers"]) for s in rows),
        dual_teachers=sum(int(s["dual_teachers"] or 0) for s in rows),
        green=sum(1 for s in rows if s["status"] == "green"),
        red=sum(1 for s in rows if s["status"] == "red"),
        studios_active=sum(int(s["active_studios"]) for s in rows),
        studios_compliant=sum(int(s["compliant_studios"]) for s in rows),
    )


# --- page one: the headline indicators -------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """A target or limit line: `key` names it in the catalogue; `levels` it applies to, if not all."""

    key: str
    value: float
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Part:
    """One line of a headline indicator's detail (a level's ratio, a count against a target)."""

    code: str
    value: float | None
    limit: float | None
    ok: bool | None


@dataclass(frozen=True)
class Kpi:
    """A headline indicator now, a month and a year ago, against its targets."""

    name: str  # studios | green_share | dual_share | ratio
    value: float | None
    previous_month: float | None
    previous_year: float | None
    marks: tuple[Mark, ...]
    on_track: bool | None  # None: not judged (no data, or a province target in a city's briefing)
    higher_is_better: bool
    parts: tuple[Part, ...] = ()
    infinite: bool = False


_KPI_VALUE: dict[str, Callable[[Totals], float | None]] = {
    "studios": lambda t: float(t.studios_compliant),
    "green_share": lambda t: t.green_share,
    "dual_share": lambda t: t.dual_share,
    "ratio": lambda t: t.ratio,
}


def _value_at(report: Report | None, city: str | None, name: str) -> float | None:
    schools = in_scope(report, city)
    return _KPI_VALUE[name](totals(schools)) if schools else None


def _ratio_parts(schools: Sequence[School], limits: Mapping[str, float]) -> tuple[Part, ...]:
    parts = []
    for level in _ordered({s["level"] for s in schools}, LEVELS):
        t = totals(s for s in schools if s["level"] == level)
        limit = limits.get(level)
        ratio = t.ratio
        ok = None if limit is None else (ratio is not None and ratio <= limit)
        parts.append(Part(level, ratio, limit, ok))
    return tuple(parts)


def headline(b: Briefing, city: str | None = None) -> list[Kpi]:
    """Page one's four indicators: compliant studios, green share, dual share and the ratio."""
    schools = in_scope(b.report, city)
    now = totals(schools)
    tg = b.targets

    def kpi(name: str, marks: tuple[Mark, ...], on_track: bool | None, higher: bool, **kw: Any) -> Kpi:
        value = _KPI_VALUE[name](now) if schools else None
        before_m = _value_at(b.previous_month, city, name)
        before_y = _value_at(b.previous_year, city, name)
        return Kpi(name, value, before_m, before_y, marks, on_track if schools else None, higher, **kw)

    studios_target = float(tg.studios_target)
    studio_parts = (
        Part("active", float(now.studios_active), studios_target, now.studios_active >= studios_target),
        Part(
            "compliant", float(now.studios_compliant), studios_target, now.studios_compliant >= studios_target
        ),
    )
    green = now.green_share
    green_parts = (
        Part("plan", green, tg.green_share_plan, None if green is None else green >= tg.green_share_plan),
        Part(
            "shandong",
            green,
            tg.green_share_shandong,
            None if green is None else green >= tg.green_share_shandong,
        ),
    )
    dual = now.dual_share
    ratio_parts = _ratio_parts(schools, tg.ratio_limits)
    judged = [p.ok for p in ratio_parts if p.ok is not None]
    return [
        # the studio target is the province's: a city's briefing shows its part, not a verdict
        kpi(
            "studios",
            (Mark("target.studios", studios_target),),
            None if city else studio_parts[1].ok,
            True,
            parts=studio_parts,
        ),
        kpi(
            "green_share",
            (Mark("target.plan", tg.green_share_plan), Mark("target.shandong", tg.green_share_shandong)),
            green_parts[0].ok,
            True,
            parts=green_parts,
        ),
        kpi(
            "dual_share",
            (Mark("target.dual", tg.dual_share),),
            None if dual is None else dual >= tg.dual_share,
            True,
        ),
        kpi(
            "ratio",
            ratio_marks(tg.ratio_limits, {s["level"] for s in schools}),
            all(judged) if judged else None,
            False,
            parts=ratio_parts,
            infinite=now.ratio_infinite,
        ),
    ]


def ratio_marks(limits: Mapping[str, float], levels: Iterable[str] | None = None) -> tuple[Mark, ...]:
    """One line per distinct ratio limit, naming the levels it applies to (those present, if given)."""
    present = set(levels) if levels is not None else set(limits)
    by_value: dict[float, list[str]] = {}
    for level in LEVELS:
        if level in limits and level in present:
            by_value.setdefault(limits[level], []).append(level)
    return tuple(Mark("target.ratio", v, tuple(lv)) for v, lv in sorted(by_value.items()))


# --- roll-ups ------------------------------------------------------------------------------------


def _ordered(codes: Iterable[str], order: Sequence[str]) -> list[str]:
    """Known codes in the department's order, then unknown ones alphabetically."""
    codes = set(codes)
    return [c for c in order if c in codes] + sorted(codes - set(order))


def circle_of(school: School, b: Briefing) -> str:
    info = b.schools.get(school["school_id"])
    return (info.circle if info and info.circle else "") or CITY_CIRCLE.get(school["city"], "")


@dataclass(frozen=True)
class Group:
    code: str
    totals: Totals


def rollup(schools: Sequence[School], key: Callable[[School], str], order: Sequence[str]) -> list[Group]:
    """Totals per group (circle, city, level), groups in the department's order."""
    groups: dict[str, list[School]] = {}
    for s in schools:
        groups.setdefault(key(s), []).append(s)
    return [Group(code, totals(groups[code])) for code in _ordered(groups, order)]


def rollups(b: Briefing, city: str | None = None) -> dict[str, list[Group]]:
    """The three roll-ups: by economic circle, city and level."""
    schools = in_scope(b.report, city)
    return {
        "circle": rollup(schools, lambda s: circle_of(s, b), CIRCLES),
        "city": rollup(schools, lambda s: s["city"], tuple(CITY_CIRCLE)),
        "level": rollup(schools, lambda s: s["level"], LEVELS),
    }


def cities(b: Briefing, city: str | None = None) -> list[str]:
    """The cities with schools in scope, in the department's order."""
    return _ordered({s["city"] for s in in_scope(b.report, city)}, tuple(CITY_CIRCLE))


# --- worst-first lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortfall:
    """A school above its ratio limit and the FTE teachers it needs to meet it."""

    school: School
    limit: float
    needed: int

    @property
    def infinite(self) -> bool:
        return self.school["student_teacher_ratio"] is None


def ratio_shortfalls(schools: Iterable[School], limits: Mapping[str, float]) -> list[Shortfall]:
    """Schools missing their ratio limit, infinite ratios first, then by teachers needed."""
    out = []
    for s in schools:
        limit = limits.get(s["level"])
        if "student_teacher_ratio" not in s["violations"] or limit is None:
            continue
        gap = _dec(s["students"]) / _dec(limit) - _dec(s["fte_teachers"])
        # the contract rounds students and FTE to 2 places; the engine's exact verdict stands, so >= 1
        out.append(Shortfall(s, limit, max(1, math.ceil(gap))))
    return sorted(
        out,
        key=lambda f: (
            not f.infinite,
            -f.needed,
            -(f.school["student_teacher_ratio"] or 0),
            f.school["school_id"],
        ),
    )


@dataclass(frozen=True)
class RedSchool:
    school: School
    new: bool | None  # red now but not a month ago; None without last month's report


def red_schools(schools: Iterable[School], previous: Report | None) -> list[RedSchool]:
    """Red schools, most indicators missed first; `new` marks those that were not red a month ago."""
    was_red = {s["school_id"] for s in previous["schools"] if s["status"] == "red"} if previous else set()
    out = [
        RedSchool(s, None if previous is None else s["school_id"] not in was_red)
        for s in schools
        if s["status"] == "red"
    ]
    return sorted(out, key=lambda r: (-len(r.school["violations"]), r.school["school_id"]))


@dataclass(frozen=True)
class Miss:
    """One missed indicator of a school, with its value and limit (None when not applicable)."""

    indicator: str
    value: float | None
    limit: float | None
    op: str


def part_time_share(s: School) -> float | None:
    total = int(s["full_time_teachers"]) + int(s["part_time_teachers"])
    return int(s["part_time_teachers"]) / total if total else None


def misses(s: School, b: Briefing) -> list[Miss]:
    """The school's violations with their values and limits."""
    out = []
    for name in s["violations"]:
        if name == "student_teacher_ratio":
            out.append(Miss(name, s["student_teacher_ratio"], b.targets.ratio_limits.get(s["level"]), "max"))
        elif name == "dual_share":
            out.append(Miss(name, s["dual_share"], b.targets.dual_share, "min"))
        else:
            limit = b.limits.get(name)
            value = part_time_share(s) if name == "part_time_share" else s.get(name)
            op = limit.op if limit else "min"
            out.append(Miss(name, value, limit.by_level.get(s["level"]) if limit else None, op))
    return out


def noncompliant_studios(studios: Iterable[StudioInfo], school_ids: set[str]) -> list[StudioInfo]:
    """Active studios of the schools in scope that are not compliant, most reasons first."""
    out = [st for st in studios if st.active and not st.compliant and st.school_id in school_ids]
    return sorted(out, key=lambda st: (-len(st.reasons), st.school_id, st.studio_id))


# --- trends --------------------------------------------------------------------------------------

TREND_METRICS = ("green_share", "dual_share", "ratio", "studios_compliant")
_TREND_VALUE: dict[str, Callable[[Totals], float | None]] = {
    "green_share": lambda t: t.green_share,
    "dual_share": lambda t: t.dual_share,
    "ratio": lambda t: t.ratio,
    "studios_compliant": lambda t: float(t.studios_compliant),
}


@dataclass(frozen=True)
class Series:
    code: str  # "province", a circle or a city
    points: tuple[float | None, ...]


@dataclass(frozen=True)
class Trend:
    metric: str
    months: tuple[datetime, ...]
    series: tuple[Series, ...]
    marks: tuple[Mark, ...]


def trends(b: Briefing, city: str | None = None) -> list[Trend]:
    """The headline indicators month by month: the province and each circle, or the one city."""
    months = tuple(t for t, _ in b.monthly)
    # (series code, the circle whose schools it sums, or "" for all the schools in scope)
    keyed = [("province", "")] + [(c, c) for c in CIRCLES] if city is None else [(city, "")]
    tg = b.targets
    marks = {
        "green_share": (
            Mark("target.plan", tg.green_share_plan),
            Mark("target.shandong", tg.green_share_shandong),
        ),
        "dual_share": (Mark("target.dual", tg.dual_share),),
        "ratio": ratio_marks(tg.ratio_limits, {s["level"] for s in in_scope(b.report, city)}),
        "studios_compliant": () if city else (Mark("target.studios", float(tg.studios_target)),),
    }
    out = []
    for metric in TREND_METRICS:
        series = []
        for code, circle in keyed:
            points = []
            for _, report in b.monthly:
                chosen = [s for s in in_scope(report, city) if not circle or circle_of(s, b) == circle]
                points.append(_TREND_VALUE[metric](totals(chosen)) if chosen else None)
            series.append(Series(code, tuple(points)))
        out.append(Trend(metric, months, tuple(series), marks[metric]))
    return out
