"""The pipeline's health samples and the early-warning rows, as the worker writes them on a timer
(`sinks.health.HealthTables`). `sample_pipeline` is pure; the lag it records is `streams.lag`'s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rules.forecast import Forecast
from rules.rounding import rounded
from rules.state import Province
from sinks.base import Row
from streams.lag import Partition


@dataclass(frozen=True, slots=True)
class Counts:
    """The worker's running totals at one moment (`streams.runtime.Counters`)."""

    at: datetime
    received: int  # lines taken from the intake topic
    kept: int  # events written to the store
    dead_lettered: int


def _rate(now: int, before: int, seconds: float) -> float:
    return max(now - before, 0) / seconds if seconds > 0 else 0.0


def sample_pipeline(
    now: Counts,
    before: Counts | None,
    lag: Mapping[Partition, int],
    last_event: Mapping[str, datetime],
    reported: Mapping[str, datetime] | None = None,
) -> list[Row]:
    """One sample of `pipeline_metrics` at `now.at`: lag per topic and partition, rates since `before`
    (none on the first sample), and each school's last event time, only for schools whose time
    changed since `reported` (the map the previous sample reported) to keep the table small."""
    at = now.at
    rows: list[Row] = [
        {"at": at, "metric": "consumer_lag", "topic": t, "partition": p, "school_id": "", "value": float(n)}
        for (t, p), n in sorted(lag.items())
    ]
    if before is not None:
        seconds = (now.at - before.at).total_seconds()
        for metric, a, b in (
            ("events_in_per_s", now.received, before.received),
            ("events_out_per_s", now.kept, before.kept),
            ("dead_letters_per_s", now.dead_lettered, before.dead_lettered),
        ):
            rows.append({"at": at, "metric": metric, "topic": "", "partition": -1, "school_id": "",
                         "value": _rate(a, b, seconds)})  # fmt: skip
    for sid, t in sorted(last_event.items()):
        if reported is None or reported.get(sid) != t:
            rows.append({"at": at, "metric": "last_event_at", "topic": "", "partition": -1, "school_id": sid,
                         "value": t.timestamp()})  # fmt: skip
    return rows


def _professional(province: Province, school_id: str) -> int:
    c = province.counts.get(school_id)
    return c.professional if c is not None else 0


def forecast_rows(province: Province, found: Iterable[Forecast], at: datetime, version: int) -> list[Row]:
    """A `dual_share_forecasts` row for every registered school: its forecast, or an empty one that
    replaces a warning the school no longer has."""
    by_school = {f.school_id: f for f in found}
    rows = []
    for sid in sorted(province.schools):
        school = province.schools[sid]
        if not school.registered:
            continue
        f = by_school.get(sid)
        rows.append({
            "school_id": sid, "computed_at": at, "level": school.level or "",
            "professional_teachers": f.professional_teachers if f else _professional(province, sid),
            "dual_teachers": f.dual_teachers if f else 0,
            "dual_share": rounded(f.dual_share, 6) if f else None,
            "target": rounded(f.target, 6) if f else None,
            "falls_below_on": f.falls_below_on.isoformat() if f else "",
            "days_left": f.days_left if f else None,
            "dual_teachers_then": f.dual_teachers_then if f else None,
            "certificates": list(f.certificates) if f else [], "warning": int(bool(f and f.warning)),
            "version": version,
        })  # fmt: skip
    return rows
