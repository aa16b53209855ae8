"""`make bench`: the figures of docs/performance.md, each beside a ceiling measured in the same run.

    python -m benchmarks.run [--scale tiny|province|large|national] [--repeat 3] [--out DIR]

Every figure is measured on this machine with the real commands, the real broker and the real
ClickHouse server (started when missing, stopped after). Times are medians of `--repeat` runs where a
run is cheap; ratios put each figure beside a ceiling measured in the same run (the bare `json.loads`
rate of the same file, a bare Kafka consumer that only decodes), so a noisy 2-core machine still gives
comparable numbers. Writes `<out>/performance-<scale>.json` and regenerates `<out>/performance.md` from
every JSON there. No timed assertion runs in the test suite; `tests/unit/test_bench.py` runs this at
the tiny scale to show that every benchmark works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "dualtrack.cli"]
#: `large` is one deployment of 11,000 schools (20 provinces' worth: how far one engine goes); `national`
#: is the country as its 31 provinces of 11,000 schools in all
SCALES = {"tiny": 8, "province": 550, "large": 11_000, "national": 11_000}
#: the benchmarks, in the order they run (`--only` picks some); the national scale is the country as
#: its 31 provinces, each replayed as a deployment of its own, and the Ministry's roll-up over them
STEPS = [
    "replay",
    "reports",
    "panels",
    "stream",
    "late",
    "restart",
    "freshness",
    "provinces",
    "gateway",
    "national",
]
#: the steps that need no replay first
NO_REPLAY = {"provinces", "gateway", "national"}
#: a school's HR system flooding the gateway: the same 40,000 events again and again from 20 connections,
#: never waiting for Retry-After, until the stop file appears; prints how many times it got 429
FLOOD = """
import asyncio, os, sys, aiohttp
url, token, path, stop = sys.argv[1:5]
bodies = open(path, "rb").read().split(b"\\0")
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"}
refused = 0
async def post(session, k):
    global refused
    i = 0
    while not os.path.exists(stop):
        async with session.post(url, data=bodies[(20 * i + k) % len(bodies)], headers=headers) as r:
            await r.read()
            refused += r.status == 429
        i += 1
async def main():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(post(session, k) for k in range(20)))
asyncio.run(main())
print(refused)
"""
#: the targets of issue 22 (the stream's speed-up with two workers and the restart from issue 12), for
#: the table; the report's targets are on its compute (`_report_compute`: without starting Python and
#: opening the store, which the walls beside them include)
TARGETS: dict[str, tuple[str, float]] = {
    "replay_chdb_ratio": (">=", 0.15),
    "replay_server_ratio": (">=", 0.15),
    "report_as_of_compute_max_s": ("<=", 0.5),
    "report_now_compute_s": ("<=", 0.2),
    "restart_s": ("<=", 10.0),
    "stream_events_per_s": (">=", 5000.0),
    "worker_events_per_cpu_s": (">=", 10000.0),
    "two_workers_speedup": (">=", 1.6),
    "late_to_in_order_ratio": (">=", 0.7),
    "freshness_p99_s": ("<=", 1.5),
    "panel_p95_chdb_ms": ("<=", 100.0),
    "panel_p95_server_ms": ("<=", 100.0),
    "replay_peak_rss_mb": ("<=", 600.0),
    "report_peak_rss_mb": ("<=", 600.0),
    "worker_peak_rss_mb": ("<=", 600.0),
    "gateway_to_produce_ratio": (">=", 0.5),
    "gateway_flood_p99_ratio": ("<=", 2.0),
}
LARGE_TARGETS = {"replay_chdb_s": ("<=", 240.0), "replay_peak_rss_mb": ("<=", 4096.0),
                 "report_as_of_compute_max_s": ("<=", 3.0), "report_now_compute_s": ("<=", 3.0),
                 "panel_p95_chdb_ms": ("<=", 500.0), "panel_p95_server_ms": ("<=", 500.0),
                 "report_peak_rss_mb": ("<=", 4096.0), "simulate_peak_rss_mb": ("<=", 8192.0)}  # fmt: skip
NATIONAL_TARGETS = {"national_report_s": ("<=", 3.0), "national_report_peak_rss_mb": ("<=", 1024.0),
                    "province_replay_max_peak_rss_mb": ("<=", 4096.0),
                    "simulate_peak_rss_mb": ("<=", 8192.0)}  # fmt: skip


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {"cpu": model, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip


def timed(
    cmd: list[str], env: dict[str, str], timeout: float = 3600
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, peak RSS in MB, the result) of a command, measured with GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        started = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", stats.name, *cmd], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=timeout)  # fmt: skip
        wall = time.perf_counter() - started
        lines = [x for x in Path(stats.name).read_text().split() if x.isdigit()]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:5])} failed: {result.stderr[-800:]}")
    return wall, (int(lines[-1]) / 1024 if lines else 0.0), result


def _cpu_seconds(text: str) -> float:
    """User plus system CPU seconds from GNU time's `%U %S` line (the last such line), 0.0 without one."""
    found = [line.split() for line in text.splitlines() if re.fullmatch(r"[\d.]+ [\d.]+", line.strip())]
    return float(found[-1][0]) + float(found[-1][1]) if found else 0.0


