"""From the policy's decision to messages: routing to recipients, rendering in each one's language,
deterministic notice ids, and the `notifications` rows of suppressions (docs/alerts.md).

`plan` is pure. What it returns is plain data that the notifier writes into the store with the policy's
state (`streams.notices`) before sending, so a restart resends nothing settled and loses nothing
unsettled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rules.messages import Context, Message, render_digest, render_notice
from rules.notifications import Decision, Digest, Notice, Suppression
from rules.recipients import Recipient, SchoolInfo, route
from sinks.base import Row


def notice_id(*parts: str) -> str:
    """A notice's identity: the same recipient, channel and transition (or digest window) give the same
    id in every run, which is what the "delivered?" lookup relies on."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for one recipient on one channel, with the row that records it once settled."""

    notice_id: str
    kind: str  # notice | digest
    recipient: str
    channel: str  # webhook | email
    address: str  # the URL or e-mail address
    language: str
    title: str
    body: str
    payload: dict[str, Any]  # the webhook's JSON body
    row: dict[str, Any] = field(default_factory=dict)  # the notifications columns known when planned

    def settled_row(self, status: str, detail: str = "", attempts: int = 0) -> Row:
        r = dict(self.row)
        for name in ("decided_at", "window_end"):
            if isinstance(r.get(name), str):
                r[name] = datetime.fromisoformat(r[name])
        return {**r, "notice_id": self.notice_id, "kind": self.kind, "status": status, "detail": detail,
                "attempts": attempts, "recipient": self.recipient, "channel": self.channel,
                "language": self.language, "title": self.title, "body": self.body}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Outgoing:
        return cls(**d)


def _notice_row(n: Notice) -> dict[str, Any]:
    return {
        "rule": n.rule, "school_id": n.school_id, "subject": n.subject, "severity": n.severity,
        "transition": n.kind, "transition_ids": [n.transition_id], "caused_by": list(n.caused_by),
        "why": n.why, "decided_at": n.decided_at.isoformat(), "window_end": None,
    }  # fmt: skip


def suppression_row(s: Suppression, decided_at: datetime) -> Row:
    return {
        "notice_id": notice_id("suppressed", s.transition_id), "kind": "suppressed", "status": "suppressed",
        "rule": s.rule, "school_id": s.school_id, "subject": s.subject, "severity": s.severity,
        "transition": s.transition, "transition_ids": [s.transition_id], "caused_by": list(s.caused_by),
        "why": s.reason, "detail": s.detail, "decided_at": decided_at,
    }  # fmt: skip


def _nobody(n: Notice, decided_at: datetime) -> Row:
    """A notice no recipient takes: recorded, so that an alert nobody heard of can be found."""
    return {
        "notice_id": notice_id("nobody", n.transition_id, n.kind), "kind": "suppressed",
        "status": "suppressed", "rule": n.rule, "school_id": n.school_id, "subject": n.subject,
        "severity": n.severity, "transition": n.kind, "transition_ids": [n.transition_id],
        "caused_by": list(n.caused_by), "why": "no_recipient",
        "detail": "no recipient takes this school, rule and severity", "decided_at": decided_at,
    }  # fmt: skip


def _channels(r: Recipient) -> list[tuple[str, str]]:
    return [(c, a) for c, a in (("webhook", r.webhook), ("email", r.email)) if a]


def _takes(r: Recipient, n: Notice, schools: Mapping[str, SchoolInfo]) -> bool:
    return r in route([r], n.school_id, n.rule, n.routing_severity, schools)


def _json_notice(n: Notice) -> dict[str, Any]:
    return json.loads(json.dumps(n.to_dict()))


def _immediate(n: Notice, r: Recipient, ctx: Context) -> list[Outgoing]:
    m: Message = render_notice(n, r.language, ctx)
    out = []
    for ch, addr in _channels(r):
        nid = notice_id(r.id, ch, n.rule, n.school_id, n.subject, n.transition_id, n.kind)
        payload = {"notice_id": nid, "kind": "notice", "recipient": r.id, "language": r.language,
                   "title": m.subject, "text": m.text, "notice": _json_notice(n)}  # fmt: skip
        out.append(
            Outgoing(nid, "notice", r.id, ch, addr, r.language, m.subject, m.text, payload, _notice_row(n))
        )
    return out


def _digest(d: Digest, r: Recipient, items: Sequence[Notice], ctx: Context) -> list[Outgoing]:
    m = render_digest(d.window_end, items, r.language, ctx)
    window = d.window_end.isoformat()
    row = {"transition_ids": [n.transition_id for n in items],
           "caused_by": list(dict.fromkeys(e for n in items for e in n.caused_by)), "why": "digest",
           "decided_at": window, "window_end": window}  # fmt: skip
    out = []
    for ch, addr in _channels(r):
        nid = notice_id(r.id, ch, "digest", window)
        payload = {"notice_id": nid, "kind": "digest", "recipient": r.id, "language": r.language,
                   "title": m.subject, "text": m.text, "window_end": window,
                   "items": [_json_notice(n) for n in items]}  # fmt: skip
        out.append(Outgoing(nid, "digest", r.id, ch, addr, r.language, m.subject, m.text, payload, row))
    return out


def plan(
    decision: Decision, recipients: Sequence[Recipient], ctx: Context, now: datetime
) -> tuple[list[Outgoing], list[Row]]:
    """The messages a decision sends (immediate notices and due digests, per recipient and channel),
    and the rows of what it suppressed (suppressed transitions, notices that reach nobody)."""
    out: list[Outgoing] = []
    rows: list[Row] = [suppression_row(s, now) for s in decision.suppressed]
    for n in decision.immediate:
        takers = route(recipients, n.school_id, n.rule, n.routing_severity, ctx.schools)
        if not takers:
            rows.append(_nobody(n, now))
        for r in takers:
            out += _immediate(n, r, ctx)
    for d in decision.digests:
        taken: set[str] = set()
        for r in recipients:
            items = [n for n in d.items if _takes(r, n, ctx.schools)]
            taken |= {n.transition_id for n in items}
            if items:
                out += _digest(d, r, items, ctx)
        rows += [_nobody(n, now) for n in d.items if n.transition_id not in taken]
    return out, rows
