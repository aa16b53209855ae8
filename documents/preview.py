"""`dualtrack alerts preview`: what each recipient would have received for the alert transitions up to
T, through the same policy, routing and messages as the worker, with nothing sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from foundation.errors import DualtrackError
from rules.limits import SEVERITIES, Rules
from rules.messages import Context, local_time
from rules.notifications import EMPTY, Notice, decide, next_digest
from rules.recipients import RULES, Recipient, SchoolInfo
from streams.outbox import Outgoing, plan

#: who a preview shows when no recipients file is given: one reader for the whole province
EVERYONE = Recipient("everyone", "the whole province", "province", "", "https://preview.invalid/", None,
                     frozenset(SEVERITIES), frozenset(RULES))  # fmt: skip


@dataclass
class Inbox:
    """What one recipient receives: (time sent, message) for notices and digests, and what waits."""

    recipient: Recipient
    notices: list[tuple[datetime, Outgoing]] = field(default_factory=list)
    digests: list[tuple[datetime, Outgoing]] = field(default_factory=list)


@dataclass
class Preview:
    as_of: datetime
    transitions: int
    inboxes: list[Inbox]
    suppressed: int
    waiting: list[Notice]  # items queued for a digest that is not due by T
    next_digest: datetime


def _key(record: Mapping[str, Any], rules: Rules) -> datetime:
    return next_digest(datetime.fromisoformat(record["at"]), rules.notifications)


def _sent(o: Outgoing, rules: Rules) -> datetime:
    """When the live worker would send it: a digest when its window closes, a notice when its transition
    arrives, a held resolution when the flapping window has passed."""
    if o.kind == "digest":
        return datetime.fromisoformat(o.payload["window_end"])
    n = o.payload["notice"]
    at = datetime.fromisoformat(n["at"])
    return at + timedelta(days=rules.notifications.flapping_days) if n["why"] == "resolved_held" else at


def preview(
    records: Iterable[Mapping[str, Any]],
    recipients: Sequence[Recipient],
    schools: Mapping[str, SchoolInfo],
    rules: Rules,
    as_of: datetime,
    recipient: str | None = None,
) -> Preview:
    """Run the policy as the worker would have, with the clock at each transition's time: records are
    taken one digest window at a time, so digests close when their window does."""
    readers = list(recipients) or [EVERYONE]
    if recipient is not None:
        readers = [r for r in readers if r.id == recipient]
        if not readers:
            known = ", ".join(r.id for r in (recipients or [EVERYONE]))
            raise DualtrackError(f"no recipient {recipient!r} in the recipients file (known: {known})")
    ctx = Context(schools, rules.certificate_expiring_days, rules.notifications.flapping_days)
    upto = [r for r in records if datetime.fromisoformat(r["at"]) <= as_of]
    inboxes = {r.id: Inbox(r) for r in readers}
    state, suppressed = EMPTY, 0
    windows = [list(g) for _, g in groupby(upto, key=lambda r: _key(r, rules))]
    for batch in [*windows, []]:
        now = datetime.fromisoformat(batch[-1]["at"]) if batch else as_of
        decision = decide(state, batch, now, rules.notifications)
        state, suppressed = decision.state, suppressed + len(decision.suppressed)
        outgoing, _ = plan(decision, readers, ctx, now)
        for o in outgoing:
            box = inboxes[o.recipient]
            (box.digests if o.kind == "digest" else box.notices).append((_sent(o, rules), o))
    return Preview(as_of, len(upto), list(inboxes.values()), suppressed, list(state.queued),
                   next_digest(as_of, rules.notifications))  # fmt: skip


def _once(messages: list[tuple[datetime, Outgoing]]) -> list[tuple[datetime, Outgoing]]:
    """One line per message, whichever channels carry it (the text is the same on each)."""
    seen: set[tuple[datetime, str]] = set()
    out = []
    for at, o in messages:
        if (at, o.title + o.body) not in seen:
            seen.add((at, o.title + o.body))
            out.append((at, o))
    return out


def render(p: Preview) -> str:
    """The preview as plain text (the CLI prints it with markup off)."""
    lines = [f"Alert notices up to {p.as_of.isoformat()}: {p.transitions} transitions, {p.suppressed} "
             f"suppressed (changes of value, flapping, restated history)."]  # fmt: skip
    for box in p.inboxes:
        r = box.recipient
        channels = ", ".join(r.channels)
        area = f"{r.scope} {r.area}".strip()
        notices, digests = _once(box.notices), _once(box.digests)
        lines += ["", f"== {r.id} ({r.name or '-'}; {area}; {r.language}; {channels}) ==",
                  f"immediate notices: {len(notices)}; digests: {len(digests)}"]  # fmt: skip
        for kind, messages in (("notice", notices), ("digest", digests)):
            for at, o in messages:
                lines += ["", f"  [{kind} sent {local_time(at, 'en')}] {o.title}"]
                body = o.body.splitlines()
                lines += [f"      {line}" for line in (body[1:] if body[:1] == [o.title] else body)]
    if p.waiting:
        lines += ["", f"{len(p.waiting)} items wait for the digest of {local_time(p.next_digest, 'en')}."]
    return "\n".join(lines)


def preview_from_store(store: Any, rules: Rules, recipients: Sequence[Recipient], as_of: datetime,
                       recipient: str | None = None) -> Preview:  # fmt: skip
    """A preview from the transitions the store keeps (`alert_transitions`, not retracted)."""
    from sinks.notifications import school_directory, transition_records

    schools = {sid: SchoolInfo(name, city) for sid, (name, city) in school_directory(store).items()}
    return preview(transition_records(store, as_of), recipients, schools, rules, as_of, recipient)
