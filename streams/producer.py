"""The producer SDK for schools (kafka-python): validated, idempotent, acknowledged, keyed by school_id.

    producer = EventProducer(Settings())
    producer.send(event_dict)          # raises InvalidEvent with the validator's own message
    producer.flush()

`teacher_id_from_national_id(national_id, secret)` derives the pseudonymous teacher id, so that no
national ID number ever leaves the school (docs/domain.md section 9).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import DualtrackError
from foundation.kafka_auth import (
    InvalidSchoolId,
    kafka_client_options,
    school_of_user,
    secured,
    valid_school_id,
)
from foundation.settings import Settings
from schemas.jsonlines import is_blank, read_lines
from schemas.national_id import check_character, mask_text
from schemas.validation import Rejected, parse_strict, validate
from streams.topics import MAX_MESSAGE_BYTES, intake_topic


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


class Refused(DualtrackError):
    """The broker cannot be reached, or refuses this producer's login or writes; nothing more is sent."""


def _refusal(err: BaseException | None) -> bool:
    from kafka.errors import ClusterAuthorizationFailedError, TopicAuthorizationFailedError

    return isinstance(err, TopicAuthorizationFailedError | ClusterAuthorizationFailedError)


class EventProducer:
    """Sends each event to its school's intake topic (`streams.topics.intake_topic`), logged in as the
    settings say (`foundation.kafka_auth.kafka_client_options`). A write the broker refuses makes
    `flush` raise Refused: it is no event's fault, and every later event would meet it too."""

    def __init__(self, settings: Settings | None = None, **kafka_options: Any) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.settings = settings or Settings()
        options: dict[str, Any] = {
            **kafka_client_options(self.settings),
            "acks": "all",
            "enable_idempotence": True,
            "retries": 2**31 - 1,
            "linger_ms": 20,
            "max_request_size": MAX_MESSAGE_BYTES,
            "client_id": "dualtrack-producer",
        }
        options.update(kafka_options)
        self._refused: str | None = None  # the first topic the broker refused this user
        try:
            self._producer = KafkaProducer(**options)
        except KafkaError as err:  # no broker answered, or none let this user log in
            who = f" as user {options['sasl_plain_username']}" if secured(self.settings) else ""
            raise Refused(
                f"cannot reach Kafka at {self.settings.kafka_bootstrap_servers}{who} ({type(err).__name__}): "
                "the broker is down, or it refuses this user's password (revoked or rotated?)"
            ) from None

    def topic_for(self, school_id: str) -> str:
        """The intake topic this school's events go to; InvalidSchoolId when no topic can be named. A
        school's own user sends a line that names no school (a raw line, unreadable) to its own topic,
        where the worker dead-letters it with its reason, as it would any line of that school."""
        own = school_of_user(self.settings, self.settings.kafka_username or "")
        if own is not None and not valid_school_id(school_id):
            return intake_topic(self.settings, own)
        return intake_topic(self.settings, school_id)

    def send_raw(self, value: bytes, key: str = "") -> Any:
        """Send bytes as they are (no validation): for legacy replays and testing the validator. The
        key is the school id and names the topic (InvalidSchoolId when it cannot, on a secured broker)."""
        topic = self.topic_for(key)
        try:
            future = self._producer.send(topic, value=value, key=key.encode() if key else None)
        except Exception as err:  # refused at once when the topic's metadata was refused before
            if _refusal(err):
                raise self.refusal(topic) from None
            raise
        future.add_errback(self._note, topic)
        return future

    def _note(self, topic: str, err: BaseException) -> None:
        if self._refused is None and _refusal(err):
            self._refused = topic

    def refusal(self, topic: str) -> Refused:
        """The one-line error for a write the broker refused (names the user, never the password)."""
        user = self.settings.kafka_username or "worker"
        return Refused(
            f"Kafka refused user {user} writing to {topic}: a school's user writes only its own intake topic "
            f"({self.settings.topic_prefix}.intake.<its school id>); nothing more was sent"
        )

    def send(self, event: dict[str, Any] | str | bytes) -> Any:
        """Validate with the stream's own rules, then send keyed by school_id; InvalidEvent if invalid."""
        raw = event if isinstance(event, bytes) else (event if isinstance(event, str) else json.dumps(event))
        raw_b = raw.encode("utf-8") if isinstance(raw, str) else raw
        result = validate(raw_b)
        if isinstance(result, Rejected):
            raise InvalidEvent(result)
        return self.send_raw(raw_b, key=result.school_id)

    def flush(self, timeout: float | None = 60) -> None:
        """Wait until every event sent is acknowledged or failed; Refused when the broker refused one."""
        self._producer.flush(timeout=timeout)
        if self._refused is not None:
            raise self.refusal(self._refused)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.flush()
        finally:
            self.close()