def stop_under_time(p: subprocess.Popen[Any]) -> None:
    """Stop the command GNU time runs (time passes no signal on, and killed itself it reports nothing):
    SIGTERM to its children, then wait for time to report and exit."""
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGTERM)
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)


def median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def loads_rate(path: Path, repeat: int) -> float:
    lines = path.read_bytes().splitlines()

    def once() -> float:
        started = time.perf_counter()
        for line in lines:
            json.loads(line)
        return time.perf_counter() - started

    return len(lines) / median(once, repeat)


class Bench:
    def __init__(self, scale: str, repeat: int, work: Path, only: list[str] | None = None) -> None:
        self.scale, self.repeat, self.work = scale, repeat, work
        every = [s for s in STEPS if s != "national"]
        if scale == "large":  # the stream at this size is not what a deployment of a province does
            every = ["replay", "reports", "panels"]
        elif scale == "national":
            every = ["national"]
        wanted = only or every
        # the replay's store is what the reports, panels and the stream's expected count read
        self.steps = [s for s in every if s in wanted or (s == "replay" and not set(wanted) <= NO_REPLAY)]
        self.figures: dict[str, Any] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DUALTRACK_")}
        self.events = work / "events.jsonl"
        self.lines = 0
        self.prefixes: set[str] = set()

    def note(self, **figures: Any) -> None:
        self.figures.update(figures)
        print(json.dumps(figures), flush=True)

    def server_url(self, name: str) -> str:
        from infra.clickhouse import local_url

        return local_url(self.settings, "default", f"bench_{os.getpid()}_{name}")

    # --- the steps -------------------------------------------------------------------------------------

    def simulate(self) -> None:
        if self.scale == "national":  # one file per province
            wall, rss, _ = timed([*CLI, "simulate", str(self.work / "country"), "--scale", "national",
                                  "--schools", str(SCALES["national"]), "--seed", "5"], self.env)  # fmt: skip
            self.lines = sum(sum(1 for _ in f.open("rb")) for f in (self.work / "country").glob("*.jsonl"))
            self.note(events=self.lines, simulate_s=round(wall, 1), simulate_peak_rss_mb=round(rss))
            return
        wall, rss, _ = timed([*CLI, "simulate", str(self.events), "--schools", str(SCALES[self.scale]),
                              "--seed", "5"], self.env)  # fmt: skip
        self.lines = sum(1 for _ in self.events.open("rb"))
        self.note(events=self.lines, simulate_s=round(wall, 1), simulate_peak_rss_mb=round(rss))
        self.note(json_loads_per_s=round(loads_rate(self.events, self.repeat)))

    def replay(self) -> None:
        store = self.work / "store"
        wall, rss, _ = timed([*CLI, "replay", str(self.events), "--store", str(store)], self.env)
        rate = self.lines / wall
        self.note(replay_chdb_s=round(wall, 2), replay_chdb_per_s=round(rate),
                  replay_chdb_ratio=round(rate / self.figures["json_loads_per_s"], 3),
                  replay_peak_rss_mb=round(rss))  # fmt: skip
        env = dict(self.env, DUALTRACK_CLICKHOUSE_URL=self.server_url("replay"))
        wall, rss, _ = timed([*CLI, "replay", str(self.events)], env)
        rate = self.lines / wall
        self.note(replay_server_s=round(wall, 2), replay_server_per_s=round(rate),
                  replay_server_ratio=round(rate / self.figures["json_loads_per_s"], 3),
                  replay_server_peak_rss_mb=round(rss))  # fmt: skip

    def reports(self) -> None:
        store = str(self.work / "store")
        first, last = self._span()
        rnd = random.Random(5)
        times = [first + (last - first) * rnd.random() for _ in range(5)]
        walls, rss = [], 0.0
        for t in times:
            cmd = [*CLI, "report", "--store", store, "--as-of", t.isoformat(), "--format", "json"]
            wall, peak, _ = timed(cmd, self.env)
            walls.append(wall)
            rss = max(rss, peak)
        compute = self._report_compute(times)
        now_wall, _, _ = timed([*CLI, "report", "--store", store, "--format", "json"], self.env)
        self.note(report_as_of_median_s=round(statistics.median(walls), 2),
                  report_as_of_max_s=round(max(walls), 2),
                  report_as_of_compute_max_s=round(max(compute[:-1]), 2), report_now_s=round(now_wall, 2),
                  report_now_compute_s=round(compute[-1], 2), report_peak_rss_mb=round(rss))  # fmt: skip

    def _span(self) -> tuple[datetime, datetime]:
        times = [
            json.loads(line)["occurred_at"] for line in self.events.open("rb") if b'"occurred_at"' in line
        ]
        parsed = [datetime.fromisoformat(t) for t in times[:: max(1, len(times) // 1000)] if "T" in t]
        return min(parsed), max(parsed)

    def _report_compute(self, times: list[datetime]) -> list[float]:
        """The report's own time in one process (without starting Python and opening the store)."""
        script = (
            "import json,sys,time;from datetime import datetime,UTC;from pathlib import Path;"
            "from sinks.embedded import EmbeddedStore;from rules.limits import load_rules;"
            "from documents.report import report_for_now,report_from_store;r=load_rules();"
            "st=EmbeddedStore(Path(sys.argv[1]));"
            "out=[]\nfor t in [*sys.argv[2:], None]:\n"
            " T=datetime.fromisoformat(t) if t else datetime.now(UTC);s=time.perf_counter();"
            "(report_from_store if t else report_for_now)(st,r,T);out.append(time.perf_counter()-s)\n"
            "print(json.dumps(out))"
        )
        cmd = [sys.executable, "-c", script, str(self.work / "store"), *(t.isoformat() for t in times)]
        _, _, result = timed(cmd, self.env)
        values: list[float] = json.loads(result.stdout.strip().splitlines()[-1])
        return values

    def panels(self) -> None:
        """Every panel's SQL, macros expanded with all schools selected, on chDB and on the server."""
        from clickhouse_driver import Client

        from dashboards.catalog import all_panels
        from dashboards.macros import ALL, expand
        from rules.limits import load_rules
        from sinks.base import parse_url
        from sinks.embedded import EmbeddedStore

        first, last = self._span()
        variables: dict[str, str | list[str]] = {"circle": ALL, "city": ALL, "level": ALL, "school": ALL}
        sqls = [expand(p.sql, variables, first, last, 86_400) for _, p in all_panels(load_rules())]
        with EmbeddedStore(self.work / "store") as st:
            st.execute(f"USE {st.database}")  # Grafana's datasource sets the default database
            self._time_panels("chdb", sqls, st.query)
        u = parse_url(self.server_url("replay"))
        client = Client(host=u["host"], port=u["port"], database=u["database"], user=u["user"],
                        password=u["password"])  # fmt: skip
        try:
            self._time_panels("server", sqls, client.execute)
        finally:
            client.disconnect()

    def _time_panels(self, backend: str, sqls: list[str], run: Callable[[str], Any]) -> None:
        p95 = []
        for sql in sqls:
            runs = []
            for _ in range(max(10, self.repeat)):
                started = time.perf_counter()
                run(sql)
                runs.append((time.perf_counter() - started) * 1000)
            p95.append(sorted(runs)[int(0.95 * (len(runs) - 1))])
        self.note(**{f"panel_p95_{backend}_ms": round(max(p95), 1),
                     f"panel_median_{backend}_ms": round(statistics.median(p95), 1)})  # fmt: skip

    # --- the stream --------------------------------------------------------------------------------------

    def stream(self) -> None:
        expected = self._kept_count()
        bare = self._bare_consumer_rate()
        one = self._stream_rate(workers=1, expected=expected)
        self.note(stream_events_per_s=round(one["rate"]), bare_consumer_per_s=round(bare),
                  stream_to_bare_ratio=round(one["rate"] / bare, 3), worker_peak_rss_mb=round(one["rss"]),
                  worker_cpu_s=round(one["cpu"], 1),
                  worker_events_per_cpu_s=round(expected / one["cpu"]) if one["cpu"] else None)  # fmt: skip
        two = self._stream_rate(workers=2, expected=expected)
        self.note(
            two_workers_events_per_s=round(two["rate"]),
            two_workers_speedup=round(two["rate"] / one["rate"], 2),
        )

    def late(self, share: float = 0.05, days: int = 90) -> None:
        """The stream with `share` of the events arriving late (each up to `days` of event time after its
        turn) against the same events in event order, one worker each: what late events cost."""
        from schemas.validation import Accepted, validate

        rnd = random.Random(5)
        keyed: list[tuple[float, float, bytes]] = []
        last = 0.0
        for line in self.events.read_bytes().splitlines():
            r = validate(line)
            at = r.occurred_at.timestamp() if isinstance(r, Accepted) else last  # a bad line stays in place
            last = at
            delay = rnd.uniform(0, days * 86_400) if rnd.random() < share else 0.0
            keyed.append((at, at + delay, line))
        in_order, late = self.work / "in-order.jsonl", self.work / "late.jsonl"
        in_order.write_bytes(b"\n".join(line for _, _, line in sorted(keyed, key=lambda k: k[0])) + b"\n")
        late.write_bytes(b"\n".join(line for _, _, line in sorted(keyed, key=lambda k: k[1])) + b"\n")
        expected = self._kept_count()
        plain = self._stream_rate(workers=1, expected=expected, path=in_order)
        shuffled = self._stream_rate(workers=1, expected=expected, path=late)
        self.note(in_order_events_per_s=round(plain["rate"]), late_events_per_s=round(shuffled["rate"]),
                  late_to_in_order_ratio=round(shuffled["rate"] / plain["rate"], 3), late_share=share,
                  late_days=days)  # fmt: skip

    def restart(self) -> None:
        self.note(**self._restart(self._kept_count()))

    def freshness(self) -> None:
        self.note(**self._freshness())

    def provinces(self, count: int = 3) -> None:
        """The country in miniature: `count` provinces, each its own deployment (topic prefix, database,
        one worker), on one broker and one server at once; every province ends with exactly its events."""
        from schemas.validation import Accepted, validate

        schools = max(2, SCALES[self.scale] // 5)
        jobs = []
        for i in range(count):
            path = self.work / f"province-{i}.jsonl"
            timed([*CLI, "simulate", str(path), "--schools", str(schools), "--seed", str(100 + i)], self.env)
            ids = {
                r.event_id for r in map(validate, path.read_bytes().splitlines()) if isinstance(r, Accepted)
            }
            env = self._prefix()
            self._produce(env, path)
            jobs.append((env, len(ids)))
        started = time.perf_counter()
        procs = [subprocess.Popen([*CLI, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for env, _ in jobs]  # fmt: skip
        try:
            done = max(
                self._wait_for(env["DUALTRACK_CLICKHOUSE_URL"], n, started, [p])
                for (env, n), p in zip(jobs, procs, strict=True)
            )
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=120)
        total = sum(n for _, n in jobs)
        self.note(provinces=count, provinces_schools_each=schools, provinces_events=total,
                  provinces_events_per_s=round(total / (done - started)))  # fmt: skip

    def gateway(self, schools: int = 100, batches: int = 5, batch: int = 100) -> None:
        """`schools` schools each posting `batches` bodies of `batch` lines through the gateway, all at once
        (events/s until the last answer, and each body's latency), beside `dualtrack produce` of the same
        lines; then the same with one more school flooding the gateway: the others' p99 beside the quiet
        run's."""
        by_school: dict[str, list[bytes]] = {}
        for line in self.events.read_bytes().splitlines():
            school = json.loads(line).get("school_id") if line.startswith(b"{") else None
            if isinstance(school, str):
                by_school.setdefault(school, []).append(line)
        chosen = sorted(by_school, key=lambda s: -len(by_school[s]))[:schools]
        bodies = {s: [by_school[s][i * batch : (i + 1) * batch] for i in range(batches)] for s in chosen}
        bodies = {s: [b for b in bs if b] for s, bs in bodies.items()}
        total = sum(len(b) for bs in bodies.values() for b in bs)
        quiet = self._gateway_run(bodies, flood=False)
        flooded = self._gateway_run(bodies, flood=True)
        same = self.work / "gateway-lines.jsonl"
        same.write_bytes(b"".join(line + b"\n" for bs in bodies.values() for b in bs for line in b))
        wall, _, _ = timed([*CLI, "produce", "--raw", "--as-schools", str(same)], self._prefix())
        self.note(gateway_schools=len(bodies), gateway_events=total,
                  gateway_events_per_s=round(total / quiet["wall"]), produce_events_per_s=round(total / wall),
                  gateway_to_produce_ratio=round(wall / quiet["wall"], 3),
                  gateway_p50_ms=quiet["p50"], gateway_p99_ms=quiet["p99"],
                  gateway_flood_others_p99_ms=flooded["p99"], gateway_flood_refused=flooded["refused"],
                  gateway_flood_p99_ratio=round(flooded["p99"] / quiet["p99"], 2),
                  gateway_cpu_s=round(quiet["gateway_cpu"], 1),
                  gateway_flood_cpu_s=round(flooded["gateway_cpu"], 1),
                  gateway_flooder_cpu_s=round(flooded["flood_cpu"], 1))  # fmt: skip

    def _gateway_run(self, bodies: dict[str, list[list[bytes]]], flood: bool) -> dict[str, float]:
        """One gateway of a deployment of its own; each school posts its bodies one after the other, all
        schools at once (and, with `flood`, one more school posts 1,000-line bodies from 20 connections
        without pause)."""
        import asyncio
        import socket
        import urllib.request
        from datetime import UTC

        import aiohttp

        from dualtrack.schools import open_deployment
        from infra.kafka.acls import ensure_gateway
        from sinks.base import open_store
        from sinks.tokens import SchoolTokens
        from streams.topics import ensure_topics

        env = self._prefix()
        deployment = self._deployment(env)
        flooder = "FLOOD"
        open_deployment(deployment, [*bodies, flooder])
        ensure_topics(deployment)
        ensure_gateway(deployment)
        with open_store(url=env["DUALTRACK_CLICKHOUSE_URL"]) as st:
            st.migrate()
            tokens = {s: str(SchoolTokens(st).issue(s, datetime.now(UTC))) for s in [*bodies, flooder]}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        gw_log = (self.work / f"gateway-{env['DUALTRACK_TOPIC_PREFIX']}.log").open("w")
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%U %S", *CLI, "gateway", "--port", str(port)],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=gw_log)  # fmt: skip
        url = f"http://127.0.0.1:{port}/v1/events"
        try:
            for _ in range(200):
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                    break
                time.sleep(0.3)
            template = [json.loads(line) for line in next(iter(bodies.values()))[0]] * 10

            def flood_body() -> bytes:  # a thousand new events of the flooding school
                fresh = ({**e, "school_id": flooder, "event_id": str(uuid.uuid4())} for e in template)
                return b"\n".join(json.dumps(e).encode() for e in fresh)

            flood_file, stop = self.work / "flood.bin", self.work / "flood.stop"
            flood_file.write_bytes(b"\0".join(flood_body() for _ in range(40)))
            stop.unlink(missing_ok=True)
            latencies: list[float] = []

            async def school(session: aiohttp.ClientSession, sid: str) -> None:
                for body in bodies[sid]:
                    started = time.perf_counter()
                    async with session.post(
                        url,
                        data=b"\n".join(body),
                        headers={
                            "Authorization": f"Bearer {tokens[sid]}",
                            "Content-Type": "application/x-ndjson",
                        },
                    ) as r:
                        answer = await r.json()
                        answered = (
                            answer.get("accepted", 0)
                            + answer.get("duplicates", 0)
                            + answer.get("rejected", 0)
                        )
                        if r.status != 200 or answered != len(body):
                            raise RuntimeError(f"school {sid}: {r.status} {str(answer)[:300]}")
                    latencies.append((time.perf_counter() - started) * 1000)

            async def all_schools() -> float:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                    started = time.perf_counter()
                    await asyncio.gather(*(school(session, s) for s in bodies))
                    return time.perf_counter() - started

            flooding = None
            if flood:  # the flooding school's HR system: a process of its own, as it would be
                flooding = subprocess.Popen(
                    ["/usr/bin/time", "-f", "%U %S", sys.executable, "-c", FLOOD, url, tokens[flooder],
                     str(flood_file), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                time.sleep(2)  # flooding before the schools start
            wall = asyncio.run(all_schools())
            refused, flood_cpu = 0, 0.0
            if flooding is not None:
                stop.touch()
                out, err = flooding.communicate(timeout=120)
                refused, flood_cpu = int(out.strip() or 0), _cpu_seconds(err)
        finally:
            stop_under_time(proc)
            gw_log.close()
        gateway_cpu = _cpu_seconds((self.work / f"gateway-{env['DUALTRACK_TOPIC_PREFIX']}.log").read_text())
        latencies.sort()
        p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
        return {"wall": wall, "p50": round(latencies[len(latencies) // 2], 1), "p99": round(p99, 1),
                "refused": refused, "gateway_cpu": gateway_cpu, "flood_cpu": flood_cpu}  # fmt: skip

    def national(self) -> None:
        """Each province replayed into a database of its own (as its department would run it), then the
        Ministry's roll-up over the 31 (`report --national`), its median time and peak memory."""
        provinces: dict[str, dict[str, Any]] = {}
        entries = ["provinces:"]
        for f in sorted((self.work / "country").glob("*.jsonl")):
            code = f.name[:6]
            url = self.server_url(f"p{code}")
            wall, rss, _ = timed([*CLI, "replay", str(f)], dict(self.env, DUALTRACK_CLICKHOUSE_URL=url))
            events = sum(1 for _ in f.open("rb"))
            provinces[code] = {"events": events, "replay_s": round(wall, 1), "peak_rss_mb": round(rss)}
            print(json.dumps({code: provinces[code]}), flush=True)
            entries.append(f'  "{code}": "{url}"')
        listing = self.work / "provinces.yaml"
        listing.write_text("\n".join(entries) + "\n", encoding="utf-8")
        cmd = [*CLI, "report", "--national", "--provinces", str(listing), "--format", "json"]
        runs = [timed(cmd, self.env) for _ in range(self.repeat)]
        data = json.loads(runs[-1][2].stdout)
        if data["provinces_reporting"] != 31 or data["national"]["schools"] != SCALES["national"]:
            raise RuntimeError(f"the roll-up is not of the country: {data['provinces_missing']}")
        self.note(
            province_replay_total_s=round(sum(p["replay_s"] for p in provinces.values()), 1),
            province_replay_max_s=max(p["replay_s"] for p in provinces.values()),
            province_replay_max_peak_rss_mb=max(p["peak_rss_mb"] for p in provinces.values()),
            national_report_s=round(statistics.median(r[0] for r in runs), 2),
            national_report_peak_rss_mb=round(max(r[1] for r in runs)),
            national_schools=data["national"]["schools"],
            provinces=provinces,
        )

    def _kept_count(self) -> int:
        from sinks.embedded import EmbeddedStore

        with EmbeddedStore(self.work / "store") as st:
            return int(st.query(f"SELECT uniqExact(event_id) AS n FROM {st.table('events')}")[0]["n"])

    def _prefix(self) -> dict[str, str]:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.prefixes.add(prefix)
        return dict(self.env, DUALTRACK_TOPIC_PREFIX=prefix,
                    DUALTRACK_CLICKHOUSE_URL=self.server_url(prefix.replace("-", "_")),
                    DUALTRACK_STREAM_BATCH_SIZE="2000", DUALTRACK_STREAM_BATCH_SECONDS="0.2")  # fmt: skip

    def _produce(self, env: dict[str, str], path: Path) -> None:
        """Each line as its school: a login per school, made now, as the schools' HR systems send."""
        timed([*CLI, "produce", "--raw", "--as-schools", str(path)], env)

    def _deployment(self, env: dict[str, str]) -> Any:
        from foundation.settings import Settings

        return Settings(topic_prefix=env["DUALTRACK_TOPIC_PREFIX"])

    def _bare_consumer_rate(self) -> float:
        """A Kafka consumer that only decodes (json.loads) every record of the intake topic."""
        from kafka import KafkaConsumer, TopicPartition

        from foundation.kafka_auth import kafka_client_options
        from streams.topics import input_topics

        env = self._prefix()
        self._produce(env, self.events)
        deployment = self._deployment(env)
        consumer = KafkaConsumer(**kafka_client_options(deployment), enable_auto_commit=False,
                                 max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024)  # fmt: skip
        parts = [TopicPartition(t, p) for t in input_topics(deployment)
                 for p in sorted(consumer.partitions_for_topic(t) or ())]  # fmt: skip
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        total, n, started = sum(consumer.end_offsets(parts).values()), 0, time.perf_counter()
        while n < total:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    json.loads(r.value)
                n += len(records)
        rate = n / (time.perf_counter() - started)
        consumer.close()
        return rate

    def _stream_rate(self, workers: int, expected: int, path: Path | None = None) -> dict[str, float]:
        env = self._prefix()
        self._produce(env, path or self.events)
        procs, logs, started = [], [], time.perf_counter()
        for i in range(workers):
            # the log goes to a file: a pipe nobody reads until the end fills up and stops the worker
            logs.append(self.work / f"worker-{env['DUALTRACK_TOPIC_PREFIX']}-{i}.log")
            cmd = ["/usr/bin/time", "-f", "%M %U %S", *CLI, "worker"]
            with logs[-1].open("w") as log:
                procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                                              start_new_session=True))  # fmt: skip
        try:
            done_at = self._wait_for(env["DUALTRACK_CLICKHOUSE_URL"], expected, started, procs)
        except RuntimeError as err:
            tails = " | ".join(log.read_text(errors="replace")[-600:] for log in logs)
            raise RuntimeError(f"{err}; the workers' last words: {tails}") from None
        finally:
            rss = cpu = 0.0
            for p, log in zip(procs, logs, strict=True):
                stop_under_time(p)
                lines = log.read_text(errors="replace").splitlines()
                # GNU time's last line: peak RSS in KB, then user and system CPU seconds
                last = [x.split() for x in lines if re.fullmatch(r"\d+ [\d.]+ [\d.]+", x.strip())]
                if last:
                    rss = max(rss, int(last[-1][0]) / 1024)
                    cpu += float(last[-1][1]) + float(last[-1][2])
        return {"rate": expected / (done_at - started), "rss": rss, "cpu": cpu}

    def _wait_for(self, url: str, expected: int, started: float, workers: list[subprocess.Popen[Any]],
                  timeout: float = 3600) -> float:  # fmt: skip
        """When the store holds `expected` events; fails at once when every worker has exited."""
        from sinks.base import open_store

        with open_store(url=url) as st:
            st.migrate()
            while time.perf_counter() - started < timeout:
                n = int(st.query(f"SELECT uniqExact(event_id) AS n FROM {st.table('events')}")[0]["n"])
                if n >= expected:
                    return time.perf_counter()
                if all(w.poll() is not None for w in workers):
                    codes = [w.returncode for w in workers]
                    raise RuntimeError(f"every worker exited ({codes}) with {n} of {expected} events kept")
                time.sleep(0.2)
        raise RuntimeError(f"the stream kept fewer than {expected} events within {timeout}s")

    def _restart(self, expected: int) -> dict[str, Any]:
        """A worker restart with the history in the store and the last ~4% of the events left to do."""
        lines = self.events.read_bytes().splitlines()
        cut = len(lines) - max(1, len(lines) // 26)
        head, tail = self.work / "head.jsonl", self.work / "tail.jsonl"
        head.write_bytes(b"\n".join(lines[:cut]) + b"\n")
        tail.write_bytes(b"\n".join(lines[cut:]) + b"\n")
        env = self._prefix()
        timed([*CLI, "replay", str(head)], env)  # the history, with its checkpoints
        self._produce(env, tail)
        started = time.perf_counter()
        worker = subprocess.Popen([*CLI, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            done = self._wait_for(env["DUALTRACK_CLICKHOUSE_URL"], expected, started, [worker])
        finally:
            worker.terminate()
            worker.wait(timeout=120)
        return {"restart_s": round(done - started, 2), "restart_events_left": len(lines) - cut}

    def _freshness(self, rate: float = 1000.0, seconds: float = 20.0) -> dict[str, Any]:
        """Send at a steady `rate`; each event is fresh when the store holds it (polled every 50 ms).

        The schools' topics and logins are made as for the other steps, but the load comes from one
        producer logged in as the admin, writing each event to its school's topic: 550 kafka-python
        producers in this one process (550 network threads on 2 cores, beside the worker) measured the
        load generator, not the pipeline (p50 4.2 s against 1.25 s, measured with both)."""
        from kafka import KafkaProducer

        from dualtrack.schools import open_deployment
        from foundation.kafka_auth import kafka_admin_options, secured
        from sinks.base import open_store
        from streams.producer import school_key
        from streams.topics import ensure_topics, intake_topic

        env = self._prefix()
        deployment = self._deployment(env)
        lines = self.events.read_bytes().splitlines()[: int(rate * seconds)]
        keys = [school_key(line) for line in lines]
        if secured(deployment):
            open_deployment(deployment, dict.fromkeys(keys))
        ensure_topics(deployment)
        producer = KafkaProducer(**kafka_admin_options(deployment), acks="all", linger_ms=5)
        topics = {k: intake_topic(deployment, k) for k in dict.fromkeys(keys)}
        worker = subprocess.Popen([*CLI, "worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        sent: list[float] = []
        seen: list[tuple[float, int]] = []
        try:
            time.sleep(15)  # the worker joins its group and catches up
            stop = threading.Event()

            def poll() -> None:
                with open_store(url=env["DUALTRACK_CLICKHOUSE_URL"]) as st:
                    st.migrate()
                    while not stop.is_set():
                        n = int(st.query(f"SELECT count() AS n FROM {st.table('events')}")[0]["n"])
                        seen.append((time.perf_counter(), n))
                        time.sleep(0.05)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            start = time.perf_counter()
            for i, line in enumerate(lines):
                ahead = start + i / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
                producer.send(topics[keys[i]], value=line, key=keys[i].encode())
                sent.append(time.perf_counter())
            producer.flush()
            deadline = time.perf_counter() + 60
            while (not seen or seen[-1][1] < len(lines) * 0.99) and time.perf_counter() < deadline:
                time.sleep(0.1)
            stop.set()
            poller.join(timeout=10)
        finally:
            worker.terminate()
            worker.wait(timeout=120)
            producer.close()
        delays, j = [], 0
        for i, at in enumerate(sent):  # the i-th event is visible once the store holds i+1 events
            while j < len(seen) and seen[j][1] < i + 1:
                j += 1
            if j < len(seen):
                delays.append(max(seen[j][0] - at, 0.0))
        delays.sort()
        return {"freshness_rate": rate, "freshness_events": len(sent), "freshness_seen": len(delays),
                "freshness_p50_s": round(delays[len(delays) // 2], 3) if delays else None,
                "freshness_p99_s": round(delays[max(int(len(delays) * 0.99) - 1, 0)], 3)
                if delays else None}  # fmt: skip

    def run(self) -> dict[str, Any]:
        from foundation.settings import Settings
        from infra import all_services, up_all

        self.settings = Settings()
        started = up_all(all_services(self.settings))
        try:
            self.simulate()
            for step in self.steps:
                getattr(self, step)()
        finally:
            self._clean_up()
            for svc in reversed(started):
                svc.down()
        return self.figures

    def _clean_up(self) -> None:
        """Drop the run's databases, delete its topics and its schools' users and ACLs (a running broker
        and server stay clean)."""
        from foundation.kafka_auth import school_of_user, secured
        from infra.kafka.acls import admin_client, delete_principal_acls, delete_user, scram_users
        from sinks.base import open_store

        with contextlib.suppress(Exception), open_store(url=self.server_url("x")) as store:
            for row in store.query("SELECT name FROM system.databases"):
                if row["name"].startswith(f"bench_{os.getpid()}_"):
                    store.execute(f"DROP DATABASE IF EXISTS {row['name']}")
        if not self.prefixes:
            return
        with contextlib.suppress(Exception), admin_client(self.settings) as admin:
            mine = [t for t in admin.list_topics() if t.startswith(tuple(self.prefixes))]
            if mine:
                admin.delete_topics(mine)
            if secured(self.settings):
                for prefix in self.prefixes:
                    deployment = self.settings.model_copy(update={"topic_prefix": prefix})
                    for user in scram_users(admin):
                        if school_of_user(deployment, user):
                            delete_principal_acls(admin, user)
                            delete_user(admin, user)


def markdown(results: dict[str, dict[str, Any]]) -> str:
    out = ["# Performance", "",
           "Generated by `make bench` (`python -m benchmarks.run`); the figures come from the JSON",
           "files beside this page. Each figure is measured with the real commands, broker and ClickHouse",
           "server on the machine described, beside a ceiling measured in the same run.", ""]  # fmt: skip
    for scale, data in results.items():
        figures, m = data["figures"], data["machine"]
        targets = dict(TARGETS)
        if scale in ("large", "national"):
            extra = LARGE_TARGETS if scale == "large" else NATIONAL_TARGETS
            targets = {**{k: v for k, v in TARGETS.items() if k in figures}, **extra}
        out += [f"## {scale.title()} scale ({figures.get('events', '?')} events)", "",
                f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}, Python {m['python']}, {m['date']}.",
                f"Command: `{data['command']}`.",
                *(f"Re-measured: {', '.join(m2['steps'])} with `{m2['command']}` on {m2['machine']['date']}."
                  for m2 in data.get("merged", [])),
                "",
                "| figure | measured | target | met |", "|---|---|---|---|"]  # fmt: skip
        for name, value in figures.items():
            if name in targets:
                op, goal = targets[name]
                met = value is not None and (value >= goal if op == ">=" else value <= goal)
                out.append(f"| `{name}` | {value} | {op} {goal} | {'yes' if met else '**no**'} |")
        out += ["", "Other figures:", ""]
        per_province = isinstance(figures.get("provinces"), dict)  # the national scale's table
        out += [
            f"- `{k}`: {v}"
            for k, v in figures.items()
            if k not in targets and not (per_province and k == "provinces")
        ]
        if per_province:
            out += ["", "Each province replayed as a deployment of its own (`dualtrack replay`):",
                    "", "| province | events | replay s | peak RSS MB |", "|---|---|---|---|"]  # fmt: skip
            out += [f"| {code} | {p['events']} | {p['replay_s']} | {p['peak_rss_mb']} |"
                    for code, p in figures["provinces"].items()]  # fmt: skip
        out.append("")
    notes = ROOT / "benchmarks" / "notes.md"  # what limits the figures that miss their targets
    if notes.exists():
        out += ["", notes.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="province")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--only", help=f"comma-separated steps of {','.join(STEPS)}: print their figures, "
                    "write no file (to look into one figure)")  # fmt: skip
    ap.add_argument("--merge", action="store_true", help="with --only: write the steps' figures into the "
                    "scale's file beside the others (each merged step is listed with its date)")  # fmt: skip
    args = ap.parse_args()
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    if only and set(only) - set(STEPS):
        ap.error(f"--only: unknown steps {sorted(set(only) - set(STEPS))}; the steps are {', '.join(STEPS)}")
    with tempfile.TemporaryDirectory(prefix="dualtrack-bench-") as tmp:
        figures = Bench(args.scale, args.repeat, Path(tmp), only).run()
    if only and not args.merge:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m benchmarks.run", *sys.argv[1:]])
    result = {"machine": machine(), "command": command, "figures": figures}
    if only:  # --merge: the other figures stay as their run measured them
        old = json.loads((args.out / f"performance-{args.scale}.json").read_text())
        simulated = ("events", "simulate_s", "simulate_peak_rss_mb", "json_loads_per_s")
        merged = {k: v for k, v in figures.items() if k not in simulated}
        old["figures"].update(merged)
        old.setdefault("merged", []).append({"steps": only, "command": command, "machine": machine()})
        result = old
    (args.out / f"performance-{args.scale}.json").write_text(json.dumps(result, indent=1) + "\n")
    results = {}
    for scale in ("province", "large", "national", "tiny"):
        f = args.out / f"performance-{scale}.json"
        if f.exists():
            results[scale] = json.loads(f.read_text())
    (args.out / "performance.md").write_text(markdown(results))
    print(f"wrote {args.out / 'performance.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
