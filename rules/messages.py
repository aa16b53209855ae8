"""Notice and digest texts in Chinese and English from one catalogue (docs/alerts.md, "Languages").

Messages are plain text: data (school names, ids) is never read as markup, and every value taken from
data is put on one line, so no name can forge a line of a message or a header of an e-mail.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rules.indicators import CST
from rules.notifications import Notice
from rules.recipients import SchoolInfo

#: key -> {language -> template}. Both languages have every key, with the same placeholders (a test).
CATALOGUE: dict[str, dict[str, str]] = {
    "severity.critical": {"zh-CN": "严重", "en": "critical"},
    "severity.warning": {"zh-CN": "警告", "en": "warning"},
    "title.fired": {
        "zh-CN": "【{severity}】{school}：{indicator}",
        "en": "[{severity}] {school}: {indicator}",
    },
    "title.resolved": {"zh-CN": "【已解除】{school}：{indicator}", "en": "[resolved] {school}: {indicator}"},
    "title.severity_changed": {
        "zh-CN": "【{severity}】{school}：{indicator}（级别由{previous}变为{severity}）",
        "en": "[{severity}] {school}: {indicator} (severity {previous} → {severity})",
    },
    "line.school": {
        "zh-CN": "学校：{name}（{school_id}，{city}）",
        "en": "School: {name} ({school_id}, {city})",
    },
    "line.indicator": {"zh-CN": "指标：{indicator}", "en": "Indicator: {indicator}"},
    "line.value": {"zh-CN": "当前值：{value}；限值：{limit}", "en": "Value: {value}; limit: {limit}"},
    "line.certificate": {"zh-CN": "证书：{subject}", "en": "Certificate: {subject}"},
    "line.studio": {"zh-CN": "工作室：{subject}", "en": "Studio: {subject}"},
    "line.reasons": {"zh-CN": "原因：{reasons}", "en": "Reasons: {reasons}"},
    "line.forecast": {
        "zh-CN": "预计自 {day} 起低于目标（若无证书续期、无新聘教师）",
        "en": "Projected to fall below target on {day} (if no certificate is renewed and nobody is hired)",
    },
    "line.at": {"zh-CN": "时间：{time}", "en": "Time: {time}"},
    "line.known": {
        "zh-CN": "获知时间：{time}（迟到的数据：事件发生在此之前）",
        "en": "Known since: {time} (late data: the events happened before)",
    },
    "line.why.events": {"zh-CN": "依据：由事件 {events} 引起", "en": "Why: caused by events {events}"},
    "line.why.clock": {
        "zh-CN": "依据：日期推移（按时钟判定的规则，无对应事件）",
        "en": "Why: the date moved on (a clock-driven rule; no event)",
    },
    "line.why.held": {
        "zh-CN": "已于 {time} 解除，且 {days} 天内未再次触发",
        "en": "Resolved at {time}; it did not fire again within {days} days",
    },
    "time": {"zh-CN": "{time}（北京时间）", "en": "{time} China Standard Time"},
    "value.infinite": {"zh-CN": "无穷大（无教师）", "en": "infinite (no teachers)"},
    "value.days": {"zh-CN": "{days} 天", "en": "{days} days"},
    "more": {"zh-CN": "等共 {count} 项", "en": "{count} in all"},
    "indicator.ratio_shortfall": {"zh-CN": "生师比超过限值", "en": "Student-teacher ratio above the limit"},
    "indicator.dual_share_below_target": {
        "zh-CN": "双师型教师比例低于目标",
        "en": "Dual-teacher share below target",
    },
    "indicator.postgraduate_share_below_target": {
        "zh-CN": "研究生学历教师比例低于目标",
        "en": "Postgraduate share below target",
    },
    "indicator.full_time_teachers_below_minimum": {
        "zh-CN": "专任教师数低于最低要求",
        "en": "Full-time teachers below the minimum",
    },
    "indicator.certificate_expiring": {
        "zh-CN": "双师型证书即将到期",
        "en": "Dual-teacher certificate expiring",
    },
    "indicator.certificate_expired": {"zh-CN": "双师型证书已过期", "en": "Dual-teacher certificate expired"},
    "indicator.studio_noncompliant": {
        "zh-CN": "技能大师工作室不合规",
        "en": "Skill-master studio not compliant",
    },
    "indicator.feed_stale": {"zh-CN": "学校长期未报送数据", "en": "School has sent no events"},
    "indicator.dual_share_forecast": {
        "zh-CN": "双师型教师比例预计将低于目标",
        "en": "Dual-teacher share projected to fall below target",
    },
    "reason.lead_inactive": {"zh-CN": "负责人已不在岗", "en": "lead inactive"},
    "reason.too_few_members": {"zh-CN": "成员不足", "en": "too few members"},
    "reason.inactive": {"zh-CN": "长期无活动", "en": "inactive"},
    "reason.failed_evaluation": {"zh-CN": "考核不合格", "en": "failed evaluation"},
    "digest.title": {
        "zh-CN": "dualtrack 摘要：截至 {time}，共 {count} 项变化",
        "en": "dualtrack digest to {time}: {count} changes",
    },
    "digest.section.fired": {"zh-CN": "新触发", "en": "Fired"},
    "digest.section.resolved": {"zh-CN": "已解除", "en": "Resolved"},
    "digest.section.severity_changed": {"zh-CN": "级别变化", "en": "Severity changed"},
    "digest.group.certificate_expiring": {
        "zh-CN": "{schools} 所学校的 {count} 张证书将在 {days} 天内到期",
        "en": "{count} certificates at {schools} schools expire within {days} days",
    },
    "digest.group.certificate_expired": {
        "zh-CN": "{schools} 所学校的 {count} 张证书已过期",
        "en": "{count} certificates at {schools} schools have expired",
    },
    "digest.group.studio_noncompliant": {
        "zh-CN": "{schools} 所学校的 {count} 个技能大师工作室不合规",
        "en": "{count} skill-master studios at {schools} schools are not compliant",
    },
    "digest.group.other": {
        "zh-CN": "{indicator}：{schools} 所学校共 {count} 项",
        "en": "{indicator}: {count} at {schools} schools",
    },
    "digest.school": {"zh-CN": "{name}（{school_id}）：{count} 项", "en": "{name} ({school_id}): {count}"},
    "digest.why": {"zh-CN": "依据事件：{events}", "en": "events: {events}"},
    "city.jinan": {"zh-CN": "济南", "en": "Jinan"},
    "city.zibo": {"zh-CN": "淄博", "en": "Zibo"},
    "city.taian": {"zh-CN": "泰安", "en": "Tai'an"},
    "city.liaocheng": {"zh-CN": "聊城", "en": "Liaocheng"},
    "city.dezhou": {"zh-CN": "德州", "en": "Dezhou"},
    "city.binzhou": {"zh-CN": "滨州", "en": "Binzhou"},
    "city.dongying": {"zh-CN": "东营", "en": "Dongying"},
    "city.qingdao": {"zh-CN": "青岛", "en": "Qingdao"},
    "city.yantai": {"zh-CN": "烟台", "en": "Yantai"},
    "city.weifang": {"zh-CN": "潍坊", "en": "Weifang"},
    "city.weihai": {"zh-CN": "威海", "en": "Weihai"},
    "city.rizhao": {"zh-CN": "日照", "en": "Rizhao"},
    "city.linyi": {"zh-CN": "临沂", "en": "Linyi"},
    "city.zaozhuang": {"zh-CN": "枣庄", "en": "Zaozhuang"},
    "city.jining": {"zh-CN": "济宁", "en": "Jining"},
    "city.heze": {"zh-CN": "菏泽", "en": "Heze"},
}
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
    return CATALOGUE[key][lang].format(**values)


def local_time(at: datetime, lang: str) -> str:
    """China Standard Time, to the minute."""
    return t(lang, "time", time=at.astimezone(CST).strftime("%Y-%m-%d %H:%M"))


def _listed(ids: Sequence[str], lang: str) -> str:
    shown = ", ".join(one_line(i) for i in ids[:LISTED])
    return shown if len(ids) <= LISTED else f"{shown} ({t(lang, 'more', count=len(ids))})"


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
        city = t(lang, f"city.{info.city}") if f"city.{info.city}" in CATALOGUE else one_line(info.city)
        return one_line(info.name or school_id), city


def value_text(rule: str, value: float | None, lang: str) -> str | None:
    """An alert's value as people read it (None: the rule has no value)."""
    if rule == "ratio_shortfall":
        return t(lang, "value.infinite") if value is None else f"{value:.2f}"
    if value is None:
        return None
    if rule in _SHARES:
        return f"{value * 100:.2f}%"
    if rule == "feed_stale":
        return t(lang, "value.days", days=int(value))
    return f"{value:g}"


