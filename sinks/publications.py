"""What was published: `dualtrack report --publish` keeps each report it gives out, so that a later
briefing can say what changed since (docs/domain.md, "Published and revised")."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sinks.base import Store, from_micros, micros, utc

#: the migration that made the `publications` table
MIGRATION = 13


@dataclass(frozen=True)
class Publication:
    as_of: datetime
    known_on: datetime
    published_at: datetime
    report: dict[str, Any]  # the contract's report as published


class Publications:
    """The `publications` table of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self, report: dict[str, Any], as_of: datetime, known_on: datetime, now: datetime, rules_key: str
    ) -> str:
        """Keep a published report; returns its id (the same time, knowledge and rules: the same id)."""
        key = f"{micros(as_of)}|{micros(known_on)}|{rules_key}"
        publication_id = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.store.insert(
            "publications",
            [
                {
                    "publication_id": publication_id, "as_of_us": micros(as_of),
                    "known_on_us": micros(known_on), "published_at": now, "rules_key": rules_key,
                    "version": time.time_ns(), "body": json.dumps(report, ensure_ascii=False, sort_keys=True),
                }
            ],
        )  # fmt: skip
        return publication_id

    def latest_per_time(self, until: datetime) -> list[Publication]:
        """For each time published as of (at or before `until`), its newest publication, oldest first."""
        table = self.store.table("publications")
        newest = "argMax(known_on_us, version) AS known_us, argMax(published_at, version) AS at"
        sql = f"SELECT as_of_us, {newest}, argMax(body, version) AS body FROM {table} FINAL"  # noqa: S608 - identifiers only
        sql += " WHERE as_of_us <= {until:Int64} GROUP BY as_of_us ORDER BY as_of_us"
        rows = self.store.query(sql, {"until": micros(until)})
        return [
            Publication(
                from_micros(int(r["as_of_us"])),
                from_micros(int(r["known_us"])),
                utc(r["at"]),
                json.loads(r["body"]),
            )
            for r in rows
        ]
