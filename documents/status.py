"""`dualtrack status`: the pipeline's health from the store, as the "Pipeline health" dashboard shows it."""

from __future__ import annotations

from datetime import datetime, timedelta

from rules.messages import local_time
from sinks.base import Store
from sinks.eventlog import EventLog
from sinks.health import HealthTables
from sinks.notifications import NotificationLog


def status_text(
    store: Store, now: datetime, silent_days: int, forecast_days: int, known_on: datetime | None = None
) -> str:
    """Consumer lag, rates, silent schools, early warnings and notices, as plain text; with `known_on`,
    also what arrived after it (what moves a report published then)."""
    s = HealthTables(store).summary(now - timedelta(days=silent_days))
    counts = NotificationLog(store).counts()
    when = local_time(s.sampled_at, "en") if s.sampled_at else "never (is the worker running?)"
    lines = [f"Pipeline health, last sampled {when}"]
    lag = ", ".join(f"{topic} {n}" for topic, n in s.lag.items()) or "-"
    lines.append(f"  consumer lag (messages): {lag}")
    r_in, r_out, r_dead = (
        s.rates.get(f"{m}_per_s", 0.0) for m in ("events_in", "events_out", "dead_letters")
    )
    lines.append(f"  events in {r_in:.1f}/s, out {r_out:.1f}/s, dead letters {r_dead:.2f}/s")
    lines.append(f"  schools silent for more than {silent_days} days: {len(s.silent_schools)}")
    lines += [f"    {sid}: last event {local_time(at, 'en')}" for sid, at in s.silent_schools]
    lines.append(f"Schools projected to fall short within {forecast_days} days: {len(s.forecasts)}")
    lines += [
        f"    {f['school_id']} ({f['level']}): dual share {f['dual_share']:.2%} of target {f['target']:.0%}, "
        f"below on {f['falls_below_on']} (in {f['days_left']} days; {len(f['certificates'])} certificates)"
        for f in s.forecasts
    ]
    told = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"
    lines.append(f"Notifications recorded: {told}")
    if known_on is not None:
        after, late = EventLog(store).arrived_after(known_on)
        lines.append(
            f"Since {local_time(known_on, 'en')}: {after} events arrived, {late} of them dated at or "
            "before it (they move a report as of then from what was known then)"
        )
    return "\n".join(lines)
