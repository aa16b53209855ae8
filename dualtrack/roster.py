"""`dualtrack import-roster`: a school HR office's spreadsheet export becomes the events that explain
how it differs from the school's current state (hires, departures, updates, certificates).

Event ids are derived from the school, the roster date and the change (UUID v5), so importing the
same file twice sends the same events, which the duplicate rule absorbs; once they are applied, the
difference is empty and a new import emits nothing.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from foundation.errors import DualtrackError
from rules.state import Province

CST = timezone(timedelta(hours=8))
NAMESPACE = uuid.UUID("6c1f2f4e-8a4b-4d7e-9b1e-2f0d6a7c5e11")

#: header aliases (English and the Chinese an HR office's export uses) -> field
HEADERS = {
    "teacher_id": "teacher_id",
    "教师编号": "teacher_id",
    "工号": "teacher_id",
    "national_id": "national_id",
    "身份证号": "national_id",
    "身份证号码": "national_id",
    "employment": "employment",
    "用工类型": "employment",
    "聘用类型": "employment",
    "course_type": "course_type",
    "课程类型": "course_type",
    "任教课程类型": "course_type",
    "title": "title",
    "职称": "title",
    "专业技术职务": "title",
    "degree": "degree",
    "学历": "degree",
    "最高学历": "degree",
    "certificate_id": "certificate_id",
    "证书编号": "certificate_id",
    "certificate_level": "certificate_level",
    "证书等级": "certificate_level",
    "双师等级": "certificate_level",
    "certificate_issued_on": "certificate_issued_on",
    "发证日期": "certificate_issued_on",
    "certificate_valid_until": "certificate_valid_until",
    "有效期至": "certificate_valid_until",
}
#: cell values in Chinese -> the contract's codes
VALUES = {
    "employment": {
        "专任": "full_time",
        "专任教师": "full_time",
        "兼职": "part_time",
        "企业兼职": "part_time",
    },
    "course_type": {"专业课": "professional", "公共基础课": "general", "公共课": "general"},
    "title": {
        "无": "none",
        "初级": "junior",
        "中级": "intermediate",
        "副高": "associate_senior",
        "副高级": "associate_senior",
        "正高": "senior",
        "正高级": "senior",
    },
    "degree": {
        "专科及以下": "below_bachelor",
        "本科以下": "below_bachelor",
        "本科": "bachelor",
        "硕士": "master",
        "博士": "doctor",
    },
    "certificate_level": {"初级": "junior", "中级": "intermediate", "高级": "senior"},
}
ATTRIBUTES = ("employment", "course_type", "title", "degree")


class RosterError(DualtrackError):
    """The roster file cannot be read; the message names the row and column."""


@dataclass(frozen=True)
class RosterRow:
    teacher_id: str
    employment: str
    course_type: str
    title: str
    degree: str
    certificate: tuple[str, str, str, str] | None  # id, level, issued_on, valid_until


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or GBK, as office spreadsheets export."""
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError("the roster is neither UTF-8 nor GBK text; export it as CSV (UTF-8) and try again")


def read_roster(path: Path, secret: str | None) -> list[RosterRow]:

    try:
        text = decode(path.read_bytes())
    except OSError as err:
        raise RosterError(f"cannot read {path}: {err.strerror}") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames or []
    except csv.Error as err:
        raise RosterError(f"the header line is not a readable CSV row ({err})") from None
    fields = {h: HEADERS.get((h or "").strip()) for h in header}
    if not {"teacher_id", "national_id"} & set(fields.values()):
        raise RosterError("the roster needs a teacher_id (教师编号) or national_id (身份证号) column")
    missing = [a for a in ATTRIBUTES if a not in fields.values()]
    if missing:
        raise RosterError(f"the roster lacks the columns {missing}")
    rows: list[RosterRow] = []
    try:
        for n, raw in enumerate(reader, start=2):
            rows.append(_row(n, raw, fields, secret))
    except csv.Error as err:  # e.g. a cell longer than the csv module's field limit
        raise RosterError(f"line {reader.line_num}: not a readable CSV row ({err})") from None
    return rows


def _row(n: int, raw: dict[str | Any, Any], fields: dict[str, str | None], secret: str | None) -> RosterRow:
    from streams.producer import teacher_id_from_national_id

    cell = {f: (raw.get(h) or "").strip() for h, f in fields.items() if f}
    tid = cell.get("teacher_id", "")
    if not tid and cell.get("national_id"):
        if not secret:
            raise RosterError("national ID numbers need DUALTRACK_PRODUCER_SECRET to derive teacher ids")
        try:
            tid = teacher_id_from_national_id(cell["national_id"], secret)
        except ValueError as err:
            raise RosterError(f"row {n}: {err}") from None
    if not tid:
        raise RosterError(f"row {n}: no teacher_id or national_id")
    values = {a: VALUES[a].get(cell[a], cell[a]) for a in ATTRIBUTES}
    cert = None
    if cell.get("certificate_id"):
        level = VALUES["certificate_level"].get(
            cell.get("certificate_level", ""), cell.get("certificate_level", "")
        )
        cert = (
            cell["certificate_id"],
            level,
            cell.get("certificate_issued_on", ""),
            cell.get("certificate_valid_until", ""),
        )
    return RosterRow(
        tid, values["employment"], values["course_type"], values["title"], values["degree"], cert
    )


def roster_time(day: date) -> datetime:
    """A roster dated D describes the school at the start of D in China Standard Time."""
    return datetime.combine(day, time(0, 0), CST)


def diff(province: Province, school_id: str, roster: list[RosterRow], as_of: date) -> list[dict[str, Any]]:
    """The events that bring the school's state in line with the roster, with deterministic ids."""
    at = roster_time(as_of).isoformat()
    events: list[dict[str, Any]] = []

    def emit(event_type: str, payload: dict[str, Any]) -> None:
        key = f"{school_id}|{as_of}|{event_type}|{sorted(payload.items())}"
        events.append(
            {
                "event_id": str(uuid.uuid5(NAMESPACE, key)),
                "event_type": event_type,
                "schema_version": 1,
                "school_id": school_id,
                "occurred_at": at,
                "source": "roster-import",
                "payload": payload,
            }
        )

    listed = {r.teacher_id for r in roster}
    for r in roster:
        t = province.teachers.get(r.teacher_id)
        attrs = {a: getattr(r, a) for a in ATTRIBUTES}
        if t is None or t.school_id != school_id:
            emit("teacher.hired", {"teacher_id": r.teacher_id, **attrs})
        else:
            changed = {a: v for a, v in attrs.items() if getattr(t, a) != v}
            if changed:
                emit("teacher.updated", {"teacher_id": r.teacher_id, **changed})
        if r.certificate is not None:
            cid, level, issued, until = r.certificate
            known = province.certificates.get(cid)
            same = known is not None and (
                known.teacher_id,
                known.level,
                known.issued_on.isoformat(),
                known.valid_until.isoformat(),
            ) == (r.teacher_id, level, issued, until)
            if not same:
                emit(
                    "certification.granted",
                    {
                        "certificate_id": cid,
                        "teacher_id": r.teacher_id,
                        "level": level,
                        "issued_on": issued,
                        "valid_until": until,
                    },
                )
    for tid in sorted(province.teachers_at.get(school_id, set()) - listed):
        emit("teacher.departed", {"teacher_id": tid, "reason": "other"})
    return events
