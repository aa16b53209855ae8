"""Each dead-letter reason has its own case; every event type round-trips through JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import EVENT_TYPES, PAYLOADS
from schemas.national_id import check_character, find_national_id, mask
from schemas.validation import Accepted, Reason, Rejected, decode, parse_timestamp, validate
from tests.helpers import ev

VALID_ID = "11010519491231002X"  # the textbook example number, with its check character
AT = "2025-09-01T08:00:00+08:00"

SAMPLE_PAYLOADS = {
    "school.registered": {"name": "Jinan Vocational", "level": "secondary", "city": "jinan",
                          "communities": ["next_gen_it"], "flags": ["双高计划"]},
    "school.updated": {"level": "higher"},
    "enrollment.reported": {"term": "2025-autumn", "counts": {"full_time": 900, "night": 10}},
    "teacher.hired": {"teacher_id": "T1", "employment": "full_time", "course_type": "professional",
                      "title": "junior", "degree": "master"},
    "teacher.updated": {"teacher_id": "T1", "title": "senior"},
    "teacher.departed": {"teacher_id": "T1", "reason": "retired"},
    "certification.granted": {"certificate_id": "C1", "teacher_id": "T1", "level": "senior",
                              "issued_on": "2024-01-01", "valid_until": "2027-01-01", "issuer": "SDE"},
    "certification.revoked": {"certificate_id": "C1", "reason": "fraud"},
    "degree.enrolled": {"programme_id": "P1", "teacher_id": "T1", "target_degree": "doctor"},
    "degree.conferred": {"programme_id": "P1"},
    "degree.withdrawn": {"programme_id": "P1"},
    "studio.established": {"studio_id": "S1", "name": "CNC master", "level": "provincial",
                           "lead_teacher_id": "T1", "community": "high_end_equipment"},
    "studio.lead_changed": {"studio_id": "S1", "lead_teacher_id": "T2"},
    "studio.member_joined": {"studio_id": "S1", "teacher_id": "T3", "role": "apprentice"},
    "studio.member_left": {"studio_id": "S1", "teacher_id": "T3"},
    "studio.activity_reported": {"studio_id": "S1", "period": "2025-08", "training_hours": 40},
    "studio.evaluated": {"studio_id": "S1", "year": 2024, "result": "pass"},
    "studio.closed": {"studio_id": "S1"},
}  # fmt: skip


def test_samples_cover_every_event_type() -> None:
    assert set(SAMPLE_PAYLOADS) == set(EVENT_TYPES) == set(PAYLOADS)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_round_trips(event_type: str) -> None:
    obj = ev(event_type, "SD0001", AT, SAMPLE_PAYLOADS[event_type])
    first = validate(json.dumps(obj, ensure_ascii=False))
    assert isinstance(first, Accepted), first
    again = validate(first.raw)  # the stored bytes validate to the same event
    assert again == first
    assert (again.event_type, again.school_id, again.occurred_at) == (event_type, "SD0001", first.occurred_at)
    assert decode(first.raw, first.content_hash) == decode(first.raw) == first  # read back, not re-validated
    reordered = json.dumps(dict(reversed(list(obj.items()))), indent=2)
    assert validate(reordered).content_hash == first.content_hash  # type: ignore[union-attr]


def _reason(obj_or_bytes: object) -> Rejected:
    raw = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    result = validate(raw)
    assert isinstance(result, Rejected), f"accepted: {raw!r}"
    assert result.raw == mask(raw)  # the original bytes are kept, national IDs masked
    return result


def good(**changes: object) -> dict[str, object]:
    obj = ev("teacher.hired", "SD0001", AT, dict(SAMPLE_PAYLOADS["teacher.hired"]))
    obj.update(changes)
    return obj


def test_not_json() -> None:
    assert _reason(b"{not json").reason is Reason.not_json
    assert _reason(b"\xff\xfe\x00garbage").reason is Reason.not_json


def test_not_an_object() -> None:
    r = _reason(b"[1, 2, 3]")
    assert r.reason is Reason.not_object and "list" in r.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_id", "not-a-uuid"), ("school_id", ""), ("school_id", 17), ("occurred_at", "2025-09-01T08:00:00"),
     ("occurred_at", "2025-09-01"), ("occurred_at", "01/09/2025 08:00 +08:00"), ("schema_version", "1"),
     ("emitted_at", "yesterday")],
)  # fmt: skip
def test_bad_envelope_field(field: str, value: object) -> None:
    r = _reason(good(**{field: value}))
    assert r.reason is Reason.envelope_invalid
    assert field in r.message


def test_missing_envelope_field() -> None:
    obj = good()
    del obj["occurred_at"]
    r = _reason(obj)
    assert r.reason is Reason.envelope_invalid and "occurred_at" in r.message and r.school_id == "SD0001"


def test_unknown_event_type() -> None:
    r = _reason(good(event_type="teacher.promoted"))
    assert r.reason is Reason.unknown_event_type and "teacher.promoted" in r.message


@pytest.mark.parametrize("version", [2, 0, 99])
def test_future_schema_version_is_not_guessed(version: int) -> None:
    r = _reason(good(schema_version=version))
    assert r.reason is Reason.unsupported_schema_version and str(version) in r.message


@pytest.mark.parametrize(
    ("event_type", "payload", "needle"),
    [
        ("teacher.hired", {"teacher_id": "T1", "employment": "contract", "course_type": "general",
                           "title": "none", "degree": "bachelor"}, "employment"),
        ("teacher.hired", {"teacher_id": 5, "employment": "full_time", "course_type": "general",
                           "title": "none", "degree": "bachelor"}, "teacher_id"),
        ("teacher.hired", {"teacher_id": "T1"}, "employment"),
        ("enrollment.reported", {"term": "2025-summer", "counts": {"full_time": 1}}, "term"),
        ("enrollment.reported", {"term": "2025-autumn", "counts": {"full_time": -1}}, "full_time"),
        ("enrollment.reported", {"term": "2025-autumn", "counts": {"evening": 3}}, "evening"),
        ("enrollment.reported", {"term": "2025-autumn", "counts": {"full_time": 1.5}}, "full_time"),
        ("school.registered", {"name": "X", "level": "secondary", "city": "beijing"}, "city"),
        ("school.registered", {"name": "X", "level": "secondary", "city": "jinan",
                               "communities": ["space"]}, "communities"),
        ("certification.granted", {"certificate_id": "C1", "teacher_id": "T1", "level": "senior",
                                   "issued_on": "2024-02-30", "valid_until": "2027-01-01"}, "issued_on"),
        ("studio.activity_reported", {"studio_id": "S1", "period": "2025-13"}, "period"),
        ("studio.evaluated", {"studio_id": "S1", "year": 2024, "result": "good"}, "result"),
    ],
)  # fmt: skip
def test_payload_invalid(event_type: str, payload: dict[str, object], needle: str) -> None:
    r = _reason(ev(event_type, "SD0001", AT, payload))
    assert r.reason is Reason.payload_invalid
    assert needle in r.message


def test_valid_until_must_be_after_issued_on() -> None:
    p = dict(SAMPLE_PAYLOADS["certification.granted"], issued_on="2026-01-01", valid_until="2026-01-01")
    r = _reason(ev("certification.granted", "SD0001", AT, p))
    assert r.reason is Reason.payload_invalid and "valid_until" in r.message


@pytest.mark.parametrize(
    "where",
    ["teacher_id", "source", "extra_string", "extra_int", "lowercase_x"],
)
def test_national_id_anywhere_is_rejected(where: str) -> None:
    obj = good()
    payload = dict(obj["payload"])  # type: ignore[arg-type]
    if where == "teacher_id":
        payload["teacher_id"] = VALID_ID
    elif where == "source":
        obj["source"] = f"hr export for {VALID_ID}"
    elif where == "extra_string":
        payload["note"] = f"ID:{VALID_ID};"
    elif where == "extra_int":
        base = next(
            f"3701021990010{n:04d}" for n in range(100) if check_character(f"3701021990010{n:04d}").isdigit()
        )
        payload["nid"] = int(base + check_character(base))
    else:
        payload["note"] = VALID_ID.lower()
    obj["payload"] = payload
    r = _reason(obj)
    assert r.reason is Reason.national_id
    assert VALID_ID not in r.message  # the message never repeats the number
    assert VALID_ID.encode() not in r.raw.upper() and b"*" * 18 in r.raw  # nor do the kept bytes


def test_national_id_check_character_and_boundaries() -> None:
    assert find_national_id(VALID_ID) == VALID_ID
    assert find_national_id("11010519491231002Y") is None
    assert find_national_id("110105194912310021") is None  # wrong check character (X expected)
    assert find_national_id("9" + VALID_ID) is None  # preceded by a digit: 19 digits, not an ID
    assert find_national_id(VALID_ID[:-1] + "0" + "5") is None
    assert find_national_id(f"a{VALID_ID}b") == VALID_ID


def test_foreign_school_when_the_sender_is_known() -> None:
    r = validate(json.dumps(good()).encode(), sender="SD0002")
    assert isinstance(r, Rejected) and r.reason is Reason.foreign_school
    assert isinstance(validate(json.dumps(good()).encode(), sender="SD0001"), Accepted)


def test_event_id_is_canonicalised() -> None:
    upper = "63BBD751-DE12-40DF-BB73-86D46E5C30A0"
    a = validate(json.dumps(good(event_id=upper)))
    assert isinstance(a, Accepted) and a.event_id == upper.lower()


def test_extra_payload_fields_are_ignored() -> None:
    obj = good()
    obj["payload"]["hobby"] = "chess"  # type: ignore[index]
    assert isinstance(validate(json.dumps(obj)), Accepted)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    result = validate(raw)
    assert isinstance(result, (Accepted, Rejected))


@given(
    field=st.sampled_from(
        ["event_id", "event_type", "schema_version", "school_id", "occurred_at", "payload"]
    ),
    value=json_values,
    payload_field=st.sampled_from(["teacher_id", "employment", "course_type", "title", "degree"]),
    payload_value=json_values,
)
def test_mutated_events_are_rejected_with_a_reason_or_stay_valid(
    field: str, value: object, payload_field: str, payload_value: object
) -> None:
    obj = good()
    obj[field] = value
    if isinstance(obj.get("payload"), dict):
        obj["payload"] = dict(obj["payload"], **{payload_field: payload_value})  # type: ignore[arg-type]
    result = validate(json.dumps(obj).encode())
    if isinstance(result, Rejected):
        assert result.reason in Reason and result.message
    else:  # accepted only when every field still has a valid value
        assert result.event_type == "teacher.hired" and result.school_id


@given(st.uuids(), st.sampled_from([str, lambda u: str(u).upper(), lambda u: u.hex, lambda u: f"{{{u}}}"]))
def test_every_spelling_of_an_event_id_is_kept_as_the_canonical_one(u: object, spell: object) -> None:
    """The fast path for an id already canonical and the full parse for the other spellings agree."""
    line = ev("school.updated", "SD0001", AT, {"level": "higher"}, event_id=spell(u))  # type: ignore[operator]
    got = validate(json.dumps(line))
    assert isinstance(got, Accepted) and got.event_id == str(u)


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)),  # noqa: DTZ001 - hypothesis takes naive bounds
    st.sampled_from(["+08:00", "Z", "z", "-05:30", "+00:00"]),
    st.sampled_from(["T", "t"]),
    st.sampled_from(["", ".5", ".123456", ".123456789"]),
)
def test_timestamps_read_the_same_by_either_path(
    when: datetime, offset: str, sep: str, fraction: str
) -> None:
    """The common form is read by `datetime.fromisoformat` as it stands; every other form (a lowercase
    `t` or `z`, fractions) by the full parse; both give the instant the text names."""
    text = when.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + offset
    digits = (fraction[1:] + "000000")[:6]
    zone = timezone(timedelta(0)) if offset in ("Z", "z") else datetime.strptime(offset, "%z").tzinfo
    expected = when.replace(microsecond=int(digits), tzinfo=zone)
    assert parse_timestamp(text) == expected
