"""The Ministry's roll-up: the country as its provinces (docs/domain.md, "The country as provinces").

Each province is a deployment of its own, with its own store. The roll-up reads every province's live
`school_status` table in turn, through the same store API the province uses (a ClickHouse URL or a chDB
folder, named in the provinces file), and adds the counts up by province and by school level; shares
and ratios are computed from the sums, never averaged (docs/adr/0011). A province whose store cannot
be read is listed as missing with its reason; the others are still reported.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from foundation.configfile import read_yaml, validated
from foundation.errors import DualtrackError, StoreError
from schemas.provinces import BY_CODE, PROVINCES
from schemas.reference import SchoolLevel
from sinks.base import Row, Store, open_store
from sinks.live import LiveTables

#: what is added up per group of schools; the shares and the ratio come from these sums
COUNTS = (
    "schools", "students", "full_time_teachers", "part_time_teachers", "fte_teachers",
    "professional_teachers", "dual_teachers", "postgraduate_teachers", "doctor_teachers",
    "senior_title_teachers", "green_schools", "studios_active", "studios_compliant",
)  # fmt: skip
FIGURES = (
    "schools", "students", "full_time_teachers", "fte_teachers", "student_teacher_ratio", "dual_share",
    "postgraduate_share", "senior_title_share", "green_share", "studios_active", "studios_compliant",
)  # fmt: skip


class ProvinceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store: str = Field(min_length=1)  # clickhouse://... or a chDB folder
    studios_target: int | None = Field(None, ge=0)  # the province's plan, when it has one


def _text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _entry(value: object) -> object:
    return {"store": value} if isinstance(value, str) else value


def _code(value: str) -> str:
    if value not in BY_CODE:
        raise ValueError("not the GB/T 2260 code of a provincial division (such as 370000)")
    return value


class ProvincesFile(BaseModel):
    """Which store holds each province: `provinces: {370000: clickhouse://reader:...@host/db, ...}` or
    `{370000: {store: ..., studios_target: 500}}`."""

    model_config = ConfigDict(extra="forbid")

    provinces: dict[
        Annotated[str, BeforeValidator(_text), AfterValidator(_code)],
        Annotated[ProvinceEntry, BeforeValidator(_entry)],
    ]

    def entries(self) -> dict[str, ProvinceEntry]:
        return dict(sorted(self.provinces.items()))


def load_provinces(path: Path | str) -> dict[str, ProvinceEntry]:
    doc, node = read_yaml(path, "provinces file")
    return validated(ProvincesFile, doc, "provinces file", str(path), node).entries()


#: how long the roll-up tries again a province's server that refuses or drops the connection before it
#: reports the province missing (a server that takes a query and never answers costs the driver's
#: query timeout, 60 s)
PROVINCE_RETRY_SECONDS = 10.0


def open_province(location: str) -> Store:
    """A province's store: a server URL (`clickhouse://` or `clickhouses://`), or a chDB folder (chDB
    locks its folder, so one can be read only while its own worker is stopped). Errors never repeat the
    location: a URL carries a password."""
    if "://" in location:
        from sinks.clickhouse import ServerStore

        return ServerStore.from_url(location, retry_seconds=PROVINCE_RETRY_SECONDS)
    if not Path(location).is_dir():  # chDB would make an empty store there, which is not the province
        raise StoreError("no store folder at the path the provinces file gives")
    return open_store(path=location)


_SHARE_COUNTS = (
    ("postgraduate_share", "postgraduate_teachers"),
    ("doctor_share", "doctor_teachers"),
    ("senior_title_share", "senior_title_teachers"),
)


@dataclass
class Sums:
    n: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0.0))

    def add(self, r: Row) -> None:
        ft = int(r["full_time_teachers"])
        n = self.n
        n["schools"] += 1
        n["students"] += float(r["students"])
        n["full_time_teachers"] += ft
        n["part_time_teachers"] += int(r["part_time_teachers"])
        n["fte_teachers"] += float(r["fte_teachers"])
        n["professional_teachers"] += int(r["professional_teachers"])
        n["dual_teachers"] += int(r["dual_teachers"])
        # shares of full-time teachers back to counts (a share times its denominator is a whole number)
        for share, count in _SHARE_COUNTS:
            n[count] += round(float(r[share] or 0) * ft)
        n["green_schools"] += r["status"] == "green"
        n["studios_active"] += int(r["active_studios"])
        n["studios_compliant"] += int(r["compliant_studios"])

    def merge(self, other: Sums) -> None:
        for k, v in other.n.items():
            self.n[k] += v

    def figures(self) -> dict[str, Any]:
        n = self.n

        def share(part: str, whole: str) -> float | None:
            return round(n[part] / n[whole], 4) if n[whole] else None

        return {
            "schools": int(n["schools"]),
            "students": round(n["students"], 2),
            "full_time_teachers": int(n["full_time_teachers"]),
            "part_time_teachers": int(n["part_time_teachers"]),
            "fte_teachers": round(n["fte_teachers"], 2),
            "student_teacher_ratio": round(n["students"] / n["fte_teachers"], 2)
            if n["fte_teachers"]
            else None,
            "professional_teachers": int(n["professional_teachers"]),
            "dual_teachers": int(n["dual_teachers"]),
            "dual_share": share("dual_teachers", "professional_teachers"),
            "postgraduate_share": share("postgraduate_teachers", "full_time_teachers"),
            "doctor_share": share("doctor_teachers", "full_time_teachers"),
            "senior_title_share": share("senior_title_teachers", "full_time_teachers"),
            "green_share": share("green_schools", "schools"),
            "studios_active": int(n["studios_active"]),
            "studios_compliant": int(n["studios_compliant"]),
        }


def rollup(provinces: Mapping[str, Sequence[Row]], targets: Mapping[str, int | None],
           missing: Mapping[str, str], generated_at: datetime) -> dict[str, Any]:  # fmt: skip
    """The national report from each province's school rows (`LiveTables.school_status`)."""
    country, levels = Sums(), {lvl.value: Sums() for lvl in SchoolLevel}
    out_provinces = []
    for code in sorted(provinces):
        sums = Sums()
        for r in provinces[code]:
            sums.add(r)
            if r["level"] in levels:
                levels[r["level"]].add(r)
        country.merge(sums)
        p = BY_CODE[code]
        newest = max((r["last_event_at"] for r in provinces[code]), default=None)
        out_provinces.append({
            "code": code, "name_zh": p.name_zh, "name_en": p.name_en, **sums.figures(),
            "studios_target": targets.get(code),
            "last_event_at": newest.replace(tzinfo=UTC).isoformat() if newest else None,
        })  # fmt: skip
    known = [t for c, t in targets.items() if c in provinces and t is not None]
    return {
        "scope": "national",
        "generated_at": generated_at.isoformat(),
        "provinces_reporting": len(provinces),
        "provinces_expected": len(PROVINCES),
        "provinces_missing": [
            {
                "code": c,
                "name_zh": BY_CODE[c].name_zh,
                "name_en": BY_CODE[c].name_en,
                "reason": missing.get(c, "not in the provinces file"),
            }
            for c in sorted({p.code for p in PROVINCES} - set(provinces))
        ],
        "national": {**country.figures(), "studios_target": sum(known) if known else None},
        "levels": [{"level": lvl, **s.figures()} for lvl, s in levels.items() if s.n["schools"]],
        "provinces": out_provinces,
    }


