"""Small builders for events, and the example province kept in tests/fixtures."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from schemas.validation import Accepted, validate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def example(name: str) -> Path:
    """A file of the example province: `province-small.jsonl` and its `expected-report-*.json`."""
    return FIXTURES / name


def ev(
    event_type: str, school: str, at: str, payload: dict[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "school_id": school,
        "occurred_at": at,
        "payload": payload,
    }


def accepted(obj: dict[str, Any]) -> Accepted:
    result = validate(json.dumps(obj).encode())
    assert isinstance(result, Accepted), result
    return result


def hire(school: str, at: str, teacher: str, employment: str = "full_time", course: str = "professional",
         title: str = "intermediate", degree: str = "bachelor") -> dict[str, Any]:  # fmt: skip
    return ev("teacher.hired", school, at, {"teacher_id": teacher, "employment": employment,
                                             "course_type": course, "title": title, "degree": degree})  # fmt: skip


def register(school: str, at: str, level: str = "secondary", city: str = "jinan") -> dict[str, Any]:
    return ev("school.registered", school, at, {"name": f"School {school}", "level": level, "city": city})


def enroll(school: str, at: str, full_time: int, night: int = 0, correspondence: int = 0) -> dict[str, Any]:
    counts = {"full_time": full_time, "night": night, "correspondence": correspondence}
    return ev("enrollment.reported", school, at, {"term": "2024-autumn", "counts": counts})


def close_app_loops(app: Any) -> None:
    """Close the event loop Faust's consumer thread makes on first use: a test context never starts
    that thread, so nothing else would (and its sockets would be reported unclosed much later)."""
    consumer = getattr(app, "_consumer", None)
    thread = getattr(consumer, "_thread", None)
    loop = getattr(thread, "thread_loop", None)
    if loop is not None and not loop.is_closed():
        loop.close()


def national_ids_in(store: Any) -> list[tuple[str, str]]:
    """(table, column) of every value in the store's database that holds a national ID number, in any
    form the validator recognises (NFKC, separators, JSON escapes)."""
    from schemas.national_id import id_spans

    found = []
    columns = store.query(
        f"SELECT table, name, type FROM system.columns WHERE database = '{store.database}' "
        "AND (type LIKE '%String%') ORDER BY table, name"
    )
    for c in columns:
        rows = store.query(f"SELECT {c['name']} AS v FROM {store.table(c['table'])}", binary=("v",))
        for r in rows:
            values = r["v"] if isinstance(r["v"], list) else [r["v"]]
            for v in values:
                raw = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogateescape")
                if raw and id_spans(raw):
                    found.append((c["table"], c["name"]))
    return found


#: a password to look for in every output of the security tests
PASSWORD = "pw-Unit-7f3a9c2b"


def isolated_settings(tmp_path: Path, **kw: object) -> Any:
    """Settings for unit tests, independent of the environment's DUALTRACK_* (the integration session
    sets some): a secured deployment `dt` whose var dir is tmp_path."""
    from foundation.settings import Settings

    defaults: dict[str, object] = {"var_dir": tmp_path, "topic_prefix": "dt", "kafka_security_protocol": "SASL_PLAINTEXT",
                                   "kafka_bootstrap_servers": "127.0.0.1:9092", "kafka_port": 9092,
                                   "kafka_controller_port": 9093, "clickhouse_url": None}  # fmt: skip
    return Settings(**(defaults | kw))  # type: ignore[arg-type]
