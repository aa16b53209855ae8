"""The rules file: limits per school level with their sources, read as exact fractions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from foundation.configfile import read_yaml, validated
from schemas.reference import SchoolLevel

DEFAULT_RULES_FILE = Path(__file__).with_name("limits.yaml")

#: The indicators that have limits, in the order docs/domain.md lists them.
INDICATORS = (
    "student_teacher_ratio",
    "full_time_teachers",
    "dual_share",
    "postgraduate_share",
    "doctor_share",
    "senior_title_share",
    "part_time_share",
)


@dataclass(frozen=True)
class Limit:
    indicator: str
    op: Literal["max", "min"]
    by_level: dict[str, Fraction]  # school level code -> limit
    source: str

    def for_level(self, level: str | None) -> Fraction | None:
        return self.by_level.get(level) if level is not None else None

    def missed(self, value: Fraction, limit: Fraction) -> bool:
        return value > limit if self.op == "max" else value < limit


#: the severities an alert can have, mildest first
SEVERITIES = ("warning", "critical")

Severity = Literal["warning", "critical"]


def _exact(value: object) -> object:
    """Numbers as exact decimals: 0.3 is 3/10, not the nearest binary float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        return Fraction(str(value))
    except ValueError:
        raise ValueError("must be a number") from None


def _text(value: object) -> object:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Exact = Annotated[Fraction, BeforeValidator(_exact)]
Text = Annotated[str, BeforeValidator(_text)]


class Notifications(BaseModel):
    """The `notifications:` section: who is told what, and when (docs/alerts.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    #: an alert that resolves and fires again within this many days is one continuing notice
    flapping_days: int = Field(7, ge=0, le=365)
    #: the local hour (China Standard Time) at which digests go out
    digest_hour: int = Field(8, ge=0, le=23)
    #: days between digests (1: daily)
    digest_every_days: int = Field(1, ge=1, le=31)
    #: severities told at once; the others wait for the digest
    immediate: tuple[Severity, ...] = ("critical",)
    #: dual_share_forecast warns when the share is projected to fall below target within this many days
    forecast_days: int = Field(90, ge=1, le=3650)

    @field_validator("immediate", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("immediate")
    @classmethod
    def _mildest_first(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s for s in SEVERITIES if s in value)


class _LimitEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["max", "min"]
    source: Text = ""
    secondary: Exact | None = None
    higher: Exact | None = None
    undergraduate: Exact | None = None
    technician: Exact | None = None


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student_teacher_ratio: _LimitEntry
    full_time_teachers: _LimitEntry
    dual_share: _LimitEntry
    postgraduate_share: _LimitEntry
    doctor_share: _LimitEntry
    senior_title_share: _LimitEntry
    part_time_share: _LimitEntry


class _Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_time: Exact
    night: Exact
    correspondence: Exact


Days = Annotated[int, Field(ge=0, le=36_500, strict=True)]
Threshold = Annotated[float, Field(ge=0, le=1_000)]


class Revisions(BaseModel):
    """The `revisions:` section: how far a school's published indicator must move before a briefing
    lists it as revised (docs/domain.md, "Published and revised"); a changed status always counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    student_teacher_ratio: Threshold = 0.5
    dual_share: Threshold = 0.01
    postgraduate_share: Threshold = 0.01
    senior_title_share: Threshold = 0.01

    def moved(self, indicator: str, published: float | None, now: float | None) -> bool:
        """Whether an indicator moved past its threshold (appearing or vanishing counts)."""
        if published is None or now is None:
            return published != now
        return abs(now - published) > getattr(self, indicator) + 1e-12


MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


