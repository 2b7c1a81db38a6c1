"""Live pool state for /metrics, read by the supervisor at scrape time.

Queue depth, workers alive and each worker's CPU time and memory are facts
of this instant, not of the workers' metric files: the supervisor owns them,
and a custom collector turns its snapshot into samples when Prometheus
scrapes. CPU and memory come from ``/proc/<pid>/stat`` and ``statm``.

A worker slot's CPU counter must never go backwards when its worker is
replaced, so the snapshot carries the CPU seconds of the slot's dead
workers (the supervisor adds each one's rusage when it reaps it) and the
live worker's own is added on top.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .metrics import PREFIX

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class WorkerSlot:
    slot: int
    pid: int | None  # None while the slot waits for its replacement
    past_cpu_seconds: float = 0.0  # CPU of the slot's earlier, reaped workers
    # The live worker's CPU as the snapshot's taker last read it (it keeps the
    # last good reading when the process has just died): given, the collector
    # uses it instead of reading /proc again, so a worker dying between the two
    # reads cannot make the slot's counter dip.
    live_cpu_seconds: float | None = None


@dataclass(frozen=True)
class PoolSnapshot:
    queue_depth: int
    queue_limit: int
    workers_expected: int
    workers: tuple[WorkerSlot, ...] = field(default_factory=tuple)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces or parentheses: split after its last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def process_rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except OSError:
        return None


class PoolCollector(Collector):
    def __init__(self, snapshot: Callable[[], PoolSnapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        state = self.snapshot()
        alive = [w for w in state.workers if w.pid is not None and process_cpu_seconds(w.pid) is not None]
        yield GaugeMetricFamily(f"{PREFIX}_queue_depth", "Requests waiting for a worker.", value=state.queue_depth)
        yield GaugeMetricFamily(f"{PREFIX}_queue_limit", "Bound of the request queue (Busy beyond it).",
                                value=state.queue_limit)
        yield GaugeMetricFamily(f"{PREFIX}_workers_alive", "Worker processes running.", value=len(alive))
        yield GaugeMetricFamily(f"{PREFIX}_workers_expected", "Worker processes configured.",
                                value=state.workers_expected)
        cpu = CounterMetricFamily(f"{PREFIX}_worker_cpu_seconds", "CPU time used by each worker slot.",
                                  labels=["slot"])
        memory = GaugeMetricFamily(f"{PREFIX}_worker_memory_bytes", "Resident memory of each live worker.",
                                   labels=["slot"])
        for worker in state.workers:
            live = process_cpu_seconds(worker.pid) if worker.pid is not None else None
            counted = worker.live_cpu_seconds if worker.live_cpu_seconds is not None else (live or 0.0)
            cpu.add_metric([str(worker.slot)], worker.past_cpu_seconds + counted)
            rss = process_rss_bytes(worker.pid) if worker.pid is not None and live is not None else None
            if rss is not None:
                memory.add_metric([str(worker.slot)], rss)
        yield cpu
        yield memory
