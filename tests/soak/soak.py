"""Crash-recovery soak (not part of `make test`): SIGKILL the worker at random moments, also while the
ClickHouse server and the Kafka broker restart, and check that what the stream leaves in the store is
what a replay of the same events leaves.

    .venv/bin/python -m tests.soak.soak --rounds 20 [--seed 1] [--events FILE]

It starts a private broker and server (free ports, a temporary DUALTRACK_VAR_DIR), so it disturbs no
running service. Each round: a new topic prefix and database; the events are produced with
`produce --raw`; a worker is killed with SIGKILL one to three times at random moments, with the server
or the broker restarted in the middle of some rounds; a last worker drains the input
(`--exit-when-idle`); then the report and the row counts of every table are compared with a replay of
the same file into a database of its own. Prints one line per round and exits 1 on any difference.
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
from pathlib import Path

from dualtrack.settings import Settings
from infra.clickhouse import ClickHouse, local_url
from infra.kafka import Kafka
from sinks.base import open_store
from tests.helpers import ROOT, example
from tests.integration.conftest import free_port
from tests.report_compare import differences

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


def soak_round(n: int, rnd: random.Random, env: dict[str, str], kafka: Kafka, server: ClickHouse,
               events: Path) -> tuple[bool, str]:  # fmt: skip
    prefix = f"soak-{os.getpid()}-{n}"
    db = f"soak_{os.getpid()}_{n}"
    url = local_url(server.settings, "default", db)
    round_env = dict(env, DUALTRACK_TOPIC_PREFIX=prefix, DUALTRACK_CLICKHOUSE_URL=url,
                     DUALTRACK_STREAM_BATCH_SIZE=str(rnd.choice([50, 200, 1000])),
                     DUALTRACK_STREAM_BATCH_SECONDS="0.2")  # fmt: skip
    sent = run(["produce", "--raw", "--as-schools", str(events)], round_env)  # each line as its school
    if sent.returncode != 0:
        return False, f"produce failed: {sent.stdout[-300:]} {sent.stderr[-300:]}"
    kills, restarted = rnd.randint(1, 3), []
    for _ in range(kills):
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
    last = run(["worker", "--exit-when-idle", "5"], round_env, timeout=600)
    if last.returncode != 0:
        return False, f"the last worker failed ({last.returncode}): {last.stderr[-500:]}"
    replay_env = dict(round_env, DUALTRACK_CLICKHOUSE_URL=url + "_replay")
    replayed = run(["replay", str(events)], replay_env)
    if replayed.returncode != 0:
        return False, f"replay failed: {replayed.stderr[-300:]}"
    streamed = json.loads(run(["report", "--as-of", AS_OF, "--format", "json"], round_env).stdout)
    expected = json.loads(run(["report", "--as-of", AS_OF, "--format", "json"], replay_env).stdout)
    diffs = differences(expected, streamed)
    got, want = counts(url), counts(url + "_replay")
    if got != want:
        diffs.append(f"row counts: stream {got}, replay {want}")
    what = f"{kills} kill(s), restarted {','.join(restarted) or 'nothing'}"
    return not diffs, what + ("; " + "; ".join(diffs[:5]) if diffs else f"; same report and rows {got}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--events", type=Path, default=example("province-small.jsonl"))
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="dualtrack-soak-") as tmp:
        settings = Settings(var_dir=Path(tmp), kafka_port=free_port(), kafka_controller_port=free_port(),
                            clickhouse_port=free_port(), clickhouse_http_port=free_port())  # fmt: skip
        kafka, server = Kafka(settings), ClickHouse(settings)
        print(kafka.up(), server.up(), sep="\n", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUALTRACK_")}
        env |= {"DUALTRACK_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.kafka_port}",
                "DUALTRACK_VAR_DIR": tmp, "DUALTRACK_SINK_RETRY_SECONDS": "120"}  # fmt: skip
        failed = 0
        try:
            for n in range(1, args.rounds + 1):
                started = time.monotonic()
                ok, what = soak_round(n, rnd, env, kafka, server, args.events)
                failed += not ok
                print(f"round {n}: {'ok' if ok else 'DIFFERENT'} in {time.monotonic() - started:.0f}s ({what})",
                      flush=True)  # fmt: skip
        finally:
            print(server.down(), kafka.down(), sep="\n")
    print(f"{args.rounds - failed} of {args.rounds} rounds agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
