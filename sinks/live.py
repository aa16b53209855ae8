"""The live tables the dashboards read: school status, teacher and studio state, school snapshots and
alert transitions. Rows are built by the caller (`streams.materialize`); every table is a
ReplacingMergeTree on a deterministic key with a `version`, so a row written again replaces itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sinks.base import Row, Store, micros

#: what identifies one alert transition
TRANSITION_KEY = ("rule", "school_id", "subject", "at_us", "transition")


#: the columns of `school_status` a roll-up over provinces reads (docs/domain.md section 7)
ROLLUP_COLUMNS = (
    "school_id", "level", "students", "full_time_teachers", "part_time_teachers", "fte_teachers",
    "professional_teachers", "dual_teachers", "postgraduate_share", "doctor_share", "senior_title_share",
    "active_studios", "compliant_studios", "status", "last_event_at",
)  # fmt: skip


class LiveTables:
    def __init__(self, store: Store) -> None:
        self.store = store

    def school_status(self) -> list[Row]:
        """Every school's indicators as they stand now (the live table the province's dashboards read)."""
        columns = ", ".join(ROLLUP_COLUMNS)
        table = self.store.table("school_status")
        return self.store.query(f"SELECT {columns} FROM {table} FINAL ORDER BY school_id")  # noqa: S608 - identifiers only

    def schools(self, rows: Iterable[Row]) -> int:
        return self.store.insert("school_status", rows)

    def teachers(self, rows: Iterable[Row]) -> int:
        return self.store.insert("teacher_state", rows)

    def studios(self, rows: Iterable[Row]) -> int:
        return self.store.insert("studio_state", rows)

    def snapshots(self, rows: Iterable[Row]) -> int:
        return self.store.insert("school_snapshots", rows)

    def restate_snapshots(self, rows: list[Row], first: date, last: date | None, version: int) -> int:
        """Write the snapshots of a refold over the days from `first` to `last` (open when None), and
        retract the stored ones of those days that the refold no longer has."""
        fresh = {(r["school_id"], r["day"]) for r in rows}
        table = self.store.table("school_snapshots")
        span = "day >= toDate({first:String})" + (" AND day <= toDate({last:String})" if last else "")
        params = {"first": first.isoformat(), **({"last": last.isoformat()} if last else {})}
        sql = f"SELECT * FROM {table} FINAL WHERE {span} AND retracted = 0"  # noqa: S608 - identifiers only
        stored = self.store.query(sql, params)
        gone = [
            {**r, "retracted": 1, "version": version}
            for r in stored
            if (r["school_id"], r["day"]) not in fresh
        ]
        return self.store.insert("school_snapshots", [*rows, *gone])

    def transitions(self, rows: Iterable[Row]) -> int:
        return self.store.insert("alert_transitions", rows)

    def open_alerts_of(self, rules: Sequence[str]) -> list[Row]:
        """The alerts of `rules` the stored transitions leave open: rule, school_id, subject, sev."""
        table = self.store.table("alert_transitions")
        last = "argMax(transition, at_us) AS last, argMax(severity, at_us) AS sev"
        sql = f"SELECT rule, school_id, subject, {last} FROM {table} FINAL"  # noqa: S608 - identifiers only
        sql += " WHERE retracted = 0 AND rule IN {rules:Array(String)} GROUP BY rule, school_id, subject"
        return [r for r in self.store.query(sql, {"rules": list(rules)}) if r["last"] != "resolved"]

    def current_report(self, row: Row) -> int:
        """Keep the report for now (its row of `current_report`: the body and what it holds for)."""
        return self.store.insert("current_report", [row])

    def stored_report(self, scope: str = "province") -> Row | None:
        """The newest report for now of `scope`, or None."""
        table = self.store.table("current_report")
        rows = self.store.query(
            f"SELECT as_of_us, valid_before_us, events, rules_key, body FROM {table} FINAL "  # noqa: S608 - identifiers only
            "WHERE scope = {scope:String}",
            {"scope": scope},
        )
        return rows[0] if rows else None

    def restate_transitions(
        self,
        rows: list[Row],
        rules: Sequence[str],
        version: int,
        since: datetime | None,
        until: datetime | None = None,
    ) -> int:
        """Write the transitions of a refold of `rules` over the times from `since` to `until` (open
        ends when None), and retract the stored ones of that span that the refold no longer finds."""
        fresh = {tuple(r[k] for k in TRANSITION_KEY) for r in rows}
        table = self.store.table("alert_transitions")
        where = "WHERE rule IN {rules:Array(String)}"
        params: dict[str, Any] = {"rules": list(rules)}
        if since is not None:
            where += " AND at_us >= {since:Int64}"
            params["since"] = micros(since)
        if until is not None:
            where += " AND at_us <= {until:Int64}"
            params["until"] = micros(until)
        cols = ", ".join(TRANSITION_KEY)
        stored = self.store.query(
            f"SELECT {cols}, argMax(retracted, version) AS retracted FROM {table} {where} GROUP BY {cols}",  # noqa: S608 - identifiers only
            params,
        )
        gone = {
            key
            for r in stored
            if (key := tuple(r[k] for k in TRANSITION_KEY)) not in fresh and not r["retracted"]
        }
        retractions: list[Row] = []
        if gone:
            for r in self.store.query(f"SELECT * FROM {table} FINAL {where}", params):  # noqa: S608 - identifiers only
                if tuple(r[k] for k in TRANSITION_KEY) in gone:
                    retractions.append({**r, "retracted": 1, "version": version})
        return self.store.insert("alert_transitions", [*rows, *retractions])
