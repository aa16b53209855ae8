"""The notification policy (docs/alerts.md): which alert changes become notices, and when.

`decide(state, records, now, config, present)` is pure. It compares what was told of each alert (the
state) with what holds **now** (`present`: the open alerts of the engine, which are what the store
holds), and tells the difference; the transition records of the same cycle say when and why each change
happened, and every one that is not told is returned as a suppression with its reason. The state is
plain data that the worker keeps in the store (`PolicyState.to_dict`), so any worker continues where
the last one stopped.

- An alert that now holds and was not told is told as fired; one told and no longer holding is told
  as resolved; a change of severity is told; a change of value is not.
- A resolution is held for `flapping_days`: an alert that fires again within them continues the notice
  it had, and neither the resolution nor the new firing is sent.
- Severities in `config.immediate` (critical) go at once; the others wait for the digest.
- What no longer holds at the end of a cycle is not told: a transition that a later one of the same
  cycle undid (`transient`), or history that a late event restated (`restated`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from rules.alerts import Alert, transition_id
from rules.indicators import CST
from rules.limits import SEVERITIES, Notifications
from rules.report import alert_dict

NoticeKind = Literal["fired", "resolved", "severity_changed"]
SuppressReason = Literal["value_only", "flapping", "restated", "transient", "already_resolved"]
AlertKey = tuple[str, str, str]  # (rule, school_id, subject)
#: a notice whose change became known this long after it happened says when it became known
LATE = timedelta(hours=1)


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
    at: datetime  # when the change happened (the transition's event time)
    transition_id: str
    caused_by: tuple[str, ...]  # the ids of the events that caused the transition
    why: str  # why this is a notice (see docs/alerts.md, "Why")
    immediate: bool
    decided_at: datetime
    due: datetime | None = None  # the digest it belongs to (None: immediate)
    known_at: datetime | None = None  # when the change became known (a late event: long after `at`)

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.school_id, self.subject)

    @property
    def routing_severity(self) -> str:
        """The graver of the new and the previous severity: a downgrade is told to whoever was paged."""
        return max(self.severity, self.previous_severity or self.severity, key=_rank)

    @property
    def late(self) -> bool:
        """Whether the change became known well after it happened (a late event, or a restart)."""
        return self.known_at is not None and self.known_at - self.at >= LATE

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "school_id": self.school_id, "subject": self.subject, "kind": self.kind,
            "severity": self.severity, "previous_severity": self.previous_severity, "value": self.value,
            "threshold": self.threshold, "reasons": list(self.reasons), "at": _iso(self.at),
            "transition_id": self.transition_id, "caused_by": list(self.caused_by), "why": self.why,
            "immediate": self.immediate, "decided_at": _iso(self.decided_at), "due": _iso(self.due),
            "known_at": _iso(self.known_at),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Notice:
        at, decided = _time(d["at"]), _time(d["decided_at"])
        assert at is not None and decided is not None  # noqa: S101 - written by to_dict
        return cls(
            d["rule"], d["school_id"], d["subject"], d["kind"], d["severity"], d["previous_severity"],
            d["value"], d["threshold"], tuple(d["reasons"]), at, d["transition_id"], tuple(d["caused_by"]),
            d["why"], d["immediate"], decided, _time(d["due"]), _time(d.get("known_at")),
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
    """What was told of one alert: open (told as firing, at `severity`) or held (its resolution waits
    out the flapping window). An alert with no track was not told, or was told resolved."""

    status: Literal["open", "held"]
    severity: str  # the severity last told
    last_at: datetime  # the newest transition the policy has seen of this alert
    last_id: str  # the transition last told (a record seen again is not decided twice)
    held: Notice | None = None  # the resolution waiting out the flapping window

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "severity": self.severity, "last_at": _iso(self.last_at),
            "last_id": self.last_id, "held": self.held.to_dict() if self.held is not None else None,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Track:
        last = _time(d["last_at"])
        assert last is not None  # noqa: S101 - written by to_dict
        held = Notice.from_dict(d["held"]) if d["held"] is not None else None
        return cls(d["status"], d["severity"], last, d["last_id"], held)


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
    """One transition (or, without one, the present state of an alert), as the policy reads it."""

    rule: str
    school_id: str
    subject: str
    kind: str  # fired | updated | resolved
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

    @classmethod
    def of_alert(cls, a: Alert, now: datetime) -> _Record:
        """An open alert as the record of its firing (at `since`, caused by the events that fired it:
        the id is that of the stored transition that fired it)."""
        d = alert_dict(a)
        at, by = a.since or now, tuple(a.fired_by or a.caused_by)
        return cls(a.rule, a.school_id, a.subject, "fired", a.severity, d["value"], d["threshold"],
                   tuple(a.reasons), at, transition_id(a.key, at, "fired"), by)  # fmt: skip

    @property
    def key(self) -> AlertKey:
        return (self.rule, self.school_id, self.subject)

    def since(self, basis: _Record) -> _Record:
        """This state (severity, value) as of the transition `basis` (its time, id and causes)."""
        return replace(self, at=basis.at, id=basis.id, caused_by=basis.caused_by)

    def notice(self, kind: NoticeKind, why: str, previous: str | None, now: datetime) -> Notice:
        return Notice(
            self.rule, self.school_id, self.subject, kind, self.severity, previous, self.value,
            self.threshold, self.reasons, self.at, self.id, self.caused_by, why, False, now, None, now,
        )  # fmt: skip

    def suppressed(self, reason: SuppressReason, detail: str) -> Suppression:
        return Suppression(
            self.rule, self.school_id, self.subject, self.kind, self.severity, self.at, self.id,
            self.caused_by, reason, detail,
        )  # fmt: skip


_DETAIL: dict[SuppressReason, str] = {
    "value_only": "a change of value is not told",
    "transient": "undone within the same cycle: it did not hold when the cycle ended",
    "restated": "history that a late event restated: it does not hold now, or is older than what was told",
    "already_resolved": "the alert is resolved already",
}


class _Run:
    """One call of `decide`: the working copy of the state and what it found."""

    def __init__(self, state: PolicyState, now: datetime, config: Notifications, restated: bool) -> None:
        self.restated = restated
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

    def reconcile(self, key: AlertKey, records: list[_Record], present: _Record | None) -> None:
        """Bring what was told of one alert in line with what holds now (`present`, None: not open)."""
        t = self.tracks.get(key)
        if t is not None:
            records = [r for r in records if r.id != t.last_id]  # decided before (a record seen again)
        used: set[str] = set()

        def last(*kinds: str) -> _Record | None:
            return next((r for r in reversed(records) if r.kind in kinds), None)

        if present is not None:
            if t is None:
                basis = last("fired") or present
                why = "fired" if basis.kind == "fired" else "first_seen"
                self.tell(present.since(basis).notice("fired", why, None, self.now))
            elif t.status == "open":
                basis = last("fired", "updated") or present
                if present.severity != t.severity:
                    self.tell(
                        present.since(basis).notice(
                            "severity_changed", "severity_changed", t.severity, self.now
                        )
                    )
                else:
                    basis = None  # nothing told: every record of the cycle is suppressed below
            else:
                basis = self._refire(t, last("fired") or present, present)
            if basis is not None:
                used.add(basis.id)
                at = max(basis.at, t.last_at) if t is not None else basis.at
                self.tracks[key] = Track("open", present.severity, at, basis.id)
        elif t is not None and t.status == "open":
            basis = last("resolved") or self._gone(key, t, records)
            used.add(basis.id)
            notice = basis.notice("resolved", "resolved", None, self.now)
            if self.window:
                self.tracks[key] = Track("held", t.severity, max(basis.at, t.last_at), basis.id, notice)
            else:
                self.tell(notice)
                del self.tracks[key]
        for r in records:
            if r.id not in used:
                self._suppress(r, t, present)
                used.add(r.id)
        after = self.tracks.get(key)
        newest = max((r.at for r in records), default=None)
        if after is not None and newest is not None and newest > after.last_at:
            self.tracks[key] = replace(after, last_at=newest)  # what a later record is older than

    def _refire(self, t: Track, refire: _Record, present: _Record) -> _Record:
        """Fired again while its resolution is held: within the window one continuing notice (neither
        half sent); after it, the held resolution and then the new firing."""
        held = t.held
        assert held is not None  # noqa: S101 - a held track holds its notice
        if refire.at - held.at > self.window:
            self.tell(replace(held, why="resolved_held"))
            self.tell(present.since(refire).notice("fired", "fired", None, self.now))
            return refire
        days = self.config.flapping_days
        detail = f"resolved at {held.at.isoformat()} and fired again at {refire.at.isoformat()}"
        detail += f", within {days} days"
        self.suppressed.append(
            Suppression(held.rule, held.school_id, held.subject, "resolved", held.severity, held.at,
                        held.transition_id, held.caused_by, "flapping", detail)
        )  # fmt: skip
        self.suppressed.append(refire.suppressed("flapping", detail))
        if present.severity != t.severity:
            self.tell(
                present.since(refire).notice("severity_changed", "severity_changed", t.severity, self.now)
            )
        return refire

    def _gone(self, key: AlertKey, t: Track, records: list[_Record]) -> _Record:
        """The resolution of an alert told as firing that no longer holds, with no resolved transition in
        the cycle (a late event restated its history, or a worker stopped between two writes): dated at
        the cycle's earliest transition, or now."""
        at = min((r.at for r in records), default=self.now)
        caused = tuple(dict.fromkeys(e for r in records for e in r.caused_by))
        return _Record(key[0], key[1], key[2], "resolved", t.severity, None, None, (), at,
                       transition_id(key, at, "resolved"), caused)  # fmt: skip

    def _suppress(self, r: _Record, t: Track | None, present: _Record | None) -> None:
        if self.restated or (t is not None and r.at < t.last_at):
            reason: SuppressReason = "restated"
        elif r.kind == "updated" and present is not None and r.severity == present.severity:
            reason = "value_only"
        elif r.kind == "resolved" and present is None and t is not None and t.status == "held":
            reason = "already_resolved"
        else:
            reason = "transient"
        self.suppressed.append(r.suppressed(reason, _DETAIL[reason]))

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
    state: PolicyState,
    records: Iterable[Mapping[str, Any]],
    now: datetime,
    config: Notifications,
    present: Mapping[AlertKey, Alert] | None = None,
    restated: bool = False,
) -> Decision:
    """One cycle of the policy at time `now`.

    `records` are the cycle's transition records, in the order they happened. `present` is what holds
    now (the engine's open alerts); without it, each alert's last record in `records` is taken as its
    present. Alerts are reconciled when they have a record in the cycle; with `restated` (a late event
    restated history, or a worker starts), every alert open now or told as open is, and the cycle's
    records that are not told are history that no longer holds (`restated`)."""
    run = _Run(state, now, config, restated)
    by_key: dict[AlertKey, dict[str, _Record]] = {}
    for raw in records:
        r = _Record.of(raw)
        by_key.setdefault(r.key, {}).setdefault(r.id, r)  # a record given twice is one record
    keys = list(by_key)
    if restated and present is not None:
        keys += sorted((present.keys() | run.tracks.keys()) - by_key.keys())
    for key in keys:
        rs = list(by_key.get(key, {}).values())
        if present is None:
            now_ = rs[-1] if rs and rs[-1].kind != "resolved" else None
        else:
            alert = present.get(key)
            now_ = None if alert is None else _present(alert, rs, now)
        run.reconcile(key, rs, now_)
    run.release()
    digests, pending = run.digests()
    return Decision(PolicyState(run.tracks, pending), run.immediate, run.queued, digests, run.suppressed)


def _present(alert: Alert, records: list[_Record], now: datetime) -> _Record:
    """The present state of an open alert: its last record of the cycle when that says the same, else
    the alert itself."""
    if records and records[-1].kind != "resolved" and records[-1].severity == alert.severity:
        return records[-1]
    return _Record.of_alert(alert, now)
