"""Hostile lines of every class the validator must survive, shared by the unit, fuzz and stream tests.

Each entry is (name, bytes of one line, the dead-letter reason it must get, or None when it is a valid
event that must be kept and read back exactly)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from schemas.national_id import check_character

#: the textbook national ID number (its check character is X)
NATIONAL_ID = "11010519491231002X"
FULLWIDTH_ID = "".join(chr(ord(c) + 0xFEE0) for c in NATIONAL_ID)  # ０-９ and Ｘ
#: an ID whose check character is a digit, so that it can be a JSON integer
INTEGER_ID = next(
    int(base + check_character(base))
    for n in range(100)
    if check_character(base := f"3701021990010{n:04d}").isdigit()
)


def _event(school: str = "SD0001", **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(changes, sort_keys=True, default=str))),
        "event_type": "teacher.hired",
        "schema_version": 1,
        "school_id": school,
        "occurred_at": "2025-03-01T08:00:00+08:00",
        "payload": {"teacher_id": "T-hostile", "employment": "full_time", "course_type": "general",
                    "title": "none", "degree": "bachelor"},
    }  # fmt: skip
    obj.update(changes)
    return obj


def _line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _enrollment(count: int) -> dict[str, Any]:
    return _event(
        event_type="enrollment.reported", payload={"term": "2025-spring", "counts": {"full_time": count}}
    )


HOSTILE: list[tuple[str, bytes, str | None]] = [
    # valid, with characters that text tools treat as line breaks: kept and read back exactly
    ("next-line in a name", _line(_event(event_type="school.registered", school="SD0077",
     payload={"name": "Line\u0085break\u2028School\u2029", "level": "secondary", "city": "jinan"})), None),
    ("control-like separators", _line(_event(event_type="school.updated", school="SD0077",
     payload={"name": "X\x1cY\x1dZ\x1e"})), None),
    ("a count of 10^22", _line(_enrollment(10**22)), "payload_invalid"),
    ("a count above 10 million", _line(_enrollment(10_000_001)), "payload_invalid"),
    ("nested 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "not_json"),
    ("nested 65 deep", _line(_event(extra=json.loads("[" * 64 + "]" * 64))), "not_json"),
    ("nested 64 deep", _line(_event(extra=json.loads("[" * 63 + "]" * 63))), None),
    ("a lone surrogate", _line(_event()).replace(b'"T-hostile"', b'"\\ud800"'), "not_json"),
    ("year 0001", _line(_event(occurred_at="0001-01-01T00:00:00+08:00")), "envelope_invalid"),
    ("year 2100", _line(_event(occurred_at="2100-01-01T00:00:00Z")), "envelope_invalid"),
    ("a date in 1949", _line(_event(event_type="certification.granted", payload={
        "certificate_id": "C-h", "teacher_id": "T-h", "level": "junior", "issued_on": "1949-12-31",
        "valid_until": "2030-01-01"})), "payload_invalid"),
    ("year 2100 in an evaluation", _line(_event(event_type="studio.evaluated", payload={
        "studio_id": "S-h", "year": 2100, "result": "pass"})), "payload_invalid"),
    ("NaN", _line(_event()).replace(b'"schema_version": 1', b'"schema_version": 1, "x": NaN'), "not_json"),
    ("Infinity", _line(_event()).replace(b'"schema_version": 1', b'"schema_version": 1, "x": -Infinity'),
     "not_json"),
    ("1e400", _line(_event()).replace(b'"schema_version": 1', b'"schema_version": 1, "x": 1e400'), "not_json"),
    ("invalid UTF-8", b'{"school_id": "SD\xff\xfe", "x": "\xc3\x28"}', "not_json"),
    ("a national ID in the payload", _line(_event(payload={"teacher_id": NATIONAL_ID})), "national_id"),
    ("a fullwidth national ID", _line(_event(source=f"export {FULLWIDTH_ID}")), "national_id"),
    ("an escaped fullwidth national ID", json.dumps(_event(source=FULLWIDTH_ID)).encode(), "national_id"),
    ("a split national ID", _line(_event(source=f"{NATIONAL_ID[:6]}-{NATIONAL_ID[6:14]} {NATIONAL_ID[14:]}")),
     "national_id"),
    ("a national ID as the school", _line(_event(school=NATIONAL_ID)), "national_id"),
    ("a national ID in broken JSON", f'{{"id": "{NATIONAL_ID}", '.encode(), "not_json"),
    ("an integer national ID", _line(_event(extra=INTEGER_ID)), "national_id"),
    ("an integer that is not an ID", _line(_event(source=None, extra=INTEGER_ID + 1)), None),
    ("markup as the school", _line(_event(event_type="school.registered", school="[/x]",
     payload={"name": "[/x]", "level": "technician", "city": "rizhao"})), None),
    ("emoji code as the school", _line(_event(event_type="school.registered", school=":smile:[bold]",
     payload={"name": "S", "level": "technician", "city": "rizhao"})), None),
    ("rich styles in a name", _line(_event(event_type="school.registered", school="SD0078",
     payload={"name": "[bold red]X[/] :smile:", "level": "higher", "city": "qingdao"})), None),
    ("SQL in an id", _line(_event(payload={"teacher_id": "'; DROP TABLE events; --", "employment": "part_time",
     "course_type": "general", "title": "none", "degree": "bachelor"})), None),
    ("HTML in a name", _line(_event(event_type="school.registered", school="SD0079",
     payload={"name": "<script>alert(1)</script>", "level": "secondary", "city": "heze"})), None),
    ("a line of 1 MiB + 1", _line(_event(source="x" * 1_048_576)), "too_large"),
    ("not an object", b"[1, 2, 3]", "not_object"),
    ("a BOM", b"\xef\xbb\xbf" + _line(_event()), "not_json"),
]  # fmt: skip
