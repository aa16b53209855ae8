"""What the gateway answers for a body of events, line by line, before anything is sent.

    lines = split_body(body, content_type, max_lines)     # BodyError (4xx) when unreadable as a whole
    verdict = judge(lines, "SD0001", known_hashes)        # an answer per line, what to send, what to refuse

Each line is judged by `schemas.validation.validate`, the stream's one validator, with the token's
school as the sender (so a line naming another school is `foreign_school`), then by the stream's
duplicate rule (`rules.dedup`) against the event_ids the store keeps (of any school, as the stream
does) and those the gateway sent lately: a copy of a kept event is a `duplicate`, a copy with other
content a `conflicting_duplicate`. The stream judges every line
again when it arrives and stays the authority; the gateway's judgement is what the school is told.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from foundation.errors import DualtrackError
from rules.dedup import Deduplicator
from schemas.validation import Accepted, Rejected, parse_strict, validate

Status = Literal["accepted", "duplicate", "rejected"]
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "text/plain")


class BodyError(DualtrackError):
    """A body that cannot be taken as a whole (one line of reason; `status` is the HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class LineAnswer:
    """The answer for one line, numbered from 1 in the order sent."""

    line: int
    status: Status
    event_id: str | None = None
    reason: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "status": self.status, "event_id": self.event_id, "reason": self.reason,
                "detail": self.detail}  # fmt: skip


@dataclass
class Verdict:
    """The answers in the order sent, the events to send on and the lines to dead-letter."""

    answers: list[LineAnswer] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for a in self.answers if a.status == status)

    def summary(self) -> dict[str, object]:
        return {
            "accepted": self.count("accepted"), "duplicates": self.count("duplicate"),
            "rejected": self.count("rejected"), "lines": [a.as_dict() for a in self.answers],
        }  # fmt: skip


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def split_body(body: bytes, content_type: str, max_lines: int) -> list[tuple[int, bytes]]:
    """The events of a body, each with its line number: one per line (`application/x-ndjson`; empty lines
    are skipped but counted) or one per item of a JSON array (`application/json`; a single object is a
    list of one). An array item is judged as its compact JSON."""
    import json

    media = _media_type(content_type)
    if media == "application/json":
        try:
            parsed = parse_strict(body)
        except ValueError as err:
            raise BodyError(400, f"the body is not strict JSON ({err}); send an array of events, or one "
                                 "event per line as application/x-ndjson") from None  # fmt: skip
        items = parsed if isinstance(parsed, list) else [parsed]
        if len(items) > max_lines:
            raise BodyError(413, f"the body holds {len(items)} events; the limit is {max_lines} per request")
        return [(i, json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass"))
                for i, item in enumerate(items, 1)]  # fmt: skip
    if media not in NDJSON_TYPES:
        raise BodyError(415, f"Content-Type {media or '(none)'} is not taken: send application/x-ndjson "
                             "(one event per line) or application/json (an array of events)")  # fmt: skip
    if body.count(b"\n") > max_lines:  # before splitting: counting is cheap, a list of lines is not
        raise BodyError(
            413, f"the body holds more than {max_lines} lines; the limit is {max_lines} per request"
        )
    raw = body.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    lines = [(i, line[:-1] if line.endswith(b"\r") else line) for i, line in enumerate(raw, 1)]
    lines = [(i, line) for i, line in lines if line.strip()]
    if len(lines) > max_lines:
        raise BodyError(413, f"the body holds {len(lines)} events; the limit is {max_lines} per request")
    return lines


def judge(
    lines: Iterable[tuple[int, bytes]], school_id: str, known: Callable[[list[str]], dict[str, str]]
) -> Verdict:
    """Judge each line as sent by `school_id`; `known(event_ids)` gives the content hash of each of those
    ids this school's kept (or recently sent) events hold."""
    judged = [(n, validate(raw, sender=school_id)) for n, raw in lines]
    ids = sorted({r.event_id for _, r in judged if isinstance(r, Accepted)})
    rule = Deduplicator(dict(known(ids)) if ids else {})
    verdict = Verdict()
    for n, result in judged:
        if isinstance(result, Accepted):
            check = rule.check(result)
            if check == "new":
                verdict.accepted.append(result)
                verdict.answers.append(LineAnswer(n, "accepted", result.event_id))
                continue
            if check == "duplicate":
                verdict.answers.append(LineAnswer(n, "duplicate", result.event_id))
                continue
            result = check
        verdict.rejected.append(result)
        verdict.answers.append(
            LineAnswer(n, "rejected", result.event_id or None, result.reason.value, result.message)
        )
    return verdict
