"""The event contract as pydantic v2 types (docs/domain.md, "Events").

Payloads are TypedDicts validated by pydantic in strict mode: a string field takes only a JSON string,
an integer only a JSON integer (not a boolean), an enumeration only its listed codes. Extra payload
fields are allowed and ignored. A validated payload is a plain dict of JSON values, so an event read
back from the store or a topic needs no second validation. TypedDicts validate several times faster
than model classes (docs/adr/0005-event-types-as-typeddicts.md).

What one field cannot say alone (a date that exists, `valid_until` after `issued_on`, timestamps and
dates within their limits) is checked by `schemas.validation`, the one validator.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

SCHEMA_VERSION = 1
#: counts and activity figures above this are not plausible (docs/domain.md, "Limits of input")
MAX_COUNT = 10_000_000
MIN_YEAR, MAX_YEAR = 1950, 2099

TERM = r"^\d{4}-(spring|autumn)$"
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
DATE = r"^\d{4}-\d{2}-\d{2}$"

#: a non-empty string with something other than white space in it
Id = Annotated[str, Field(min_length=1, pattern=r"\S")]
Date = Annotated[str, Field(pattern=DATE)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]

SchoolLevelCode = Literal["secondary", "higher", "undergraduate", "technician"]
CityCode = Literal[
    "jinan", "zibo", "taian", "liaocheng", "dezhou", "binzhou", "dongying",
    "qingdao", "yantai", "weifang", "weihai", "rizhao",
    "linyi", "zaozhuang", "jining", "heze",
]  # fmt: skip
CircleCode = Literal["capital", "jiaodong", "lunan"]
CommunityCode = Literal[
    "next_gen_it", "high_end_equipment", "new_energy_materials", "modern_marine", "medical_health",
    "high_end_chemicals", "modern_agriculture", "culture_tourism", "light_industry_textiles",
    "modern_finance",
]  # fmt: skip
EmploymentCode = Literal["full_time", "part_time"]
CourseTypeCode = Literal["professional", "general"]
TitleCode = Literal["none", "junior", "intermediate", "associate_senior", "senior"]
DegreeCode = Literal["below_bachelor", "bachelor", "master", "doctor"]
TargetDegreeCode = Literal["master", "doctor"]
DepartureReasonCode = Literal["retired", "resigned", "transfer", "dismissed", "deceased", "other"]
CertificateLevelCode = Literal["junior", "intermediate", "senior"]
StudioLevelCode = Literal["national", "provincial", "municipal", "school"]
StudioRoleCode = Literal["member", "apprentice"]
EvaluationResultCode = Literal["excellent", "pass", "fail"]

_STRICT = ConfigDict(strict=True, extra="ignore")


@with_config(_STRICT)
class SchoolRegistered(TypedDict):
    name: Id
    level: SchoolLevelCode
    city: CityCode
    county: NotRequired[str | None]
    circle: NotRequired[CircleCode | None]
    communities: NotRequired[list[CommunityCode]]
    flags: NotRequired[list[str]]


@with_config(_STRICT)
class SchoolUpdated(TypedDict):
    name: NotRequired[Id | None]
    level: NotRequired[SchoolLevelCode | None]
    city: NotRequired[CityCode | None]
    county: NotRequired[str | None]
    circle: NotRequired[CircleCode | None]
    communities: NotRequired[list[CommunityCode] | None]
    flags: NotRequired[list[str] | None]


@with_config(ConfigDict(strict=True, extra="forbid"))
class EnrollmentCounts(TypedDict):
    full_time: NotRequired[Count]
    night: NotRequired[Count]
    correspondence: NotRequired[Count]


@with_config(_STRICT)
class EnrollmentReported(TypedDict):
    term: Annotated[str, Field(pattern=TERM)]
    counts: EnrollmentCounts


@with_config(_STRICT)
class TeacherHired(TypedDict):
    teacher_id: Id
    employment: EmploymentCode
    course_type: CourseTypeCode
    title: TitleCode
    degree: DegreeCode


@with_config(_STRICT)
class TeacherUpdated(TypedDict):
    teacher_id: Id
    employment: NotRequired[EmploymentCode | None]
    course_type: NotRequired[CourseTypeCode | None]
    title: NotRequired[TitleCode | None]
    degree: NotRequired[DegreeCode | None]


@with_config(_STRICT)
class TeacherDeparted(TypedDict):
    teacher_id: Id
    reason: DepartureReasonCode


@with_config(_STRICT)
class CertificationGranted(TypedDict):
    """A dual-teacher certificate; valid_until must be later than issued_on."""

    certificate_id: Id
    teacher_id: Id
    level: CertificateLevelCode
    issued_on: Date
    valid_until: Date
    issuer: NotRequired[str | None]


@with_config(_STRICT)
class CertificationRevoked(TypedDict):
    certificate_id: Id
    reason: NotRequired[str | None]


@with_config(_STRICT)
class DegreeEnrolled(TypedDict):
    programme_id: Id
    teacher_id: Id
    target_degree: TargetDegreeCode
    institution: NotRequired[str | None]
    expected_completion: NotRequired[Date | None]


@with_config(_STRICT)
class DegreeConferred(TypedDict):
    programme_id: Id


@with_config(_STRICT)
class DegreeWithdrawn(TypedDict):
    programme_id: Id


@with_config(_STRICT)
class StudioEstablished(TypedDict):
    studio_id: Id
    name: Id
    level: StudioLevelCode
    lead_teacher_id: Id
    trade: NotRequired[str | None]
    community: NotRequired[CommunityCode | None]


@with_config(_STRICT)
class StudioLeadChanged(TypedDict):
    studio_id: Id
    lead_teacher_id: Id


@with_config(_STRICT)
class StudioMemberJoined(TypedDict):
    studio_id: Id
    teacher_id: Id
    role: StudioRoleCode


@with_config(_STRICT)
class StudioMemberLeft(TypedDict):
    studio_id: Id
    teacher_id: Id


@with_config(_STRICT)
class StudioActivityReported(TypedDict):
    studio_id: Id
    period: Annotated[str, Field(pattern=PERIOD)]
    training_hours: NotRequired[Count | None]
    apprentices_trained: NotRequired[Count | None]
    tech_services: NotRequired[Count | None]
    patents: NotRequired[Count | None]


@with_config(_STRICT)
class StudioEvaluated(TypedDict):
    studio_id: Id
    year: Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR)]
    result: EvaluationResultCode


@with_config(_STRICT)
class StudioClosed(TypedDict):
    studio_id: Id
    reason: NotRequired[str | None]


PAYLOADS: dict[str, type] = {
    "school.registered": SchoolRegistered,
    "school.updated": SchoolUpdated,
    "enrollment.reported": EnrollmentReported,
    "teacher.hired": TeacherHired,
    "teacher.updated": TeacherUpdated,
    "teacher.departed": TeacherDeparted,
    "certification.granted": CertificationGranted,
    "certification.revoked": CertificationRevoked,
    "degree.enrolled": DegreeEnrolled,
    "degree.conferred": DegreeConferred,
    "degree.withdrawn": DegreeWithdrawn,
    "studio.established": StudioEstablished,
    "studio.lead_changed": StudioLeadChanged,
    "studio.member_joined": StudioMemberJoined,
    "studio.member_left": StudioMemberLeft,
    "studio.activity_reported": StudioActivityReported,
    "studio.evaluated": StudioEvaluated,
    "studio.closed": StudioClosed,
}
EVENT_TYPES = tuple(PAYLOADS)
#: payload fields that hold calendar dates (checked for existence and limits by the validator)
DATE_FIELDS = ("issued_on", "valid_until", "expected_completion")


@with_config(_STRICT)
class Envelope(TypedDict):
    """The fields every event carries, validated before its payload. The timestamps' form and limits
    and the event id's form are checked by the validator, which gives each its own message."""

    event_id: str
    event_type: str
    schema_version: int
    school_id: Id
    occurred_at: str
    emitted_at: NotRequired[str | None]
    source: NotRequired[str | None]
    payload: dict[str, Any]


ENVELOPE: TypeAdapter[Envelope] = TypeAdapter(Envelope)
PAYLOAD_ADAPTERS: dict[str, TypeAdapter[Any]] = {t: TypeAdapter(p) for t, p in PAYLOADS.items()}
#: the fields validation keeps, per event type (extra fields are ignored)
PAYLOAD_FIELDS: dict[str, frozenset[str]] = {
    t: frozenset(p.__required_keys__ | p.__optional_keys__)  # type: ignore[attr-defined]
    for t, p in PAYLOADS.items()
}
