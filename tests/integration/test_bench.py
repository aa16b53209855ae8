"""`make bench` at a tiny size: every benchmark runs to the end with the real broker and server and
writes its figures (the figures themselves are measured by `make bench`, never asserted here)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from foundation.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_at_a_tiny_size(services: Settings, tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", "--scale", "tiny", "--repeat", "1", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _, err = bench.communicate(timeout=600)
    finally:  # never leave its workers behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(bench.pid, signal.SIGKILL)
    assert bench.returncode == 0, err[-3000:]
    figures = json.loads((tmp_path / "performance-tiny.json").read_text())["figures"]
    for name in ("replay_chdb_ratio", "replay_server_ratio", "report_as_of_max_s", "report_now_s",
                 "panel_p95_chdb_ms", "panel_p95_server_ms", "stream_events_per_s", "two_workers_speedup",
                 "restart_s", "freshness_p99_s", "replay_peak_rss_mb", "worker_peak_rss_mb", "provinces_events_per_s",
                 "late_to_in_order_ratio", "gateway_events_per_s", "gateway_to_produce_ratio",
                 "gateway_flood_p99_ratio"):  # fmt: skip
        assert isinstance(figures.get(name), int | float), name
    for name in ("replay_peak_rss_mb", "report_peak_rss_mb", "worker_peak_rss_mb"):
        assert figures[name] > 10, f"{name}: a peak that was not measured must not pass its ceiling"
    page = (tmp_path / "performance.md").read_text()
    assert "| `replay_chdb_ratio` |" in page and "Machine:" in page
