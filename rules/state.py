"""Folding events into province state (docs/domain.md, "State rules").

`Province.apply(event)` applies one accepted event, in the order the caller guarantees (occurred_at,
then event_id), and returns what it changed: the schools whose event-driven indicators may have
changed, and the teachers and studios whose rows may have. Nothing here knows about Kafka or ClickHouse.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from schemas.reference import CITY_CIRCLE, DEGREE_RANK
from schemas.validation import Accepted

_SENIOR_TITLES = ("associate_senior", "senior")
#: one string object per code, shared by every teacher and certificate read back from a snapshot
_CODES = {
    c: c
    for c in ("full_time", "part_time", "professional", "general", "none", "junior", "intermediate",
              "associate_senior", "senior", "below_bachelor", "bachelor", "master", "doctor", "enrolled",
              "conferred", "withdrawn")
}  # fmt: skip
_POSTGRADUATE = ("master", "doctor")


def intern(code: str) -> str:
    """The shared string object of a code (a province's 100,000 teachers hold six codes each)."""
    return _CODES.get(code, code)


@dataclass(slots=True)
class Teacher:
    teacher_id: str
    school_id: str | None  # where the teacher is active; None when inactive
    employment: str
    course_type: str
    title: str
    degree: str

    @property
    def full_time_professional(self) -> bool:
        return self.employment == "full_time" and self.course_type == "professional"


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
    target: str
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
    members: dict[str, str] = field(default_factory=dict)  # teacher -> role (member | apprentice)
    last_activity_at: datetime | None = None
    last_evaluation: str | None = None  # excellent | pass | fail

    @property
    def active(self) -> bool:
        return self.closed_at is None


@dataclass(slots=True)
class School:
    school_id: str
    registered_at: datetime | None = None
    name: str = ""
    level: str | None = None
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


@dataclass(frozen=True, slots=True)
class Changes:
    """What one event may have changed; callers rewrite exactly these rows (a superset is harmless)."""

    schools: tuple[str, ...] = ()  # event-driven indicators (teacher counts, students, level)
    teachers: tuple[str, ...] = ()
    studios: tuple[str, ...] = ()


NO_CHANGES = Changes()


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
        if t.employment == "part_time":
            self.part_time += sign
            return
        self.full_time += sign
        if t.course_type == "professional":
            self.professional += sign
        if t.degree in _POSTGRADUATE:
            self.postgraduate += sign
        if t.degree == "doctor":
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
        #: teacher -> the studios the teacher leads or belongs to (a move changes their compliance)
        self.studios_of: dict[str, set[str]] = defaultdict(set)
        self.applied = 0
        self.last_applied: tuple[datetime, str] | None = None

    # --- restoring (rules.snapshot builds a province from its plain data with these) -----------------

    def place(self, t: Teacher, school_id: str | None) -> None:
        """Make `t` known and active at `school_id` (None: inactive), keeping the counts."""
        self.teachers[t.teacher_id] = t
        self._place(t, school_id)

    def add_studio(self, studio: Studio) -> None:
        self.studios[studio.studio_id] = studio
        self._index_studio(studio, add=True)

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

    def _index_studio(self, studio: Studio, add: bool) -> None:
        for tid in (studio.lead_teacher_id, *studio.members):
            if add:
                self.studios_of[tid].add(studio.studio_id)
            else:
                self.studios_of[tid].discard(studio.studio_id)

    def _teacher_changed(
        self, *teacher_ids: str, schools: tuple[str, ...] = (), studios: tuple[str, ...] = ()
    ) -> Changes:
        """The teachers' rows and the studios they lead or belong to (their compliance may follow)."""
        led = self.studios_of
        return Changes(schools, teacher_ids, (*studios, *(s for t in teacher_ids for s in led.get(t, ()))))

    # --- the fold ---------------------------------------------------------------------------------

    def apply(self, e: Accepted) -> Changes:
        """Apply one event; returns what it changed (see `Changes`)."""
        self.applied += 1
        self.last_applied = e.order_key
        school = self.school(e.school_id)
        if school.last_event_at is None or e.occurred_at > school.last_event_at:
            school.last_event_at = e.occurred_at
        kind, _ = e.event_type.split(".", 1)
        if kind in ("school", "enrollment"):
            return self._apply_school(e, school)
        if kind == "teacher":
            return self._apply_teacher(e)
        if kind in ("certification", "degree"):
            return self._apply_qualification(e)
        return self._apply_studio(e)

    def _apply_school(self, e: Accepted, school: School) -> Changes:
        p = e.payload
        if e.event_type == "enrollment.reported":
            c = p["counts"]
            school.enrollment = (c.get("full_time", 0), c.get("night", 0), c.get("correspondence", 0))
            school.enrollment_term = p["term"]
            return Changes(schools=(e.school_id,))
        if e.event_type == "school.registered":
            if school.registered_at is None:
                school.registered_at = e.occurred_at
            school.county, school.communities, school.flags = None, (), ()
        for name, value in p.items():
            if value is None or name == "circle":  # the circle follows from the city
                continue
            if name == "city":
                school.city, school.circle = value, CITY_CIRCLE[value].value
            elif name in ("communities", "flags"):
                setattr(school, name, tuple(value))
            else:
                setattr(school, name, value)
        return Changes(schools=(e.school_id,))

    def _apply_teacher(self, e: Accepted) -> Changes:
        p, sid, tid = e.payload, e.school_id, e.payload["teacher_id"]
        if e.event_type == "teacher.hired":
            t = self.teachers.get(tid)
            before = t.school_id if t is not None else None
            if t is None:
                t = self.teachers[tid] = Teacher(
                    tid, None, p["employment"], p["course_type"], p["title"], p["degree"]
                )
            else:
                self._place(t, None)
                t.employment, t.course_type, t.title, t.degree = (
                    p["employment"], p["course_type"], p["title"], p["degree"]
                )  # fmt: skip
            self._place(t, sid)
            return self._teacher_changed(tid, schools=(sid, before) if before and before != sid else (sid,))
        active = self._active_at(tid, sid)
        if active is None:  # updates and departures count only from the school where the teacher is
            return self._teacher_changed(tid)
        self._place(active, None)
        if e.event_type == "teacher.updated":
            for name in ("employment", "course_type", "title", "degree"):
                if p.get(name) is not None:
                    setattr(active, name, p[name])
            self._place(active, sid)
        return self._teacher_changed(tid, schools=(sid,))

    def _apply_qualification(self, e: Accepted) -> Changes:
        p = e.payload
        match e.event_type:
            case "certification.granted":
                old = self.certificates.get(p["certificate_id"])
                if old is not None:
                    self.certificates_of[old.teacher_id].discard(old.certificate_id)
                cert = Certificate(
                    p["certificate_id"],
                    p["teacher_id"],
                    p["level"],
                    date.fromisoformat(p["issued_on"]),
                    date.fromisoformat(p["valid_until"]),
                    granted_by=e.event_id,
                )
                self.certificates[cert.certificate_id] = cert
                self.certificates_of[cert.teacher_id].add(cert.certificate_id)
                holders = (cert.teacher_id,) if old is None else (cert.teacher_id, old.teacher_id)
                return self._teacher_changed(*holders)
            case "certification.revoked":
                revoked = self.certificates.get(p["certificate_id"])
                if revoked is None:
                    return NO_CHANGES
                if revoked.revoked_at is None:
                    revoked.revoked_at = e.occurred_at
                return self._teacher_changed(revoked.teacher_id)
            case "degree.enrolled":
                prog = Programme(p["programme_id"], p["teacher_id"], p["target_degree"])
                self.programmes[prog.programme_id] = prog
                return self._teacher_changed(prog.teacher_id)
        prog_ = self.programmes.get(p["programme_id"])
        if prog_ is None:
            return NO_CHANGES
        if prog_.status != "enrolled":  # conferral or withdrawal of a programme not enrolled: nothing
            return self._teacher_changed(prog_.teacher_id)
        if e.event_type == "degree.withdrawn":
            prog_.status = "withdrawn"
            return self._teacher_changed(prog_.teacher_id)
        prog_.status = "conferred"
        t = self.teachers.get(prog_.teacher_id)
        if t is None or DEGREE_RANK[prog_.target] <= DEGREE_RANK[t.degree]:
            return self._teacher_changed(prog_.teacher_id)
        at = t.school_id
        if at is not None:
            self._place(t, None)
        t.degree = prog_.target
        if at is not None:
            self._place(t, at)
        return self._teacher_changed(prog_.teacher_id, schools=(at,) if at else ())

    def _apply_studio(self, e: Accepted) -> Changes:
        p: dict[str, Any] = e.payload
        named = tuple(p[k] for k in ("lead_teacher_id", "teacher_id") if k in p)
        changed = self._teacher_changed(*named, studios=(p["studio_id"],))
        studio = self.studios.get(p["studio_id"])
        if e.event_type == "studio.established":
            if studio is not None:
                self._index_studio(studio, add=False)
            studio = Studio(
                p["studio_id"],
                e.school_id,
                p["name"],
                p["level"],
                p["lead_teacher_id"],
                e.occurred_at,
                trade=p.get("trade"),
                community=p.get("community"),
            )
            self.studios[studio.studio_id] = studio
            self._index_studio(studio, add=True)
            return changed
        if studio is None or studio.school_id != e.school_id:
            return changed  # unknown studio, or another school's: changes nothing
        self._index_studio(studio, add=False)
        match e.event_type:
            case "studio.lead_changed":
                studio.lead_teacher_id = p["lead_teacher_id"]
            case "studio.member_joined":
                studio.members[p["teacher_id"]] = p["role"]
            case "studio.member_left":
                studio.members.pop(p["teacher_id"], None)
            case "studio.activity_reported":
                studio.last_activity_at = e.occurred_at
            case "studio.evaluated":
                studio.last_evaluation = p["result"]
            case "studio.closed":
                if studio.closed_at is None:
                    studio.closed_at = e.occurred_at
        self._index_studio(studio, add=True)
        return changed
