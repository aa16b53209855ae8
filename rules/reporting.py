"""Reporting completeness and timeliness (docs/domain.md, "Reporting"): what each registered school owes
(its term's `enrollment.reported` by the term's deadline, measured on arrival) and whether it came on
time, late or not at all; and the live `enrollment_missing` alert of a deadline passed with nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from rules.alerts import Alert, AlertKey
from rules.limits import Rules
from rules.state import Province

CST = timezone(timedelta(hours=8))
SEASONS = ("spring", "autumn")
#: (school_id, term) -> when that school's first report of that term arrived
Arrivals = Mapping[tuple[str, str], datetime]


def deadline(term: str, rules: Rules) -> datetime:
    """The last instant (China Standard Time) at which a term's enrollment report is on time."""
    year, season = term.split("-")
    month, day = rules.reporting.deadline(season)
    return datetime(int(year), month, day, 23, 59, 59, tzinfo=CST)


def terms_due(at: datetime, rules: Rules, count: int) -> list[str]:
    """The `count` latest terms whose deadline has passed by `at`, newest first."""
    year = at.astimezone(CST).year
    candidates = [f"{y}-{s}" for y in range(year, year - count - 2, -1) for s in reversed(SEASONS)]
    return [t for t in candidates if deadline(t, rules) < at][:count]


@dataclass(frozen=True)
class Owed:
    """One school's report of one term: `on_time`, `late` (arrived after the deadline) or `missing`."""

    term: str
    school_id: str
    city: str
    circle: str
    level: str
    status: str
    arrived: datetime | None


def owed(
    province: Province, rules: Rules, arrivals: Arrivals, at: datetime, terms: Iterable[str]
) -> list[Owed]:
    """For each term and each school registered by its deadline: what it sent, as known at `at`."""
    out = []
    for term in terms:
        due = deadline(term, rules)
        for sid in sorted(province.schools):
            school = province.schools[sid]
            if school.registered_at is None or school.registered_at > due:
                continue
            arrived = arrivals.get((sid, term))
            if arrived is not None and arrived > at:
                arrived = None
            status = "missing" if arrived is None else ("on_time" if arrived <= due else "late")
            out.append(Owed(term, sid, school.city, school.circle, school.level or "", status, arrived))
    return out


@dataclass(frozen=True)
class Rates:
    """Completeness (received at all) and timeliness (received by the deadline) of a group."""

    owed: int
    on_time: int
    late: int
    missing: int

    @property
    def completeness(self) -> float | None:
        return (self.on_time + self.late) / self.owed if self.owed else None

    @property
    def timeliness(self) -> float | None:
        return self.on_time / self.owed if self.owed else None


def rates(rows: Iterable[Owed], key: str | None = None) -> dict[str, Rates]:
    """Rates by `key` (city, circle or level; None: one group, "province")."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        c = counts.setdefault("province" if key is None else getattr(r, key), [0, 0, 0, 0])
        c[0] += 1
        c[("on_time", "late", "missing").index(r.status) + 1] += 1
    return {k: Rates(*v) for k, v in sorted(counts.items())}


def enrollment_missing_alerts(
    province: Province, rules: Rules, at: datetime, arrivals: Arrivals
) -> dict[AlertKey, Alert]:
    """Live only (on arrival): a warning for each school registered by the latest deadline passed that
    has sent no report of that term. It resolves when the report arrives, or when the next term's
    deadline passes (that term is then the one owed).

    subject: the term; value: whole days since the deadline; threshold: None."""
    out: dict[AlertKey, Alert] = {}
    for o in owed(province, rules, arrivals, at, terms_due(at, rules, 1)):
        if o.status == "missing":
            days = (at - deadline(o.term, rules)).days
            a = Alert("enrollment_missing", o.school_id, o.term, "warning", Fraction(days), None)
            out[a.key] = a
    return out