def national_report(entries: Mapping[str, ProvinceEntry], now: datetime | None = None) -> dict[str, Any]:
    """Read every province's store named in `entries` (in turn) and roll them up."""
    rows: dict[str, list[Row]] = {}
    missing: dict[str, str] = {}
    for code, entry in entries.items():
        try:
            with open_province(entry.store) as st:
                rows[code] = LiveTables(st).school_status()
        except DualtrackError as err:  # the store's own words, which never repeat its URL
            reason = str(err).splitlines()[0][:300]
            missing[code] = reason.replace("DUALTRACK_CLICKHOUSE_URL", "its store in the provinces file")
    targets = {code: e.studios_target for code, e in entries.items()}
    return rollup(rows, targets, missing, now or datetime.now(UTC))


# --- formats ---------------------------------------------------------------------------------------------

_HEAD = {
    "schools": "学校 / schools",
    "students": "折合在校生 / students",
    "full_time_teachers": "专任教师 / full-time",
    "fte_teachers": "折合教师 / FTE",
    "student_teacher_ratio": "生师比 / ratio",
    "dual_share": "双师型 / dual share",
    "postgraduate_share": "研究生 / postgraduate",
    "senior_title_share": "高级职称 / senior title",
    "green_share": "全部达标 / all met",
    "studios_active": "工作室 / studios",
    "studios_compliant": "合规 / compliant",
}
_SHARES = {"dual_share", "postgraduate_share", "senior_title_share", "green_share"}


def cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in _SHARES:
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def rows_of(report: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(label, figures) per table row: the country, each level, each province."""
    yield "全国 / national", report["national"]
    for lv in report["levels"]:
        yield f"level: {lv['level']}", lv
    for p in report["provinces"]:
        yield f"{p['code']} {p['name_zh']} {p['name_en']}", p


def to_table(report: Mapping[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title=f"dualtrack national roll-up: {report['provinces_reporting']} of "
              f"{report['provinces_expected']} provinces")  # fmt: skip
    t.add_column("")
    for name in FIGURES:
        t.add_column(_HEAD[name], justify="right")
    for label, fig in rows_of(report):
        t.add_row(label, *(cell(n, fig.get(n)) for n in FIGURES))
    return t


def to_html(report: Mapping[str, Any]) -> str:
    """A page of its own: every value escaped (data is never markup)."""
    e = html.escape
    head = "".join(f"<th>{e(_HEAD[n])}</th>" for n in FIGURES)
    body = "".join(
        f"<tr><th scope=row>{e(label)}</th>"
        + "".join(f"<td>{e(cell(n, fig.get(n)))}</td>" for n in FIGURES)
        + "</tr>"
        for label, fig in rows_of(report)
    )
    missing = "".join(
        f"<li>{e(m['code'])} {e(m['name_zh'])}: {e(m['reason'])}</li>" for m in report["provinces_missing"]
    )
    target = report["national"].get("studios_target")
    return (
        "<!doctype html><html lang=zh-CN><meta charset=utf-8><title>全国职业院校师资汇总</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th[scope=row]{text-align:left}</style>"
        f"<h1>全国职业院校师资汇总 / National roll-up</h1><p>{e(str(report['provinces_reporting']))} / "
        f"{e(str(report['provinces_expected']))} 省级单位 / provinces; "
        f"生成于 / generated {e(report['generated_at'])}"
        f"; 工作室目标 / studios target: {e(cell('studios_target', target))}</p>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
        + (f"<h2>未报送 / Missing</h2><ul>{missing}</ul>" if missing else "")
        + "</html>"
    )


def to_xlsx(report: Mapping[str, Any], path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "national"
    ws.append(["", *(_HEAD[n] for n in FIGURES)])
    for label, fig in rows_of(report):
        ws.append([label, *(fig.get(n) for n in FIGURES)])  # numbers as numbers; a label never a formula
    missing = wb.create_sheet("missing")
    missing.append(["code", "name", "reason"])
    for m in report["provinces_missing"]:
        missing.append([m["code"], m["name_zh"], m["reason"]])
    for sheet in (ws, missing):  # text stays text: a value that starts with "=" is never a formula
        for row in sheet.iter_rows():
            for c in row:
                if isinstance(c.value, str):
                    c.data_type = "s"
    wb.save(path)
    return path
