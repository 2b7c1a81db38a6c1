"""Per-request metrics, gathered over a burst and written once.

Workers record the requests they handle; the supervisor, the ones it
answers itself (refusals under overload, where their cost matters most).

Recording each request through prometheus_client's public API costs ~10 us
in multiprocess mode (measured: seven metrics, eleven values, each a
``labels()`` lookup and a locked write to the mmap'd file) — a tenth of a
small request's whole cost. Two things make it cheap:

* the labelled children and their value cells are looked up once per kind
  of request (the labels are closed sets) and kept;
* a worker (``direct``) adds to each cell's double in the mmap'd file in
  place, through a float64 view of the mapping, as it records the request;
  the supervisor sums increments in a dict and writes each touched cell
  once, through prometheus_client, when :meth:`Tally.flush` runs at the end
  of its loop pass.

Either way a request is in the files before its reply is sent, so a reply
that left the service is always counted; a worker killed mid-burst has its
unanswered requests re-sent and counted by the worker that answers them.

The value cells are prometheus_client internals (``_value``, ``_sum``,
``_buckets``, ``_upper_bounds``; for direct writes also a cell's ``_file``
and ``_key``, and the file's ``_positions`` and ``_m``): the tests that
compare a scrape with the requests sent fail if a prometheus_client
release renames them.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Any

from . import metrics as m


class _Cell:
    """One value cell; with direct writes, its double in the mmap'd file.

    The multiprocess file format keeps each value 8-byte aligned at a
    position that never changes once the key is in the file, so the cell is
    an index into a float64 view of the mapping. A file that grows gets a
    new, larger mapping, but the old one maps the same pages of the same
    file, so a view taken before the growth still writes where readers look.
    """
    __slots__ = ("value", "view", "index")

    def __init__(self, value: Any, views: dict[int, tuple[Any, memoryview]] | None) -> None:
        self.value = value
        self.view: memoryview | None = None
        self.index = -1
        file = getattr(value, "_file", None)
        if views is not None and file is not None:
            mapping = file._m
            held = views.get(id(mapping))
            if held is None:  # the mapping is kept with its view, so its id stays its own
                held = views[id(mapping)] = (mapping, memoryview(mapping).cast("d"))
            self.view = held[1]
            self.index = file._positions[value._key] // 8


class _Histogram:
    __slots__ = ("total", "buckets", "bounds")

    def __init__(self, child: Any, views: dict[int, tuple[Any, memoryview]] | None) -> None:
        self.total = _Cell(child._sum, views)
        self.buckets = [_Cell(bucket, views) for bucket in child._buckets]
        self.bounds = child._upper_bounds


class Tally:
    def __init__(self, direct: bool = False) -> None:
        # direct: add to the multiprocess cells in place, without
        # prometheus_client's per-write lock, fork check and in-process copy
        # of the value; only for a single-threaded process that is the sole
        # writer of its files (a worker).
        self.direct = direct and m.multiprocess()
        self.views: dict[int, tuple[Any, memoryview]] | None = {} if self.direct else None
        self.pending: dict[_Cell, float] = {}
        self.children: dict[tuple, Any] = {}
        self.kinds: dict[tuple, tuple] = {}  # (action, error type, indicator) labels -> the cells they touch
        self.marked = False  # queued for the supervisor's end-of-pass flush

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self.children.get(key)
        if child is None:
            child = metric.labels(*labels) if labels else metric
            if isinstance(metric, m.Histogram):
                child = _Histogram(child, self.views)
            self.children[key] = child
        return child

    def _value(self, metric: Any, *labels: str, part: str = "_value") -> _Cell:
        """The cell of a counter's child, or one part of a summary's (``_count``, ``_sum``)."""
        key = (id(metric), part, *labels)
        cell = self.children.get(key)
        if cell is None:
            cell = self.children[key] = _Cell(getattr(self._child(metric, *labels), part), self.views)
        return cell

    def add(self, cell: _Cell, amount: float) -> None:
        if self.direct:
            cell.view[cell.index] += amount  # type: ignore[index]
        else:
            pending = self.pending
            pending[cell] = pending.get(cell, 0.0) + amount

    def observe(self, histogram: _Histogram, amount: float) -> None:
        self.add(histogram.total, amount)
        self.add(histogram.buckets[bisect_left(histogram.bounds, amount)], 1.0)

    def request(self, action: str | None, error_type: str | None, indicator: str | None, points: int,
                series: int, compute_seconds: float, received: float, started: float, finished: float) -> None:
        """One handled request: its outcome and its times (time.monotonic())."""
        cells = self.kinds.get((action, error_type, indicator))
        if cells is None:
            cells = self._kind(action, error_type, indicator)
        if not self.direct:
            self._pend(cells, points, series, compute_seconds, received, started, finished)
            return
        # The same additions as _pend, without its calls: this runs for every
        # request a worker handles (~0.9 us with its flush, against 2.7 us for
        # the dict of pending increments; the three histograms written out
        # one by one saved only another 0.05 us).
        requests, duration, queued, computed, errors, indicator_time, count, total, batch = cells
        requests.view[requests.index] += 1.0
        for histogram, amount in ((duration, finished - received),
                                  (queued, started - received if started > received else 0.0),
                                  (computed, finished - started)):
            cell = histogram.total
            cell.view[cell.index] += amount
            cell = histogram.buckets[bisect_left(histogram.bounds, amount)]
            cell.view[cell.index] += 1.0
        if errors is not None:
            errors.view[errors.index] += 1.0
        elif indicator_time is not None:
            cell = indicator_time.total
            cell.view[cell.index] += compute_seconds
            cell = indicator_time.buckets[bisect_left(indicator_time.bounds, compute_seconds)]
            cell.view[cell.index] += 1.0
            count.view[count.index] += 1.0
            total.view[total.index] += float(points)
            if batch is not None:
                self.observe(batch, float(series))

    def _pend(self, cells: tuple, points: int, series: int, compute_seconds: float, received: float,
              started: float, finished: float) -> None:
        requests, duration, queued, computed, errors, indicator_time, count, total, batch = cells
        self.add(requests, 1.0)
        self.observe(duration, finished - received)
        self.observe(queued, max(started - received, 0.0))
        self.observe(computed, finished - started)
        if errors is not None:
            self.add(errors, 1.0)
        elif indicator_time is not None:
            self.observe(indicator_time, compute_seconds)
            self.add(count, 1.0)
            self.add(total, float(points))
            if batch is not None:
                self.observe(batch, float(series))

    def _kind(self, action: str | None, error_type: str | None, indicator: str | None) -> tuple:
        """Every cell one kind of request touches, found once per kind."""
        label = m.closed(action, m.ACTIONS)
        kind = m.closed(error_type, m.ERROR_TYPES) if error_type else None
        name = m.closed(indicator, m.INDICATORS) if indicator and not error_type else None
        # Keyed by the closed labels, so that request() finds a kind at once
        # when its labels are their own closed labels (every successful
        # request) and 10,000 random action names cannot grow the cache.
        cells = self.kinds.get((label, kind, name))
        if cells is None:
            cells = self.kinds[(label, kind, name)] = self._cells(label, kind, name)
        return cells

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
        """Write every cell touched since the last flush, once (direct writes have none pending).

        ``inc`` takes a process-wide lock and checks for a fork on every
        cell: about a dozen cells a request, which is why the supervisor
        sums a pass's increments first.
        """
        for cell, amount in self.pending.items():
            cell.value.inc(amount)
        self.pending.clear()