class Reporting(BaseModel):
    """The `reporting:` section: what a school owes and by when (docs/domain.md, "Reporting")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the last day (China Standard Time, MM-DD of the term's year) of each term's enrollment report
    spring_deadline: MonthDay = "03-31"
    autumn_deadline: MonthDay = "10-15"
    #: terms of completeness the briefing shows (the latest whose deadline has passed first)
    terms_shown: int = Field(2, ge=1, le=12)

    def deadline(self, season: str) -> tuple[int, int]:
        month, day = (self.spring_deadline if season == "spring" else self.autumn_deadline).split("-")
        return int(month), int(day)


class RulesFile(BaseModel):
    """The rules file as written (docs/domain.md sections 7-8); `Rules` is what the code uses."""

    model_config = ConfigDict(extra="forbid")

    version: Text
    limits: _Limits
    student_weights: _Weights
    part_time_weight: Exact
    ratio_critical_factor: Exact
    certificate_expiring_days: Days
    studio_inactive_days: Days
    studio_min_members: Annotated[int, Field(ge=0, le=10_000, strict=True)]
    feed_stale_days: Days
    studios_target: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    all_indicators_target_share: Exact
    notifications: Notifications | None = None
    revisions: Revisions | None = None
    reporting: Reporting | None = None


@dataclass(frozen=True)
class Rules:
    version: str
    limits: dict[str, Limit]
    student_weights: dict[str, Fraction]
    part_time_weight: Fraction
    ratio_critical_factor: Fraction
    certificate_expiring_days: int
    studio_inactive_days: int
    studio_min_members: int
    feed_stale_days: int
    studios_target: int
    all_indicators_target_share: Fraction
    notifications: Notifications = field(default_factory=Notifications)
    revisions: Revisions = field(default_factory=Revisions)
    reporting: Reporting = field(default_factory=Reporting)
    source_file: str = field(default="", compare=False)
    #: the same numbers as integers over common denominators, for exact comparisons in the hot path
    scales: Scales = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", Scales.of(self.student_weights, self.part_time_weight))


@dataclass(frozen=True, slots=True)
class Scales:
    """Converted students are counted in 1/`students` units and FTE teachers in 1/`fte` units, so that
    every indicator is a ratio of integers and every limit test is exact."""

    students: int  # the common denominator of the student weights
    weights: tuple[int, int, int]  # full_time, night, correspondence, times `students`
    fte: int  # the denominator of the part-time weight
    part_time: int  # the part-time weight times `fte`

    @classmethod
    def of(cls, weights: dict[str, Fraction], part_time_weight: Fraction) -> Scales:
        names = ("full_time", "night", "correspondence")
        d = math.lcm(*(weights[n].denominator for n in names))
        scaled = tuple(int(weights[n] * d) for n in names)
        f = part_time_weight.denominator
        return cls(d, (scaled[0], scaled[1], scaled[2]), f, int(part_time_weight * f))


def _rules(f: RulesFile, source_file: str) -> Rules:
    limits = {}
    for name in INDICATORS:
        entry: _LimitEntry = getattr(f.limits, name)
        by_level = {lvl.value: v for lvl in SchoolLevel if (v := getattr(entry, lvl.value)) is not None}
        limits[name] = Limit(name, entry.op, by_level, entry.source)
    return Rules(
        version=f.version,
        limits=limits,
        student_weights=dict(f.student_weights),
        part_time_weight=f.part_time_weight,
        ratio_critical_factor=f.ratio_critical_factor,
        certificate_expiring_days=f.certificate_expiring_days,
        studio_inactive_days=f.studio_inactive_days,
        studio_min_members=f.studio_min_members,
        feed_stale_days=f.feed_stale_days,
        studios_target=f.studios_target,
        all_indicators_target_share=f.all_indicators_target_share,
        notifications=f.notifications or Notifications(),
        revisions=f.revisions or Revisions(),
        reporting=f.reporting or Reporting(),
        source_file=source_file,
    )


def parse_notifications(section: Any) -> Notifications:
    """The `notifications:` section (absent or empty: the defaults); a ConfigError names a wrong entry."""
    if section is None:
        return Notifications()
    return validated(Notifications, section, "rules file", under=("notifications",))


def parse_rules(doc: Any, source_file: str = "", node: yaml.Node | None = None) -> Rules:
    """Rules from a decoded YAML document; a ConfigError names the key path (and line) of each wrong entry."""
    return _rules(validated(RulesFile, doc, "rules file", source_file, node), source_file)


def load_rules(path: Path | str | None = None) -> Rules:
    """Read a rules file (the default one, with the default limits of docs/domain.md, when `path` is None)."""
    file = Path(path) if path else DEFAULT_RULES_FILE
    doc, node = read_yaml(file, "rules file")
    return parse_rules(doc, str(file), node)
