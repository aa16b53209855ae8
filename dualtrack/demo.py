"""`dualtrack demo`: a simulated province through real Kafka into the embedded store, watched live.

The worker runs in its own process (it owns the chDB store); this process produces the events, and
shows progress from Kafka itself: consumer lag from the group's committed offsets and alerts as they
are published. At the end it writes the report (HTML and JSON) and stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dualtrack.simulate import Simulator
from foundation.kafka_auth import kafka_client_options, school_of_topic
from foundation.settings import ROOT, Settings
from streams.lag import Offsets
from streams.topics import Groups


@dataclass
class View:
    produced: int = 0
    total: int = 0
    consumed: int = 0
    started: float = field(default_factory=time.monotonic)
    alerts: Counter[str] = field(default_factory=Counter)
    firing: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10))
    #: the Kafka watcher thread writes while the screen thread reads
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, t: dict[str, Any]) -> None:
        key = (t["rule"], t["school_id"], t["subject"])
        with self.lock:
            self.alerts[t["transition"]] += 1
            if t["transition"] == "resolved":
                self.firing.pop(key, None)
            else:
                self.firing[key] = t
            self.recent.appendleft(t)

    def render(self) -> Group:
        with self.lock:
            return self._render()

    def _render(self) -> Group:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        head = Table.grid(padding=(0, 3))
        head.add_row(
            f"produced [b]{self.produced}[/]/{self.total}", f"consumed [b]{self.consumed}[/]",
            f"lag [b]{max(self.produced - self.consumed, 0)}[/]", f"{self.consumed / elapsed:,.0f} events/s",
            "alerts " + "  ".join(f"{k} {self.alerts[k]}" for k in ("fired", "updated", "resolved")),
        )  # fmt: skip
        worst = sorted(
            (a for a in self.firing.values() if a["rule"] == "ratio_shortfall" and a["value"] is not None),
            key=lambda a: -(a["value"] / a["threshold"]),
        )[:8]
        shortfalls = Table(title="Worst ratio shortfalls (firing)", expand=True)
        for col in ("school", "ratio", "limit", "severity", "since"):
            shortfalls.add_column(col)
        for a in worst:
            shortfalls.add_row(
                Text(a["school_id"]),
                f"{a['value']:.2f}",
                f"{a['threshold']:g}",
                Text(a["severity"]),
                Text(a["since"] or ""),
            )
        by_rule = Counter(k[0] for k in self.firing)
        firing = Table(title="Alerts firing by rule", expand=True)
        firing.add_column("rule")
        firing.add_column("firing", justify="right")
        for rule, n in by_rule.most_common():
            firing.add_row(Text(rule), str(n))
        recent = Table(title="Latest transitions", expand=True)
        for col in ("at", "transition", "rule", "school", "subject"):
            recent.add_column(col)
        for t in self.recent:
            colour = {"fired": "red", "resolved": "green"}.get(t["transition"], "yellow")
            recent.add_row(
                Text(t["at"][:19]),
                Text(t["transition"], style=colour),
                Text(t["rule"]),
                Text(t["school_id"]),
                Text(t["subject"]),
            )
        return Group(
            Panel(head, title="dualtrack demo: a simulated province through Kafka"),
            shortfalls,
            firing,
            recent,
        )


def _lag_watch(settings: Settings, group: str, view: View, stop: threading.Event) -> None:
    """Follow the alerts topic and the worker's committed intake offsets until `stop`, then read the
    alerts topic to its end (the worker may publish its last transitions just before it exits)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    options = kafka_client_options(settings)  # the worker's login: it may read what the worker reads
    offsets = Offsets(settings, client_id="dualtrack-demo")
    # assigned, not subscribed: no consumer group to join, so nothing published is missed while joining
    consumer = KafkaConsumer(**options, value_deserializer=json.loads, enable_auto_commit=False)
    alerts = settings.topic("alerts")
    parts = [TopicPartition(alerts, n) for n in sorted(consumer.partitions_for_topic(alerts) or {0})]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    intake = settings.topic("intake")  # the shared intake (PLAINTEXT), or every school's own topic

    def is_intake(topic: str) -> bool:
        return topic == intake or school_of_topic(settings, topic) is not None

    def take(timeout_ms: int) -> None:
        for records in consumer.poll(timeout_ms=timeout_ms, max_records=2000).values():
            for r in records:
                view.take(r.value)

    try:
        while not stop.is_set():
            try:
                take(300)
                committed = offsets.committed(group)
            except KafkaError:  # e.g. the group's coordinator is not ready on a fresh broker: retry
                time.sleep(0.5)
                continue
            view.consumed = sum(n or 0 for (topic, _), n in committed.items() if is_intake(topic))
        ends = consumer.end_offsets(parts)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in parts):
            take(300)
    finally:
        consumer.close()
        offsets.close()


