"""A small `dualtrack demo` through the real broker: its final report agrees with `dualtrack replay` of
the same events at the same time, and it leaves no worker behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.conftest import run_cli
from tests.report_compare import assert_same_report


def test_small_demo_agrees_with_replay(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALTRACK_")}
    out = tmp_path / "demo"
    demo = run_cli(
        ["demo", "--schools", "12", "--seed", "3", "--out", str(out), "--idle", "3"], env, timeout=300
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert len(report["schools"]) == 12
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    assert (out / "report.xlsx").stat().st_size > 0 and (out / "report.pdf").read_bytes().startswith(b"%PDF")
    assert len(list((out / "grafana").glob("*.json"))) == 7
    view = json.loads((out / "live-view.json").read_text())  # what the live view showed at the end
    assert view["produced"] > 0 and view["consumed"] == view["produced"] and view.get("fired", 0) > 0

    store = tmp_path / "replayed"
    replayed = run_cli(["replay", str(out / "events.jsonl"), "--store", str(store), "--format", "json"], env)
    assert replayed.returncode == 0, replayed.stderr
    counts = json.loads(replayed.stdout)
    assert counts["dead_lettered"] == 3 and counts["duplicates"] > 0
    again = run_cli(["report", "--store", str(store), "--as-of", report["as_of"], "--format", "json"], env)
    assert again.returncode == 0, again.stderr
    assert_same_report(json.loads(again.stdout), report)
    workers = subprocess.run(["pgrep", "-f", "dualtrack.cli worker"], capture_output=True, text=True)
    assert workers.stdout.strip() == "", "the demo left its worker running"
