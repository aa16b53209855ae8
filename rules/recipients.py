"""The recipients file (docs/alerts.md, "Recipients") and routing: who receives which notice.

School HR contacts receive their school's notices, department staff those of their city or of the
whole province; each contact takes only the severities and rules it lists, in its language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from foundation.configfile import read_yaml, validated
from foundation.urls import redact_url, webhook_problem
from rules.limits import Severity
from schemas.reference import CITY_CIRCLE

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)
#: every rule a notice can be about (docs/domain.md section 8, and the early warning)
Rule = Literal[
    "ratio_shortfall",
    "dual_share_below_target",
    "postgraduate_share_below_target",
    "full_time_teachers_below_minimum",
    "certificate_expiring",
    "certificate_expired",
    "studio_noncompliant",
    "feed_stale",
    "enrollment_missing",
    "dual_share_forecast",
]
RULES: tuple[str, ...] = get_args(Rule)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
# deliberately plain: one @, no spaces or angle brackets (nothing that could become a second address)
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")

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


def _key(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _city(value: str) -> str:
    if value not in CITY_CIRCLE:
        raise ValueError("not a city code of docs/domain.md section 1")
    return value


class Contact(BaseModel):
    """One contact as the file writes it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: Annotated[str, BeforeValidator(_key)] = ""
    webhook: str | None = None
    email: str | None = None
    severities: list[Severity] = Field(default_factory=lambda: list(get_args(Severity)), min_length=1)
    rules: list[Rule] = Field(default_factory=lambda: list(get_args(Rule)), min_length=1)
    language: Language = "zh-CN"

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be letters, digits, '.', '_', '@' or '-' (at most 100)")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and (problem := webhook_problem(value)):
            raise ValueError(f"{problem}, not {redact_url(value)!r}")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("must be one address such as hr@school.edu.cn")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if self.webhook is None and self.email is None:
            raise ValueError("give a webhook, an email, or both")
        return self

    def recipient(self, scope: Scope, area: str) -> Recipient:
        return Recipient(
            id=self.id,
            name=self.name,
            scope=scope,
            area=area,
            webhook=self.webhook,
            email=self.email,
            severities=frozenset(self.severities),
            rules=frozenset(self.rules),
            language=self.language,
        )


class RecipientsFile(BaseModel):
    """The recipients file (docs/alerts.md, "Recipients"): contacts by school, by city, for the province."""

    model_config = ConfigDict(extra="forbid")

    schools: dict[Annotated[str, BeforeValidator(_key)], list[Contact]] | None = None
    cities: dict[Annotated[str, AfterValidator(_city)], list[Contact]] | None = None
    province: list[Contact] | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> RecipientsFile:
        ids = [r.id for r in self.recipients()]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            # ids name the recipient in notice ids: two contacts with one id would share deliveries
            raise ValueError(f"ids must be unique; repeated: {twice}")
        return self

    def recipients(self) -> list[Recipient]:
        out = [c.recipient("school", sid) for sid, cs in (self.schools or {}).items() for c in cs]
        out += [c.recipient("city", city) for city, cs in (self.cities or {}).items() for c in cs]
        return out + [c.recipient("province", "") for c in self.province or []]


def parse_recipients(doc: Any, source_file: str = "", node: yaml.Node | None = None) -> list[Recipient]:
    """Recipients from a decoded YAML document; a ConfigError names the key path (and line) of each wrong
    entry."""
    if doc is None:
        return []
    return validated(RecipientsFile, doc, "recipients file", source_file, node).recipients()


def load_recipients(path: Path | str) -> list[Recipient]:
    doc, node = read_yaml(path, "recipients file")
    return parse_recipients(doc, str(path), node)


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
