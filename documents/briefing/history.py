"""A briefing from the store: the reports at T, a month and a year before, and the last 12 month ends,
taken in one pass over the log (from the newest checkpoint before the earliest of those times)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from typing import Any

from documents.briefing.data import Briefing, Restated, SchoolInfo, StudioInfo, Targets, limits_from_rules
from rules.indicators import studio_reasons
from rules.limits import Rules
from rules.report import build_report
from rules.state import Province
from schemas.reference import CITY_CIRCLE
from sinks.base import Store
from sinks.eventlog import EventLog

CST = timezone(timedelta(hours=8))


def month_end(year: int, month: int) -> datetime:
    """The last second of a month in China Standard Time."""
    return datetime(year, month, calendar.monthrange(year, month)[1], 23, 59, 59, tzinfo=CST)


def months_back(t: datetime, n: int) -> datetime:
    """The same time of day `n` months earlier (CST), the day clamped to the month's length."""
    local = t.astimezone(CST)
    y, m = divmod(local.year * 12 + local.month - 1 - n, 12)
    return local.replace(year=y, month=m + 1, day=min(local.day, calendar.monthrange(y, m + 1)[1]))


def report_times(as_of: datetime, months: int) -> tuple[list[datetime], datetime, datetime]:
    """The times a briefing compares: the ends of the `months - 1` months before as_of's month, and the
    same time a month and a year before."""
    local = as_of.astimezone(CST)
    month_ends = []
    for k in range(months - 1, 0, -1):
        y, m = divmod(local.year * 12 + local.month - 1 - k, 12)
        month_ends.append(month_end(y, m + 1))
    return month_ends, months_back(as_of, 1), months_back(as_of, 12)


def directory(
    province: Province, rules: Rules, as_of: datetime
) -> tuple[dict[str, SchoolInfo], list[StudioInfo]]:
    """The registered schools and their studios (by id, with compliance at as_of), as the briefing names
    them."""
    schools = {
        sid: SchoolInfo(s.name, s.level or "", s.city, s.circle or CITY_CIRCLE[s.city].value, s.county)
        for sid, s in province.schools.items()
        if s.registered
    }
    studios = []
    for st in province.studios.values():
        if st.school_id in schools:
            reasons = studio_reasons(province, rules, st, as_of) if st.active else ()
            studios.append(
                StudioInfo(st.studio_id, st.school_id, st.name, st.active, st.active and not reasons, reasons)
            )
    return schools, sorted(studios, key=lambda s: s.studio_id)


def restated(store: Store, since: datetime, as_of: datetime) -> list[Restated]:
    """Alert history that late data restated (not told as news), by school and rule: the transitions
    dated after `since` and recorded by `as_of`."""
    from sinks.notifications import NotificationLog

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in NotificationLog(store).restated(as_of):
        if r["at"] > since:
            groups.setdefault((r["school_id"], r["rule"]), []).append(r)
    out = []
    for (sid, rule), rs in sorted(groups.items()):
        times = [r["at"] for r in rs]
        out.append(Restated(sid, rule, len(rs), min(times), max(times), max(r["decided_at"] for r in rs)))
    return out


def briefing_from_store(store: Store, rules: Rules, as_of: datetime, months: int = 12) -> Briefing:
    from streams.state_at import engine_at

    month_ends, previous_month, previous_year = report_times(as_of, months)
    times = sorted({*month_ends, as_of, previous_month, previous_year})
    engine = engine_at(store, rules, times[0])
    reports = {times[0]: build_report(engine, times[0])}
    pending = iter(times[1:])
    t = next(pending, None)
    for page in EventLog(store).events_after(engine.province.last_applied, until=as_of):
        for e in page:
            while t is not None and e.occurred_at > t:
                reports[t] = build_report(engine, t)
                t = next(pending, None)
            engine.apply(e)
    while t is not None:
        reports[t] = build_report(engine, t)
        t = next(pending, None)
    schools, studios = directory(engine.province, rules, as_of)  # at as_of, the latest of the times

    def known(t: datetime) -> dict[str, Any] | None:
        """The report at t, or None before the log reaches any school (no history to compare with)."""
        return reports[t] if reports[t]["schools"] else None

    return Briefing(
        restated=restated(store, previous_year, as_of),
        as_of=as_of,
        report=reports[as_of],
        previous_month=known(previous_month),
        previous_year=known(previous_year),
        monthly=[(m, reports[m]) for m in [*month_ends, as_of] if known(m) is not None],
        schools=schools,
        studios=studios,
        targets=Targets.from_rules(rules),
        limits=limits_from_rules(rules),
    )
