"""Notice and digest texts in Chinese and English, from the one catalogue (foundation/messages.py;
docs/alerts.md, "Languages").

Messages are plain text: data (school names, ids) is never read as markup, and every value taken from
data is put on one line, so no name can forge a line of a message or a header of an e-mail.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from foundation.messages import MESSAGES
from rules.indicators import CST
from rules.notifications import Notice
from rules.recipients import SchoolInfo

_SHARES = ("dual_share_below_target", "postgraduate_share_below_target", "dual_share_forecast")
_CERTIFICATE_RULES = ("certificate_expiring", "certificate_expired")
#: ids listed in one line of a message before "N in all"
LISTED = 5


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def one_line(value: object) -> str:
    """A data value as plain text on one line: line breaks and other control characters become spaces."""
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in str(value)).strip()


def t(lang: str, key: str, **values: object) -> str:
    return MESSAGES[lang][key].format(**values)


def named(lang: str, kind: str, code: str) -> str:
    """The name of a code (a city, a rule, a studio's reason) in `lang`; a code with none, on one line."""
    key = f"{kind}.{code}"
    return t(lang, key) if key in MESSAGES[lang] else one_line(code)


def local_time(at: datetime, lang: str) -> str:
    """China Standard Time, to the minute."""
    return t(lang, "notice.time", time=at.astimezone(CST).strftime("%Y-%m-%d %H:%M"))


def _listed(ids: Sequence[str], lang: str) -> str:
    shown = ", ".join(one_line(i) for i in ids[:LISTED])
    return shown if len(ids) <= LISTED else f"{shown} ({t(lang, 'notice.more', count=len(ids))})"


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Context:
    """What messages need besides the notice: school names and cities, and the rules' windows."""

    schools: Mapping[str, SchoolInfo]
    expiring_days: int = 90
    flapping_days: int = 7

    def school(self, school_id: str, lang: str) -> tuple[str, str]:
        """(name, city) for a message; the id stands in for a school not known."""
        info = self.schools.get(school_id)
        if info is None:
            return one_line(school_id), ""
        city = named(lang, "city", info.city)
        return one_line(info.name or school_id), city


def value_text(rule: str, value: float | None, lang: str) -> str | None:
    """An alert's value as people read it (None: the rule has no value)."""
    if rule == "ratio_shortfall":
        return t(lang, "notice.value.infinite") if value is None else f"{value:.2f}"
    if value is None:
        return None
    if rule in _SHARES:
        return f"{value * 100:.2f}%"
    if rule in ("feed_stale", "enrollment_missing"):
        return t(lang, "notice.value.days", days=int(value))
    return f"{value:g}"


def limit_text(rule: str, threshold: float | None, lang: str) -> str:
    if threshold is None:
        return "-"
    if rule in _SHARES:
        return f"{threshold * 100:g}%"
    if rule == "feed_stale":
        return t(lang, "notice.value.days", days=int(threshold))
    return f"{threshold:g}"


def _detail_lines(n: Notice, lang: str) -> list[str]:
    lines = []
    if n.rule in _CERTIFICATE_RULES:
        lines.append(t(lang, "notice.line.certificate", subject=one_line(n.subject)))
    elif n.rule == "enrollment_missing":
        lines.append(t(lang, "notice.line.term", subject=one_line(n.subject)))
    elif n.rule == "studio_noncompliant":
        lines.append(t(lang, "notice.line.studio", subject=one_line(n.subject)))
        if n.reasons:
            reasons = "、" if lang == "zh-CN" else ", "
            names = [named(lang, "notice.reason", r) for r in n.reasons]
            lines.append(t(lang, "notice.line.reasons", reasons=reasons.join(names)))
    value = value_text(n.rule, n.value, lang)
    if value is not None:
        lines.append(t(lang, "notice.line.value", value=value, limit=limit_text(n.rule, n.threshold, lang)))
    if n.rule == "dual_share_forecast" and n.reasons:
        lines.append(t(lang, "notice.line.forecast", day=one_line(n.reasons[0])))
    return lines


def _why(n: Notice, ctx: Context, lang: str) -> list[str]:
    lines = []
    if n.why == "resolved_held":
        lines.append(t(lang, "notice.line.why.held", time=local_time(n.at, lang), days=ctx.flapping_days))
    if n.caused_by:
        lines.append(t(lang, "notice.line.why.events", events=_listed(n.caused_by, lang)))
    else:
        lines.append(t(lang, "notice.line.why.clock"))
    return lines


def render_notice(n: Notice, lang: str, ctx: Context) -> Message:
    """One notice for one reader: a one-line subject and a plain-text body."""
    name, city = ctx.school(n.school_id, lang)
    indicator = named(lang, "rule", n.rule)
    severity = t(lang, f"notice.severity.{n.severity}")
    previous = t(lang, f"notice.severity.{n.previous_severity}") if n.previous_severity else severity
    subject = t(
        lang, f"notice.title.{n.kind}", severity=severity, school=name, indicator=indicator, previous=previous
    )
    lines = [
        t(lang, "notice.line.school", name=name, school_id=one_line(n.school_id), city=city or "-"),
        t(lang, "notice.line.indicator", indicator=indicator),
        *_detail_lines(n, lang),
        t(lang, "notice.line.at", time=local_time(n.at, lang)),
        *([t(lang, "notice.line.known", time=local_time(n.known_at, lang))] if n.late and n.known_at else []),
        *_why(n, ctx, lang),
    ]
    return Message(one_line(subject), "\n".join(lines) + "\n")


def _group_line(rule: str, items: Sequence[Notice], lang: str, ctx: Context) -> str:
    schools = len({n.school_id for n in items})
    if items[0].kind == "fired" and f"notice.digest.group.{rule}" in MESSAGES[lang]:
        return t(
            lang, f"notice.digest.group.{rule}", count=len(items), schools=schools, days=ctx.expiring_days
        )
    indicator = named(lang, "rule", rule)
    return t(lang, "notice.digest.group.other", indicator=indicator, count=len(items), schools=schools)


def _school_lines(items: Sequence[Notice], lang: str, ctx: Context) -> Iterable[str]:
    for sid in sorted({n.school_id for n in items}):
        mine = [n for n in items if n.school_id == sid]
        name, _ = ctx.school(sid, lang)
        head = t(lang, "notice.digest.school", name=name, school_id=one_line(sid), count=len(mine))
        subjects = [n.subject for n in mine if n.subject]
        values = [v for n in mine if (v := value_text(n.rule, n.value, lang)) is not None]
        detail = _listed(subjects, lang) if subjects else ", ".join(values[-1:])
        events = [e for n in mine for e in n.caused_by]
        why = (
            t(lang, "notice.digest.why", events=_listed(events, lang))
            if events
            else t(lang, "notice.line.why.clock")
        )
        yield f"    - {head}" + (f" — {detail}" if detail else "") + f"; {why}"


def render_digest(window_end: datetime, items: Sequence[Notice], lang: str, ctx: Context) -> Message:
    """A digest for one reader, grouped by kind, then rule (with counts), then school."""
    subject = t(lang, "notice.digest.title", time=local_time(window_end, lang), count=len(items))
    lines = [subject]
    for kind in ("fired", "severity_changed", "resolved"):
        of_kind = [n for n in items if n.kind == kind]
        if not of_kind:
            continue
        lines += ["", t(lang, f"notice.digest.section.{kind}")]
        for rule in sorted({n.rule for n in of_kind}):
            group = [n for n in of_kind if n.rule == rule]
            lines.append(f"  * {_group_line(rule, group, lang, ctx)}")
            lines.extend(_school_lines(group, lang, ctx))
    return Message(one_line(subject), "\n".join(lines) + "\n")
