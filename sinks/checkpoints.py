"""Engine checkpoints in the store: the fold's state after a position of the log, so that a restart or
an as-of report folds only the events after it instead of the whole history.

A checkpoint is usable only while the log holds exactly the events it had up to its position: a late
event before the position changes that count, and the checkpoint is then passed over (nothing has to
be invalidated by hand). A checkpoint is stored under a key (`rules.engine.state_key`: the rules
file's values and the rules' code; the `rule_version` column) and is never used under another.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sinks.base import Store, from_micros, micros
from sinks.eventlog import EventLog

#: a state is written in parts of at most this many bytes (inserts and Kafka-free, but bounded)
PART_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Checkpoint:
    position: tuple[datetime, str]  # the last applied event's (occurred_at, event_id)
    events: int  # kept events up to and including the position
    state: bytes  # the engine's state as `rules.snapshot` JSON (uncompressed)


class Checkpoints:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, position: tuple[datetime, str], events: int, key: str, state: bytes) -> None:
        blob = zlib.compress(state, 1)
        parts = [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [b""]
        now, version = datetime.now(UTC), time.time_ns()
        self.store.insert_columns(
            "engine_checkpoints",
            {
                "position_us": [micros(position[0])] * len(parts),
                "position_id": [position[1]] * len(parts),
                "events": [events] * len(parts),
                "taken_at": [now] * len(parts),
                "rule_version": [key] * len(parts),
                "part": list(range(len(parts))),
                "parts": [len(parts)] * len(parts),
                "blob": parts,
                "version": [version] * len(parts),
            },
        )

    def latest(
        self, key: str, until: datetime | None = None, known_on: datetime | None = None
    ) -> Checkpoint | None:
        """The newest usable checkpoint stored under `key`, at or before `until` (any, when None); with
        `known_on`, one whose events had all arrived by then."""
        table = self.store.table("engine_checkpoints")
        where = "WHERE rule_version = {key:String}"
        params: dict[str, str | int] = {"key": key}
        if until is not None:
            where += " AND position_us <= {until:Int64}"
            params["until"] = micros(until)
        head = "position_us, position_id, events"
        heads = self.store.query(
            f"SELECT {head}, max(parts) AS parts, count() AS have FROM {table} FINAL {where} GROUP BY {head} "  # noqa: S608 - identifiers only
            "ORDER BY position_us DESC, position_id DESC LIMIT 8",
            params,
        )
        log = EventLog(self.store)
        for h in heads:
            if h["have"] != h["parts"]:
                continue  # a checkpoint whose writing was interrupted
            position = (int(h["position_us"]), h["position_id"])
            if log.count_through(*position) != h["events"]:
                continue  # a late event arrived before its position: the state it holds is out of date
            if known_on is not None and log.count_through(*position, known_on) != h["events"]:
                continue  # it holds events that arrived after `known_on`
            rows = self.store.query(
                f"SELECT part, blob FROM {table} FINAL "  # noqa: S608 - identifiers only
                "WHERE position_us = {us:Int64} AND position_id = {id:String} ORDER BY part",
                {"us": int(h["position_us"]), "id": h["position_id"]},
                binary=("blob",),
            )
            state = zlib.decompress(b"".join(r["blob"] for r in rows))
            return Checkpoint((from_micros(h["position_us"]), h["position_id"]), h["events"], state)
        return None

    def prune(self, recent: int = 3) -> int:
        """Forget checkpoints no one needs: keep the newest `recent` (restarts) and the last one of each
        calendar month (as-of reports reach any time from the one before it). Returns how many went."""
        table = self.store.table("engine_checkpoints")
        order = "ORDER BY position_us DESC, position_id DESC"
        heads = self.store.query(f"SELECT DISTINCT position_us, position_id FROM {table} {order}")  # noqa: S608 - identifiers only
        keep: set[tuple[int, str]] = {(h["position_us"], h["position_id"]) for h in heads[:recent]}
        months: set[tuple[int, int]] = set()
        for h in heads:  # newest first: the first seen of a month is its last
            t = from_micros(h["position_us"])
            if (t.year, t.month) not in months:
                months.add((t.year, t.month))
                keep.add((h["position_us"], h["position_id"]))
        gone = [h for h in heads if (h["position_us"], h["position_id"]) not in keep]
        for h in gone:
            self.store.execute(
                f"ALTER TABLE {table} DELETE "
                "WHERE position_us = {us:Int64} AND position_id = {id:String}",
                {"us": int(h["position_us"]), "id": h["position_id"]},
            )
        return len(gone)
