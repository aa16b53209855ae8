"""The notification policy (docs/alerts.md): which alert transitions become notices, and when.

`decide(state, records, now, config)` is pure. It takes transition records (the dicts
`streams.records.transition_record` publishes) and the time, and returns the notices to send at once,
the items that wait for the next digest, the digests that are due, every suppressed transition with
its reason, and the next state. The state is plain data the worker persists (`PolicyState.to_dict`).

- A fired alert, a resolved alert and a change of severity are notices; a change of value is not.
- A resolution is held for `flapping_days`: an alert that fires again within them continues the
  notice it had, and neither the resolution nor the new firing is sent.
- Severities in `config.immediate` (critical) go at once; the others wait for the digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from rules.indicators import CST
from rules.limits import SEVERITIES, Notifications

#: a transition older than the newest one seen for its alert restates history: it is not notified
#: (a late event); ids seen this far back are remembered so that a republished one is recognised
RESTATEMENT_DAYS = 30

NoticeKind = Literal["fired", "resolved", "severity_changed"]
SuppressReason = Literal["value_only", "flapping", "restated", "already_resolved"]
AlertKey = tuple[str, str, str]  # (rule, school_id, subject)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


@dataclass(frozen=True, slots=True)
class Notice:
    """A change worth telling: sent at once (`immediate`) or with the digest due at `due`."""

    rule: str
    school_id: str
    subject: str
    kind: NoticeKind
    severity: str
    previous_severity: str | None
    value: float | None
    threshold: float | None
    reasons: tuple[str, ...]
    at: datetime  # the transition's time
    transition_id: str
    caused_by: tuple[str, ...]  # the ids of the events that caused the transition
    why: str  # why this is a notice (see docs/alerts.md, "Why")
    immediate: bool
    decided_at: datetime
    due: datetime | None = None  # the digest it belongs to (None: immediate)

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.school_id, self.subject)

    @property
    def routing_severity(self) -> str:
        """The graver of the new and the previous severity: a downgrade is told to whoever was paged."""
        return max(self.severity, self.previous_severity or self.severity, key=_rank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "school_id": self.school_id, "subject": self.subject, "kind": self.kind,
            "severity": self.severity, "previous_severity": self.previous_severity, "value": self.value,
            "threshold": self.threshold, "reasons": list(self.reasons), "at": _iso(self.at),
            "transition_id": self.transition_id, "caused_by": list(self.caused_by), "why": self.why,
            "immediate": self.immediate, "decided_at": _iso(self.decided_at), "due": _iso(self.due),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notice:
        at, decided = _time(d["at"]), _time(d["decided_at"])
        assert at is not None and decided is not None  # noqa: S101 - written by to_dict
        return cls(
            d["rule"], d["school_id"], d["subject"], d["kind"], d["severity"], d["previous_severity"],
            d["value"], d["threshold"], tuple(d["reasons"]), at, d["transition_id"], tuple(d["caused_by"]),
            d["why"], d["immediate"], decided, _time(d["due"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Suppression:
    """A transition that is told to nobody, and why."""

    rule: str
    school_id: str
    subject: str
    transition: str  # fired | updated | resolved
    severity: str
    at: datetime
    transition_id: str
    caused_by: tuple[str, ...]
    reason: SuppressReason
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "school_id": self.school_id, "subject": self.subject,
            "transition": self.transition, "severity": self.severity, "at": _iso(self.at),
            "transition_id": self.transition_id, "caused_by": list(self.caused_by), "reason": self.reason,
            "detail": self.detail,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Digest:
    """The items queued for one digest window, which closes (and is sent) at `window_end`."""

    window_end: datetime
    items: tuple[Notice, ...]


@dataclass(frozen=True, slots=True)
class Track:
    """What the policy knows of one alert: open (told as firing) or held (resolved, in the window)."""

    status: Literal["open", "held"]
    severity: str  # the severity last told
    last_at: datetime  # the newest transition seen
    seen: tuple[tuple[str, datetime], ...]  # recent transition ids (see RESTATEMENT_DAYS)
    held: Notice | None = None  # the resolution waiting out the flapping window

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "severity": self.severity, "last_at": _iso(self.last_at),
            "seen": [[i, _iso(t)] for i, t in self.seen],
            "held": self.held.to_dict() if self.held is not None else None,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Track:
        last = _time(d["last_at"])
        assert last is not None  # noqa: S101 - written by to_dict
        seen = tuple((i, datetime.fromisoformat(t)) for i, t in d["seen"])
        held = Notice.from_dict(d["held"]) if d["held"] is not None else None
        return cls(d["status"], d["severity"], last, seen, held)


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Everything `decide` remembers between calls; `to_dict` is JSON-ready for the worker to persist."""

    tracks: Mapping[AlertKey, Track]
    queued: tuple[Notice, ...] = ()  # digest items not yet sent

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracks": [[*k, t.to_dict()] for k, t in sorted(self.tracks.items())],
            "queued": [n.to_dict() for n in self.queued],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyState:
        tracks = {(r, s, sub): Track.from_dict(t) for r, s, sub, t in d["tracks"]}
        return cls(tracks, tuple(Notice.from_dict(n) for n in d["queued"]))


