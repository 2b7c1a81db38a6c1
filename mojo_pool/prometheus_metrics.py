"""The mojo-compute metrics API, on top of :mod:`mojo_pool.metrics`.

The functions the original service's ``prometheus_metrics`` module offered,
with the same behaviour, usable both inside the pool (multiprocess mode) and
as a plain library in one process::

    @track_request("compute_sma")
    async def handle(request): ...

    @track_indicator_compute("sma")
    def compute_sma(prices, period): ...

    with track_time("request_duration", {"action": "ping"}): ...
    with track_connection(): ...
    record_error("EmptyPrices")
    record_indicator_speedup("sma", 512.0)
    set_service_info(version="0.1.0")
    get_metrics()  # Prometheus text exposition, bytes

Every label value passes through a closed set: an unknown action, indicator
or error type is recorded as ``unknown``.
"""
from __future__ import annotations

import functools
import inspect
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, TypeVar

import glob
import logging
import os

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from . import metrics
from .metrics import ACTIONS, ERROR_TYPES, INDICATORS, REJECT_REASONS, RESTART_REASONS, closed

F = TypeVar("F", bound=Callable[..., Any])

# track_time's metric names: the short names the seed used, and the full ones.
_TIMED = {
    "request_duration": (metrics.REQUEST_DURATION, "action", ACTIONS),
    "indicator_time": (metrics.INDICATOR_TIME, "indicator", INDICATORS),
}
_TIMED.update({f"{metrics.PREFIX}_{name}_seconds": entry for name, entry in list(_TIMED.items())})


def _finish_request(action: str, started: float, error: BaseException | None) -> None:
    metrics.REQUEST_DURATION.labels(action=action).observe(time.perf_counter() - started)
    metrics.REQUESTS.labels(action=action, status="error" if error else "success").inc()
    if error is not None:
        record_error(type(error).__name__)


def track_request(action: str) -> Callable[[F], F]:
    """Count the call by outcome, time it, and count its exception's type."""
    label = closed(action, ACTIONS)

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    result = await function(*args, **kwargs)
                except BaseException as exc:
                    _finish_request(label, started, exc)
                    raise
                _finish_request(label, started, None)
                return result
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                _finish_request(label, started, exc)
                raise
            _finish_request(label, started, None)
            return result
        return wrapper  # type: ignore[return-value]
    return decorate


def track_indicator_compute(indicator: str) -> Callable[[F], F]:
    """Time the computation and record how many data points it processed.

    The points are the length of the first argument (the price series), as
    in the original service; an argument without a length records none.
    """
    label = closed(indicator, INDICATORS)

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                metrics.INDICATOR_TIME.labels(indicator=label).observe(time.perf_counter() - started)
                if args and hasattr(args[0], "__len__"):
                    metrics.INDICATOR_POINTS.labels(indicator=label).observe(len(args[0]))
        return wrapper  # type: ignore[return-value]
    return decorate


@contextmanager
def track_time(metric_name: str, labels: Mapping[str, str] | None = None) -> Iterator[None]:
    """Observe the block's duration in the named histogram."""
    try:
        histogram, label_name, allowed = _TIMED[metric_name]
    except KeyError:
        raise ValueError(f"track_time: unknown metric {metric_name!r}; known: {', '.join(sorted(_TIMED))}") from None
    value = closed((labels or {}).get(label_name), allowed)
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(**{label_name: value}).observe(time.perf_counter() - started)


@contextmanager
def track_connection() -> Iterator[None]:
    """Count the block as one open client connection."""
    metrics.ACTIVE_CONNECTIONS.inc()
    try:
        yield
    finally:
        metrics.ACTIVE_CONNECTIONS.dec()


def record_error(error_type: str) -> None:
    metrics.ERRORS.labels(error_type=closed(error_type, ERROR_TYPES)).inc()


def record_rejection(reason: str) -> None:
    """A request refused before computing: busy, too_large, timeout or draining."""
    metrics.REJECTED.labels(reason=closed(reason, REJECT_REASONS)).inc()


def record_worker_restart(reason: str) -> None:
    metrics.WORKER_RESTARTS.labels(reason=closed(reason, RESTART_REASONS)).inc()


def record_indicator_speedup(indicator: str, speedup: float) -> None:
    metrics.SPEEDUP.labels(indicator=closed(indicator, INDICATORS)).set(speedup)


def set_service_info(**info: str) -> None:
    """Set ``mojo_compute_info``'s labels (version, kernel build, ...)."""
    metrics.INFO.info({key: str(value) for key, value in info.items()})


log = logging.getLogger("mojo_pool.metrics")


class TolerantMultiProcessCollector(Collector):
    """prometheus_client's merge of the process files, minus the unreadable ones.

    A worker killed while it creates or grows a file can leave it empty or
    truncated, and stock ``MultiProcessCollector`` then fails the whole
    scrape (prometheus_client issue #1199). The common case costs one merge;
    only when it fails is each file checked alone, and the broken ones are
    skipped, counted in ``mojo_compute_metrics_files_skipped_total`` and
    logged.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self):  # noqa: ANN201 - prometheus_client's Collector interface
        files = glob.glob(os.path.join(self.path, "*.db"))
        try:
            return MultiProcessCollector.merge(files, accumulate=True)
        except Exception:  # noqa: BLE001 - any unreadable file; found and skipped below
            readable = []
            for name in files:
                try:
                    # The reader is lazy: only walking the entries finds a truncation.
                    for _ in MmapedDict.read_all_values_from_file(name):
                        pass
                except FileNotFoundError:
                    continue  # removed since the glob (a live gauge of a dead process)
                except Exception as exc:  # noqa: BLE001
                    metrics.LOCAL_COUNTS.skipped_files += 1
                    log.error("skipping unreadable metrics file %s: %s", name, exc)
                    continue
                readable.append(name)
            return MultiProcessCollector.merge(readable, accumulate=True)


def exposition_registry() -> CollectorRegistry:
    """What /metrics shows: the merged process files in multiprocess mode, else this process."""
    if not metrics.multiprocess():
        return DEFAULT_REGISTRY
    registry = CollectorRegistry()
    registry.register(TolerantMultiProcessCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    return registry


def get_metrics() -> bytes:
    """Prometheus text exposition of every metric, ``mojo_compute_info`` included."""
    return generate_latest(exposition_registry()) + generate_latest(metrics.LOCAL_REGISTRY)
