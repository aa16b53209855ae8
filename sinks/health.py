"""The pipeline's own health: `pipeline_metrics` samples, `dual_share_forecasts`, and the summary
`dualtrack status` prints. Rows are built by the caller (`streams.health`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sinks.base import Row, Store, utc


@dataclass(frozen=True)
class Summary:
    """What `dualtrack status` shows; empty parts mean nothing was sampled yet."""

    sampled_at: datetime | None
    lag: dict[str, int]  # topic -> messages behind (latest sample of each partition, summed)
    rates: dict[str, float]  # events_in_per_s, events_out_per_s, dead_letters_per_s (latest sample)
    silent_schools: list[tuple[str, datetime]]  # (school, last event time), oldest first
    forecasts: list[Row]  # the schools warned, soonest first
    notifications: dict[str, int] = field(default_factory=dict)


class HealthTables:
    def __init__(self, store: Store) -> None:
        self.store = store

    def metrics(self, rows: Iterable[Row]) -> int:
        return self.store.insert("pipeline_metrics", rows)

    def forecasts(self, rows: Iterable[Row]) -> int:
        return self.store.insert("dual_share_forecasts", rows)

    def summary(self, silent_before: datetime, limit: int = 20) -> Summary:
        """The latest samples, schools whose last event is older than `silent_before`, and warnings."""
        m, f = self.store.table("pipeline_metrics"), self.store.table("dual_share_forecasts")
        latest = self.store.query(f"SELECT max(at) AS at, count() AS n FROM {m}")[0]  # noqa: S608 - identifiers only
        sampled_at = utc(latest["at"]) if latest["n"] else None
        lag_rows = self.store.query(
            f"SELECT topic, sum(lag) AS lag FROM (SELECT topic, partition, argMax(value, at) AS lag FROM {m} "  # noqa: S608 - identifiers only
            "WHERE metric = 'consumer_lag' GROUP BY topic, partition) GROUP BY topic ORDER BY topic"
        )
        rate_rows = self.store.query(
            f"SELECT metric, argMax(value, at) AS v FROM {m} WHERE metric IN "  # noqa: S608 - identifiers only
            "('events_in_per_s', 'events_out_per_s', 'dead_letters_per_s') GROUP BY metric"
        )
        silent = self.store.query(
            f"SELECT school_id, max(value) AS last FROM {m} WHERE metric = 'last_event_at' "  # noqa: S608 - identifiers only
            "GROUP BY school_id HAVING last < {before:Int64} ORDER BY last LIMIT {limit:UInt32}",
            {"before": int(silent_before.timestamp()), "limit": int(limit)},
        )
        warned = self.store.query(
            f"SELECT school_id, level, dual_share, target, falls_below_on, days_left, certificates FROM {f} "  # noqa: S608 - identifiers only
            "FINAL WHERE warning = 1 ORDER BY days_left, school_id"
        )
        return Summary(
            sampled_at,
            {r["topic"]: int(r["lag"]) for r in lag_rows},
            {r["metric"]: float(r["v"]) for r in rate_rows},
            [(r["school_id"], datetime.fromtimestamp(r["last"], UTC)) for r in silent],
            warned,
        )
