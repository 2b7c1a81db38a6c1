"""Every metric mojo_pool exports, defined once.

The names, types, labels and buckets of the ``mojo_compute_*`` metrics are a
contract: operators' dashboards and alerts were written against the original
mojo-compute service. Label values come from closed sets (the known actions,
indicators and error types, plus ``unknown``), so a client sending random
action names cannot create new series.

prometheus_client picks its storage when it is first imported: with
``PROMETHEUS_MULTIPROC_DIR`` set, every process writes its samples to files
in that directory and a scrape merges them (the supervisor sets and wipes the
directory before any process imports prometheus_client). ``Info`` cannot be
stored that way, so ``INFO`` lives in a registry of its own that only the
process serving ``/metrics`` exposes; every Gauge names how its per-process
values merge.
"""
from __future__ import annotations

import os

from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary, values
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from .indicators.registry import REGISTRY as INDICATOR_REGISTRY

# A worker names its metric files after its slot (MOJO_POOL_METRICS_ID, set
# by the supervisor before the worker imports this module), not its pid: a
# respawned worker reopens its predecessor's files and continues its
# counters, so the directory holds one set of files per slot however often
# workers restart (stock prometheus_client keeps one set per pid ever seen,
# and each scrape re-reads them all). Must happen before any metric exists.
METRICS_ID_ENV = "MOJO_POOL_METRICS_ID"
if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and os.environ.get(METRICS_ID_ENV):
    _metrics_id = os.environ[METRICS_ID_ENV]
    values.ValueClass = values.MultiProcessValue(lambda: _metrics_id)

PREFIX = "mojo_compute"
UNKNOWN = "unknown"

REQUEST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INDICATOR_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

# The original service's names (sma, ema, rsi, macd, bollinger) and every
# registry indicator.
INDICATORS: frozenset[str] = frozenset({"sma", "ema", "rsi", "macd", "bollinger"} | set(INDICATOR_REGISTRY))
ACTIONS: frozenset[str] = frozenset({"ping", "batch", "compute_bollinger"} | {f"compute_{n}" for n in INDICATORS})
ERROR_TYPES: frozenset[str] = frozenset({
    "ValueError", "TypeError", "KeyError", "TimeoutError", "EmptyPrices", "InvalidJSON", "InvalidRequest",
    "UnknownAction", "FrameTooLarge", "Busy", "WorkerLost", "InternalError",
})


def closed(value: object, allowed: frozenset[str]) -> str:
    """``value`` if it belongs to the closed set, else ``unknown``."""
    return value if isinstance(value, str) and value in allowed else UNKNOWN


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


REQUESTS = Counter(f"{PREFIX}_requests", "Requests handled, by action and outcome (success or error).",
                   ["action", "status"])
REQUEST_DURATION = Histogram(f"{PREFIX}_request_duration_seconds", "Time to handle a request, by action.",
                             ["action"], buckets=REQUEST_BUCKETS)
INDICATOR_TIME = Histogram(f"{PREFIX}_indicator_time_seconds", "Time spent computing an indicator.",
                           ["indicator"], buckets=INDICATOR_BUCKETS)
INDICATOR_POINTS = Summary(f"{PREFIX}_indicator_data_points", "Data points processed per calculation.",
                           ["indicator"])
ERRORS = Counter(f"{PREFIX}_errors", "Errors, by type.", ["error_type"])
# Connections are summed over the processes that are alive: a dead
# process's connections are gone with it.
ACTIVE_CONNECTIONS = Gauge(f"{PREFIX}_active_connections", "Client connections open now.",
                           multiprocess_mode="livesum")
# The latest measurement wins, whichever process made it.
SPEEDUP = Gauge(f"{PREFIX}_indicator_speedup",
                "Compiled kernel speed-up over the pure-Python baseline, measured on a fixed sample.",
                ["indicator"], multiprocess_mode="mostrecent")

# What only the process serving /metrics knows, kept out of the multiprocess
# files (Info has no multiprocess storage) and added to the exposition there.
LOCAL_REGISTRY = CollectorRegistry(auto_describe=True)
INFO = Info(PREFIX, "Service version and kernel build.", registry=LOCAL_REGISTRY)


class LocalCounts(Collector):
    """Counters only the scraping process keeps, held as plain numbers.

    A prometheus_client Counter would not do: in multiprocess mode its value
    lives in the process's .db file, so every worker that imports this
    module would write a copy and the merged scrape would show it twice.
    """

    def __init__(self) -> None:
        self.skipped_files = 0

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(f"{PREFIX}_metrics_files_skipped",
                                  "Metric files skipped by a scrape as unreadable.", value=self.skipped_files)


LOCAL_COUNTS = LocalCounts()
LOCAL_REGISTRY.register(LOCAL_COUNTS)

# ---- What a worker pool needs beyond the original service's metrics ----
# Recorded where the fact is known: queueing, rejections and restarts in the
# supervisor, computing and batch sizes in the workers (all multiprocess).
QUEUE_TIME = Histogram(f"{PREFIX}_queue_time_seconds",
                       "Time a request waited in the supervisor before a worker took it.",
                       buckets=REQUEST_BUCKETS)
COMPUTE_TIME = Histogram(f"{PREFIX}_compute_time_seconds",
                         "Time a worker spent on a request (parse, compute, encode).", buckets=REQUEST_BUCKETS)
REJECTED = Counter(f"{PREFIX}_requests_rejected", "Requests refused before computing, by reason.", ["reason"])
REJECT_REASONS: frozenset[str] = frozenset({"busy", "too_large", "timeout", "draining", "connections", "idle"})
WORKER_RESTARTS = Counter(f"{PREFIX}_worker_restarts", "Workers replaced, by reason.", ["reason"])
RESTART_REASONS: frozenset[str] = frozenset({"exited", "killed", "timeout", "reload", "scale"})
BATCH_SERIES = Histogram(f"{PREFIX}_batch_series", "Series carried by one batch request.",
                         buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000))
# Frames of MIN_SHARED bytes and more, by how they crossed between the
# supervisor and a worker: "shared" in a shared-memory ring, "socket"
# through the link because the ring was full (or off). A growing "socket"
# count says the rings are too small for the traffic (see mojo_pool.arena).
LARGE_FRAMES = Counter(f"{PREFIX}_large_frames", "Large request and reply frames, by direction and path.",
                       ["direction", "path"])