def run_demo(
    schools: int, seed: int, out_dir: Path, keep_running: bool, idle: float, console: Console
) -> int:
    from dualtrack.schools import SchoolSenders
    from infra.kafka import Kafka

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = Settings()
    store = base.var_dir / "demo" / stamp / "store"
    env = dict(os.environ, DUALTRACK_TOPIC_PREFIX=f"demo-{stamp}", DUALTRACK_STORE_PATH=str(store),
               DUALTRACK_STREAM_BATCH_SIZE="2000", DUALTRACK_CLOCK_TICK_SECONDS="30")  # fmt: skip
    env.pop("DUALTRACK_CLICKHOUSE_URL", None)  # the demo uses the embedded store
    settings = base.model_copy(
        update={"topic_prefix": env["DUALTRACK_TOPIC_PREFIX"], "store_path": store, "clickhouse_url": None}
    )

    kafka = Kafka(base)
    message = kafka.up()
    console.print(f"[b]Kafka:[/] {message}")
    started_kafka = " started " in message  # stop only what this demo started
    worker: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        console.print(f"simulating {schools} schools (seed {seed}) ...")
        today = datetime.now(UTC).date()
        events = Simulator(schools, seed, start=date(today.year - 3, today.month, 1), years=3).events()
        # each school sends as itself: its own Kafka user, allowed to write only its own topic
        senders = SchoolSenders(settings, sorted({e["school_id"] for e in events}))
        if senders.configs:
            console.print(f"created {len(senders.configs)} school logins (SASL/SCRAM), one topic each")
        events_file = out_dir / "events.jsonl"
        events_file.write_text(
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8"
        )
        view = View(total=len(events))
        args = [sys.executable, "-m", "dualtrack.cli", "worker"] + (
            [] if keep_running else ["--exit-when-idle", str(idle)]
        )
        # Without --keep-running the demo publishes the last month end, then its schools send events
        # they had held back (dated before it): the final briefing shows what they revised.
        month_end = last_month_end(datetime.now(UTC))
        on_time, late = (events, []) if keep_running else held_back(events, month_end, seed)
        group = Groups.of(settings).intake
        watcher = threading.Thread(target=_lag_watch, args=(settings, group, view, stop), daemon=True)
        watcher.start()
        with Live(view.render(), console=console, refresh_per_second=4) as live, senders:
            for batch in (on_time, late):
                if not batch:
                    continue
                if batch is late:
                    live.console.print(_publish(settings, month_end))
                with open(out_dir / "worker.log", "ab") as log:
                    worker = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                              start_new_session=True)  # fmt: skip
                for e in batch:
                    senders.send_raw(json.dumps(e, ensure_ascii=False).encode(), key=e["school_id"])
                    view.produced += 1
                    if view.produced % 2000 == 0:
                        live.update(view.render())
                while worker.poll() is None:
                    live.update(view.render())
                    time.sleep(0.25)
                live.update(view.render())
                if worker.returncode != 0:
                    break
        stop.set()
        watcher.join(timeout=40)
        _save_view(view, out_dir / "live-view.svg")
        if worker is not None and worker.returncode != 0:
            console.print(f"[red]the worker exited with {worker.returncode}; see {out_dir / 'worker.log'}[/]")
            return 1
        return _finish(settings, out_dir, console)
    except KeyboardInterrupt:
        console.print("interrupted; stopping")
        return 130
    finally:
        stop.set()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        if started_kafka:
            console.print(f"[b]Kafka:[/] {kafka.down()}")


