"""Metrics benchmark: scrape time as workers restart, and the cost of recording.

1. Scrape time with 8 workers after N simulated restarts, two ways:
   - worker-slot ids (what mojo_pool does): a respawned worker reopens its
     slot's files, so the directory keeps 8 sets of files;
   - stock prometheus_client (pid-named files): every restart leaves one
     more set behind and every scrape re-reads them all.
   A real worker process writes one set of files; restarts are simulated by
   copying that set under new pid names (same bytes as a real worker's).
2. Cost per recorded request: a ``track_request``-decorated no-op call,
   in multiprocess mode (mmap'd files) and in one process.
3. What a worker pays per request: ``Tally.request`` for one SMA request
   and the flush that writes its cells (direct writes, multiprocess), with
   the caches warm and after 512 KB were swept through them (as a
   request's bodies do between two requests).

    python benchmarks/metrics.py [--restarts 1000] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = """
from mojo_pool import prometheus_metrics as pm
@pm.track_request("compute_sma")
def handle():
    pass
@pm.track_indicator_compute("sma")
def compute(prices):
    return prices
for name in ("compute_sma", "compute_ema", "compute_rsi", "ping"):
    pm.track_request(name)(lambda: None)()
for k in range(100):
    handle()
    compute([1.0] * 50)
pm.record_error("ValueError")
"""

COST = """
import time, sys
from mojo_pool import prometheus_metrics as pm
@pm.track_request("compute_sma")
def handle():
    pass
n = 200_000
handle()
t0 = time.perf_counter()
for _ in range(n):
    handle()
print((time.perf_counter() - t0) / n)
"""

TALLY = """
import time, timeit
import numpy as np
from mojo_pool.tally import Tally
tally = Tally(direct=True)
now = time.monotonic()
sweep = np.ones(512 * 1024 // 8)
def warm():
    tally.request("compute_sma", None, "sma", 1000, 1, 2e-6, now - 3e-4, now - 1e-4, now)
    tally.flush()
def cold():
    sweep.sum()
    warm()
def swept():
    sweep.sum()
warm()
best = lambda f, n: min(timeit.repeat(f, number=n, repeat=5)) / n
print(best(warm, 50_000), best(cold, 20_000) - best(swept, 20_000))
"""


def worker_files(directory: Path, slot: str) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "MOJO_POOL_METRICS_ID": slot}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)


def scrape_ms(directory: Path, repeats: int = 15) -> float:
    from prometheus_client import CollectorRegistry, generate_latest

    from mojo_pool.prometheus_metrics import TolerantMultiProcessCollector

    registry = CollectorRegistry()
    registry.register(TolerantMultiProcessCollector(str(directory)))
    generate_latest(registry)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def simulate(restarts: list[int], workers: int = 8) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        template.mkdir()
        worker_files(template, "w0")
        files = sorted(template.glob("*_w0.db"))
        slots, pids = Path(tmp) / "slots", Path(tmp) / "pids"
        slots.mkdir()
        pids.mkdir()
        for slot in range(workers):
            for f in files:
                shutil.copy(f, slots / f.name.replace("_w0.db", f"_w{slot}.db"))
        done = 0
        for target in restarts:
            # Stock naming: the 8 live workers plus one file set per restart.
            while done < workers + target:
                for f in files:
                    shutil.copy(f, pids / f.name.replace("_w0.db", f"_{100000 + done}.db"))
                done += 1
            row = {"restarts": target, "slot_ids_ms": scrape_ms(slots), "pid_files_ms": scrape_ms(pids),
                   "files_slot_ids": len(list(slots.glob("*.db"))), "files_pids": len(list(pids.glob("*.db")))}
            rows.append(row)
            print(f"restarts {target:5d}: slot ids {row['slot_ids_ms']:7.2f} ms ({row['files_slot_ids']} files)"
                  f"   pid files {row['pid_files_ms']:8.2f} ms ({row['files_pids']} files)", flush=True)
    return rows


def record_cost() -> dict[str, float]:
    costs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, extra in (("multiprocess", {"PROMETHEUS_MULTIPROC_DIR": tmp}), ("single_process", {})):
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | extra
            out = subprocess.run([sys.executable, "-c", COST], env=env, check=True, capture_output=True, text=True)
            costs[mode] = float(out.stdout.strip())
            print(f"cost per tracked request, {mode}: {costs[mode] * 1e6:.2f} us", flush=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": tmp}
        out = subprocess.run([sys.executable, "-c", TALLY], env=env, check=True, capture_output=True, text=True)
        costs["tally_warm"], costs["tally_swept"] = map(float, out.stdout.split())
        print(f"worker tally, one SMA request and its flush: {costs['tally_warm'] * 1e6:.2f} us warm, "
              f"{costs['tally_swept'] * 1e6:.2f} us after a cache sweep", flush=True)
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    steps = sorted({0, 10, 100, args.restarts // 2, args.restarts})
    result = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "workers": 8,
              "scrape": simulate(steps), "cost_per_request_seconds": record_cost()}
    last = result["scrape"][-1]
    result["ratio_pid_over_slot_at_max"] = last["pid_files_ms"] / last["slot_ids_ms"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
