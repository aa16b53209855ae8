"""The recipients file (docs/alerts.md, "Recipients") and routing: who receives which notice.

School HR contacts receive their school's notices, department staff those of their city or of the
whole province; each contact takes only the severities and rules it lists, in its language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from foundation.errors import ConfigError
from foundation.urls import redact_url, webhook_problem
from rules.limits import SEVERITIES
from schemas.reference import CITY_CIRCLE

LANGUAGES = ("zh-CN", "en")
#: every rule a notice can be about (docs/domain.md section 8, and the early warning)
RULES = (
    "ratio_shortfall",
    "dual_share_below_target",
    "postgraduate_share_below_target",
    "full_time_teachers_below_minimum",
    "certificate_expiring",
    "certificate_expired",
    "studio_noncompliant",
    "feed_stale",
    "dual_share_forecast",
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
# deliberately plain: one @, no spaces or angle brackets (nothing that could become a second address)
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_KEYS = {"id", "name", "webhook", "email", "severities", "rules", "language"}

Scope = Literal["school", "city", "province"]


@dataclass(frozen=True, slots=True)
class SchoolInfo:
    """What a message and routing need of a school."""

    name: str
    city: str


@dataclass(frozen=True, slots=True)
class Recipient:
    id: str
    name: str
    scope: Scope
    area: str  # the school id, the city code, or "" for the province
    webhook: str | None
    email: str | None
    severities: frozenset[str]
    rules: frozenset[str]
    language: str = "zh-CN"

    def covers(self, school_id: str, city: str) -> bool:
        if self.scope == "province":
            return True
        return self.area == (school_id if self.scope == "school" else city)

    def receives(self, school_id: str, city: str, rule: str, severity: str) -> bool:
        return self.covers(school_id, city) and rule in self.rules and severity in self.severities

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c, v in (("webhook", self.webhook), ("email", self.email)) if v)


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"recipients file: {where}: {message}")


def _subset(entry: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> frozenset[str]:
    value = entry.get(key, list(allowed))
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        raise _fail(where, f"{key} must be a non-empty list of {', '.join(allowed)}, not {value!r}")
    return frozenset(value)


def _contact(entry: Any, scope: Scope, area: str, where: str) -> Recipient:
    if not isinstance(entry, dict):
        raise _fail(where, "each contact must be a mapping")
    unknown = set(entry) - _KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    rid = entry.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise _fail(where, f"id must be letters, digits, '.', '_', '@' or '-', not {rid!r}")
    webhook, email = entry.get("webhook"), entry.get("email")
    if webhook is not None and (problem := webhook_problem(str(webhook))):
        raise _fail(where, f"webhook {problem}, not {redact_url(str(webhook))!r}")
    if email is not None and not (isinstance(email, str) and _EMAIL.match(email)):
        raise _fail(where, f"email must be one address such as hr@school.edu.cn, not {email!r}")
    if webhook is None and email is None:
        raise _fail(where, "give a webhook, an email, or both")
    language = entry.get("language", "zh-CN")
    if language not in LANGUAGES:
        raise _fail(where, f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return Recipient(
        id=rid,
        name=str(entry.get("name", "")),
        scope=scope,
        area=area,
        webhook=str(webhook) if webhook is not None else None,
        email=email,
        severities=_subset(entry, "severities", SEVERITIES, where),
        rules=_subset(entry, "rules", RULES, where),
        language=language,
    )


def _contacts(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, "expected a list of contacts")
    return value


def parse_recipients(doc: Any) -> list[Recipient]:
    """Recipients from a decoded YAML document; a ConfigError names any wrong entry."""
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ConfigError("recipients file: expected a mapping with schools, cities and province")
    unknown = set(doc) - {"schools", "cities", "province"}
    if unknown:
        raise ConfigError(f"recipients file: unknown top-level keys {sorted(unknown)}")
    out: list[Recipient] = []
    for sid, entries in (doc.get("schools") or {}).items():
        for n, e in enumerate(_contacts(entries, f"schools.{sid}")):
            out.append(_contact(e, "school", str(sid), f"schools.{sid}[{n}]"))
    for city, entries in (doc.get("cities") or {}).items():
        if city not in CITY_CIRCLE:
            raise _fail(f"cities.{city}", "not a city code of docs/domain.md section 1")
        for n, e in enumerate(_contacts(entries, f"cities.{city}")):
            out.append(_contact(e, "city", city, f"cities.{city}[{n}]"))
    for n, e in enumerate(_contacts(doc.get("province") or [], "province")):
        out.append(_contact(e, "province", "", f"province[{n}]"))
    ids = [r.id for r in out]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        # ids name the recipient in notice ids: two contacts with one id would share deliveries
        raise ConfigError(f"recipients file: ids must be unique; repeated: {twice}")
    return out


def load_recipients(path: Path | str) -> list[Recipient]:
    file = Path(path)
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read the recipients file {file}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"the recipients file {file} is not valid YAML: {err}") from None
    return parse_recipients(doc)


def route(
    recipients: Iterable[Recipient],
    school_id: str,
    rule: str,
    severity: str,
    schools: Mapping[str, SchoolInfo],
) -> list[Recipient]:
    """The recipients of a notice about `school_id` (a school missing from `schools` has no city known, so
    only its own contacts and the province's receive it)."""
    city = schools[school_id].city if school_id in schools else ""
    return [r for r in recipients if r.receives(school_id, city, rule, severity)]
