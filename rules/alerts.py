"""Alert rules and their fired / updated / resolved transitions (docs/domain.md section 8)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Literal

from rules.indicators import Indicators, day_of, studio_reasons
from rules.limits import Rules
from rules.state import Province

#: Rules that depend on events only: they fire and resolve at the event time of the change, and
#: carry `since` in as-of reports.
EVENT_RULES = ("ratio_shortfall", "postgraduate_share_below_target", "full_time_teachers_below_minimum")
#: Rules that depend on the clock too (certificate validity, studio inactivity).
CLOCK_RULES = (
    "dual_share_below_target",
    "certificate_expiring",
    "certificate_expired",
    "studio_noncompliant",
)
#: Measured on arrival time in the live system only.
LIVE_RULES = ("feed_stale", "enrollment_missing")

_INDICATOR_RULES = {
    "ratio_shortfall": "student_teacher_ratio",
    "postgraduate_share_below_target": "postgraduate_share",
    "full_time_teachers_below_minimum": "full_time_teachers",
    "dual_share_below_target": "dual_share",
}

AlertKey = tuple[str, str, str]  # (rule, school_id, subject)


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    school_id: str
    subject: str
    severity: Literal["warning", "critical"]
    value: Fraction | None
    threshold: Fraction | None
    since: datetime | None = None
    reasons: tuple[str, ...] = ()
    caused_by: tuple[str, ...] = ()  # the events of the alert's last transition
    fired_by: tuple[str, ...] = ()  # the events that made it fire (at `since`)

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.school_id, self.subject)

    def same_state(self, other: Alert) -> bool:
        """Whether nothing a reader sees (severity, value, threshold, reasons) changed."""
        return (self.severity, self.value, self.threshold, self.reasons) == (
            other.severity,
            other.value,
            other.threshold,
            other.reasons,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Literal["fired", "updated", "resolved"]
    alert: Alert
    at: datetime
    rule_version: str

    @property
    def id(self) -> str:
        return transition_id(self.alert.key, self.at, self.kind)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def transition_id(key: AlertKey, at: datetime, kind: str) -> str:
    """A transition's identity, the same in the store (`alert_transitions`' key) and in every notice:
    rule|school|subject|microseconds since the epoch|kind."""
    d = at - _EPOCH
    us = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
    return f"{key[0]}|{key[1]}|{key[2]}|{us}|{kind}"


def indicator_alert(rule: str, ind: Indicators, rules: Rules) -> Alert | None:
    """The alert of an indicator rule for one school, or None when the indicator meets its limit."""
    name = _INDICATOR_RULES[rule]
    limit_def = rules.limits[name]
    limit = limit_def.for_level(ind.level)
    if limit is None or not ind.missed(name, limit_def, limit):
        return None
    if rule == "ratio_shortfall":
        ratio = ind.student_teacher_ratio
        critical = ratio is None or ratio > limit * rules.ratio_critical_factor
        return Alert(rule, ind.school_id, "", "critical" if critical else "warning", ratio, limit)
    value = ind.value(name)
    return Alert(rule, ind.school_id, "", "warning", None if value is None else Fraction(value), limit)


def event_alerts(ind: Indicators, rules: Rules) -> dict[AlertKey, Alert]:
    """The event-driven alerts one school's staffing indicators raise."""
    found = (indicator_alert(rule, ind, rules) for rule in EVENT_RULES)
    return {a.key: a for a in found if a is not None}


def clock_alerts(
    province: Province, rules: Rules, at: datetime, indicators: Iterable[Indicators]
) -> dict[AlertKey, Alert]:
    """The clock-driven alerts at `at`, for registered schools (their full indicators given)."""
    out: dict[AlertKey, Alert] = {}
    day = day_of(at)
    for ind in indicators:
        a = indicator_alert("dual_share_below_target", ind, rules)
        if a is not None:
            out[a.key] = a
        for alert in _certificate_alerts(province, rules, ind.school_id, day):
            out[alert.key] = alert
    for studio in province.studios.values():
        school = province.schools.get(studio.school_id)
        if not studio.active or school is None or not school.registered:
            continue
        reasons = studio_reasons(province, rules, studio, at)
        if reasons:
            a = Alert(
                "studio_noncompliant",
                studio.school_id,
                studio.studio_id,
                "warning",
                None,
                None,
                reasons=reasons,
            )
            out[a.key] = a
    return out


