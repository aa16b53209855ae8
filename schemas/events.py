"""Pydantic v2 models of the event envelope and every event type (DOMAIN.md section 3).

Validation is strict JSON validation (`Event.validate_json`): a string field takes only a JSON string,
an integer only a JSON integer, enumerations only their listed values. Extra payload fields are
allowed and ignored.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from schemas.reference import (
    CertificateLevel,
    Circle,
    City,
    Community,
    CourseType,
    Degree,
    DepartureReason,
    Employment,
    EvaluationResult,
    SchoolLevel,
    StudioLevel,
    StudioRole,
    TargetDegree,
    Title,
)

SCHEMA_VERSION = 1

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TERM = re.compile(r"^\d{4}-(spring|autumn)$")
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2025-09-01T08:00:00+08:00")
    text = value.upper().replace("Z", "+00:00")
    frac = re.search(r"\.(\d+)", text)
    if frac and len(frac.group(1)) > 6:  # Python keeps microseconds; finer digits are dropped
        text = text.replace(frac.group(0), frac.group(0)[:7])
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"is not a valid timestamp: {err}") from None


def _calendar_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"is not a valid date: {err}") from None


def _canonical_uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID, e.g. 63bbd751-de12-40df-bb73-86d46e5c30a0") from None


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]
EventId = Annotated[str, BeforeValidator(_canonical_uuid)]
Id = Annotated[str, AfterValidator(_non_empty)]
Term = Annotated[str, Field(pattern=_TERM.pattern)]
Period = Annotated[str, Field(pattern=_PERIOD.pattern)]
NonNegative = Annotated[int, Field(ge=0)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


# --- payloads -------------------------------------------------------------------------------------


class SchoolRegistered(Payload):
    name: Id
    level: SchoolLevel
    city: City
    county: str | None = None
    circle: Circle | None = None
    communities: list[Community] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class SchoolUpdated(Payload):
    name: Id | None = None
    level: SchoolLevel | None = None
    city: City | None = None
    county: str | None = None
    circle: Circle | None = None
    communities: list[Community] | None = None
    flags: list[str] | None = None


class EnrollmentCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    full_time: NonNegative = 0
    night: NonNegative = 0
    correspondence: NonNegative = 0


class EnrollmentReported(Payload):
    term: Term
    counts: EnrollmentCounts


class TeacherHired(Payload):
    teacher_id: Id
    employment: Employment
    course_type: CourseType
    title: Title
    degree: Degree


class TeacherUpdated(Payload):
    teacher_id: Id
    employment: Employment | None = None
    course_type: CourseType | None = None
    title: Title | None = None
    degree: Degree | None = None


class TeacherDeparted(Payload):
    teacher_id: Id
    reason: DepartureReason


class CertificationGranted(Payload):
    """A dual-teacher certificate; valid_until must be later than issued_on."""

    certificate_id: Id
    teacher_id: Id
    level: CertificateLevel
    issued_on: CalendarDate
    valid_until: CalendarDate
    issuer: str | None = None

    @model_validator(mode="after")
    def _valid_until_after_issued_on(self) -> CertificationGranted:
        if self.valid_until <= self.issued_on:
            raise ValueError("valid_until must be later than issued_on")
        return self


class CertificationRevoked(Payload):
    certificate_id: Id
    reason: str | None = None


class DegreeEnrolled(Payload):
    programme_id: Id
    teacher_id: Id
    target_degree: TargetDegree
    institution: str | None = None
    expected_completion: CalendarDate | None = None


class DegreeConferred(Payload):
    programme_id: Id


class DegreeWithdrawn(Payload):
    programme_id: Id


class StudioEstablished(Payload):
    studio_id: Id
    name: Id
    level: StudioLevel
    lead_teacher_id: Id
    trade: str | None = None
    community: Community | None = None


class StudioLeadChanged(Payload):
    studio_id: Id
    lead_teacher_id: Id


class StudioMemberJoined(Payload):
    studio_id: Id
    teacher_id: Id
    role: StudioRole


class StudioMemberLeft(Payload):
    studio_id: Id
    teacher_id: Id


class StudioActivityReported(Payload):
    studio_id: Id
    period: Period
    training_hours: NonNegative | None = None
    apprentices_trained: NonNegative | None = None
    tech_services: NonNegative | None = None
    patents: NonNegative | None = None


class StudioEvaluated(Payload):
    studio_id: Id
    year: int
    result: EvaluationResult


class StudioClosed(Payload):
    studio_id: Id
    reason: str | None = None


PAYLOADS: dict[str, type[Payload]] = {
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


# --- the envelope ---------------------------------------------------------------------------------


class Envelope(BaseModel):
    """The fields every event carries, validated before its payload."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    event_id: EventId
    event_type: str
    schema_version: int
    school_id: Id
    occurred_at: Timestamp
    emitted_at: Timestamp | None = None
    source: str | None = None
    payload: dict[str, Any]


def _event_model(event_type: str, payload: type[Payload]) -> type[Envelope]:
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_")) + "Event"
    return type(
        name,
        (Envelope,),
        {
            "__annotations__": {
                "event_type": Literal[event_type],
                "schema_version": Literal[SCHEMA_VERSION],
                "payload": payload,
            },
            "__module__": __name__,
            "__doc__": f"A `{event_type}` event.",
        },
    )


EVENT_MODELS: dict[str, type[Envelope]] = {t: _event_model(t, p) for t, p in PAYLOADS.items()}

#: The discriminated union of every event type, on `event_type`.
AnyEvent: Any = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="event_type")]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)
