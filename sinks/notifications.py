"""The `notifications` table (every notice, delivery failure and suppression, once per notice id), and
the reads the alert preview needs (transitions as published, school names and cities)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from foundation.errors import StoreError
from sinks.base import Row, Store, from_micros, micros

#: notice ids are sha256 hex digests (`notice_id`): the only thing interpolated into a lookup
_NOTICE_ID = re.compile(r"^[0-9a-f]{64}$")
#: statuses after which a notice is never sent again
SETTLED = ("delivered", "refused", "failed", "suppressed")
COLUMNS = (
    "notice_id", "kind", "status", "recipient", "channel", "language", "rule", "school_id", "subject",
    "severity", "transition", "transition_ids", "caused_by", "why", "detail", "window_end", "decided_at",
    "recorded_at", "attempts", "title", "body", "version",
)  # fmt: skip
_DEFAULTS: dict[str, Any] = {
    "recipient": "", "channel": "", "language": "", "rule": "", "school_id": "", "subject": "",
    "severity": "", "transition": "", "transition_ids": [], "caused_by": [], "why": "", "detail": "",
    "window_end": None, "attempts": 0, "title": "", "body": "",
}  # fmt: skip


class NotificationLog:
    """Rows of `notifications`: written once a notice is settled, looked up before a notice is sent."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, rows: Iterable[Row]) -> int:
        """Write settled notices and suppressions (missing columns take their defaults)."""
        now, version = datetime.now(UTC), time.time_ns()
        full = [{**_DEFAULTS, "recorded_at": now, "version": version, **r} for r in rows]
        for r in full:
            if r["status"] not in SETTLED or not _NOTICE_ID.match(r["notice_id"]):
                raise StoreError(
                    f"notifications: not a settled notice row: {r['notice_id']!r} {r['status']!r}"
                )
        return self.store.insert("notifications", ({c: r[c] for c in COLUMNS} for r in full))

    def settled(self, notice_ids: Iterable[str]) -> set[str]:
        """Which of these notices were delivered, refused, given up or suppressed already."""
        ids = sorted({i for i in notice_ids if _NOTICE_ID.match(i)})
        table = self.store.table("notifications")
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            rows = self.store.query(
                f"SELECT DISTINCT notice_id FROM {table} "  # noqa: S608 - identifiers only
                "WHERE notice_id IN {ids:Array(String)}",
                {"ids": ids[start : start + 1000]},
            )
            found |= {r["notice_id"] for r in rows}
        return found

    def rows(self, kind: str | None = None) -> list[Row]:
        """Every settled row (the newest of each notice), optionally of one kind, by notice id."""
        table = self.store.table("notifications")
        where, params = ("WHERE kind = {kind:String}", {"kind": kind}) if kind is not None else ("", {})
        return self.store.query(f"SELECT * FROM {table} FINAL {where} ORDER BY notice_id", params)  # noqa: S608 - identifiers only

    def restated(self, known_by: datetime) -> list[Row]:
        """The transitions recorded as history restated by late data, decided by `known_by`: school_id,
        rule, at (the transition's time) and decided_at."""
        table = self.store.table("notifications")
        rows = self.store.query(
            f"SELECT school_id, rule, transition_ids, decided_at FROM {table} FINAL "  # noqa: S608 - identifiers only
            "WHERE kind = 'suppressed' AND why = 'restated' AND decided_at <= toDateTime({by:Int64})",
            {"by": int(known_by.timestamp())},
        )
        out = []
        for r in rows:
            for tid in r["transition_ids"]:
                parts = tid.split("|")
                if len(parts) == 5 and parts[3].isdigit():
                    at = from_micros(int(parts[3]))
                    out.append(
                        {
                            "school_id": r["school_id"],
                            "rule": r["rule"],
                            "at": at,
                            "decided_at": r["decided_at"],
                        }
                    )
        return out

    def counts(self) -> dict[str, int]:
        """Rows by kind and status, e.g. {"notice/delivered": 12}."""
        table = self.store.table("notifications")
        rows = self.store.query(f"SELECT kind, status, count() AS n FROM {table} FINAL GROUP BY kind, status")  # noqa: S608 - identifiers only
        return {f"{r['kind']}/{r['status']}": int(r["n"]) for r in rows}


class NotifierState:
    """The `notifier_state` table: the policy's memory as keyed JSON entries, written a cycle at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> tuple[dict[str, str], int]:
        """The live entries (key -> JSON body) and the newest cycle written (0 for none)."""
        table = self.store.table("notifier_state")
        rows = self.store.query(
            f"SELECT key, argMax(body, cycle) AS live, max(cycle) AS newest FROM {table} GROUP BY key"  # noqa: S608 - identifiers only
        )
        newest = max((int(r["newest"]) for r in rows), default=0)
        return {r["key"]: r["live"] for r in rows if r["live"]}, newest

    def write(self, entries: dict[str, str], cycle: int) -> int:
        """One cycle's entries (an empty body removes its key) in one INSERT: all of them or none."""
        if not entries:
            return 0
        now = datetime.now(UTC)
        keys = sorted(entries)
        columns: dict[str, list[Any]] = {
            "key": keys, "body": [entries[k] for k in keys], "cycle": [cycle] * len(keys),
            "written_at": [now] * len(keys),
        }  # fmt: skip
        return self.store.insert_columns("notifier_state", columns, atomic=True)


def transition_records(store: Store, until: datetime | None = None) -> list[dict[str, Any]]:
    """The alert transitions kept in `alert_transitions` (not retracted, at or before `until`), shaped as
    `streams.records.transition_record` publishes them, in the order they happened."""
    table = store.table("alert_transitions")
    where = "WHERE retracted = 0" + (" AND at_us <= {until:Int64}" if until is not None else "")
    params = {"until": micros(until)} if until is not None else {}
    columns = "rule, school_id, subject, transition, at, at_us, severity, value, threshold, since, reasons"
    order = "ORDER BY at_us, school_id, rule, subject"
    sql = f"SELECT {columns}, caused_by, rule_version FROM {table} FINAL {where} {order}"  # noqa: S608 - identifiers only
    rows = store.query(sql, params)
    return [
        {
            "rule": r["rule"],
            "school_id": r["school_id"],
            "subject": r["subject"],
            "severity": r["severity"],
            "value": r["value"],
            "threshold": r["threshold"],
            "since": r["since"].isoformat() if r["since"] is not None else None,
            "reasons": list(r["reasons"]),
            "transition": r["transition"],
            "at": r["at"].isoformat(),
            "rule_version": r["rule_version"],
            "caused_by": list(r["caused_by"]),
            "id": f"{r['rule']}|{r['school_id']}|{r['subject']}|{r['at_us']}|{r['transition']}",
        }
        for r in rows
    ]


def school_directory(store: Store) -> dict[str, tuple[str, str]]:
    """school_id -> (name, city) from `school_status`."""
    table = store.table("school_status")
    rows = store.query(f"SELECT school_id, name, city FROM {table} FINAL")  # noqa: S608 - identifiers only
    return {r["school_id"]: (r["name"], r["city"]) for r in rows}
