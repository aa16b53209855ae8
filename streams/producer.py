"""The producer SDK for schools (kafka-python): validated, idempotent, acknowledged, keyed by school_id.

    producer = EventProducer(Settings())
    producer.send(event_dict)          # raises InvalidEvent with the validator's own message
    producer.flush()

`teacher_id_from_national_id(national_id, secret)` derives the pseudonymous teacher id, so that no
national ID number ever leaves the school (docs/domain.md section 9).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualtrack.errors import DualtrackError
from dualtrack.settings import Settings
from schemas.national_id import check_character
from schemas.validation import Rejected, validate


class InvalidEvent(DualtrackError):
    """The event would be dead-lettered; nothing was sent."""

    def __init__(self, rejected: Rejected) -> None:
        super().__init__(f"{rejected.reason.value}: {rejected.message}")
        self.rejected = rejected


def teacher_id_from_national_id(national_id: str, secret: str | bytes) -> str:
    """HMAC-SHA256 of the normalised ID number under the provincial secret, as `T-` + 32 hex digits."""
    nid = national_id.strip().upper()
    if len(nid) != 18 or not nid[:17].isdigit() or check_character(nid[:17]) != nid[17]:
        raise ValueError("not a valid 18-character national ID number (check the last character)")
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the provincial secret is empty")
    return "T-" + hmac.new(key, nid.encode("ascii"), hashlib.sha256).hexdigest()[:32]


class EventProducer:
    def __init__(self, settings: Settings | None = None, **kafka_options: Any) -> None:
        from kafka import KafkaProducer

        self.settings = settings or Settings()
        self.topic = self.settings.topic("intake")
        options: dict[str, Any] = {
            "bootstrap_servers": self.settings.kafka_bootstrap_servers,
            "acks": "all",
            "enable_idempotence": True,
            "retries": 2**31 - 1,
            "linger_ms": 20,
            "client_id": "dualtrack-producer",
        }
        options.update(kafka_options)
        self._producer = KafkaProducer(**options)

    def send_raw(self, value: bytes, key: str = "") -> Any:
        """Send bytes as they are (no validation): for legacy replays and testing the validator."""
        return self._producer.send(self.topic, value=value, key=key.encode() if key else None)

    def send(self, event: dict[str, Any] | str | bytes) -> Any:
        """Validate with the stream's own rules, then send keyed by school_id; InvalidEvent if invalid."""
        raw = event if isinstance(event, bytes) else (event if isinstance(event, str) else json.dumps(event))
        raw_b = raw.encode("utf-8") if isinstance(raw, str) else raw
        result = validate(raw_b)
        if isinstance(result, Rejected):
            raise InvalidEvent(result)
        return self.send_raw(raw_b, key=result.school_id)

    def flush(self, timeout: float | None = 60) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.close()


@dataclass
class ProduceSummary:
    sent: int = 0
    rejected: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)


def _school_key(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        return ""
    return obj.get("school_id", "") if isinstance(obj, dict) and isinstance(obj.get("school_id"), str) else ""


def produce_lines(
    producer: EventProducer, lines: Iterable[bytes], raw: bool, summary: ProduceSummary
) -> None:
    for n, line in enumerate(lines, 1):
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        if raw:
            producer.send_raw(line, key=_school_key(line))
            summary.sent += 1
            continue
        try:
            producer.send(line)
            summary.sent += 1
        except InvalidEvent as err:
            summary.rejected += 1
            if len(summary.examples) < 10:
                summary.examples.append((n, str(err)))


def produce_files(
    settings: Settings, files: list[Path], raw: bool = False, console: Any = None
) -> ProduceSummary:
    """Publish JSON-lines files with a progress bar; returns what was sent and rejected locally."""
    from rich.progress import Progress

    summary = ProduceSummary()
    with EventProducer(settings) as producer, Progress(console=console, transient=True) as progress:
        for f in files:
            data = f.read_bytes().splitlines()
            task = progress.add_task(f"{f.name}", total=len(data))
            for i in range(0, len(data), 1000):
                produce_lines(producer, data[i : i + 1000], raw, summary)
                progress.advance(task, len(data[i : i + 1000]))
    return summary