def feed_stale_alerts(
    province: Province, rules: Rules, at: datetime, last_arrival: dict[str, datetime]
) -> dict[AlertKey, Alert]:
    """Registered schools that sent nothing for `feed_stale_days`, measured on arrival time (live only).

    value: whole days since the school's last event arrived; threshold: the configured days."""
    out: dict[AlertKey, Alert] = {}
    limit = rules.feed_stale_days
    for sid, arrived in last_arrival.items():
        school = province.schools.get(sid)
        if school is None or not school.registered:
            continue
        silent = at - arrived
        if silent.days >= limit and silent.total_seconds() > limit * 86_400:
            a = Alert("feed_stale", sid, "", "warning", Fraction(silent.days), Fraction(limit))
            out[a.key] = a
    return out


def _certificate_alerts(province: Province, rules: Rules, school_id: str, day: object) -> list[Alert]:
    alerts = []
    for tid in province.teachers_at.get(school_id, ()):
        t = province.teachers[tid]
        if not t.full_time_professional:
            continue
        live = [
            c
            for cid in province.certificates_of.get(tid, ())
            if (c := province.certificates[cid]).revoked_at is None
        ]
        valid = [c for c in live if c.issued_on <= day < c.valid_until]  # type: ignore[operator]
        for c in valid:
            if (c.valid_until - day).days > rules.certificate_expiring_days:  # type: ignore[operator]
                continue
            taken_over = any(o is not c and o.issued_on <= c.valid_until < o.valid_until for o in live)
            if not taken_over:
                alerts.append(
                    Alert("certificate_expiring", school_id, c.certificate_id, "warning", None, None)
                )
        if not valid:
            ended = [c for c in live if c.valid_until <= day]  # type: ignore[operator]
            if ended:
                last = min(ended, key=lambda c: (-c.valid_until.toordinal(), c.certificate_id))
                alerts.append(
                    Alert("certificate_expired", school_id, last.certificate_id, "warning", None, None)
                )
    return alerts


class AlertBook:
    """The open alerts, and the transitions that bring them in line with what the rules find now."""

    def __init__(self, rule_version: str) -> None:
        self.rule_version = rule_version
        self.open: dict[AlertKey, Alert] = {}

    def reconcile(
        self,
        current: dict[AlertKey, Alert],
        in_scope: set[AlertKey],
        at: datetime,
        caused_by: tuple[str, ...] = (),
    ) -> list[Transition]:
        """Fire what is new, update what changed and resolve what is gone among the keys `in_scope`."""
        out: list[Transition] = []
        for key in sorted(in_scope):
            now, before = current.get(key), self.open.get(key)
            if now is not None and before is None:
                fired = replace(now, since=at, caused_by=caused_by, fired_by=caused_by)
                self.open[key] = fired
                out.append(Transition("fired", fired, at, self.rule_version))
            elif now is not None and before is not None and not now.same_state(before):
                updated = replace(now, since=before.since, caused_by=caused_by, fired_by=before.fired_by)
                self.open[key] = updated
                out.append(Transition("updated", updated, at, self.rule_version))
            elif now is None and before is not None:
                del self.open[key]
                out.append(
                    Transition("resolved", replace(before, caused_by=caused_by), at, self.rule_version)
                )
        return out

    def keys(self, rules: tuple[str, ...], schools: set[str] | None = None) -> set[AlertKey]:
        return {k for k in self.open if k[0] in rules and (schools is None or k[1] in schools)}