def limit_text(rule: str, threshold: float | None, lang: str) -> str:
    if threshold is None:
        return "-"
    if rule in _SHARES:
        return f"{threshold * 100:g}%"
    if rule == "feed_stale":
        return t(lang, "value.days", days=int(threshold))
    return f"{threshold:g}"


def _detail_lines(n: Notice, lang: str) -> list[str]:
    lines = []
    if n.rule in _CERTIFICATE_RULES:
        lines.append(t(lang, "line.certificate", subject=one_line(n.subject)))
    elif n.rule == "studio_noncompliant":
        lines.append(t(lang, "line.studio", subject=one_line(n.subject)))
        if n.reasons:
            reasons = "、" if lang == "zh-CN" else ", "
            named = [t(lang, f"reason.{r}") if f"reason.{r}" in CATALOGUE else one_line(r) for r in n.reasons]
            lines.append(t(lang, "line.reasons", reasons=reasons.join(named)))
    value = value_text(n.rule, n.value, lang)
    if value is not None:
        lines.append(t(lang, "line.value", value=value, limit=limit_text(n.rule, n.threshold, lang)))
    if n.rule == "dual_share_forecast" and n.reasons:
        lines.append(t(lang, "line.forecast", day=one_line(n.reasons[0])))
    return lines


def _why(n: Notice, ctx: Context, lang: str) -> list[str]:
    lines = []
    if n.why == "resolved_held":
        lines.append(t(lang, "line.why.held", time=local_time(n.at, lang), days=ctx.flapping_days))
    if n.caused_by:
        lines.append(t(lang, "line.why.events", events=_listed(n.caused_by, lang)))
    else:
        lines.append(t(lang, "line.why.clock"))
    return lines


