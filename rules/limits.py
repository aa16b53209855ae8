"""The rules file: limits per school level with their sources, read as exact fractions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml

from foundation.errors import ConfigError
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


@dataclass(frozen=True)
class Notifications:
    """The `notifications:` section: who is told what, and when (docs/alerts.md)."""

    #: an alert that resolves and fires again within this many days is one continuing notice
    flapping_days: int = 7
    #: the local hour (China Standard Time) at which digests go out
    digest_hour: int = 8
    #: days between digests (1: daily)
    digest_every_days: int = 1
    #: severities told at once; the others wait for the digest
    immediate: tuple[str, ...] = ("critical",)
    #: dual_share_forecast warns when the share is projected to fall below target within this many days
    forecast_days: int = 90


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


def _exact(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"rules file: {where} must be a number, not {value!r}")
    try:
        return Fraction(str(value))
    except ValueError:
        raise ConfigError(f"rules file: {where} must be a number, not {value!r}") from None


def _whole(section: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"rules file: notifications.{key} must be a whole number from {low} to {high}, not {value!r}"
        )
    return value


def parse_notifications(section: Any) -> Notifications:
    """The `notifications:` section (absent or empty: the defaults); a ConfigError names a wrong entry."""
    if section is None:
        return Notifications()
    if not isinstance(section, dict):
        raise ConfigError("rules file: notifications must be a mapping")
    unknown = set(section) - {f.name for f in fields(Notifications)}
    if unknown:
        raise ConfigError(f"rules file: notifications has unknown keys {sorted(unknown)}")
    d = Notifications()
    immediate = section.get("immediate", list(d.immediate))
    if not isinstance(immediate, list) or any(s not in SEVERITIES for s in immediate):
        allowed = ", ".join(SEVERITIES)
        raise ConfigError(
            f"rules file: notifications.immediate must be a list of {allowed}, not {immediate!r}"
        )
    return Notifications(
        flapping_days=_whole(section, "flapping_days", d.flapping_days, 0, 365),
        digest_hour=_whole(section, "digest_hour", d.digest_hour, 0, 23),
        digest_every_days=_whole(section, "digest_every_days", d.digest_every_days, 1, 31),
        immediate=tuple(s for s in SEVERITIES if s in immediate),
        forecast_days=_whole(section, "forecast_days", d.forecast_days, 1, 3650),
    )


def parse_rules(doc: Any, source_file: str = "") -> Rules:
    """Rules from a decoded YAML document; a clear ConfigError names any wrong entry."""
    if not isinstance(doc, dict):
        raise ConfigError("rules file: expected a mapping at the top level")
    try:
        limits: dict[str, Limit] = {}
        for name in INDICATORS:
            entry = doc["limits"][name]
            op = entry["op"]
            if op not in ("max", "min"):
                raise ConfigError(f"rules file: limits.{name}.op must be max or min, not {op!r}")
            unknown = set(entry) - {"op", "source"} - {lvl.value for lvl in SchoolLevel}
            if unknown:
                raise ConfigError(f"rules file: limits.{name} has unknown keys {sorted(unknown)}")
            by_level = {
                lvl.value: _exact(entry[lvl.value], f"limits.{name}.{lvl.value}")
                for lvl in SchoolLevel
                if entry.get(lvl.value) is not None
            }
            limits[name] = Limit(name, op, by_level, str(entry.get("source", "")))
        weights = {
            k: _exact(doc["student_weights"][k], f"student_weights.{k}")
            for k in ("full_time", "night", "correspondence")
        }
        return Rules(
            version=str(doc["version"]),
            limits=limits,
            student_weights=weights,
            part_time_weight=_exact(doc["part_time_weight"], "part_time_weight"),
            ratio_critical_factor=_exact(doc["ratio_critical_factor"], "ratio_critical_factor"),
            certificate_expiring_days=int(doc["certificate_expiring_days"]),
            studio_inactive_days=int(doc["studio_inactive_days"]),
            studio_min_members=int(doc["studio_min_members"]),
            feed_stale_days=int(doc["feed_stale_days"]),
            studios_target=int(doc["studios_target"]),
            all_indicators_target_share=_exact(
                doc["all_indicators_target_share"], "all_indicators_target_share"
            ),
            notifications=parse_notifications(doc.get("notifications")),
            source_file=source_file,
        )
    except KeyError as err:
        raise ConfigError(f"rules file: missing entry {err.args[0]!r}") from None


def load_rules(path: Path | str | None = None) -> Rules:
    """Read a rules file (the default one, with the default limits of docs/domain.md, when `path` is None)."""
    file = Path(path) if path else DEFAULT_RULES_FILE
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the rules file {file}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"the rules file {file} is not valid YAML: {err}") from None
    return parse_rules(doc, str(file))
