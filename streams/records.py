"""The records the app publishes: batches of accepted events, dead letters and alert transitions."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rules.alerts import Transition
from rules.report import alert_dict
from schemas.validation import Accepted, Reason, Rejected, decode
from sinks.base import from_micros, micros

_BATCH_V1 = b"\x01"  # read still: the records a worker of the release before wrote
_BATCH_V2 = b"\x02"
_HEAD_V1 = struct.Struct(">I32s")  # the event's length, its content hash (sha256, binary)
_HEAD = struct.Struct(">I32sq")  # ... and when it arrived (microseconds since the epoch; -1: not known)


def pack_events(events: Sequence[Accepted]) -> bytes:
    """One Kafka record for a batch of accepted events: each event's bytes as sent, with its content
    hash, so that the engine neither validates nor hashes them again, and its arrival."""
    parts = [_BATCH_V2]
    for e in events:
        arrived = micros(e.arrived_at) if e.arrived_at is not None else -1
        parts += [_HEAD.pack(len(e.raw), bytes.fromhex(e.content_hash), arrived), e.raw]
    return b"".join(parts)


def unpack_events(value: bytes) -> list[Accepted]:
    """The events of a batch record, in the order they were packed."""
    version = value[:1]
    if version not in (_BATCH_V1, _BATCH_V2):
        raise ValueError("not a batch of events (version byte)")
    head = _HEAD if version == _BATCH_V2 else _HEAD_V1
    out, at = [], 1
    while at < len(value):
        length, digest, *arrived = head.unpack_from(value, at)
        at += head.size
        when = from_micros(arrived[0]) if arrived and arrived[0] >= 0 else None
        out.append(decode(value[at : at + length], digest.hex(), arrived_at=when))
        at += length
    return out


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
