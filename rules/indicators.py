"""The indicators of docs/domain.md section 7, per school as of a time T, in exact arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

from rules.limits import INDICATORS, Rules
from rules.state import Province, School, Studio, students

CST = timezone(timedelta(hours=8), "CST")


def day_of(t: datetime) -> date:
    """T's calendar date in China Standard Time (UTC+8)."""
    return t.astimezone(CST).date()


def _share(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


@dataclass(frozen=True, slots=True)
class Indicators:
    school_id: str
    level: str | None
    city: str
    students: Fraction
    full_time_teachers: int
    part_time_teachers: int
    fte_teachers: Fraction
    student_teacher_ratio: Fraction | None  # None with `ratio_infinite`
    ratio_infinite: bool
    professional_teachers: int
    dual_teachers: int | None  # None where not computed (the event-driven subset)
    dual_share: Fraction | None
    postgraduate_share: Fraction | None
    doctor_share: Fraction | None
    senior_title_share: Fraction | None
    part_time_share: Fraction | None
    active_studios: int = 0
    compliant_studios: int = 0

    def value(self, indicator: str) -> Fraction | int | None:
        value: Fraction | int | None = getattr(self, indicator)
        return value


def ratio_of(students_: Fraction, fte: Fraction) -> tuple[Fraction | None, bool]:
    """(ratio, infinite): students / FTE; infinite with students and no teachers; 0 with no students."""
    if fte == 0:
        return (None, True) if students_ > 0 else (Fraction(0), False)
    return students_ / fte, False


def staffing(province: Province, rules: Rules, school: School) -> Indicators:
    """The indicators that depend on events only (no clock): the basis of event-driven alerts."""
    c = province.counts.get(school.school_id)
    ft, pt = (c.full_time, c.part_time) if c else (0, 0)
    n_students = students(school, rules.student_weights)
    fte = ft + pt * rules.part_time_weight
    ratio, infinite = ratio_of(n_students, fte)
    return Indicators(
        school_id=school.school_id,
        level=school.level,
        city=school.city,
        students=n_students,
        full_time_teachers=ft,
        part_time_teachers=pt,
        fte_teachers=Fraction(fte),
        student_teacher_ratio=ratio,
        ratio_infinite=infinite,
        professional_teachers=c.professional if c else 0,
        dual_teachers=None,
        dual_share=None,
        postgraduate_share=_share(c.postgraduate, ft) if c else None,
        doctor_share=_share(c.doctor, ft) if c else None,
        senior_title_share=_share(c.senior_title, ft) if c else None,
        part_time_share=_share(pt, ft + pt),
    )


def dual_teachers(province: Province, school_id: str, day: date) -> int:
    """Full-time professional teachers active at the school holding a certificate valid on `day`."""
    n = 0
    for tid in province.teachers_at.get(school_id, ()):
        t = province.teachers[tid]
        if t.full_time_professional and any(
            province.certificates[cid].valid_on(day) for cid in province.certificates_of.get(tid, ())
        ):
            n += 1
    return n


def studio_reasons(province: Province, rules: Rules, studio: Studio, at: datetime) -> tuple[str, ...]:
    """Why an active studio is not compliant at `at`, in the order docs/domain.md gives; () when compliant."""
    reasons = []
    sid = studio.school_id
    if province.school_of_teacher(studio.lead_teacher_id) != sid:
        reasons.append("lead_inactive")
    members = sum(
        1
        for tid, role in studio.members.items()
        if role == "member" and tid != studio.lead_teacher_id and province.school_of_teacher(tid) == sid
    )
    if members < rules.studio_min_members:
        reasons.append("too_few_members")
    window = timedelta(days=rules.studio_inactive_days)
    recent_activity = studio.last_activity_at is not None and at - studio.last_activity_at <= window
    if not recent_activity and at - studio.established_at > window:
        reasons.append("inactive")
    if studio.last_evaluation == "fail":
        reasons.append("failed_evaluation")
    return tuple(reasons)


def violations(ind: Indicators, rules: Rules) -> tuple[str, ...]:
    """Sorted names of the indicators that miss their limit (null shares are not evaluated)."""
    missed = []
    for name in INDICATORS:
        limit_def = rules.limits[name]
        limit = limit_def.for_level(ind.level)
        if limit is None:
            continue
        if name == "student_teacher_ratio" and ind.ratio_infinite:
            missed.append(name)
            continue
        value = ind.value(name)
        if value is not None and limit_def.missed(Fraction(value), limit):
            missed.append(name)
    return tuple(sorted(missed))


def status(missed: tuple[str, ...]) -> str:
    """The 教发〔2004〕2号 card rule: none missed green, one yellow, two or more red."""
    return "green" if not missed else "yellow" if len(missed) == 1 else "red"
