"""JSON Schema export of the event contract, for HR systems not written in Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter, with_config
from typing_extensions import TypedDict

from schemas.events import ENVELOPE, PAYLOADS, Id

_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_TIMESTAMP = {"type": "string", "pattern": _RFC3339, "format": "date-time"}


def _envelope_props(props: dict[str, Any], event_type: str | None) -> None:
    """What the validator checks in code, said in JSON Schema: UUIDs, timestamps, the version."""
    props["event_id"] = {"type": "string", "pattern": _UUID, "title": "Event Id"}
    props["schema_version"] = {"const": 1, "type": "integer", "title": "Schema Version"}
    props["occurred_at"] = {**_TIMESTAMP, "title": "Occurred At"}
    props["emitted_at"] = {"anyOf": [_TIMESTAMP, {"type": "null"}], "title": "Emitted At"}
    props["event_type"] = {"const": event_type} if event_type else {"enum": list(PAYLOADS)}


def schema_of(event_type: str) -> dict[str, Any]:
    payload = PAYLOADS[event_type]
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_")) + "Event"
    event = with_config(ConfigDict(strict=True, extra="ignore"))(
        TypedDict(  # type: ignore[operator]
            name,
            {
                "event_id": str,
                "event_type": str,
                "schema_version": int,
                "school_id": Id,
                "occurred_at": str,
                "emitted_at": NotRequired[str | None],
                "source": NotRequired[str | None],
                "payload": payload,
            },
        )
    )
    schema = TypeAdapter(event).json_schema(mode="validation")
    _envelope_props(schema["properties"], event_type)
    schema["description"] = f"A `{event_type}` event." + (
        " valid_until must be later than issued_on." if "valid_until" in str(schema) else ""
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://dualtrack.example/schemas/{event_type}.json"
    return schema


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for event_type in PAYLOADS:
        f = directory / f"{event_type}.schema.json"
        f.write_text(json.dumps(schema_of(event_type), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        files.append(f)
    env = ENVELOPE.json_schema(mode="validation")
    _envelope_props(env["properties"], None)
    env["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    f = directory / "envelope.schema.json"
    f.write_text(json.dumps(env, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files.append(f)
    return files