def last_month_end(now: datetime) -> datetime:
    """The end of the month before `now`'s, in China Standard Time."""
    from documents.briefing.history import CST, month_end

    local = now.astimezone(CST)
    y, m = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return month_end(y, m)


#: the share of the events dated within 60 days before the published month end that are held back
LATE_SHARE = 0.2


def held_back(events: list[dict[str, Any]], published: datetime, seed: int) -> tuple[list[Any], list[Any]]:
    """The events sent on time, and those a school sends only after the month end was published: a
    share of the teacher and certificate events dated in the 60 days before it."""
    import random
    from datetime import timedelta

    rnd = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    since = published - timedelta(days=60)
    late = {
        i
        for i, e in enumerate(events)
        if e["event_type"].startswith(("teacher.", "certification."))
        and since < datetime.fromisoformat(e["occurred_at"]) <= published
        and rnd.random() < LATE_SHARE
    }
    return [e for i, e in enumerate(events) if i not in late], [e for i, e in enumerate(events) if i in late]


def _publish(settings: Settings, as_of: datetime) -> str:
    """Publish the report as of `as_of` as the department would (`report --as-of ... --publish`)."""
    from documents.report import publish, report_from_store
    from rules.limits import load_rules
    from sinks import open_store

    rules = load_rules(settings.rules_file)
    with open_store(settings) as st:
        publish(st, rules, report_from_store(st, rules, as_of), as_of, None)
    return f"published the report as of {as_of.isoformat()}; the schools now send what they held back"


def _save_view(view: View, path: Path) -> None:
    """The live view's last frame as SVG (for the README and for a record of the run)."""
    import io

    recorder = Console(record=True, width=130, file=io.StringIO())
    recorder.print(view.render())
    recorder.save_svg(str(path), title="dualtrack demo")
    with view.lock:
        counts = {"produced": view.produced, "consumed": view.consumed, **view.alerts}
    path.with_suffix(".json").write_text(json.dumps(counts) + "\n", encoding="utf-8")


def _finish(settings: Settings, out_dir: Path, console: Console) -> int:
    from documents.briefing import ChromiumNotFound, render_html, render_pdf, render_xlsx
    from documents.briefing.history import briefing_from_store
    from documents.report import to_json, to_table
    from rules.limits import load_rules
    from sinks import open_store
    from sinks.eventlog import EventLog

    rules = load_rules(settings.rules_file)
    store = settings.store_path
    with open_store(settings) as st:
        counts = EventLog(st).counts()
        briefing = briefing_from_store(st, rules, datetime.now(UTC))
    report = dict(briefing.report)
    (out_dir / "report.json").write_text(to_json(report) + "\n", encoding="utf-8")
    page = render_html(briefing)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    render_xlsx(briefing, out_dir / "report.xlsx")
    written = ["report.html", "report.xlsx", "report.json"]
    try:
        render_pdf(page, out_dir / "report.pdf")
        written.insert(2, "report.pdf")
    except ChromiumNotFound as err:  # the PDF needs a browser; everything else is written
        console.print(f"no PDF: {err}")
    from dashboards.catalog import build_all

    build_all(out_dir / "grafana", rules)
    p = report["province"]
    worst = sorted(report["schools"], key=lambda s: -(s["student_teacher_ratio"] or 0))[:15]
    shortfalls = [a for a in report["alerts"] if a["rule"] == "ratio_shortfall"][:15]
    console.print(to_table({**report, "schools": worst, "alerts": shortfalls}))
    console.print(
        f"\n[b]{counts['events']}[/] events kept, [b]{counts['dead_letters']}[/] dead-lettered; "
        f"{p['schools']} schools, {p['studios_active']} active studios (target {p['studios_target']}), "
        f"{p['green_share'] * 100:.1f}% of schools meet every indicator.\n"
        f"the briefing and the report: {', '.join(str(out_dir / w) for w in written)}\n"
        f"Grafana dashboards and alert rules: {out_dir / 'grafana'}\nstore: {store}"
    )
    return 0
