"""A briefing from the store: the reports at T, a month and a year before, and the last 12 month ends,
taken in one pass over the log (from the newest checkpoint before the earliest of those times)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from typing import Any

from documents.briefing.data import Briefing, Restated, SchoolInfo, StudioInfo, Targets, limits_from_rules
from documents.briefing.revisions import revision
from rules.indicators import studio_reasons
from rules.limits import Rules
from rules.report import build_report
from rules.reporting import owed, terms_due
from rules.state import Province
from schemas.reference import CITY_CIRCLE
from sinks.base import Store
from sinks.eventlog import EventLog
from sinks.publications import MIGRATION, Publication, Publications

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


def publications(
    store: Store, since: datetime, as_of: datetime, known_on: datetime | None
) -> list[Publication]:
    """The reports published as of a time from `since` to `as_of` (the newest of each time), of those
    published by `known_on` when given. A store this release never wrote to has none."""
    if MIGRATION not in store.applied_migrations():
        return []
    found = Publications(store).latest_per_time(as_of)
    return [p for p in found if p.as_of >= since and (known_on is None or p.published_at <= known_on)]


def briefing_from_store(
    store: Store, rules: Rules, as_of: datetime, months: int = 12, known_on: datetime | None = None
) -> Briefing:
    """The briefing at `as_of`, from the events that had arrived by `known_on` when given (each month's
    figures then are what was known on that day, docs/domain.md "As known on")."""
    from streams.state_at import engine_at

    month_ends, previous_month, previous_year = report_times(as_of, months)
    published = publications(store, previous_year, as_of, known_on)
    times = sorted({*month_ends, as_of, previous_month, previous_year, *(p.as_of for p in published)})
    engine = engine_at(store, rules, times[0], known_on=known_on)
    reports = {times[0]: build_report(engine, times[0])}
    pending = iter(times[1:])
    t = next(pending, None)
    for page in EventLog(store).events_after(engine.province.last_applied, until=as_of, known_on=known_on):
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

    known_at = as_of if known_on is None else min(as_of, known_on)  # what the briefing may know
    log = EventLog(store)
    revised = [
        revision(
            p.report,
            reports[p.as_of],
            log.late_since(p.as_of, p.known_on, until=known_on),
            rules.revisions,
            (p.as_of, p.known_on, p.published_at),
        )
        for p in published
    ]
    due = terms_due(as_of, rules, rules.reporting.terms_shown)
    reporting = owed(engine.province, rules, log.enrollment_arrivals(known_on), known_at, due)
    return Briefing(
        reporting=reporting,
        revisions=revised,
        restated=restated(store, previous_year, known_at),
        as_of=as_of,
        known_on=known_on,
        report=reports[as_of],
        previous_month=known(previous_month),
        previous_year=known(previous_year),
        monthly=[(m, reports[m]) for m in [*month_ends, as_of] if known(m) is not None],
        schools=schools,
        studios=studios,
        targets=Targets.from_rules(rules),
        limits=limits_from_rules(rules),
    )
