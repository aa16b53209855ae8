"""The one validator every entry point uses: the stream's intake agent, `replay` and the producer SDK.

`validate(raw)` turns the bytes of one event into an `Accepted` event or a `Rejected` one that keeps
the original bytes, a reason code (the dead-letter reason) and a message a school's IT staff can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.events import PAYLOADS, SCHEMA_VERSION, Envelope, Payload
from schemas.national_id import carries_national_id


class Reason(StrEnum):
    """Why an event was dead-lettered. Stored with every dead letter and counted per school."""

    not_json = "not_json"  # undecodable bytes or not JSON
    not_object = "not_object"  # JSON, but not an object
    national_id = "national_id"  # carries a national ID number somewhere
    envelope_invalid = "envelope_invalid"  # a required envelope field missing or malformed
    unsupported_schema_version = "unsupported_schema_version"
    unknown_event_type = "unknown_event_type"
    payload_invalid = "payload_invalid"  # a payload field missing, of the wrong type or out of range
    conflicting_duplicate = "conflicting_duplicate"  # same event_id as a kept event, other content
    foreign_school = "foreign_school"  # the sender is not the school named in the event


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event: the envelope's fields, the typed payload, and its canonical content."""

    event_id: str
    event_type: str
    school_id: str
    occurred_at: datetime
    payload: Payload
    raw: bytes
    #: canonical JSON of the whole event (event_id canonical, keys sorted): the duplicate test
    content: str = field(repr=False)
    emitted_at: datetime | None = None

    @property
    def order_key(self) -> tuple[datetime, str]:
        """Events apply in occurred_at order (as instants), ties by canonical event_id."""
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A dead letter: the original bytes, the reason and the school (when it could be read)."""

    reason: Reason
    message: str
    raw: bytes
    school_id: str = ""
    event_id: str = ""
    event_type: str = ""


def _describe(err: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _school_of(obj: dict[str, Any]) -> str:
    school = obj.get("school_id")
    return school if isinstance(school, str) else ""


def validate(raw: bytes | str, sender: str | None = None) -> Accepted | Rejected:
    """Validate one event. `sender` is the school proven to have sent it, when the transport knows."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError as err:
        return Rejected(Reason.not_json, f"not UTF-8 text: {err.reason} at byte {err.start}", raw)
    except ValueError as err:
        return Rejected(Reason.not_json, f"not JSON: {err}", raw)
    if not isinstance(obj, dict):
        return Rejected(Reason.not_object, f"an event must be a JSON object, not {type(obj).__name__}", raw)
    data: bytes = raw
    school = _school_of(obj)
    event_id = obj["event_id"] if isinstance(obj.get("event_id"), str) else ""
    event_type = obj["event_type"] if isinstance(obj.get("event_type"), str) else ""

    def reject(reason: Reason, message: str) -> Rejected:
        return Rejected(reason, message, data, school, event_id, event_type)

    if carries_national_id(obj):
        return reject(
            Reason.national_id,
            "the event carries a national ID number; derive teacher_id with "
            "teacher_id_from_national_id() and send no ID numbers",
        )
    try:
        env = Envelope.model_validate(obj)
    except ValidationError as err:
        return reject(Reason.envelope_invalid, _describe(err))
    event_id = env.event_id
    if env.schema_version != SCHEMA_VERSION:
        return reject(
            Reason.unsupported_schema_version,
            f"schema_version {env.schema_version} is not supported (this version reads {SCHEMA_VERSION})",
        )
    model = PAYLOADS.get(env.event_type)
    if model is None:
        return reject(Reason.unknown_event_type, f"unknown event_type {env.event_type!r}")
    try:
        payload = model.model_validate_json(json.dumps(env.payload), strict=True)
    except ValidationError as err:
        return reject(Reason.payload_invalid, _describe(err, "payload"))
    if sender is not None and sender != env.school_id:
        return reject(
            Reason.foreign_school,
            f"sent by school {sender!r} for school {env.school_id!r}; a school emits only its own events",
        )
    canonical = dict(obj, event_id=env.event_id)
    return Accepted(
        event_id=env.event_id,
        event_type=env.event_type,
        school_id=env.school_id,
        occurred_at=env.occurred_at,
        payload=payload,
        raw=raw,
        content=json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
        emitted_at=env.emitted_at,
    )
