"""The one validator: every entry point (the stream's intake, `replay`, the producer SDK and the roster
import) turns the bytes of one event into an `Accepted` event or a `Rejected` one.

A `Rejected` event keeps the original bytes with every national ID number masked, a reason code (the
dead-letter reason) and a message a school's IT staff can act on. An `Accepted` event keeps its original
bytes too (valid UTF-8 JSON: what is stored and read back exactly) and the hash of its canonical content
(the JSON object with the canonical event_id and sorted keys: the duplicate test); `decode()` turns the
bytes of an accepted event back into the same `Accepted` event without validating them again
(docs/domain.md, "Events" and "Limits of input").
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.events import (
    DATE_FIELDS,
    ENVELOPE,
    MAX_YEAR,
    MIN_YEAR,
    PAYLOAD_ADAPTERS,
    PAYLOAD_FIELDS,
    SCHEMA_VERSION,
)
from schemas.national_id import carries_national_id, mask, mask_text

MAX_LINE_BYTES = 1_048_576
MAX_DEPTH = 64
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
FIRST_DAY, LAST_DAY = date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31)
_MAX_DOUBLE = 1.7976931348623157e308
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class Reason(StrEnum):
    """Why an event was dead-lettered. Stored with every dead letter and counted per school."""

    not_json = "not_json"  # not strict JSON in UTF-8
    not_object = "not_object"  # JSON, but not an object
    too_large = "too_large"  # a line over MAX_LINE_BYTES
    national_id = "national_id"  # carries a national ID number somewhere
    envelope_invalid = "envelope_invalid"  # a required envelope field missing or malformed
    unsupported_schema_version = "unsupported_schema_version"
    unknown_event_type = "unknown_event_type"
    payload_invalid = "payload_invalid"  # a payload field missing, of the wrong type or out of range
    conflicting_duplicate = "conflicting_duplicate"  # same event_id as a kept event, other content
    foreign_school = "foreign_school"  # the sender is not the school named in the event
    apply_failed = "apply_failed"  # valid, but applying it failed (a defect): kept out, all else goes on


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event: the envelope's fields, the payload (a dict of JSON values), the bytes as sent and
    the hash of its canonical content."""

    event_id: str  # canonical: lowercase, hyphenated
    event_type: str
    school_id: str
    occurred_at: datetime
    payload: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)
    #: sha256 of the canonical JSON (event_id canonical, keys sorted): copies with equal hashes are one event
    content_hash: str = field(repr=False)
    emitted_at: datetime | None = None
    #: when it reached the deployment, when the path it came by knows (the broker's own timestamp in
    #: the stream); not part of the event: two copies that arrived apart are still one event
    arrived_at: datetime | None = field(default=None, compare=False, repr=False)

    @property
    def order_key(self) -> tuple[datetime, str]:
        """Events apply in occurred_at order (as instants), ties by canonical event_id."""
        return (self.occurred_at, self.event_id)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8")


#: the canonical JSON of an event's content (built once: `json.dumps` builds an encoder per call)
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_hash(obj: dict[str, Any], event_id: str) -> str:
    """The identity of an event's content: sha256 of its canonical JSON."""
    canonical = _CANONICAL.encode(dict(obj, event_id=event_id))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Rejected:
    """A dead letter: the original bytes (national IDs masked), the reason and the school (when it
    could be read). Build it with `rejected()`, which does the masking."""

    reason: Reason
    message: str
    raw: bytes
    school_id: str = ""
    event_id: str = ""
    event_type: str = ""


def rejected(
    reason: Reason, message: str, raw: bytes, school_id: str = "", event_id: str = "", event_type: str = ""
) -> Rejected:
    """A dead letter with every national ID number in its bytes, message and fields masked."""
    return Rejected(
        reason,
        mask_text(message),
        mask(raw),
        mask_text(school_id),
        mask_text(event_id),
        mask_text(event_type),
    )