EMPTY = PolicyState({})


@dataclass(frozen=True, slots=True)
class Decision:
    state: PolicyState
    immediate: list[Notice]
    queued: list[Notice]  # new digest items
    digests: list[Digest]  # digests due by `now`
    suppressed: list[Suppression]


def next_digest(after: datetime, config: Notifications) -> datetime:
    """The first digest time strictly after `after`: `digest_hour` in China Standard Time, on days whose
    ordinal is a multiple of `digest_every_days` (so every worker agrees on the windows)."""
    local = after.astimezone(CST)
    at = local.replace(hour=config.digest_hour, minute=0, second=0, microsecond=0)
    if at <= local:
        at += timedelta(days=1)
    while at.date().toordinal() % config.digest_every_days:
        at += timedelta(days=1)
    return at


@dataclass(frozen=True, slots=True)
class _Record:
    rule: str
    school_id: str
    subject: str
    kind: str
    severity: str
    value: float | None
    threshold: float | None
    reasons: tuple[str, ...]
    at: datetime
    id: str
    caused_by: tuple[str, ...]

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> _Record:
        return cls(
            r["rule"], r["school_id"], r["subject"], r["transition"], r["severity"], r.get("value"),
            r.get("threshold"), tuple(r.get("reasons") or ()), datetime.fromisoformat(r["at"]), r["id"],
            tuple(r.get("caused_by") or ()),
        )  # fmt: skip

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.school_id, self.subject)

    def notice(self, kind: NoticeKind, why: str, previous: str | None, now: datetime) -> Notice:
        return Notice(
            self.rule, self.school_id, self.subject, kind, self.severity, previous, self.value,
            self.threshold, self.reasons, self.at, self.id, self.caused_by, why, False, now,
        )  # fmt: skip

    def suppressed(self, reason: SuppressReason, detail: str) -> Suppression:
        return Suppression(
            self.rule, self.school_id, self.subject, self.kind, self.severity, self.at, self.id,
            self.caused_by, reason, detail,
        )  # fmt: skip


