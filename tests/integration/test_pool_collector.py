"""Live pool state read by the supervisor at scrape time, from real processes.

1. Two real worker processes (one burning CPU): the scrape shows queue
   depth and limit as given, both workers alive, each slot's CPU seconds
   (the busy one's above its predecessors' past CPU) and resident memory.
2. A slot whose worker died keeps its CPU counter (never lower than the
   past CPU handed over), loses its memory series, and is not alive.
"""
from __future__ import annotations

import subprocess
import sys
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mojo_pool.pool_collector import PoolCollector, PoolSnapshot, WorkerSlot


def scrape(snapshot: PoolSnapshot) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(PoolCollector(lambda: snapshot))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}


def test_1_2_live_and_dead_workers() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<30: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(1.0)
        snapshot = PoolSnapshot(queue_depth=7, queue_limit=1024, workers_expected=2,
                                workers=(WorkerSlot(0, busy.pid, past_cpu_seconds=5.0), WorkerSlot(1, idle.pid)))
        samples = scrape(snapshot)
        assert samples[("mojo_compute_queue_depth", ())] == 7
        assert samples[("mojo_compute_queue_limit", ())] == 1024
        assert samples[("mojo_compute_workers_alive", ())] == 2
        assert samples[("mojo_compute_workers_expected", ())] == 2
        assert samples[("mojo_compute_worker_cpu_seconds_total", (("slot", "0"),))] > 5.0
        assert samples[("mojo_compute_worker_cpu_seconds_total", (("slot", "1"),))] >= 0.0
        assert samples[("mojo_compute_worker_memory_bytes", (("slot", "0"),))] > 1_000_000
        busy_cpu = samples[("mojo_compute_worker_cpu_seconds_total", (("slot", "0"),))]
    finally:
        busy.kill()
        busy.wait()
    samples = scrape(PoolSnapshot(0, 1024, 2, (WorkerSlot(0, busy.pid, past_cpu_seconds=busy_cpu),
                                              WorkerSlot(1, idle.pid))))
    idle.kill()
    idle.wait()
    assert samples[("mojo_compute_workers_alive", ())] == 1
    assert samples[("mojo_compute_worker_cpu_seconds_total", (("slot", "0"),))] == busy_cpu
    assert ("mojo_compute_worker_memory_bytes", (("slot", "0"),)) not in samples
