"""What a briefing is made from: report-contract dicts at a few times, and reference data. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from documents.briefing.exceptions import BriefingError
from schemas.reference import CITY_CIRCLE as _CITY_CIRCLE
from schemas.reference import Circle, SchoolLevel

if TYPE_CHECKING:
    from documents.briefing.revisions import Revision
    from rules.limits import Rules
    from rules.reporting import Owed

#: A report as DOMAIN.md section 7 defines it (`as_of`, `schools`, `alerts`, `province`).
Report = Mapping[str, Any]

LEVELS = tuple(level.value for level in SchoolLevel)
CIRCLES = tuple(circle.value for circle in Circle)
#: Cities in the order the department lists them, each with its economic circle (DOMAIN.md section 3).
CITY_CIRCLE: Mapping[str, str] = MappingProxyType({city: c.value for city, c in _CITY_CIRCLE.items()})
#: Why an active studio is not compliant (DOMAIN.md section 4), in the order given there.
STUDIO_REASONS = ("lead_inactive", "too_few_members", "inactive", "failed_evaluation")


@dataclass(frozen=True)
class SchoolInfo:
    """Reference data of one school; `circle` may be empty, the city's circle is used then."""

    name: str
    level: str
    city: str
    circle: str = ""
    county: str | None = None


@dataclass(frozen=True)
class StudioInfo:
    """A skill-master studio at the briefing's time; `reasons` are codes of STUDIO_REASONS."""

    studio_id: str
    school_id: str
    name: str
    active: bool
    compliant: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Restated:
    """Alert history that late data restated and that was therefore not told as news (docs/alerts.md,
    "After a late event"): `transitions` of one school's rule, dated `first` to `last`, known by `known`."""

    school_id: str
    rule: str
    transitions: int
    first: datetime
    last: datetime
    known: datetime


@dataclass(frozen=True)
class IndicatorLimit:
    """One indicator's limit per school level: the value must be `op` ("min" or "max") the limit."""

    op: Literal["min", "max"]
    by_level: Mapping[str, float]


def _default_ratio_limits() -> Mapping[str, float]:
    return MappingProxyType({"secondary": 20.0, "higher": 18.0, "undergraduate": 18.0, "technician": 20.0})


def default_limits() -> Mapping[str, IndicatorLimit]:
    """DOMAIN.md section 4's limits for the indicators other than the ratio and the dual share."""
    return MappingProxyType(
        {
            "full_time_teachers": IndicatorLimit("min", {"secondary": 60}),
            "postgraduate_share": IndicatorLimit("min", {"higher": 0.15, "undergraduate": 0.5}),
            "doctor_share": IndicatorLimit("min", {"undergraduate": 0.15}),
            "senior_title_share": IndicatorLimit("min", {"higher": 0.2, "undergraduate": 0.3}),
            "part_time_share": IndicatorLimit("max", {"higher": 0.3}),
        }
    )


@dataclass(frozen=True)
class Targets:
    """The plan's province targets and the ratio limit per level."""

    studios_target: int = 500
    green_share_plan: float = 0.9  # 达标工程: 90% of schools meet every indicator by the end of 2025
    green_share_shandong: float = 1.0  # 鲁政发〔2023〕6号: all of them
    dual_share: float = 0.5
    ratio_limits: Mapping[str, float] = field(default_factory=_default_ratio_limits)

    @classmethod
    def from_rules(cls, rules: Rules) -> Targets:
        """The targets of a loaded rules file (the Shandong plan's 100% is not in it: it is the plan)."""
        ratio = rules.limits["student_teacher_ratio"].by_level
        dual = rules.limits["dual_share"].by_level
        return cls(
            studios_target=rules.studios_target,
            green_share_plan=float(rules.all_indicators_target_share),
            dual_share=float(min(dual.values())) if dual else 0.5,
            ratio_limits=MappingProxyType({lvl: float(v) for lvl, v in ratio.items()}),
        )


def limits_from_rules(rules: Rules) -> Mapping[str, IndicatorLimit]:
    """The limits of a loaded rules file, for Briefing.limits."""
    return MappingProxyType(
        {
            name: IndicatorLimit(limit.op, {lvl: float(v) for lvl, v in limit.by_level.items()})
            for name, limit in rules.limits.items()
            if name not in ("student_teacher_ratio", "dual_share")
        }
    )


@dataclass(frozen=True)
class Briefing:
    """Everything one briefing shows. Reports are contract dicts; history may be missing (None, empty)."""

    as_of: datetime
    report: Report
    previous_month: Report | None = None
    previous_year: Report | None = None
    #: (month end, report at that time) for up to the last 12 month ends, oldest first
    monthly: Sequence[tuple[datetime, Report]] = ()
    schools: Mapping[str, SchoolInfo] = field(default_factory=dict)
    studios: Sequence[StudioInfo] = ()
    targets: Targets = field(default_factory=Targets)
    limits: Mapping[str, IndicatorLimit] = field(default_factory=default_limits)
    #: alert history restated by late data in the briefing's year, by school and rule
    restated: Sequence[Restated] = ()
    #: the briefing of only the events that had arrived by then (None: every kept event)
    known_on: datetime | None = None
    #: each report published as of a time in the briefing's year, and what moved since
    revisions: Sequence[Revision] = ()
    #: what each school owed of the latest terms whose deadline passed, and what it sent
    reporting: Sequence[Owed] = ()

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None or self.as_of.utcoffset() is None:
            raise BriefingError("Briefing.as_of must be timezone-aware")
        if self.known_on is not None and self.known_on.utcoffset() is None:
            raise BriefingError("Briefing.known_on must be timezone-aware")
        for when, _ in self.monthly:
            if when.tzinfo is None or when.utcoffset() is None:
                raise BriefingError("Briefing.monthly times must be timezone-aware")