def render_notice(n: Notice, lang: str, ctx: Context) -> Message:
    """One notice for one reader: a one-line subject and a plain-text body."""
    name, city = ctx.school(n.school_id, lang)
    indicator = t(lang, f"indicator.{n.rule}") if f"indicator.{n.rule}" in CATALOGUE else one_line(n.rule)
    severity = t(lang, f"severity.{n.severity}")
    previous = t(lang, f"severity.{n.previous_severity}") if n.previous_severity else severity
    subject = t(
        lang, f"title.{n.kind}", severity=severity, school=name, indicator=indicator, previous=previous
    )
    lines = [
        t(lang, "line.school", name=name, school_id=one_line(n.school_id), city=city or "-"),
        t(lang, "line.indicator", indicator=indicator),
        *_detail_lines(n, lang),
        t(lang, "line.at", time=local_time(n.at, lang)),
        *([t(lang, "line.known", time=local_time(n.known_at, lang))] if n.late and n.known_at else []),
        *_why(n, ctx, lang),
    ]
    return Message(one_line(subject), "\n".join(lines) + "\n")


def _group_line(rule: str, items: Sequence[Notice], lang: str, ctx: Context) -> str:
    schools = len({n.school_id for n in items})
    if items[0].kind == "fired" and f"digest.group.{rule}" in CATALOGUE:
        return t(lang, f"digest.group.{rule}", count=len(items), schools=schools, days=ctx.expiring_days)
    indicator = t(lang, f"indicator.{rule}") if f"indicator.{rule}" in CATALOGUE else one_line(rule)
    return t(lang, "digest.group.other", indicator=indicator, count=len(items), schools=schools)


def _school_lines(items: Sequence[Notice], lang: str, ctx: Context) -> Iterable[str]:
    for sid in sorted({n.school_id for n in items}):
        mine = [n for n in items if n.school_id == sid]
        name, _ = ctx.school(sid, lang)
        head = t(lang, "digest.school", name=name, school_id=one_line(sid), count=len(mine))
        subjects = [n.subject for n in mine if n.subject]
        values = [v for n in mine if (v := value_text(n.rule, n.value, lang)) is not None]
        detail = _listed(subjects, lang) if subjects else ", ".join(values[-1:])
        events = [e for n in mine for e in n.caused_by]
        why = t(lang, "digest.why", events=_listed(events, lang)) if events else t(lang, "line.why.clock")
        yield f"    - {head}" + (f" — {detail}" if detail else "") + f"; {why}"


def render_digest(window_end: datetime, items: Sequence[Notice], lang: str, ctx: Context) -> Message:
    """A digest for one reader, grouped by kind, then rule (with counts), then school."""
    subject = t(lang, "digest.title", time=local_time(window_end, lang), count=len(items))
    lines = [subject]
    for kind in ("fired", "severity_changed", "resolved"):
        of_kind = [n for n in items if n.kind == kind]
        if not of_kind:
            continue
        lines += ["", t(lang, f"digest.section.{kind}")]
        for rule in sorted({n.rule for n in of_kind}):
            group = [n for n in of_kind if n.rule == rule]
            lines.append(f"  * {_group_line(rule, group, lang, ctx)}")
            lines.extend(_school_lines(group, lang, ctx))
    return Message(one_line(subject), "\n".join(lines) + "\n")