@dataclass
class ProduceSummary:
    """What `produce` did with each line; the counts add up to the lines read."""

    lines: int = 0
    sent: int = 0
    rejected: int = 0  # invalid: not sent (without --raw)
    failed: int = 0  # the client refused to send it (for example larger than a Kafka message may be)
    blank: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def note(self, line: int, problem: str) -> None:
        if len(self.examples) < 10:
            self.examples.append((line, mask_text(problem)))


def school_key(raw: bytes) -> str:
    """The school_id a line names, when it is a JSON object that names one; else an empty string."""
    try:
        obj = parse_strict(raw)
    except ValueError:
        return ""
    return obj.get("school_id", "") if isinstance(obj, dict) and isinstance(obj.get("school_id"), str) else ""


def produce_lines(
    producer: EventProducer, lines: Iterable[bytes], raw: bool, summary: ProduceSummary, first: int = 1
) -> None:
    """Send lines (without their endings) one by one, then wait until the broker has acknowledged them:
    a line counts as sent only once it is on the broker. Nothing one line holds stops the others."""
    from kafka.errors import KafkaError

    pending: list[tuple[int, Any]] = []
    for n, line in enumerate(lines, first):
        summary.lines += 1
        if is_blank(line):
            summary.blank += 1
            continue
        try:
            future = producer.send_raw(line, key=school_key(line)) if raw else producer.send(line)
            pending.append((n, future))
        except InvalidEvent as err:
            summary.rejected += 1
            summary.note(n, str(err))
        except InvalidSchoolId:  # a raw line whose school_id names no topic (secured broker)
            summary.failed += 1
            summary.note(n, "not sent: its school_id cannot name an intake topic")
        except (KafkaError, ValueError) as err:
            summary.failed += 1
            summary.note(n, f"not sent: {type(err).__name__}")
    producer.flush()  # Refused when the broker refused a write: the whole file would meet it
    for n, future in pending:
        if future.succeeded():
            summary.sent += 1
        else:
            summary.failed += 1
            summary.note(n, f"not sent: {type(future.exception).__name__ if future.is_done else 'no answer'}")


def produce_files(
    settings: Settings, files: list[Path], raw: bool = False, console: Any = None, producer: Any = None
) -> ProduceSummary:
    """Publish JSON-lines files with a progress bar; returns what was sent and what was not. `producer`
    (EventProducer's `send`, `send_raw`, `flush`) defaults to an EventProducer of the settings' login."""
    from rich.progress import Progress

    from streams.topics import ensure_topics

    if not secured(settings):  # a secured broker's intake topics are made by `dualtrack schools add`
        ensure_topics(settings)  # with the app's topic settings (e.g. the message size), before any send
    summary = ProduceSummary()
    with (
        contextlib.nullcontext(producer) if producer is not None else EventProducer(settings) as producer,
        Progress(console=console, transient=True) as progress,
    ):
        for f in files:
            task = progress.add_task(f.name, total=f.stat().st_size)
            n = 1
            batch: list[bytes] = []
            for line in read_lines(f):
                batch.append(line)
                if len(batch) == 1000:
                    produce_lines(producer, batch, raw, summary, n)
                    n += len(batch)
                    progress.advance(task, sum(len(b) + 1 for b in batch))
                    batch = []
            produce_lines(producer, batch, raw, summary, n)
    return summary
