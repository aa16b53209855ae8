"""The event log and the dead letters: the immutable record every result is computed from.

`events` keeps each accepted event once (its bytes as sent, exactly), `dead_letters` each rejected line
with its reason and bytes (national IDs masked). Both are keyed, so writing a row again replaces it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from schemas.validation import Accepted, Rejected, decode
from sinks.base import Store, from_micros, micros, utc

#: event ids per lookup query: clickhouse-driver binds them into the statement it sends, and a
#: canonical id is 36 characters, so a slice is about 80 KB (the server parses at most 256 KiB)
ID_SLICE = 2000


#: a row that had arrived by the `known` second (arrivals are kept to the second)
ARRIVED_BY = "toUInt32(arrived_at) <= {known:Int64}"
#: of an event's copies grouped by event_id: its first kept copy arrived after the `known` second
FIRST_ARRIVED_AFTER = "min(toUInt32(arrived_at)) > {known:Int64}"


def known_seconds(known_on: datetime) -> int:
    """The last arrival second that counts as known on `known_on` (its whole second)."""
    return math.floor(known_on.timestamp())


class EventLog:
    """The `events` and `dead_letters` tables of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, events: Sequence[Accepted], arrived_at: datetime) -> int:
        """Keep accepted events (first copies: the caller applies the duplicate rule), each with its own
        arrival when it carries one, else `arrived_at`."""
        return self.store.insert_columns(
            "events",
            {
                "event_id": [e.event_id for e in events],
                "event_type": [e.event_type for e in events],
                "school_id": [e.school_id for e in events],
                "occurred_at": [e.occurred_at for e in events],
                "occurred_at_us": [micros(e.occurred_at) for e in events],
                "emitted_at_us": [micros(e.emitted_at) if e.emitted_at else 0 for e in events],
                "arrived_at": [e.arrived_at or arrived_at for e in events],
                "content_hash": [e.content_hash for e in events],
                "body": [e.raw for e in events],
            },
        )

    def dead_letter(self, rejected: Sequence[tuple[Rejected, str, datetime]]) -> int:
        """Keep rejected lines: (the rejection, where it came from, when it arrived)."""
        return self.store.insert_columns(
            "dead_letters",
            {
                # reason and bytes identify a dead letter: a redelivered one replaces itself
                "dead_letter_id": [
                    hashlib.sha256(r.reason.value.encode() + b"\0" + r.raw).hexdigest()
                    for r, _, _ in rejected
                ],
                "reason": [r.reason.value for r, _, _ in rejected],
                "message": [r.message for r, _, _ in rejected],
                "school_id": [r.school_id for r, _, _ in rejected],
                "event_id": [r.event_id for r, _, _ in rejected],
                "event_type": [r.event_type for r, _, _ in rejected],
                "raw": [r.raw for r, _, _ in rejected],
                "arrived_at": [at for _, _, at in rejected],
                "origin": [origin for _, origin, _ in rejected],
            },
        )

    def kept_hashes(self) -> dict[str, str]:
        """event_id -> content hash of every kept event (the duplicate rule's memory)."""
        events = self.store.table("events")
        rows = self.store.query(f"SELECT event_id, any(content_hash) AS h FROM {events} GROUP BY event_id")  # noqa: S608 - identifiers only
        return {r["event_id"]: r["h"] for r in rows}

    def events(self, until: datetime | None = None) -> list[Accepted]:
        """The kept events (at or before `until`), in rule order."""
        where = "WHERE occurred_at_us <= {until:Int64}" if until is not None else ""
        params = {"until": micros(until)} if until is not None else {}
        events = self.store.table("events")
        sql = f"SELECT event_id, any(body) AS body, any(content_hash) AS h FROM {events} {where}"  # noqa: S608 - identifiers only
        rows = self.store.query(f"{sql} GROUP BY event_id", params, binary=("body",))
        return sorted((decode(r["body"], r["h"], r["event_id"]) for r in rows), key=lambda e: e.order_key)

    def count_through(self, position_us: int, position_id: str, known_on: datetime | None = None) -> int:
        """How many distinct events the log keeps at or before a position in rule order (of those that
        had arrived by `known_on`, when given)."""
        events = self.store.table("events")
        where = "(occurred_at_us < {us:Int64} OR (occurred_at_us = {us:Int64} AND event_id <= {id:String}))"
        params: dict[str, str | int] = {"us": int(position_us), "id": position_id}
        if known_on is not None:
            where += f" AND {ARRIVED_BY}"
            params["known"] = known_seconds(known_on)
        rows = self.store.query(f"SELECT uniqExact(event_id) AS n FROM {events} WHERE {where}", params)  # noqa: S608 - identifiers only
        return int(rows[0]["n"])

    def events_after(
        self,
        position: tuple[datetime, str] | None,
        until: datetime | None = None,
        page_events: int = 20_000,
        known_on: datetime | None = None,
    ) -> Iterator[list[Accepted]]:
        """The kept events after `position` (all, when None) and at or before `until`, in rule order,
        in pages of about `page_events` (bounded memory however long the history); with `known_on`,
        only those that had arrived by then (docs/domain.md, "As known on")."""
        events = self.store.table("events")
        lo = micros(position[0]) if position else None
        hi = micros(until) if until is not None else None
        known = known_seconds(known_on) if known_on is not None else None
        where = " AND ".join(
            [
                "1",
                *(["occurred_at_us >= {lo:Int64}"] if lo is not None else []),
                *(["occurred_at_us <= {hi:Int64}"] if hi is not None else []),
                *([ARRIVED_BY] if known is not None else []),
            ]
        )
        params = {k: v for k, v in (("lo", lo), ("hi", hi), ("known", known)) if v is not None}
        span = "count() AS n, min(occurred_at_us) AS lo, max(occurred_at_us) AS hi"
        bounds = self.store.query(f"SELECT {span} FROM {events} WHERE {where}", params)[0]  # noqa: S608 - identifiers only
        if not bounds["n"]:
            return
        start, end = int(bounds["lo"]), int(bounds["hi"])
        # pages split the time span evenly by the number of events in it (a rough but bounded cut)
        pages = max(1, -(-int(bounds["n"]) // page_events))
        step = max(1, (end - start) // pages + 1)
        for page_lo in range(start, end + 1, step):
            page_hi = min(page_lo + step - 1, end)
            columns = "event_id, any(body) AS body, any(content_hash) AS h, any(occurred_at_us) AS us"
            span = "occurred_at_us >= {lo:Int64} AND occurred_at_us <= {hi:Int64}"
            if known is not None:
                span += f" AND {ARRIVED_BY}"
            rows = self.store.query(
                f"SELECT {columns} FROM {events} WHERE {span} GROUP BY event_id ORDER BY us, event_id",  # noqa: S608 - identifiers only
                {"lo": page_lo, "hi": page_hi, **({"known": known} if known is not None else {})},
                binary=("body",),
            )
            page = [decode(r["body"], r["h"], r["event_id"]) for r in rows]  # in rule order already
            if position is not None:
                page = [e for e in page if e.order_key > position]
            if page:
                yield page

    def hashes_of(self, event_ids: Iterable[str]) -> dict[str, str]:
        """The content hash of those of `event_ids` the log keeps (the duplicate rule, per batch)."""
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        events = self.store.table("events")
        found: dict[str, str] = {}
        # a batch after a backlog holds thousands of ids: they go in slices (ID_SLICE)
        for start in range(0, len(ids), ID_SLICE):
            sql = f"SELECT event_id, any(content_hash) AS h FROM {events} "  # noqa: S608 - identifiers only
            sql += "WHERE event_id IN {ids:Array(String)} GROUP BY event_id"
            rows = self.store.query(sql, {"ids": ids[start : start + ID_SLICE]})
            found.update((r["event_id"], r["h"]) for r in rows)
        return found

    def arrived_after(self, known_on: datetime) -> tuple[int, int]:
        """Of the kept events, how many arrived after `known_on`, and how many of those are dated at or
        before it (late for a report published then: what would move its figures)."""
        events = self.store.table("events")
        sql = (
            f"SELECT uniqExact(event_id) AS n, uniqExactIf(event_id, occurred_at_us <= {{us:Int64}}) AS late "  # noqa: S608 - identifiers only
            f"FROM {events} WHERE event_id IN (SELECT event_id FROM {events} GROUP BY event_id "
            f"HAVING {FIRST_ARRIVED_AFTER})"
        )
        rows = self.store.query(sql, {"us": micros(known_on), "known": known_seconds(known_on)})
        return int(rows[0]["n"]), int(rows[0]["late"])

    def late_since(
        self, as_of: datetime, known_on: datetime, until: datetime | None = None
    ) -> dict[str, int]:
        """school_id -> how many kept events dated at or before `as_of` arrived after `known_on` (and by
        `until`, when given): the late events that move a report published as of then."""
        events = self.store.table("events")
        having = FIRST_ARRIVED_AFTER
        params = {"us": micros(as_of), "known": known_seconds(known_on)}
        if until is not None:
            having += " AND min(toUInt32(arrived_at)) <= {until:Int64}"
            params["until"] = known_seconds(until)
        inner = f"SELECT event_id, any(school_id) AS school_id FROM {events}"  # noqa: S608 - identifiers only
        inner += " WHERE occurred_at_us <= {us:Int64} GROUP BY event_id HAVING " + having
        sql = f"SELECT school_id, count() AS n FROM ({inner}) GROUP BY school_id"  # noqa: S608 - identifiers only
        rows = self.store.query(sql, params)
        return {r["school_id"]: int(r["n"]) for r in rows}

    def newest_event_time(self) -> datetime | None:
        """The occurred_at of the latest kept event in rule order (None for an empty log)."""
        events = self.store.table("events")
        rows = self.store.query(f"SELECT count() AS n, max(occurred_at_us) AS us FROM {events}")  # noqa: S608 - identifiers only
        return from_micros(int(rows[0]["us"])) if rows and rows[0]["n"] else None

    def enrollment_arrivals(self, known_on: datetime | None = None) -> dict[tuple[str, str], datetime]:
        """(school_id, term) -> when the first enrollment report of that school and term arrived (of
        those arrived by `known_on`, when given). Read from the events' own bytes: a few per school
        and term."""
        events = self.store.table("events")
        where = "event_type = 'enrollment.reported'"
        params: dict[str, int] = {}
        if known_on is not None:
            where += f" AND {ARRIVED_BY}"
            params["known"] = known_seconds(known_on)
        columns = "event_id, any(body) AS body, any(content_hash) AS h, min(arrived_at) AS at"
        sql = f"SELECT {columns} FROM {events} WHERE {where} GROUP BY event_id"  # noqa: S608 - identifiers only
        rows = self.store.query(sql, params, binary=("body",))
        out: dict[tuple[str, str], datetime] = {}
        for r in rows:
            e = decode(r["body"], r["h"], r["event_id"])
            key, at = (e.school_id, str(e.payload["term"])), utc(r["at"])
            if key not in out or at < out[key]:
                out[key] = at
        return out

    def last_arrivals(self) -> dict[str, datetime]:
        """school_id -> when its latest kept event arrived."""
        events = self.store.table("events")
        rows = self.store.query(f"SELECT school_id, max(arrived_at) AS at FROM {events} GROUP BY school_id")  # noqa: S608 - identifiers only
        return {r["school_id"]: utc(r["at"]) for r in rows}

    def kept_count(self) -> int:
        """How many distinct events the log keeps."""
        events = self.store.table("events")
        return int(self.store.query(f"SELECT count() AS n FROM {events} FINAL")[0]["n"])  # noqa: S608 - identifiers only

    def counts(self) -> dict[str, int]:
        """How many events are kept and lines dead-lettered."""
        out = {}
        for name in ("events", "dead_letters"):
            table = self.store.table(name)
            out[name] = int(self.store.query(f"SELECT count() AS n FROM {table} FINAL")[0]["n"])  # noqa: S608 - identifiers only
        return out
