"""The exported JSON Schemas accept the example's valid events and reject invalid ones, checked by an
independent validator (jsonschema)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from schemas.events import EVENT_TYPES
from schemas.jsonschema import export
from schemas.validation import Accepted, Reason, Rejected, validate
from tests.helpers import example


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("schemas")
    files = export(out)
    assert {f.name for f in files} == {f"{t}.schema.json" for t in EVENT_TYPES} | {"envelope.schema.json"}
    return {f.name.removesuffix(".schema.json"): json.loads(f.read_text()) for f in files}


def test_every_exported_schema_is_a_valid_json_schema(schemas: dict[str, dict]) -> None:  # type: ignore[type-arg]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_example_events_agree_with_the_exported_schemas(schemas: dict[str, dict]) -> None:  # type: ignore[type-arg]
    checked = 0
    for line in Path(example("province-small.jsonl")).read_bytes().splitlines():
        result = validate(line)
        if isinstance(result, Accepted):
            obj = json.loads(line)
            jsonschema.validate(obj, schemas[obj["event_type"]], cls=jsonschema.Draft202012Validator)
            jsonschema.validate(obj, schemas["envelope"], cls=jsonschema.Draft202012Validator)
            checked += 1
        elif (
            result.reason in (Reason.payload_invalid, Reason.envelope_invalid)
            and "later than" not in result.message
        ):
            # (valid_until after issued_on compares two fields: JSON Schema cannot say it; the schema
            # description states it and the validator enforces it)
            obj = json.loads(line)
            schema = schemas.get(obj.get("event_type", ""), schemas["envelope"])
            assert not jsonschema.Draft202012Validator(schema).is_valid(obj), result.message
    assert checked == 1077  # 1056 distinct events and 21 duplicates


def test_a_timestamp_without_offset_fails_the_schema_too(schemas: dict[str, dict]) -> None:  # type: ignore[type-arg]
    obj = {"event_id": "63bbd751-de12-40df-bb73-86d46e5c30a0", "event_type": "degree.conferred",
           "schema_version": 1, "school_id": "SD1", "occurred_at": "2025-01-01T08:00:00",
           "payload": {"programme_id": "P1"}}  # fmt: skip
    assert isinstance(validate(json.dumps(obj)), Rejected)
    assert not jsonschema.Draft202012Validator(schemas["degree.conferred"]).is_valid(obj)
