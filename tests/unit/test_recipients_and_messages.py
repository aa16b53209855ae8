"""Recipients, routing and the message catalogue: who gets what, in which language, and nothing forged."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from foundation.errors import ConfigError
from foundation.messages import MESSAGES
from rules.limits import Notifications
from rules.messages import Context, one_line, placeholders, render_digest, render_notice
from rules.notifications import EMPTY, Notice, decide
from rules.recipients import LANGUAGES, RULES, SchoolInfo, load_recipients, parse_recipients, route
from streams.outbox import plan
from tests.helpers import ROOT
from tests.unit.test_notification_policy import rec

T0 = datetime.fromisoformat("2025-09-01T10:00:00+08:00")
SCHOOLS = {
    "SD0001": SchoolInfo("济南第一职业学校", "jinan"),
    "SD0002": SchoolInfo("Qingdao Tech\nSubject: forged", "qingdao"),
    "SD0003": SchoolInfo("<b>Heze</b> & Co", "heze"),
}
DOC = {
    "schools": {"SD0001": [{"id": "sd1", "email": "hr@sd1.example.cn"}],
                "SD0002": [{"id": "sd2", "webhook": "https://sd2.example/h", "language": "en",
                            "rules": ["ratio_shortfall"]}]},
    "cities": {"jinan": [{"id": "jinan", "email": "a@jinan.example.cn", "severities": ["critical"]}]},
    "province": [{"id": "prov", "webhook": "https://prov.example/h", "email": "p@prov.example.cn"}],
}  # fmt: skip


def notice(
    rule: str = "ratio_shortfall", school: str = "SD0001", severity: str = "critical", **kw: object
) -> Notice:
    d = decide(EMPTY, [rec("fired", T0, rule=rule, school=school, severity=severity, **kw)], T0,  # type: ignore[arg-type]
               Notifications(immediate=("warning", "critical")))  # fmt: skip
    [n] = d.immediate
    return n


def test_routing_by_school_city_and_province_and_by_severity_and_rule() -> None:
    rs = parse_recipients(DOC)
    ids = lambda school, rule, sev: sorted(r.id for r in route(rs, school, rule, sev, SCHOOLS))  # noqa: E731
    assert ids("SD0001", "ratio_shortfall", "critical") == ["jinan", "prov", "sd1"]
    assert ids("SD0001", "ratio_shortfall", "warning") == ["prov", "sd1"]  # jinan takes critical only
    assert ids("SD0002", "ratio_shortfall", "warning") == ["prov", "sd2"]
    assert ids("SD0002", "certificate_expiring", "warning") == ["prov"]  # sd2 takes ratio_shortfall only
    assert ids("SD0003", "feed_stale", "warning") == ["prov"]  # no contact of its own nor of heze
    assert ids("SD9999", "feed_stale", "warning") == ["prov"]  # unknown school: no city, province only


def test_plan_sends_each_recipient_its_notices_on_each_channel_and_records_the_unheard() -> None:
    rs = parse_recipients(DOC)
    d = decide(EMPTY, [rec("fired", T0, severity="critical"), rec("fired", T0, school="SD0003", rule="feed_stale",
                                                                  severity="critical")], T0, Notifications())  # fmt: skip
    out, rows = plan(d, [r for r in rs if r.id != "prov"], Context(SCHOOLS), T0)
    assert sorted((o.recipient, o.channel) for o in out) == [("jinan", "email"), ("sd1", "email")]
    [nobody] = rows
    assert (nobody["why"], nobody["school_id"], nobody["status"]) == ("no_recipient", "SD0003", "suppressed")
    again, _ = plan(d, [r for r in rs if r.id != "prov"], Context(SCHOOLS), T0)
    assert [o.notice_id for o in again] == [o.notice_id for o in out]  # deterministic ids
    assert len({o.notice_id for o in out}) == len(out)


def test_a_digest_is_grouped_by_rule_with_counts_and_by_school() -> None:
    certs = [rec("fired", T0, rule="certificate_expiring", school=s, subject=c, value=None, caused_by=(f"g-{c}",))
             for s, c in [("SD0001", "C1"), ("SD0001", "C2"), ("SD0001", "C3"), ("SD0002", "C4"), ("SD0003", "C5")]]  # fmt: skip
    shares = [rec("fired", T0, rule="dual_share_below_target", school="SD0001", value=0.4634)]
    d1 = decide(EMPTY, [*certs, *shares], T0, Notifications())
    d2 = decide(d1.state, [], T0 + timedelta(days=1), Notifications())
    [digest] = d2.digests
    en = render_digest(digest.window_end, digest.items, "en", Context(SCHOOLS)).text
    zh = render_digest(digest.window_end, digest.items, "zh-CN", Context(SCHOOLS)).text
    assert "dualtrack digest to 2025-09-02 08:00 China Standard Time: 6 changes" in en
    assert "5 certificates at 3 schools expire within 90 days" in en
    assert "3 所学校的 5 张证书将在 90 天内到期" in zh
    assert "济南第一职业学校 (SD0001): 3 — C1, C2, C3; events: g-C1, g-C2, g-C3" in en
    assert "Dual-teacher share below target: 1 at 1 schools" in en and "46.34%" in en
    out, _ = plan(d2, parse_recipients(DOC), Context(SCHOOLS), T0 + timedelta(days=1))
    by = {(o.recipient, o.channel): o for o in out}
    assert ("sd2", "webhook") not in by  # sd2 takes ratio_shortfall only
    # SD0001's HR sees its own school only, in Chinese
    assert "1 所学校的 3 张证书将在 90 天内到期" in by[("sd1", "email")].body
    assert "3 所学校的 5 张证书" in by[("prov", "email")].body == by[("prov", "webhook")].body
    assert ("jinan", "email") not in by  # warnings only, and jinan takes critical


def test_both_languages_have_every_key_with_the_same_placeholders() -> None:
    assert LANGUAGES == ("zh-CN", "en")
    assert set(MESSAGES) == set(LANGUAGES)  # the one catalogue speaks every recipient's language
    zh, en = MESSAGES["zh-CN"], MESSAGES["en"]
    assert set(zh) == set(en) and any(k.startswith("notice.") for k in zh)
    for key in (k for k in zh if k.startswith("notice.")):  # the briefing's have their own test
        assert placeholders(zh[key]) == placeholders(en[key]), key
    for rule in RULES:
        assert f"rule.{rule}" in zh


def test_a_notice_names_school_indicator_value_limit_time_and_why_in_each_language() -> None:
    n = notice(value=22.3456, caused_by=("ev-1",))
    zh = render_notice(n, "zh-CN", Context(SCHOOLS))
    en = render_notice(n, "en", Context(SCHOOLS))
    assert zh.subject == "【严重】济南第一职业学校：生师比超过限值"
    assert en.subject == "[critical] 济南第一职业学校: Student-teacher ratio above the limit"
    for text in ("School: 济南第一职业学校 (SD0001, Jinan)", "Value: 22.35; limit: 18",
                 "Time: 2025-09-01 10:00 China Standard Time", "Why: caused by events ev-1"):  # fmt: skip
        assert text in en.text
    for text in ("学校：济南第一职业学校（SD0001，济南）", "当前值：22.35；限值：18", "时间：2025-09-01 10:00（北京时间）",
                 "依据：由事件 ev-1 引起"):  # fmt: skip
        assert text in zh.text
    clock = render_notice(
        notice(rule="certificate_expired", subject="C-9", value=None, caused_by=()), "en", Context(SCHOOLS)
    )
    assert "Certificate: C-9" in clock.text and "clock-driven rule" in clock.text
    assert "Known since" not in en.text  # told as it happened


def test_a_notice_of_late_data_says_when_it_happened_and_since_when_it_is_known() -> None:
    from dataclasses import replace

    late = replace(notice(caused_by=("ev-1",)), known_at=T0 + timedelta(days=40))
    en, zh = (render_notice(late, lang, Context(SCHOOLS)).text for lang in ("en", "zh-CN"))
    assert "Time: 2025-09-01 10:00 China Standard Time" in en
    assert "Known since: 2025-10-11 10:00 China Standard Time (late data" in en
    assert "获知时间：2025-10-11 10:00（北京时间）" in zh


def test_data_is_never_markup_and_cannot_forge_lines() -> None:
    forged = render_notice(notice(school="SD0002"), "en", Context(SCHOOLS))
    assert "\n" not in forged.subject and "Qingdao Tech Subject: forged" in forged.subject
    assert not any(line.startswith("Subject:") for line in forged.text.splitlines())
    html = render_notice(notice(school="SD0003"), "en", Context(SCHOOLS))
    assert "<b>Heze</b> & Co" in html.subject  # plain text, shown as written, never interpreted
    assert one_line("a\u2028b\u0085c\rd") == "a b c d"


def test_the_example_recipients_file_loads() -> None:
    rs = load_recipients(ROOT / "docs" / "recipients.example.yaml")
    assert {r.scope for r in rs} == {"school", "city", "province"} and len(rs) == 6
    assert next(r for r in rs if r.id == "sd0002-hr").language == "en"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schools": {"SD1": [{"id": "a"}]}}, r"schools.SD1\[0\]: give a webhook, an email, or both"),
        ({"cities": {"atlantis": []}}, r"cities.atlantis: not a city code"),
        (
            {"province": [{"id": "a", "email": "x@y.cn", "language": "fr"}]},
            r"province\[0\]\.language: Input should be 'zh-CN' or 'en'",
        ),
        (
            {"province": [{"id": "a", "webhook": "ftp://x"}]},
            r"province\[0\]\.webhook: must be an http:// or https:// URL",
        ),
        (
            {"province": [{"id": "a", "email": "x@y.cn, z@w.cn"}]},
            r"province\[0\]\.email: must be one address",
        ),
        (
            {"province": [{"id": "a", "email": "x@y.cn", "rules": ["nope"]}]},
            r"province\[0\]\.rules\[0\]: Input should be 'ratio_shortfall'",
        ),
        ({"province": [{"id": "a", "email": "x@y.cn", "pager": 1}]}, r"province\[0\]\.pager: unknown key"),
        (
            {"province": [{"id": "a", "email": "x@y.cn"}, {"id": "a", "email": "z@y.cn"}]},
            r"repeated: \['a'\]",
        ),
        ({"people": []}, r"people: unknown key"),
    ],
)
def test_a_wrong_recipients_file_names_the_entry(doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_recipients(doc)


def test_a_wrong_recipients_file_gives_the_file_and_line_and_never_a_webhook_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "recipients.yaml"
    f.write_text(
        "schools:\n"
        "  SD0001:\n"
        "    - id: hr1\n"
        "      email: hr@sd1.example.cn\n"
        "    - id: hr2\n"
        "      webhook: ftp://hooks.example/send?token=s3cr3t\n"
        "cities:\n"
        "  atlantis: []\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_recipients(f)
    text = str(err.value)
    assert text.startswith(f"recipients file {f}: ")
    assert "schools.SD0001[1].webhook (line 6): must be an http:// or https:// URL" in text
    assert "cities.atlantis (line 8): not a city code" in text
    assert "s3cr3t" not in text