class _NotStrictJson(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _NotStrictJson(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotStrictJson(f"the number {text[:40]} is too large for a double")
    return value


def _int(text: str) -> int:
    value = int(text)
    if len(text) > 300 and abs(value) > _MAX_DOUBLE:
        raise _NotStrictJson(f"the number {text[:40]}... is too large for a double")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


#: the strict decoder (built once: `json.loads` with hooks builds a decoder per call)
_STRICT = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int)


def parse_strict(raw: bytes) -> Any:
    """The JSON value of one line under RFC 8259 in UTF-8; ValueError says why it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text: {err.reason} at byte {err.start}") from None
    try:
        if text.startswith("\ufeff"):  # what `json.loads` says of a byte order mark
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _STRICT.decode(text)
    except RecursionError:
        raise ValueError(f"arrays and objects are nested deeper than {MAX_DEPTH}") from None
    except _NotStrictJson as err:
        raise ValueError(str(err)) from None
    except ValueError as err:
        raise ValueError(f"not JSON: {err}") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_exceeds(value, MAX_DEPTH):
        raise ValueError(f"arrays and objects are nested deeper than {MAX_DEPTH}")
    if _ESCAPED_SURROGATE.search(text) and _has_lone_surrogate(value):
        raise ValueError("an escaped lone surrogate (such as \\ud800) is not a character")
    return value


def _describe(err: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "string_pattern_mismatch":
            msg = "has the wrong form" + (f" ({_FORMS[e['loc'][-1]]})" if e["loc"][-1] in _FORMS else "")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


_FORMS = {
    "term": "YYYY-spring or YYYY-autumn",
    "period": "YYYY-MM",
    "issued_on": "a date YYYY-MM-DD",
    "valid_until": "a date YYYY-MM-DD",
    "expected_completion": "a date YYYY-MM-DD",
}


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp with an offset, within the limits; ValueError says what is wrong."""
    form = _RFC3339.match(value)
    if not form:
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2025-09-01T08:00:00+08:00")
    if form.group(1) is None and value[10] == "T" and value[-1] != "z":
        text = value  # the common form, which `datetime.fromisoformat` reads as it stands
    else:
        text = value.upper().replace("Z", "+00:00")
    dot = text.find(".") if form.group(1) else -1
    if dot != -1:  # Python keeps microseconds; finer digits are dropped
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        text = text[: min(end, dot + 7)] + text[end:]
    try:
        t = datetime.fromisoformat(text)
        if not EARLIEST <= t < LATEST:
            raise ValueError
    except (ValueError, OverflowError):
        raise ValueError(
            "must be a real time from 1970-01-01T00:00:00Z up to (not including) 2100-01-01T00:00:00Z"
        ) from None
    return t


def _check_date(value: str) -> date:
    if not _DATE.match(value):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date of the calendar") from None
    if not FIRST_DAY <= d <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return d


def _check_payload(payload: dict[str, Any]) -> str | None:
    """What one field cannot say alone: dates exist and lie within the limits, valid_until is later
    than issued_on. Returns the message, or None when the payload is fine."""
    for name in DATE_FIELDS:
        value = payload.get(name)
        if value is not None:
            try:
                _check_date(value)
            except ValueError as err:
                return f"payload.{name}: {err}"
    if "valid_until" in payload and payload["valid_until"] <= payload["issued_on"]:
        return "payload: valid_until must be later than issued_on"
    return None


def _canonical_id(value: Any) -> str:
    if isinstance(value, str) and _CANONICAL_UUID.match(value):
        return value  # already canonical: what `str(uuid.UUID(value))` returns
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise ValueError("must be a UUID, e.g. 63bbd751-de12-40df-bb73-86d46e5c30a0") from None


def validate(raw: bytes | str, sender: str | None = None) -> Accepted | Rejected:
    """Validate one event (one line, without its line ending). `sender` is the school the transport
    proved sent it, when it knows."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_LINE_BYTES:
        return rejected(
            Reason.too_large, f"the line has {len(raw)} bytes; the limit is {MAX_LINE_BYTES}", raw
        )
    try:
        obj = parse_strict(raw)
    except ValueError as err:
        return rejected(Reason.not_json, str(err), raw)
    if not isinstance(obj, dict):
        return rejected(Reason.not_object, f"an event must be a JSON object, not {type(obj).__name__}", raw)
    school = obj.get("school_id")
    school = school if isinstance(school, str) else ""
    event_id = obj["event_id"] if isinstance(obj.get("event_id"), str) else ""
    event_type = obj["event_type"] if isinstance(obj.get("event_type"), str) else ""

    def reject(reason: Reason, message: str) -> Rejected:
        return rejected(reason, message, raw, school, event_id, event_type)

    if carries_national_id(raw):
        return reject(
            Reason.national_id,
            "the event carries a national ID number; derive teacher_id with "
            "teacher_id_from_national_id() and send no ID numbers",
        )
    try:
        env = ENVELOPE.validate_python(obj)
    except ValidationError as err:
        return reject(Reason.envelope_invalid, _describe(err))
    try:
        event_id = _canonical_id(env["event_id"])
    except ValueError as err:
        return reject(Reason.envelope_invalid, f"event_id: {err}")
    try:
        occurred_at = parse_timestamp(env["occurred_at"])
    except ValueError as err:
        return reject(Reason.envelope_invalid, f"occurred_at: {err}")
    emitted = env.get("emitted_at")
    try:
        emitted_at = parse_timestamp(emitted) if emitted is not None else None
    except ValueError as err:
        return reject(Reason.envelope_invalid, f"emitted_at: {err}")
    if env["schema_version"] != SCHEMA_VERSION:
        return reject(
            Reason.unsupported_schema_version,
            f"schema_version {env['schema_version']} is not supported (this version reads {SCHEMA_VERSION})",
        )
    adapter = PAYLOAD_ADAPTERS.get(env["event_type"])
    if adapter is None:
        return reject(Reason.unknown_event_type, f"unknown event_type {env['event_type']!r}")
    try:
        payload = adapter.validate_python(env["payload"])
    except ValidationError as err:
        return reject(Reason.payload_invalid, _describe(err, "payload"))
    problem = _check_payload(payload)
    if problem is not None:
        return reject(Reason.payload_invalid, problem)
    if sender is not None and sender != env["school_id"]:
        return reject(
            Reason.foreign_school,
            f"sent by school {sender!r} for school {env['school_id']!r}; a school emits only its own events",
        )
    return Accepted(
        event_id=event_id,
        event_type=env["event_type"],
        school_id=env["school_id"],
        occurred_at=occurred_at,
        payload=payload,
        raw=raw,
        content_hash=canonical_hash(obj, event_id),
        emitted_at=emitted_at,
    )


def _trusted_time(text: str) -> datetime:
    """A timestamp validation accepted once: the fast parse, or the full one for the forms
    `datetime.fromisoformat` does not read (more than six fractional digits, a lowercase `t` or `z`)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return parse_timestamp(text)


def decode(
    raw: bytes | str,
    content_hash: str | None = None,
    event_id: str | None = None,
    arrived_at: datetime | None = None,
) -> Accepted:
    """The event `validate` accepted from these bytes (read back from the store or a topic), without
    validating them again; `content_hash` and the canonical `event_id` when the caller has them."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    obj = json.loads(raw)
    event_id = event_id or str(uuid.UUID(obj["event_id"]))
    emitted = obj.get("emitted_at")
    fields = PAYLOAD_FIELDS[obj["event_type"]]
    payload = obj["payload"]
    return Accepted(
        event_id=event_id,
        event_type=obj["event_type"],
        school_id=obj["school_id"],
        occurred_at=_trusted_time(obj["occurred_at"]),
        payload=payload if payload.keys() <= fields else {k: v for k, v in payload.items() if k in fields},
        raw=raw,
        content_hash=content_hash or canonical_hash(obj, event_id),
        emitted_at=_trusted_time(emitted) if emitted is not None else None,
        arrived_at=arrived_at,
    )
