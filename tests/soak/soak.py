"""Crash-recovery soak (not part of `make test`): SIGKILL the worker at random moments, also while the
ClickHouse server and the Kafka broker restart, with late events mixed in, and check that what the
stream leaves in the store is what a replay of the same events leaves, and that every notice was told
exactly once.

    .venv/bin/python -m tests.soak.soak --rounds 20 [--seed 1] [--events FILE]

It starts a private broker and server (free ports, a temporary DUALTRACK_VAR_DIR) and a local webhook
receiver, so it disturbs no running service. Each round: a new topic prefix and database; the events
are produced with `produce --raw --as-schools`; a worker is killed with SIGKILL one to three times at
random moments, with the server or the broker restarted in the middle of some rounds, and late events
(hires and departures dated in the last months of the file) are produced after the first kill; a
last worker drains the input (`--exit-when-idle`). Then the report and the row counts of every table
are compared with a replay of the same files into a database of its own, and the notices received
with the final store: none received twice, each one justified by a transition the store keeps, and
what they told (per recipient and alert) is exactly what holds at the end. Every severity is told at
once and resolutions are not held (a rules file of the soak's own), so every change is a notice.
Prints one line per round and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from foundation.settings import Settings
from infra.clickhouse import ClickHouse, local_url
from infra.kafka import Kafka
from rules.limits import load_rules
from sinks.base import open_store
from tests.helpers import ROOT, example
from tests.integration.conftest import free_port
from tests.report_compare import differences
from tests.webhooks import Receiver, receiver

CLI = [sys.executable, "-m", "dualtrack.cli"]
AS_OF = "2025-12-31T23:59:59+08:00"
TABLES = ("events", "dead_letters", "school_status", "teacher_state", "studio_state", "school_snapshots")


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def counts(url: str) -> dict[str, int]:
    with open_store(url=url) as st:
        out = {t: int(st.query(f"SELECT count() AS n FROM {st.table(t)} FINAL")[0]["n"]) for t in TABLES}
        # a day's snapshot that a late event took back stays as a retracted row (what panels skip)
        out["school_snapshots"] = int(
            st.query(f"SELECT count() AS n FROM {st.table('school_snapshots')} FINAL WHERE retracted = 0")[0][
                "n"
            ]
        )
        out["alert_transitions"] = int(
            st.query(f"SELECT count() AS n FROM {st.table('alert_transitions')} FINAL WHERE retracted = 0 "
                     "AND rule IN ('ratio_shortfall', 'postgraduate_share_below_target', "
                     "'full_time_teachers_below_minimum')")[0]["n"]
        )  # fmt: skip
        return out


def late_events(rnd: random.Random, path: Path) -> Path:
    """Hires of new full-time teachers dated in the last four months of the example province, and the
    departures of half of them later: arriving after the rest, they restate the history of each school
    and move ratios across their limits."""
    start = datetime.fromisoformat("2025-09-01T09:00:00+08:00")
    lines = []
    for k in range(rnd.randint(20, 60)):
        school = f"SD000{rnd.randint(1, 5)}"
        hired = start + timedelta(minutes=rnd.randint(0, 120 * 24 * 60))
        teacher = f"T-late-{path.stem}-{k}"
        lines.append({"event_id": str(uuid.uuid4()), "event_type": "teacher.hired", "schema_version": 1,
                      "school_id": school, "occurred_at": hired.isoformat(),
                      "payload": {"teacher_id": teacher, "employment": "full_time", "course_type": "professional",
                                  "title": "intermediate", "degree": "bachelor"}})  # fmt: skip
        if rnd.random() < 0.5:
            left = hired + timedelta(minutes=rnd.randint(60, 30 * 24 * 60))
            lines.append({"event_id": str(uuid.uuid4()), "event_type": "teacher.departed", "schema_version": 1,
                          "school_id": school, "occurred_at": left.isoformat(),
                          "payload": {"teacher_id": teacher, "reason": "resigned"}})  # fmt: skip
    rnd.shuffle(lines)
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


def open_now(url: str) -> set[tuple[str, str, str, str]]:
    """(rule, school, subject, severity) of every alert the store holds open at the end: the last kept
    transition of each alert is not a resolution, and the early warnings of the forecast table."""
    with open_store(url=url) as st:
        rows = st.query(
            "SELECT rule, school_id, subject, argMax(transition, at_us) AS last, argMax(severity, at_us) AS sev "
            f"FROM {st.table('alert_transitions')} FINAL WHERE retracted = 0 GROUP BY rule, school_id, subject"
        )
        held = {(r["rule"], r["school_id"], r["subject"], r["sev"]) for r in rows if r["last"] != "resolved"}
        warnings = st.query(
            f"SELECT school_id FROM {st.table('dual_share_forecasts')} FINAL WHERE warning = 1"
        )
    return held | {("dual_share_forecast", r["school_id"], "", "warning") for r in warnings}


def transition_ids(url: str) -> set[str]:
    """Every transition the store ever kept, retracted ones too (history a late event restated)."""
    with open_store(url=url) as st:
        rows = st.query(
            f"SELECT DISTINCT rule, school_id, subject, at_us, transition FROM {st.table('alert_transitions')}"
        )
    return {f"{r['rule']}|{r['school_id']}|{r['subject']}|{r['at_us']}|{r['transition']}" for r in rows}


def check_notices(got: Receiver, url: str) -> list[str]:
    """What the webhook received against the final store (see the module's docstring)."""
    bodies = [b for b in got.bodies() if b["kind"] == "notice"]
    problems = []
    ids = Counter(b["notice_id"] for b in bodies)
    twice = [i for i, c in ids.items() if c > 1]
    if twice:
        problems.append(f"{len(twice)} notice(s) received more than once, e.g. {twice[0][:12]}")
    known = transition_ids(url)
    told: dict[tuple[str, str, str], str] = {}  # alert -> severity told as holding
    for b in sorted(bodies, key=lambda b: (b["notice"]["decided_at"], b["notice"]["at"])):
        n = b["notice"]
        key = (n["rule"], n["school_id"], n["subject"])
        if n["kind"] != "resolved" and n["rule"] != "dual_share_forecast" and n["transition_id"] not in known:
            problems.append(f"a notice the store does not justify: {n['kind']} {n['transition_id']}")
        if n["kind"] == "fired" and key in told:
            problems.append(f"fired twice without a resolution between: {key}")
        if n["kind"] == "resolved" and key not in told:
            problems.append(f"resolved without having fired: {key}")
        if n["kind"] == "resolved":
            told.pop(key, None)
        else:
            told[key] = n["severity"]
    final = {(*k, sev) for k, sev in told.items()}
    holds = open_now(url)
    if final != holds:
        problems.append(f"told {len(final)} open, the store holds {len(holds)}: told not holding "
                        f"{sorted(final - holds)[:2]}, holding not told {sorted(holds - final)[:2]}")  # fmt: skip
    return problems


def soak_round(n: int, rnd: random.Random, env: dict[str, str], kafka: Kafka, server: ClickHouse,
               events: Path, got: Receiver, tmp: Path) -> tuple[bool, str]:  # fmt: skip
    prefix = f"soak-{os.getpid()}-{n}"
    db = f"soak_{os.getpid()}_{n}"
    url = local_url(server.settings, "default", db)
    round_env = dict(env, DUALTRACK_TOPIC_PREFIX=prefix, DUALTRACK_CLICKHOUSE_URL=url,
                     DUALTRACK_STREAM_BATCH_SIZE=str(rnd.choice([50, 200, 1000])),
                     DUALTRACK_STREAM_BATCH_SECONDS="0.2")  # fmt: skip
    got.clear()
    late = late_events(rnd, tmp / f"late-{n}.jsonl")
    sent = run(["produce", "--raw", "--as-schools", str(events)], round_env)  # each line as its school
    if sent.returncode != 0:
        return False, f"produce failed: {sent.stdout[-300:]} {sent.stderr[-300:]}"
    kills, restarted = rnd.randint(1, 3), []
    for k in range(kills):
        worker = subprocess.Popen([*CLI, "worker"], env=round_env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        time.sleep(rnd.uniform(2, 15))
        what = rnd.choice(["nothing", "nothing", "clickhouse", "kafka"])
        if what == "clickhouse":
            server.down()
            time.sleep(rnd.uniform(1, 5))
            server.up()
            restarted.append("clickhouse")
        elif what == "kafka":
            kafka.down()
            time.sleep(rnd.uniform(1, 5))
            kafka.up()
            restarted.append("kafka")
        time.sleep(rnd.uniform(0, 5))
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if k == 0:  # late events arrive after the first kill, into a store that has moved on
            sent = run(["produce", "--raw", "--as-schools", str(late)], round_env)
            if sent.returncode != 0:
                return False, f"produce of the late events failed: {sent.stderr[-300:]}"
    last = run(["worker", "--exit-when-idle", "5"], round_env, timeout=600)
    if last.returncode != 0:
        return False, f"the last worker failed ({last.returncode}): {last.stderr[-500:]}"
    replay_env = dict(round_env, DUALTRACK_CLICKHOUSE_URL=url + "_replay")
    replayed = run(["replay", str(events), str(late)], replay_env)
    if replayed.returncode != 0:
        return False, f"replay failed: {replayed.stderr[-300:]}"
    streamed = json.loads(run(["report", "--as-of", AS_OF, "--format", "json"], round_env).stdout)
    expected = json.loads(run(["report", "--as-of", AS_OF, "--format", "json"], replay_env).stdout)
    diffs = differences(expected, streamed)
    rows, want = counts(url), counts(url + "_replay")
    if rows != want:
        diffs.append(f"row counts: stream {rows}, replay {want}")
    diffs += check_notices(got, url)
    notices = sum(1 for b in got.bodies() if b["kind"] == "notice")
    what = f"{kills} kill(s), restarted {','.join(restarted) or 'nothing'}, {notices} notices once each"
    return not diffs, what + ("; " + "; ".join(diffs[:5]) if diffs else f"; same report and rows {rows}")


def soak_rules(tmp: Path) -> Path:
    """The shipped rules with every severity told at once and no resolution held: each change a notice."""
    text = (ROOT / "rules" / "limits.yaml").read_text(encoding="utf-8")
    text = text.replace("flapping_days: 7", "flapping_days: 0").replace(
        "immediate: [critical]", "immediate: [warning, critical]"
    )
    path = tmp / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_rules(path).notifications.immediate == ("warning", "critical")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--events", type=Path, default=example("province-small.jsonl"))
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="dualtrack-soak-") as tmp, receiver() as got:
        settings = Settings(var_dir=Path(tmp), kafka_port=free_port(), kafka_controller_port=free_port(),
                            clickhouse_port=free_port(), clickhouse_http_port=free_port())  # fmt: skip
        kafka, server = Kafka(settings), ClickHouse(settings)
        print(kafka.up(), server.up(), sep="\n", flush=True)
        recipients = Path(tmp) / "recipients.yaml"
        recipients.write_text(f"province:\n  - id: everyone\n    webhook: {got.url}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUALTRACK_")}
        env |= {"DUALTRACK_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.kafka_port}",
                "DUALTRACK_VAR_DIR": tmp, "DUALTRACK_SINK_RETRY_SECONDS": "120",
                "DUALTRACK_RULES_FILE": str(soak_rules(Path(tmp))), "DUALTRACK_RECIPIENTS_FILE": str(recipients)}  # fmt: skip
        try:
            for n in range(1, args.rounds + 1):
                started = time.monotonic()
                ok, what = soak_round(n, rnd, env, kafka, server, args.events, got, Path(tmp))
                failed += not ok
                print(f"round {n}: {'ok' if ok else 'DIFFERENT'} in {time.monotonic() - started:.0f}s ({what})",
                      flush=True)  # fmt: skip
        finally:
            print(server.down(), kafka.down(), sep="\n")
    print(f"{args.rounds - failed} of {args.rounds} rounds agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