class _Run:
    """One call of `decide`: the working copy of the state and what it found."""

    def __init__(self, state: PolicyState, now: datetime, config: Notifications) -> None:
        self.tracks = dict(state.tracks)
        self.queue = list(state.queued)
        self.now, self.config = now, config
        self.window = timedelta(days=config.flapping_days)
        self.immediate: list[Notice] = []
        self.queued: list[Notice] = []
        self.suppressed: list[Suppression] = []

    def tell(self, n: Notice) -> None:
        if n.routing_severity in self.config.immediate:
            self.immediate.append(replace(n, immediate=True, decided_at=self.now, due=None))
        else:
            item = replace(n, immediate=False, decided_at=self.now, due=next_digest(self.now, self.config))
            self.queued.append(item)
            self.queue.append(item)

    def open(self, r: _Record, seen: tuple[tuple[str, datetime], ...]) -> None:
        self.tracks[r.key] = Track("open", r.severity, r.at, seen)

    def record(self, r: _Record) -> None:
        t = self.tracks.get(r.key)
        if t is not None and any(i == r.id for i, _ in t.seen):
            return  # republished (a redelivery or a refold): decided and recorded the first time
        if t is not None and r.at < t.last_at:
            detail = f"older than the last transition seen for this alert ({t.last_at.isoformat()})"
            self.suppressed.append(r.suppressed("restated", detail))
            return
        horizon = r.at - timedelta(days=RESTATEMENT_DAYS)
        seen = (*(s for s in (t.seen if t else ()) if s[1] >= horizon), (r.id, r.at))
        if t is not None and t.status == "held" and t.held is not None and r.kind != "resolved":
            if r.at - t.held.at <= self.window:
                self._continue(r, t, seen)
                return
            self.tell(replace(t.held, why="resolved_held"))  # stayed resolved for the whole window
            t = None
        if r.kind == "resolved":
            self._resolve(r, t, seen)
        elif t is None:
            why = "fired" if r.kind == "fired" else "first_seen"
            self.tell(r.notice("fired", why, None, self.now))
            self.open(r, seen)
        elif r.severity != t.severity:
            self.tell(r.notice("severity_changed", "severity_changed", t.severity, self.now))
            self.open(r, seen)
        else:
            self.suppressed.append(r.suppressed("value_only", "a change of value is not told"))
            self.open(r, seen)

    def _continue(self, r: _Record, t: Track, seen: tuple[tuple[str, datetime], ...]) -> None:
        """Fired again within the flapping window: one continuing notice, neither half of the pair sent."""
        held = t.held
        assert held is not None  # noqa: S101 - the caller checked
        days = self.config.flapping_days
        detail = (
            f"resolved at {held.at.isoformat()} and fired again at {r.at.isoformat()}, within {days} days"
        )
        self.suppressed.append(
            Suppression(
                held.rule,
                held.school_id,
                held.subject,
                "resolved",
                held.severity,
                held.at,
                held.transition_id,
                held.caused_by,
                "flapping",
                detail,
            )
        )
        self.suppressed.append(r.suppressed("flapping", detail))
        if r.severity != t.severity:
            self.tell(r.notice("severity_changed", "severity_changed", t.severity, self.now))
        self.open(r, seen)

    def _resolve(self, r: _Record, t: Track | None, seen: tuple[tuple[str, datetime], ...]) -> None:
        if t is not None and t.status == "held":
            self.suppressed.append(r.suppressed("already_resolved", "the alert is resolved already"))
            self.tracks[r.key] = replace(t, last_at=r.at, seen=seen)
            return
        notice = r.notice("resolved", "resolved", None, self.now)
        if self.window:
            self.tracks[r.key] = Track("held", r.severity, r.at, seen, notice)
        else:
            self.tell(notice)
            self.tracks.pop(r.key, None)

    def release(self) -> None:
        """Resolutions that stayed resolved for the whole window are told now."""
        for key in sorted(self.tracks):
            t = self.tracks[key]
            if t.status == "held" and t.held is not None and self.now >= t.held.at + self.window:
                self.tell(replace(t.held, why="resolved_held"))
                del self.tracks[key]

    def digests(self) -> tuple[list[Digest], tuple[Notice, ...]]:
        due = sorted({n.due for n in self.queue if n.due is not None and n.due <= self.now})
        out = [Digest(d, tuple(n for n in self.queue if n.due == d)) for d in due]
        return out, tuple(n for n in self.queue if n.due is None or n.due > self.now)


def decide(
    state: PolicyState, records: Iterable[Mapping[str, Any]], now: datetime, config: Notifications
) -> Decision:
    """Apply transition records (in the order published) at time `now`; see the module's docstring."""
    run = _Run(state, now, config)
    for raw in records:
        run.record(_Record.of(raw))
    run.release()
    digests, pending = run.digests()
    return Decision(PolicyState(run.tracks, pending), run.immediate, run.queued, digests, run.suppressed)
