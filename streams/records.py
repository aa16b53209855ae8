"""The JSON records the app publishes: dead letters and alert transitions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from rules.alerts import Transition
from rules.report import alert_dict
from schemas.validation import Reason, Rejected
from sinks.base import micros


def dead_letter_record(r: Rejected, origin: str, arrived_at: datetime | None = None) -> bytes:
    return json.dumps({
        "reason": r.reason.value, "message": r.message, "school_id": r.school_id, "event_id": r.event_id,
        "event_type": r.event_type, "raw_b64": base64.b64encode(r.raw).decode("ascii"), "origin": origin,
        "arrived_at": (arrived_at or datetime.now(UTC)).isoformat(),
    }).encode()  # fmt: skip


def parse_dead_letter(value: bytes) -> tuple[Rejected, str, datetime]:
    d = json.loads(value)
    r = Rejected(Reason(d["reason"]), d["message"], base64.b64decode(d["raw_b64"]), d["school_id"],
                 d["event_id"], d["event_type"])  # fmt: skip
    return r, d["origin"], datetime.fromisoformat(d["arrived_at"])


def transition_record(t: Transition) -> dict[str, Any]:
    """An alert transition as published on the alerts topic and POSTed by the notifier."""
    a = t.alert
    body = alert_dict(a)
    body["since"] = a.since.isoformat() if a.since else None
    body |= {
        "transition": t.kind,
        "at": t.at.isoformat(),
        "rule_version": t.rule_version,
        "caused_by": list(a.caused_by),
        "reasons": list(a.reasons),
        "id": f"{a.rule}|{a.school_id}|{a.subject}|{micros(t.at)}|{t.kind}",
    }
    return body
