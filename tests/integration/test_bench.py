"""`make bench` at a tiny size: every benchmark runs to the end with the real broker and server and
writes its figures (the figures themselves are measured by `make bench`, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dualtrack.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_at_a_tiny_size(services: Settings, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--scale", "tiny", "--repeat", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "performance-tiny.json").read_text())["figures"]
    for name in ("replay_chdb_ratio", "replay_server_ratio", "report_as_of_max_s", "report_now_s",
                 "panel_p95_chdb_ms", "panel_p95_server_ms", "stream_events_per_s", "two_workers_speedup",
                 "restart_s", "freshness_p99_s", "replay_peak_rss_mb", "worker_peak_rss_mb"):  # fmt: skip
        assert isinstance(figures.get(name), int | float), name
    page = (tmp_path / "performance.md").read_text()
    assert "| `replay_chdb_ratio` |" in page and "Machine:" in page
