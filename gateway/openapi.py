"""`GET /v1/openapi.json`: the gateway's contract as OpenAPI 3.1, from pydantic models (its answers)
and the event contract's own JSON Schemas (`schemas.jsonschema`, the same files `dualtrack schemas`
exports), so the description and the validator cannot drift apart."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from schemas.events import PAYLOADS
from schemas.jsonschema import schema_of
from schemas.validation import Reason


class LineAnswer(BaseModel):
    """The answer for one line (or array item), in the order sent, numbered from 1."""

    line: int = Field(ge=1)
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = Field(description="The event's id (canonical), when it could be read.")
    reason: Reason | None = Field(description="Why a line was rejected (the stream's dead-letter reasons).")
    detail: str | None = Field(description="One line saying what to fix; national ID numbers masked.")


class EventsAnswer(BaseModel):
    """What became of a body: counts, and an answer per line. Sent once Kafka has acknowledged every
    accepted line (acks=all)."""

    accepted: int
    duplicates: int
    rejected: int
    lines: list[LineAnswer]


class ErrorAnswer(BaseModel):
    """Every answer other than 200."""

    error: str = Field(description="One line of reason.")
    status: int


class Day(BaseModel):
    day: str = Field(description="A local (China Standard Time) date, YYYY-MM-DD.")
    kept: int
    dead_lettered: int


class DeadLetter(BaseModel):
    reason: Reason
    reason_text: str
    message: str
    event_id: str
    event_type: str
    raw: str = Field(description="The line as received (national ID numbers masked), at most 2,000 bytes.")
    arrived_at: str


class OpenAlert(BaseModel):
    rule: str
    title: str
    subject: str
    severity: str
    value: float | None
    threshold: float | None
    since: str | None
    changed_at: str


class Owed(BaseModel):
    term: str
    days_overdue: float | None
    what: str


class SchoolAnswer(BaseModel):
    """A school's own view (names in the language Accept-Language asks for: zh-CN or en)."""

    school_id: str
    language: Literal["zh-CN", "en"]
    as_of: str
    summary: str
    last_arrival: str | None
    days: list[Day] = Field(description="The last 30 local days, oldest first.")
    dead_letters: list[DeadLetter] = Field(description="The newest 100 dead letters of this school.")
    indicators: dict[str, Any] | None = Field(description="The school's indicators as they stand now.")
    open_alerts: list[OpenAlert]
    owes: list[Owed]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}},
    }


@cache
def openapi() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "serialization") for m in (EventsAnswer, ErrorAnswer, SchoolAnswer)],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(defs["$defs"])
    events = []
    for event_type in PAYLOADS:
        name = "Event_" + event_type.replace(".", "_")
        # the payload's definitions move to the components, where OpenAPI resolves references
        schema = json.loads(json.dumps(schema_of(event_type)).replace('"#/$defs/', '"#/components/schemas/'))
        for key in ("$schema", "$id"):
            schema.pop(key, None)
        for def_name, definition in schema.pop("$defs", {}).items():
            if schemas.setdefault(def_name, definition) != definition:
                raise ValueError(f"two event schemas define {def_name} differently")
        schemas[name] = schema
        events.append({"$ref": f"#/components/schemas/{name}"})
    schemas["Event"] = {"oneOf": events, "discriminator": {"propertyName": "event_type"}}
    auth: list[dict[str, list[str]]] = [{"token": []}]
    common = {
        "401": _error("No token, or not a live one."),
        "503": _error("Kafka or the store is away: retry after Retry-After seconds."),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dualtrack gateway",
            "version": "1",
            "description": "Schools send their HR events and read their own feedback (docs/gateway.md).",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Send events; an answer per line, once Kafka holds the accepted ones.",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-ndjson": {
                                "schema": {"type": "string"},
                                "description": "One event (JSON object) per line.",
                            },
                            "application/json": {
                                "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Judged: see each line's status.",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/EventsAnswer"}}
                            },
                        },
                        "400": _error("The body is not readable as a whole (an unreadable JSON array)."),
                        "408": _error("The body did not arrive in time."),
                        "413": _error("The body is over the size or line limit."),
                        "415": _error("A Content-Type other than application/x-ndjson or application/json."),
                        "429": _error("Over the school's rate: retry after Retry-After seconds."),
                        **common,
                    },
                }
            },
            "/v1/school": {
                "get": {
                    "summary": "The school's own view: arrivals, dead letters, indicators, alerts, dues.",
                    "security": auth,
                    "parameters": [
                        {
                            "name": "Accept-Language",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "examples": ["zh-CN", "en"]},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The view.",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/SchoolAnswer"}}
                            },
                        },
                        **common,
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1."}},
                }
            },
        },
    }
