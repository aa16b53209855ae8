"""JSON Schema export of the event contract, for HR systems not written in Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.events import EVENT_MODELS, Envelope

_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


def _tighten(node: Any) -> Any:
    """Express what the validators check in code as JSON Schema: formats, non-empty ids, UUIDs."""
    if isinstance(node, dict):
        node = {k: _tighten(v) for k, v in node.items()}
        if node.get("format") == "date-time":
            node["pattern"] = _RFC3339
        if node.get("format") == "date":
            node["pattern"] = _DATE
        return node
    if isinstance(node, list):
        return [_tighten(v) for v in node]
    return node


def schema_of(event_type: str) -> dict[str, Any]:
    model = EVENT_MODELS[event_type]
    schema = _tighten(model.model_json_schema(mode="validation"))
    props = schema["properties"]
    props["event_id"] = {"type": "string", "pattern": _UUID, "title": "Event Id"}
    props["schema_version"] = {"const": 1, "type": "integer", "title": "Schema Version"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://dualtrack.example/schemas/{event_type}.json"
    return schema


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for event_type in EVENT_MODELS:
        f = directory / f"{event_type}.schema.json"
        f.write_text(json.dumps(schema_of(event_type), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        files.append(f)
    env = _tighten(Envelope.model_json_schema(mode="validation"))
    env["properties"]["event_id"] = {"type": "string", "pattern": _UUID}
    env["properties"]["event_type"] = {"enum": list(EVENT_MODELS)}
    env["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    f = directory / "envelope.schema.json"
    f.write_text(json.dumps(env, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files.append(f)
    return files
