"""Per-request metrics, gathered over a burst and written once.

Workers record the requests they handle; the supervisor, the ones it
answers itself (refusals under overload, where their cost matters most).

Recording each request through prometheus_client's public API costs ~10 us
in multiprocess mode (measured: seven metrics, eleven values, each a
``labels()`` lookup and a locked write to the mmap'd file) — a tenth of a
small request's whole cost. Two things make it cheap:

* the labelled children and their value cells are looked up once and kept;
* increments are summed in a dict while the worker handles the requests it
  has read in one go (its burst), then each touched cell is written once.

:meth:`Tally.flush` runs before the burst's replies are sent, so a request
whose reply left the worker is always counted; a worker killed mid-burst
has those requests re-sent and counted by the worker that answers them.

The value cells are prometheus_client internals (``_value``, ``_sum``,
``_buckets``, ``_count``, ``_upper_bounds``; for direct writes also a
cell's ``_file`` and ``_key``, the file's ``_positions`` and ``_m``, and
``mmap_dict._pack_two_doubles``): the tests that compare a scrape with the
requests sent fail if a prometheus_client release renames them.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client.mmap_dict import _pack_two_doubles

from . import metrics as m


class _Cell:
    """One value cell and, in multiprocess mode, where its record sits in its mmap'd file.

    The record's offset never changes once the key is in the file (files
    only grow); the mapping itself may be replaced when one grows, so
    ``file._m`` is read at each write.
    """
    __slots__ = ("value", "file", "position")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.file = getattr(value, "_file", None)
        self.position = self.file._positions[value._key] if self.file is not None else -1


class _Histogram:
    __slots__ = ("total", "buckets", "bounds")

    def __init__(self, child: Any) -> None:
        self.total = _Cell(child._sum)
        self.buckets = [_Cell(bucket) for bucket in child._buckets]
        self.bounds = child._upper_bounds


class Tally:
    def __init__(self, direct: bool = False) -> None:
        # direct: write the multiprocess cells without prometheus_client's
        # per-write lock (see flush); only for a single-threaded process.
        self.direct = direct and m.multiprocess()
        self.pending: dict[Any, float] = {}
        self.children: dict[tuple, Any] = {}
        self.kinds: dict[tuple, tuple] = {}  # (action, error type, indicator) labels -> the cells they touch
        self.marked = False  # queued for the supervisor's end-of-pass flush

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self.children.get(key)
        if child is None:
            child = metric.labels(*labels) if labels else metric
            if isinstance(metric, m.Histogram):
                child = _Histogram(child)
            self.children[key] = child
        return child

    def _value(self, metric: Any, *labels: str, part: str = "_value") -> _Cell:
        """The cell of a counter's child, or one part of a summary's (``_count``, ``_sum``)."""
        key = (id(metric), part, *labels)
        cell = self.children.get(key)
        if cell is None:
            cell = self.children[key] = _Cell(getattr(self._child(metric, *labels), part))
        return cell

    def add(self, cell: _Cell, amount: float) -> None:
        pending = self.pending
        pending[cell] = pending.get(cell, 0.0) + amount

    def observe(self, histogram: _Histogram, amount: float) -> None:
        self.add(histogram.total, amount)
        self.add(histogram.buckets[bisect_left(histogram.bounds, amount)], 1.0)

    def request(self, action: str | None, error_type: str | None, indicator: str | None, points: int,
                series: int, compute_seconds: float, received: float, started: float, finished: float) -> None:
        """One handled request: its outcome and its times (time.monotonic())."""
        label = m.closed(action, m.ACTIONS)
        kind = m.closed(error_type, m.ERROR_TYPES) if error_type else None
        name = m.closed(indicator, m.INDICATORS) if indicator and not error_type else None
        # Every cell one kind of request touches, found once per kind (the
        # labels are closed sets, so the cache is bounded): measured 2.4 ->
        # 1.2 us a request, from seven child lookups to one.
        cells = self.kinds.get((label, kind, name))
        if cells is None:
            cells = self.kinds[(label, kind, name)] = self._cells(label, kind, name)
        requests, duration, queued, computed, errors, indicator_time, count, total, batch = cells
        pending = self.pending
        get = pending.get
        pending[requests] = get(requests, 0.0) + 1.0
        for histogram, amount in ((duration, finished - received), (queued, max(started - received, 0.0)),
                                  (computed, finished - started)):
            pending[histogram.total] = get(histogram.total, 0.0) + amount
            bucket = histogram.buckets[bisect_left(histogram.bounds, amount)]
            pending[bucket] = get(bucket, 0.0) + 1.0
        if errors is not None:
            pending[errors] = get(errors, 0.0) + 1.0
        elif indicator_time is not None:
            self.observe(indicator_time, compute_seconds)
            pending[count] = get(count, 0.0) + 1.0
            pending[total] = get(total, 0.0) + float(points)
            if batch is not None:
                self.observe(batch, float(series))

    def _cells(self, label: str, kind: str | None, name: str | None) -> tuple:
        return (self._value(m.REQUESTS, label, "error" if kind else "success"),
                self._child(m.REQUEST_DURATION, label), self._child(m.QUEUE_TIME), self._child(m.COMPUTE_TIME),
                self._value(m.ERRORS, kind) if kind else None,
                self._child(m.INDICATOR_TIME, name) if name else None,
                self._value(m.INDICATOR_POINTS, name, part="_count") if name else None,
                self._value(m.INDICATOR_POINTS, name, part="_sum") if name else None,
                self._child(m.BATCH_SERIES) if name and label == "batch" else None)

    def refusal(self, action: str | None, error_type: str, reason: str, seconds: float) -> None:
        """A request the supervisor answered itself (Busy, TimeoutError, WorkerLost, FrameTooLarge)."""
        label = m.closed(action, m.ACTIONS)
        self.add(self._value(m.REQUESTS, label, "error"), 1.0)
        self.observe(self._child(m.REQUEST_DURATION, label), seconds)
        self.add(self._value(m.ERRORS, m.closed(error_type, m.ERROR_TYPES)), 1.0)
        if reason:
            self.add(self._value(m.REJECTED, m.closed(reason, m.REJECT_REASONS)), 1.0)

    def flush(self) -> None:
        """Write every cell touched since the last flush, once.

        ``inc`` takes a process-wide lock and checks for a fork on every
        cell, about a dozen cells a burst: ~0.7 us each, which for a worker
        reading one or two requests at a time came to several microseconds
        a request. A worker is single-threaded and never forks (its
        speed-up timer writes only its gauge file), so it writes the cell
        and its mmap'd record directly.
        """
        if self.direct:
            # MmapedDict.write_value without its key lookup: the record's
            # offset is kept with the cell (3.3 -> 2.x us for a request and
            # its flush; in a worker, whose caches the request's bodies have
            # just swept, the saving was larger than that).
            pack = _pack_two_doubles
            for cell, amount in self.pending.items():
                value = cell.value
                value._value += amount
                pack(cell.file._m, cell.position, value._value, 0.0)
        else:
            for cell, amount in self.pending.items():
                cell.value.inc(amount)
        self.pending.clear()
