"""Folding events into province state (DOMAIN.md section 3, "State rules").

`Province.apply(event)` applies one accepted event, in the order the caller guarantees (occurred_at,
then event_id), and returns the schools whose event-driven indicators may have changed. Nothing here
knows about Kafka or ClickHouse.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction

from schemas import events as ev
from schemas.reference import (
    CITY_CIRCLE,
    DEGREE_RANK,
    CourseType,
    Degree,
    Employment,
    EvaluationResult,
    SchoolLevel,
    StudioRole,
    Title,
)
from schemas.validation import Accepted

_SENIOR_TITLES = (Title.associate_senior, Title.senior)
_POSTGRADUATE = (Degree.master, Degree.doctor)


@dataclass(slots=True)
class Teacher:
    teacher_id: str
    school_id: str | None  # where the teacher is active; None when inactive
    employment: Employment
    course_type: CourseType
    title: Title
    degree: Degree

    @property
    def full_time_professional(self) -> bool:
        return self.employment is Employment.full_time and self.course_type is CourseType.professional


@dataclass(slots=True)
class Certificate:
    certificate_id: str
    teacher_id: str
    level: str
    issued_on: date
    valid_until: date
    revoked_at: datetime | None = None
    granted_by: str = ""  # the event that granted it

    def valid_on(self, day: date) -> bool:
        return self.revoked_at is None and self.issued_on <= day < self.valid_until


@dataclass(slots=True)
class Programme:
    programme_id: str
    teacher_id: str
    target: Degree
    status: str = "enrolled"  # enrolled | conferred | withdrawn


@dataclass(slots=True)
class Studio:
    studio_id: str
    school_id: str
    name: str
    level: str
    lead_teacher_id: str
    established_at: datetime
    trade: str | None = None
    community: str | None = None
    closed_at: datetime | None = None
    members: dict[str, StudioRole] = field(default_factory=dict)
    last_activity_at: datetime | None = None
    last_evaluation: EvaluationResult | None = None

    @property
    def active(self) -> bool:
        return self.closed_at is None


@dataclass(slots=True)
class School:
    school_id: str
    registered_at: datetime | None = None
    name: str = ""
    level: SchoolLevel | None = None
    city: str = ""
    county: str | None = None
    circle: str = ""
    communities: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    enrollment: tuple[int, int, int] | None = None  # full_time, night, correspondence
    enrollment_term: str = ""
    last_event_at: datetime | None = None

    @property
    def registered(self) -> bool:
        return self.registered_at is not None


@dataclass(slots=True)
class Counts:
    """Per-school counts of active teachers, kept incrementally so that an event costs O(1)."""

    full_time: int = 0
    part_time: int = 0
    professional: int = 0  # full-time, professional course type
    postgraduate: int = 0  # full-time, master or doctor
    doctor: int = 0  # full-time, doctor
    senior_title: int = 0  # full-time, associate_senior or senior

    def add(self, t: Teacher, sign: int) -> None:
        if t.employment is Employment.part_time:
            self.part_time += sign
            return
        self.full_time += sign
        if t.course_type is CourseType.professional:
            self.professional += sign
        if t.degree in _POSTGRADUATE:
            self.postgraduate += sign
        if t.degree is Degree.doctor:
            self.doctor += sign
        if t.title in _SENIOR_TITLES:
            self.senior_title += sign


class Province:
    """The whole state that events build: teachers, certificates, programmes, studios and schools."""

    def __init__(self) -> None:
        self.schools: dict[str, School] = {}
        self.teachers: dict[str, Teacher] = {}
        self.certificates: dict[str, Certificate] = {}
        self.certificates_of: dict[str, set[str]] = defaultdict(set)
        self.programmes: dict[str, Programme] = {}
        self.studios: dict[str, Studio] = {}
        self.counts: dict[str, Counts] = defaultdict(Counts)
        self.teachers_at: dict[str, set[str]] = defaultdict(set)
        self.applied = 0
        self.last_applied: tuple[datetime, str] | None = None

    # --- helpers ----------------------------------------------------------------------------------

    def school(self, school_id: str) -> School:
        s = self.schools.get(school_id)
        if s is None:
            s = self.schools[school_id] = School(school_id)
        return s

    def _place(self, t: Teacher, school_id: str | None) -> None:
        """Move a teacher (with the attributes it has now) to `school_id` (None: inactive)."""
        if t.school_id is not None:
            self.counts[t.school_id].add(t, -1)
            self.teachers_at[t.school_id].discard(t.teacher_id)
        t.school_id = school_id
        if school_id is not None:
            self.counts[school_id].add(t, +1)
            self.teachers_at[school_id].add(t.teacher_id)

    def _active_at(self, teacher_id: str, school_id: str) -> Teacher | None:
        t = self.teachers.get(teacher_id)
        return t if t is not None and t.school_id == school_id else None

    def school_of_teacher(self, teacher_id: str) -> str | None:
        t = self.teachers.get(teacher_id)
        return t.school_id if t is not None else None

    # --- the fold ---------------------------------------------------------------------------------

    def apply(self, e: Accepted) -> set[str]:
        """Apply one event; returns the schools whose teacher counts, students or level changed."""
        self.applied += 1
        self.last_applied = e.order_key
        school = self.school(e.school_id)
        if school.last_event_at is None or e.occurred_at > school.last_event_at:
            school.last_event_at = e.occurred_at
        p = e.payload
        sid = e.school_id
        match p:
            case ev.SchoolRegistered():
                if school.registered_at is None:
                    school.registered_at = e.occurred_at
                school.name, school.level, school.city = p.name, p.level, str(p.city)
                school.county = p.county
                school.circle = CITY_CIRCLE[str(p.city)].value
                school.communities = tuple(str(c) for c in p.communities)
                school.flags = tuple(p.flags)
                return {sid}
            case ev.SchoolUpdated():
                for name in p.model_fields_set:
                    value = getattr(p, name)
                    if value is None:
                        continue
                    if name == "city":
                        school.city, school.circle = str(value), CITY_CIRCLE[str(value)].value
                    elif name in ("communities", "flags"):
                        setattr(school, name, tuple(str(v) for v in value))
                    elif name != "circle":  # the circle follows from the city
                        setattr(school, name, value)
                return {sid}
            case ev.EnrollmentReported():
                c = p.counts
                school.enrollment = (c.full_time, c.night, c.correspondence)
                school.enrollment_term = p.term
                return {sid}
            case ev.TeacherHired():
                t = self.teachers.get(p.teacher_id)
                before = t.school_id if t is not None else None
                if t is None:
                    t = self.teachers[p.teacher_id] = Teacher(
                        p.teacher_id, None, p.employment, p.course_type, p.title, p.degree
                    )
                else:
                    self._place(t, None)
                    t.employment, t.course_type, t.title, t.degree = (
                        p.employment,
                        p.course_type,
                        p.title,
                        p.degree,
                    )
                self._place(t, sid)
                return {sid} | ({before} if before else set())
            case ev.TeacherUpdated():
                t = self._active_at(p.teacher_id, sid)
                if t is None:
                    return set()
                self._place(t, None)
                for name in ("employment", "course_type", "title", "degree"):
                    value = getattr(p, name)
                    if value is not None:
                        setattr(t, name, value)
                self._place(t, sid)
                return {sid}
            case ev.TeacherDeparted():
                t = self._active_at(p.teacher_id, sid)
                if t is None:
                    return set()
                self._place(t, None)
                return {sid}
            case ev.CertificationGranted():
                old = self.certificates.get(p.certificate_id)
                if old is not None:
                    self.certificates_of[old.teacher_id].discard(old.certificate_id)
                self.certificates[p.certificate_id] = Certificate(
                    p.certificate_id,
                    p.teacher_id,
                    str(p.level),
                    p.issued_on,
                    p.valid_until,
                    granted_by=e.event_id,
                )
                self.certificates_of[p.teacher_id].add(p.certificate_id)
                return set()
            case ev.CertificationRevoked():
                cert = self.certificates.get(p.certificate_id)
                if cert is not None and cert.revoked_at is None:
                    cert.revoked_at = e.occurred_at
                return set()
            case ev.DegreeEnrolled():
                self.programmes[p.programme_id] = Programme(
                    p.programme_id, p.teacher_id, Degree(p.target_degree.value)
                )
                return set()
            case ev.DegreeConferred():
                prog = self.programmes.get(p.programme_id)
                if prog is None or prog.status != "enrolled":
                    return set()
                prog.status = "conferred"
                t = self.teachers.get(prog.teacher_id)
                if t is None or DEGREE_RANK[prog.target] <= DEGREE_RANK[t.degree]:
                    return set()
                at = t.school_id
                if at is not None:
                    self._place(t, None)
                t.degree = prog.target
                if at is not None:
                    self._place(t, at)
                return {at} if at else set()
            case ev.DegreeWithdrawn():
                prog = self.programmes.get(p.programme_id)
                if prog is not None and prog.status == "enrolled":
                    prog.status = "withdrawn"
                return set()
            case ev.StudioEstablished():
                self.studios[p.studio_id] = Studio(
                    p.studio_id,
                    sid,
                    p.name,
                    str(p.level),
                    p.lead_teacher_id,
                    e.occurred_at,
                    trade=p.trade,
                    community=str(p.community) if p.community else None,
                )
                return set()
            case _:
                self._apply_studio(e)
                return set()

    def _apply_studio(self, e: Accepted) -> None:
        p = e.payload
        studio = self.studios.get(getattr(p, "studio_id", ""))
        if studio is None or studio.school_id != e.school_id:
            return  # unknown studio, or another school's: changes nothing
        match p:
            case ev.StudioLeadChanged():
                studio.lead_teacher_id = p.lead_teacher_id
            case ev.StudioMemberJoined():
                studio.members[p.teacher_id] = p.role
            case ev.StudioMemberLeft():
                studio.members.pop(p.teacher_id, None)
            case ev.StudioActivityReported():
                studio.last_activity_at = e.occurred_at
            case ev.StudioEvaluated():
                studio.last_evaluation = p.result
            case ev.StudioClosed():
                if studio.closed_at is None:
                    studio.closed_at = e.occurred_at


def students(school: School, weights: dict[str, Fraction]) -> Fraction:
    """The converted student count (折合在校生) of the school's latest enrollment report."""
    if school.enrollment is None:
        return Fraction(0)
    ft, night, corr = school.enrollment
    return ft * weights["full_time"] + night * weights["night"] + corr * weights["correspondence"]
