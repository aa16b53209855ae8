"""Reference data as code (docs/domain.md sections 1-3): cities and their circles, communities, levels."""

from __future__ import annotations

from enum import StrEnum


class Circle(StrEnum):
    capital = "capital"  # 省会经济圈
    jiaodong = "jiaodong"  # 胶东经济圈
    lunan = "lunan"  # 鲁南经济圈


CITY_CIRCLE: dict[str, Circle] = {
    **dict.fromkeys(("jinan", "zibo", "taian", "liaocheng", "dezhou", "binzhou", "dongying"), Circle.capital),
    **dict.fromkeys(("qingdao", "yantai", "weifang", "weihai", "rizhao"), Circle.jiaodong),
    **dict.fromkeys(("linyi", "zaozhuang", "jining", "heze"), Circle.lunan),
}

City = StrEnum("City", {c: c for c in CITY_CIRCLE})  # type: ignore[misc]


class Community(StrEnum):
    """The 10 industry-education communities of the "ten strong" industries."""

    next_gen_it = "next_gen_it"
    high_end_equipment = "high_end_equipment"
    new_energy_materials = "new_energy_materials"
    modern_marine = "modern_marine"
    medical_health = "medical_health"
    high_end_chemicals = "high_end_chemicals"
    modern_agriculture = "modern_agriculture"
    culture_tourism = "culture_tourism"
    light_industry_textiles = "light_industry_textiles"
    modern_finance = "modern_finance"


class SchoolLevel(StrEnum):
    secondary = "secondary"  # 中职
    higher = "higher"  # 高职专科
    undergraduate = "undergraduate"  # 职业本科
    technician = "technician"  # 技工院校


class Employment(StrEnum):
    full_time = "full_time"
    part_time = "part_time"


class CourseType(StrEnum):
    professional = "professional"
    general = "general"


class Title(StrEnum):
    none = "none"
    junior = "junior"
    intermediate = "intermediate"
    associate_senior = "associate_senior"
    senior = "senior"


class Degree(StrEnum):
    below_bachelor = "below_bachelor"
    bachelor = "bachelor"
    master = "master"
    doctor = "doctor"


DEGREE_RANK: dict[str, int] = {d.value: i for i, d in enumerate(Degree)}


class TargetDegree(StrEnum):
    master = "master"
    doctor = "doctor"


class CertificateLevel(StrEnum):
    junior = "junior"
    intermediate = "intermediate"
    senior = "senior"


class DepartureReason(StrEnum):
    retired = "retired"
    resigned = "resigned"
    transfer = "transfer"
    dismissed = "dismissed"
    deceased = "deceased"
    other = "other"


class StudioLevel(StrEnum):
    national = "national"
    provincial = "provincial"
    municipal = "municipal"
    school = "school"


class StudioRole(StrEnum):
    member = "member"
    apprentice = "apprentice"


class EvaluationResult(StrEnum):
    excellent = "excellent"
    passed = "pass"
    fail = "fail"
