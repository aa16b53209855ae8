"""The indicators of docs/domain.md section 7, per school as of a time T, in exact arithmetic.

An `Indicators` holds integer counts (converted students in 1/`Scales.students` units, FTE teachers in
1/`Scales.fte` units); every limit test compares integer cross-products, and the exact values
(`Fraction`s) are made only when someone reads them (a report, a row, an alert's value).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

from rules.limits import INDICATORS, Limit, Rules, Scales
from rules.state import Province, School, Studio

CST = timezone(timedelta(hours=8), "CST")


def day_of(t: datetime) -> date:
    """T's calendar date in China Standard Time (UTC+8)."""
    return t.astimezone(CST).date()


@dataclass(frozen=True, slots=True)
class Indicators:
    school_id: str
    level: str | None
    city: str
    scales: Scales
    students_scaled: int  # converted students, in 1/scales.students units
    full_time_teachers: int
    part_time_teachers: int
    professional_teachers: int
    postgraduate: int  # full-time, master or doctor
    doctor: int  # full-time, doctor
    senior_title: int  # full-time, associate_senior or senior
    dual_teachers: int | None = None  # None where not computed (the event-driven subset)
    active_studios: int = 0
    compliant_studios: int = 0

    # --- exact values ---------------------------------------------------------------------------------

    @property
    def fte_scaled(self) -> int:
        return self.full_time_teachers * self.scales.fte + self.part_time_teachers * self.scales.part_time

    @property
    def students(self) -> Fraction:
        return Fraction(self.students_scaled, self.scales.students)

    @property
    def fte_teachers(self) -> Fraction:
        return Fraction(self.fte_scaled, self.scales.fte)

    @property
    def ratio_infinite(self) -> bool:
        """Students and no teachers: the ratio is infinite (a violation, reported as null)."""
        return self.fte_scaled == 0 and self.students_scaled > 0

    @property
    def student_teacher_ratio(self) -> Fraction | None:
        """students / FTE; None when infinite; 0 with no students."""
        parts = self.parts("student_teacher_ratio")
        return None if parts is None else Fraction(*parts)

    @property
    def dual_share(self) -> Fraction | None:
        return self._share("dual_share")

    @property
    def postgraduate_share(self) -> Fraction | None:
        return self._share("postgraduate_share")

    @property
    def doctor_share(self) -> Fraction | None:
        return self._share("doctor_share")

    @property
    def senior_title_share(self) -> Fraction | None:
        return self._share("senior_title_share")

    @property
    def part_time_share(self) -> Fraction | None:
        return self._share("part_time_share")

    def _share(self, name: str) -> Fraction | None:
        parts = self.parts(name)
        return None if parts is None else Fraction(*parts)

    def value(self, indicator: str) -> Fraction | int | None:
        if indicator == "full_time_teachers":
            return self.full_time_teachers
        parts = self.parts(indicator)
        return None if parts is None else Fraction(*parts)

    # --- integer forms ----------------------------------------------------------------------------------

    def parts(self, indicator: str) -> tuple[int, int] | None:
        """(numerator, denominator > 0) of an indicator; None when its denominator is 0 (a share not
        evaluated) or the ratio is infinite."""
        s = self.scales
        ft, pt = self.full_time_teachers, self.part_time_teachers
        match indicator:
            case "student_teacher_ratio":
                fte = self.fte_scaled
                if fte == 0:
                    return None if self.students_scaled > 0 else (0, 1)
                return self.students_scaled * s.fte, fte * s.students
            case "full_time_teachers":
                return ft, 1
            case "dual_share":
                n, d = self.dual_teachers or 0, self.professional_teachers
            case "postgraduate_share":
                n, d = self.postgraduate, ft
            case "doctor_share":
                n, d = self.doctor, ft
            case "senior_title_share":
                n, d = self.senior_title, ft
            case "part_time_share":
                n, d = pt, ft + pt
            case _:
                raise KeyError(indicator)
        if indicator == "dual_share" and self.dual_teachers is None:
            return None
        return (n, d) if d else None

    def missed(self, indicator: str, limit_def: Limit, limit: Fraction) -> bool:
        """Whether the indicator misses its limit, compared exactly (null shares are not evaluated)."""
        if indicator == "student_teacher_ratio" and self.ratio_infinite:
            return True
        parts = self.parts(indicator)
        if parts is None:
            return False
        n, d = parts
        if limit_def.op == "max":
            return n * limit.denominator > limit.numerator * d
        return n * limit.denominator < limit.numerator * d


def staffing(province: Province, rules: Rules, school: School) -> Indicators:
    """The indicators that depend on events only (no clock): the basis of event-driven alerts."""
    c = province.counts.get(school.school_id)
    w = rules.scales.weights
    ft_s, night, corr = school.enrollment or (0, 0, 0)
    return Indicators(
        school_id=school.school_id,
        level=school.level,
        city=school.city,
        scales=rules.scales,
        students_scaled=ft_s * w[0] + night * w[1] + corr * w[2],
        full_time_teachers=c.full_time if c else 0,
        part_time_teachers=c.part_time if c else 0,
        professional_teachers=c.professional if c else 0,
        postgraduate=c.postgraduate if c else 0,
        doctor=c.doctor if c else 0,
        senior_title=c.senior_title if c else 0,
    )


def dual_teachers(province: Province, school_id: str, day: date) -> int:
    """Full-time professional teachers active at the school holding a certificate valid on `day`."""
    n = 0
    certificates, certificates_of = province.certificates, province.certificates_of
    for tid in province.teachers_at.get(school_id, ()):
        t = province.teachers[tid]
        if t.full_time_professional and any(
            certificates[cid].valid_on(day) for cid in certificates_of.get(tid, ())
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
        if limit is not None and ind.missed(name, limit_def, limit):
            missed.append(name)
    return tuple(sorted(missed))


def status(missed: tuple[str, ...]) -> str:
    """The 教发〔2004〕2号 card rule: none missed green, one yellow, two or more red."""
    return "green" if not missed else "yellow" if len(missed) == 1 else "red"
