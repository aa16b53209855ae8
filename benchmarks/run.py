"""The cost of arrival order for the rules engine, against an in-order fold measured in the same run.

    python -m benchmarks.run [--schools 200] [--repeat 3] [--out out/bench.json]

Workload: a simulated province's kept events. Figures are medians of `--repeat` runs, with ratios
to the baseline (one in-order fold), so that a noisy 2-core machine still gives comparable numbers:
- baseline: fold the events sorted by (occurred_at, event_id), once;
- stream: the engine's incremental path in arrival (emission) order, batches of 2,000, with
  checkpoints (what the worker does);
- stream, no checkpoints: the same with every late batch refolding from the start (the old path);
- validate: parse and validate every event (the intake agent's work), for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dualtrack.simulate import Simulator
from rules.engine import Incremental, fold
from rules.limits import load_rules
from schemas.validation import Accepted, validate


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schools", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("out/bench.json"))
    args = ap.parse_args()
    rules = load_rules()
    lines = [json.dumps(e).encode() for e in Simulator(args.schools, seed=7).events()]
    arrivals: list[Accepted] = []
    seen: set[str] = set()
    for line in lines:
        r = validate(line)
        if isinstance(r, Accepted) and r.event_id not in seen:
            seen.add(r.event_id)
            arrivals.append(r)

    def stream(checkpoint_every: int) -> None:
        inc = Incremental(rules, checkpoint_every=checkpoint_every)
        for i in range(0, len(arrivals), 2000):
            inc.extend(arrivals[i : i + 2000])

    figures = {
        "baseline_in_order_fold": timed(lambda: fold(arrivals, rules), args.repeat),
        "stream_with_checkpoints": timed(lambda: stream(5_000), args.repeat),
        "stream_without_checkpoints": timed(lambda: stream(10**9), args.repeat),
        "validate_all": timed(lambda: [validate(x) for x in lines], args.repeat),
    }
    base = figures["baseline_in_order_fold"]
    result = {
        "machine": machine(),
        "workload": {
            "schools": args.schools,
            "events": len(lines),
            "kept": len(arrivals),
            "repeat": args.repeat,
        },
        "median_seconds": {k: round(v, 3) for k, v in figures.items()},
        "ratio_to_baseline": {k: round(v / base, 2) for k, v in figures.items()},
        "kept_events_per_second": {k: round(len(arrivals) / v) for k, v in figures.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
