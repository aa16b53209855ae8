"""`GET /v1/school`: the school's own view, in zh-CN or English (the names; the keys stay English).

The figures are those the department's store holds (the worker's tables), so a school sees what the
province sees of it: nothing is counted twice or kept apart for the gateway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rules.messages import local_time, named, t
from sinks.base import Store
from sinks.school_view import SchoolView, day_range


def school_view(
    store: Store, school_id: str, origins: list[str], now: datetime, lang: str, days: int
) -> dict[str, Any]:
    since, dates = day_range(now, days)
    v = SchoolView(store).of(school_id, origins, since)
    alerts = [
        {
            "rule": a["rule"],
            "title": named(lang, "rule", a["rule"]),
            "subject": a["subject"],
            "severity": a["severity"],
            "value": a["value"],
            "threshold": a["threshold"],
            "since": a["since"],
            "changed_at": a["changed_at"],
        }
        for a in v["open_alerts"]
    ]
    owes = [
        {
            "term": a["subject"],
            "days_overdue": a["value"],
            "what": t(lang, "gateway.owes_enrollment", term=a["subject"]),
        }
        for a in alerts
        if a["rule"] == "enrollment_missing"
    ]
    dead = [{**d, "reason_text": named(lang, "dead", d["reason"])} for d in v["dead_letters"]]
    kept, refused = v["kept_per_day"], v["dead_lettered_per_day"]
    last = v["last_arrival"]
    return {
        "school_id": school_id,
        "language": lang,
        "as_of": now,
        "summary": t(
            lang,
            "gateway.summary",
            school=school_id,
            last=local_time(last, lang) if last else t(lang, "gateway.never"),
            kept=sum(kept.get(d, 0) for d in dates),
            dead=sum(refused.get(d, 0) for d in dates),
            days=days,
            alerts=len(alerts),
        ),
        "last_arrival": last,
        "days": [{"day": d, "kept": kept.get(d, 0), "dead_lettered": refused.get(d, 0)} for d in dates],
        "dead_letters": dead,
        "indicators": v["indicators"],
        "open_alerts": alerts,
        "owes": owes,
    }
