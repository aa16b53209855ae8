"""One school's own view of what it sent and what the department holds (the gateway's `GET /v1/school`).

    SchoolView(store).of("SD0001", origins, since)

Events count by the school they are of (on a secured broker only the school's own topic, or the
gateway on its token, carries them); dead letters by where they came from (`origins`: the school's
topic and the gateway on its behalf), never by the school a line claims, so one school's junk that
names another never shows in the other's view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sinks.base import Row, Store

#: China Standard Time's offset: a school's day is its local day
_CST_SECONDS = 8 * 3600
_EPOCH_DAY = date(1970, 1, 1)
#: the newest dead letters the view lists (the counts per day cover them all)
DEAD_LETTERS_SHOWN = 100
#: a dead letter's bytes, as shown, at most (they are at most 64 KiB; the school holds its own line)
RAW_SHOWN = 2_000
#: school_status columns that are the store's bookkeeping, not an indicator
_BOOKKEEPING = {"version", "retracted"}


def _days(rows: list[Row]) -> dict[str, int]:
    return {(_EPOCH_DAY + timedelta(days=int(r["d"]))).isoformat(): int(r["n"]) for r in rows}


class SchoolView:
    def __init__(self, store: Store) -> None:
        self.store = store

    def of(self, school_id: str, origins: Sequence[str], since: datetime) -> dict[str, Any]:
        """The school's last arrival, kept events and dead letters per local day since `since`, its
        newest dead letters, its indicators as they stand and its open alerts."""
        events, dead = self.store.table("events"), self.store.table("dead_letters")
        status, alerts = self.store.table("school_status"), self.store.table("alert_transitions")
        mine = {"school": school_id}
        theirs = {"origins": list(origins)}
        after = {"since": int(since.timestamp())}
        day = f"intDiv(toUInt32(arrived_at) + {_CST_SECONDS}, 86400)"
        kept = self.store.query(
            f"SELECT {day} AS d, count() AS n FROM {events} FINAL "  # noqa: S608 - identifiers only
            "WHERE school_id = {school:String} AND toUInt32(arrived_at) >= {since:Int64} GROUP BY d",
            mine | after,
        )
        refused = self.store.query(
            f"SELECT {day} AS d, count() AS n FROM {dead} FINAL "  # noqa: S608 - identifiers only
            "WHERE origin IN {origins:Array(String)} AND toUInt32(arrived_at) >= {since:Int64} GROUP BY d",
            theirs | after,
        )
        last = self.store.query(
            f"SELECT max(arrived_at) AS at, count() AS n FROM {events} WHERE school_id = {{school:String}} "  # noqa: S608 - identifiers only
            f"UNION ALL SELECT max(arrived_at) AS at, count() AS n FROM {dead} "
            "WHERE origin IN {origins:Array(String)}",
            mine | theirs,
        )
        arrivals = [r["at"] for r in last if int(r["n"])]
        letters = self.store.query(
            f"SELECT reason, message, event_id, event_type, raw, arrived_at FROM {dead} FINAL "  # noqa: S608 - identifiers only
            "WHERE origin IN {origins:Array(String)} ORDER BY arrived_at DESC, dead_letter_id "
            f"LIMIT {DEAD_LETTERS_SHOWN}",
            theirs,
            binary=("raw",),
        )
        indicators = self.store.query(
            f"SELECT * FROM {status} FINAL WHERE school_id = {{school:String}}",  # noqa: S608 - identifiers only
            mine,
        )
        last_of = ", ".join(
            f"argMax({c}, at_us) AS {c}" for c in ("transition", "severity", "value", "threshold", "since")
        )
        open_alerts = self.store.query(
            f"SELECT rule, subject, {last_of}, max(at) AS changed_at FROM {alerts} FINAL "  # noqa: S608 - identifiers only
            "WHERE school_id = {school:String} AND retracted = 0 "
            "GROUP BY rule, subject ORDER BY rule, subject",
            mine,
        )
        return {
            "last_arrival": max(arrivals) if arrivals else None,
            "kept_per_day": _days(kept),
            "dead_lettered_per_day": _days(refused),
            "dead_letters": [
                {**r, "raw": bytes(r["raw"])[:RAW_SHOWN].decode("utf-8", "replace")} for r in letters
            ],
            "indicators": (
                {k: v for k, v in indicators[0].items() if k not in _BOOKKEEPING} if indicators else None
            ),
            "open_alerts": [r for r in open_alerts if r["transition"] != "resolved"],
        }


def day_range(now: datetime, days: int) -> tuple[datetime, list[str]]:
    """The start of the last `days` local days (today included) and their dates, oldest first."""
    today = (now.astimezone(UTC) + timedelta(seconds=_CST_SECONDS)).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(seconds=_CST_SECONDS)
    return start, [(first + timedelta(days=i)).isoformat() for i in range(days)]
