"""The 31 provincial-level divisions of the mainland, for the national roll-up (docs/domain.md,
"The country as provinces"): the GB/T 2260 code, the ISO 3166-2:CN letters (the prefix of a simulated
school's id) and the names; `population` (millions, 2020 census) only weights how many schools the
simulator gives each one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Province:
    code: str  # GB/T 2260, six digits
    letters: str  # ISO 3166-2:CN, after "CN-"
    name_zh: str
    name_en: str
    population: float


PROVINCES: tuple[Province, ...] = (
    Province("110000", "BJ", "北京市", "Beijing", 21.9),
    Province("120000", "TJ", "天津市", "Tianjin", 13.9),
    Province("130000", "HE", "河北省", "Hebei", 74.6),
    Province("140000", "SX", "山西省", "Shanxi", 34.9),
    Province("150000", "NM", "内蒙古自治区", "Inner Mongolia", 24.0),
    Province("210000", "LN", "辽宁省", "Liaoning", 42.6),
    Province("220000", "JL", "吉林省", "Jilin", 24.1),
    Province("230000", "HL", "黑龙江省", "Heilongjiang", 31.9),
    Province("310000", "SH", "上海市", "Shanghai", 24.9),
    Province("320000", "JS", "江苏省", "Jiangsu", 84.7),
    Province("330000", "ZJ", "浙江省", "Zhejiang", 64.6),
    Province("340000", "AH", "安徽省", "Anhui", 61.0),
    Province("350000", "FJ", "福建省", "Fujian", 41.5),
    Province("360000", "JX", "江西省", "Jiangxi", 45.2),
    Province("370000", "SD", "山东省", "Shandong", 101.5),
    Province("410000", "HA", "河南省", "Henan", 99.4),
    Province("420000", "HB", "湖北省", "Hubei", 57.8),
    Province("430000", "HN", "湖南省", "Hunan", 66.4),
    Province("440000", "GD", "广东省", "Guangdong", 126.0),
    Province("450000", "GX", "广西壮族自治区", "Guangxi", 50.1),
    Province("460000", "HI", "海南省", "Hainan", 10.1),
    Province("500000", "CQ", "重庆市", "Chongqing", 32.1),
    Province("510000", "SC", "四川省", "Sichuan", 83.7),
    Province("520000", "GZ", "贵州省", "Guizhou", 38.6),
    Province("530000", "YN", "云南省", "Yunnan", 47.2),
    Province("540000", "XZ", "西藏自治区", "Tibet", 3.6),
    Province("610000", "SN", "陕西省", "Shaanxi", 39.5),
    Province("620000", "GS", "甘肃省", "Gansu", 25.0),
    Province("630000", "QH", "青海省", "Qinghai", 5.9),
    Province("640000", "NX", "宁夏回族自治区", "Ningxia", 7.2),
    Province("650000", "XJ", "新疆维吾尔自治区", "Xinjiang", 25.9),
)
BY_CODE = {p.code: p for p in PROVINCES}


def schools_per_province(total: int) -> dict[str, int]:
    """`total` schools dealt out by population, at least one each, summing to `total` (largest
    remainders), for `total` >= 31."""
    if total < len(PROVINCES):
        raise ValueError(f"the country needs at least {len(PROVINCES)} schools, one per province")
    weight = sum(p.population for p in PROVINCES)
    spare = total - len(PROVINCES)
    exact = {p.code: spare * p.population / weight for p in PROVINCES}
    out = {code: 1 + int(x) for code, x in exact.items()}
    short = total - sum(out.values())
    for code in sorted(exact, key=lambda c: (-(exact[c] - int(exact[c])), c))[:short]:
        out[code] += 1
    return out
