"""A load generator for mojo_pool and the servers it is compared with.

Why a tool of our own: the comparison needs one client that speaks the
mojo-compute framing (length-prefixed frames, pipelined), the old-style
"one connection per request" pattern, and plain HTTP/1.1 keep-alive for the
uvicorn stack, with the same request bodies and the same latency accounting
for all three. General HTTP tools cannot speak the framing, and a client
built on the project's own ``Client`` would spend more time decoding replies
than the service spends computing them.

How it stays out of the way of what it measures:

* every request body is encoded up front (a small pool of distinct bodies
  per mix entry, cycled in a shuffled order): the hot loop only writes bytes;
* replies are not decoded: a frame is counted when its last byte arrives, and
  its status is read from the first bytes (``"status":"ok"`` in the JSON
  reply or in the binary reply's JSON header; for an error reply the
  ``error_type`` field) without copying the rest;
* each load process runs one uvloop event loop with ``asyncio.Protocol``
  connections (no streams, no task per request on persistent connections);
* latencies go into a flat array and are folded, once a second, into a
  log-bucketed histogram (1 us .. 100 s, 1% wide buckets) with numpy; the
  processes' histograms are added together for the percentiles.

Two ways to drive the load:

* closed loop (default): ``--connections C`` connections, each keeping
  ``--pipeline D`` requests in flight (D=1 for HTTP); a reply is answered by
  the next request at once. Measures the most the server can do at that
  concurrency.
* open loop (``--rate R``): R requests a second in total, split over the
  processes, sent on a fixed timetable (process p sends its k-th request at
  start + (k*P + p)/R). A request that finds every connection slot busy waits
  in a backlog, and its latency is measured from the time it was *scheduled*,
  not sent, so a server that stalls cannot hide the queue it causes
  (coordinated omission). ``latency_from_send`` is also reported. The
  timetable is kept with a timerfd (microseconds), not the event loop's
  millisecond timers, so the client's own lateness stays out of the figures.

The tool reports its own CPU time (each process's user+system over the
measured window, and the total from ``os.times`` of the children) against
the machine's capacity, and flags a load process that kept a core busy: then
the figures are a floor for the server, not its ceiling.

    python benchmarks/load.py unix:/tmp/mojo.sock --connections 16 --duration 3
    python benchmarks/load.py tcp://127.0.0.1:6101 --pipeline 8 --binary --mix sma:1000000
    python benchmarks/load.py http://127.0.0.1:8000/compute --connections 16
    python benchmarks/load.py unix:/tmp/mojo.sock --rate 5000 --json out.json
    python benchmarks/load.py unix:/tmp/ref.sock --per-request-connection --mix sma:1000,rsi:1000:3

Mix entries: ``indicator:points[:weight]`` or
``batch-indicator:SERIESxPOINTS[:weight]``. sma, ema, rsi, macd and
bollinger use the original service's fields (``prices``, ``period``...);
other indicators are sent as ``compute_<name>`` with TA-Lib's input names.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import socket
import struct
import sys
import time
from array import array
from collections import deque
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import reduce
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np
import orjson

LENGTH = struct.Struct(">I")
HEAD = 1024  # bytes of each reply kept for the status check
STATUS_WINDOW = 64  # the status is the reply's first field: look only this far

# Latency histogram: bucket i holds [MIN * RATIO**i, MIN * RATIO**(i+1)).
HIST_MIN = 1e-6
HIST_MAX = 100.0
HIST_RATIO = 1.01
HIST_BUCKETS = int(math.ceil(math.log(HIST_MAX / HIST_MIN) / math.log(HIST_RATIO))) + 1
PERCENTILES = (50.0, 90.0, 99.0, 99.9)

SEED_PARAMS: dict[str, dict[str, object]] = {
    "sma": {"period": 20},
    "ema": {"period": 20},
    "rsi": {"period": 14},
    "macd": {"fast_period": 12, "slow_period": 26, "signal_period": 9},
    "bollinger": {"period": 20, "std_dev": 2.0},
}
ERROR_TYPE = re.compile(rb'"error_type"\s*:\s*"([^"]{0,64})"')
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
OK_MARKS = (b'"status":"ok"', b'"status": "ok"')
POOL_BYTES = 64 << 20  # distinct bodies kept per mix entry, at most this many bytes


# ---------------------------------------------------------------------------
# Options and workload
# ---------------------------------------------------------------------------

@dataclass
class Options:
    """What to run. ``connections`` is the total over all processes."""

    target: str
    connections: int = 16
    pipeline: int = 1
    rate: float | None = None  # open loop: total requests per second
    per_request_connection: bool = False
    binary: bool = False
    mix: str = "sma:1000"
    processes: int = 1
    duration: float = 5.0
    warmup: float = 1.0
    check: str = "status"  # "status": read each reply's status; "none": any reply counts (echo server)
    pool: int = 8  # distinct bodies per mix entry
    seed: int = 1
    progress: bool = True
    json_out: str | None = None


@dataclass(frozen=True)
class Target:
    kind: str  # "unix", "tcp" or "http"
    path: str = ""
    host: str = ""
    port: int = 0
    http_path: str = "/compute"


def parse_target(text: str) -> Target:
    if text.startswith("unix:"):
        return Target("unix", path=text[5:])
    if text.startswith("/"):
        return Target("unix", path=text)
    if text.startswith("tcp://"):
        host, _, port = text[6:].rpartition(":")
        return Target("tcp", host=host.strip("[]") or "127.0.0.1", port=int(port))
    if text.startswith("http://"):
        parts = urlsplit(text)
        return Target("http", host=parts.hostname or "127.0.0.1", port=parts.port or 80,
                      http_path=parts.path or "/compute")
    raise ValueError(f"target must be unix:/path, tcp://host:port or http://host:port/path, got {text!r}")


@dataclass(frozen=True)
class MixEntry:
    name: str  # as written, e.g. "batch-rsi:100x1000"
    indicator: str
    series: int  # 0: a single-series request
    points: int
    weight: Fraction


def parse_mix(text: str) -> list[MixEntry]:
    entries = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"mix entry {raw!r}: expected indicator:points[:weight] "
                             f"or batch-indicator:SERIESxPOINTS[:weight]")
        name, size = parts[0].lower(), parts[1].lower()
        weight = Fraction(parts[2]) if len(parts) == 3 else Fraction(1)
        if weight <= 0:
            raise ValueError(f"mix entry {raw!r}: weight must be positive")
        if name.startswith("batch-"):
            series_text, _, points_text = size.partition("x")
            series, points = int(series_text), int(points_text or 0)
            if series < 1 or points < 1:
                raise ValueError(f"mix entry {raw!r}: batch size must be SERIESxPOINTS, both >= 1")
            entries.append(MixEntry(f"{name}:{size}", name[6:], series, points, weight))
        else:
            points = int(size)
            if points < 1:
                raise ValueError(f"mix entry {raw!r}: points must be >= 1")
            entries.append(MixEntry(f"{name}:{size}", name, 0, points, weight))
    if not entries:
        raise ValueError("empty mix")
    return entries


def _input_fields(indicator: str) -> tuple[str, ...]:
    if indicator in SEED_PARAMS:
        return ("prices",)
    from mojo_pool.protocol import ACTIONS  # only for the generic indicators: it loads the registry

    action = ACTIONS.get(f"compute_{indicator}")
    if action is None:
        raise ValueError(f"unknown indicator {indicator!r}")
    return action.input_fields


def _series(rng: np.random.Generator, points: int, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """A random walk of prices, with bars around it when the indicator wants them."""
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, points)))
    if fields == ("prices",):
        return {"prices": close}
    spread = close * np.abs(rng.normal(0.0, 0.005, points))
    columns = {
        "open": np.concatenate([[close[0]], close[:-1]]),
        "high": close + spread,
        "low": close - spread,
        "close": close,
        "volume": rng.uniform(1e3, 1e5, points).round(),
        "real": close,
    }
    return {name: columns[name] for name in fields}


def build_request(entry: MixEntry, rng: np.random.Generator, number: int) -> dict[str, Any]:
    fields = _input_fields(entry.indicator)
    seed = entry.indicator in SEED_PARAMS
    if entry.series:
        return {
            "action": "batch", "indicator": entry.indicator,
            "params": dict(SEED_PARAMS[entry.indicator]) if seed else {},
            "series": [{"symbol": f"S{number:03d}{k:05d}", **_series(rng, entry.points, fields)}
                       for k in range(entry.series)],
        }
    request: dict[str, Any] = {"action": f"compute_{entry.indicator}", "symbol": f"SYM{number:03d}"}
    request.update(_series(rng, entry.points, fields))
    if seed:
        request.update(SEED_PARAMS[entry.indicator])
    return request


def encode_body(request: dict[str, Any], binary: bool) -> bytes:
    if binary:
        from mojo_pool.client import encode_request

        return encode_request(request, binary=True)
    return orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)


@dataclass
class Item:
    """One pre-encoded request: the bytes to write and what it is worth."""

    wire: bytes
    points: int
    entry: int


def build_workload(options: Options, target: Target) -> tuple[list[MixEntry], list[Item]]:
    """Every body encoded once; the send order is a shuffled cycle weighted by the mix."""
    if target.kind == "http" and options.binary:
        raise ValueError("binary mode is for the framed protocol, not HTTP")
    entries = parse_mix(options.mix)
    rng = np.random.default_rng(options.seed)
    pools: list[list[Item]] = []
    for index, entry in enumerate(entries):
        pool: list[Item] = []
        size = 0
        for number in range(max(1, options.pool)):
            body = encode_body(build_request(entry, rng, number), options.binary)
            if target.kind == "http":
                head = (f"POST {target.http_path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
                wire = head.encode() + body
            else:
                wire = LENGTH.pack(len(body)) + body
            pool.append(Item(wire, entry.points * max(1, entry.series), index))
            size += len(wire)
            if size >= POOL_BYTES:
                break
        pools.append(pool)
    denominator = reduce(math.lcm, (e.weight.denominator for e in entries), 1)
    counts = [int(e.weight * denominator) for e in entries]
    divisor = reduce(math.gcd, counts)
    order: list[Item] = []
    for pool, count in zip(pools, counts):
        order.extend(pool[k % len(pool)] for k in range(len(pool) * count // divisor))
    permutation = rng.permutation(len(order))
    return entries, [order[k] for k in permutation]


# ---------------------------------------------------------------------------
# Reply status
# ---------------------------------------------------------------------------

def reply_error(head: bytes) -> str | None:
    """None for an ok reply, else its error type (read from the reply's first bytes)."""
    window = head[:STATUS_WINDOW]
    if OK_MARKS[0] in window or OK_MARKS[1] in window:
        return None
    match = ERROR_TYPE.search(head)
    if match:
        return match.group(1).decode(errors="replace") or "Error"
    return "BadReply"


def any_reply(head: bytes) -> str | None:
    return None


# ---------------------------------------------------------------------------
# One load process
# ---------------------------------------------------------------------------

class Recorder:
    """Counts and latencies of the replies that arrive inside the measured window."""

    def __init__(self, start: float, end: float, entries: int, open_loop: bool) -> None:
        self.start = start
        self.end = end
        self.ok = 0
        self.points = 0
        self.bytes_out = 0
        self.bytes_in = 0
        self.errors: dict[str, int] = {}
        self.per_entry = [0] * entries
        self.latencies = array("d")
        self.send_latencies = array("d") if open_loop else None
        self.histogram = np.zeros(HIST_BUCKETS, dtype=np.int64)
        self.send_histogram = np.zeros(HIST_BUCKETS, dtype=np.int64) if open_loop else None
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.latency_min = math.inf
        self.total_replies = 0  # all of them, for the progress line
        self.total_errors = 0

    def reply(self, now: float, scheduled: float, sent: float, item: Item, error: str | None) -> None:
        self.total_replies += 1
        if error is not None:
            self.total_errors += 1
        if not self.start <= now < self.end:
            return
        self.latencies.append(now - scheduled)
        if self.send_latencies is not None:
            self.send_latencies.append(now - sent)
        self.bytes_out += len(item.wire)
        if error is None:
            self.ok += 1
            self.points += item.points
            self.per_entry[item.entry] += 1
        else:
            self.errors[error] = self.errors.get(error, 0) + 1

    def failure(self, now: float, error: str) -> None:
        """A request that got no reply (refused or lost connection)."""
        self.total_replies += 1
        self.total_errors += 1
        if self.start <= now < self.end:
            self.errors[error] = self.errors.get(error, 0) + 1

    def flush(self) -> None:
        if self.latencies:
            values = np.frombuffer(self.latencies, dtype=np.float64)
            self.latency_sum += float(values.sum())
            self.latency_max = max(self.latency_max, float(values.max()))
            self.latency_min = min(self.latency_min, float(values.min()))
            self.histogram += bucket_counts(values)
            self.latencies = array("d")
        if self.send_latencies:
            assert self.send_histogram is not None
            self.send_histogram += bucket_counts(np.frombuffer(self.send_latencies, dtype=np.float64))
            self.send_latencies = array("d")


def bucket_counts(values: np.ndarray) -> np.ndarray:
    index = np.floor(np.log(np.maximum(values, HIST_MIN) / HIST_MIN) / math.log(HIST_RATIO))
    return np.bincount(np.minimum(index.astype(np.int64), HIST_BUCKETS - 1), minlength=HIST_BUCKETS)


def percentiles(histogram: np.ndarray) -> dict[str, float | None]:
    """Percentiles in milliseconds from a bucket histogram (bucket's geometric middle)."""
    total = int(histogram.sum())
    out: dict[str, float | None] = {}
    cumulative = np.cumsum(histogram)
    for p in PERCENTILES:
        if total == 0:
            out[f"p{p:g}"] = None
            continue
        rank = max(1, math.ceil(total * p / 100.0))
        index = int(np.searchsorted(cumulative, rank))
        out[f"p{p:g}"] = HIST_MIN * HIST_RATIO ** (index + 0.5) * 1e3
    return out


class Driver:
    """Feeds requests to connections (closed or open loop) and records replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: Target, items: list[Item], recorder: Recorder,
                 check: Callable[[bytes], str | None], stop_at: float, open_loop: bool) -> None:
        self.loop = loop
        self.target = target
        self.items = items
        self.position = 0
        self.recorder = recorder
        self.check = check
        self.stop_at = stop_at
        self.open_loop = open_loop
        self.running = True
        self.backlog: deque[float] = deque()  # scheduled times waiting for a free slot (open loop)
        self.idle: deque[Any] = deque()  # one entry per free slot: a connection (or None: a new one-shot)
        self.connections: list[Any] = []
        self.one_shots_in_flight = 0

    def next_item(self) -> Item:
        item = self.items[self.position]
        self.position += 1
        if self.position == len(self.items):
            self.position = 0
        return item

    # ---- slots -----------------------------------------------------------
    def slot_free(self, connection: Any) -> None:
        """A slot came free: fill it (closed loop), take from the backlog, or park it."""
        if not self.running:
            return
        if not self.open_loop:
            self.dispatch(connection, time.monotonic())
        elif self.backlog:
            self.dispatch(connection, self.backlog.popleft())
        else:
            self.idle.append(connection)

    def scheduled(self, when: float) -> None:
        """Open loop: a request is due at ``when``."""
        if self.idle:
            self.dispatch(self.idle.popleft(), when)
        else:
            self.backlog.append(when)

    def dispatch(self, connection: Any, scheduled: float) -> None:
        if connection is None:
            self.one_shots_in_flight += 1
            self.loop.create_task(self.one_shot(scheduled))
        else:
            connection.send(self.next_item(), scheduled)

    # ---- persistent connections -----------------------------------------
    async def connect(self, depth: int) -> Any:
        factory = (lambda: HttpConnection(self, depth)) if self.target.kind == "http" else (
            lambda: FramedConnection(self, depth))
        if self.target.kind == "unix":
            _, protocol = await self.loop.create_unix_connection(factory, self.target.path)
        else:
            _, protocol = await self.loop.create_connection(factory, self.target.host, self.target.port)
        self.connections.append(protocol)
        return protocol

    def lost(self, connection: "BaseConnection", error: str) -> None:
        now = time.monotonic()
        for _ in connection.pending:
            self.recorder.failure(now, error)
        connection.pending.clear()
        if connection in self.connections:
            self.connections.remove(connection)
        while connection in self.idle:
            self.idle.remove(connection)
        if self.running:
            self.loop.create_task(self.reconnect(connection.depth))

    async def reconnect(self, depth: int) -> None:
        while self.running:
            await asyncio.sleep(0.05)
            try:
                connection = await self.connect(depth)
            except OSError as exc:
                self.recorder.failure(time.monotonic(), type(exc).__name__)
                continue
            for _ in range(depth):
                self.slot_free(connection)
            return

    # ---- one request per connection -------------------------------------
    async def one_shot(self, scheduled: float) -> None:
        item = self.next_item()
        sent = time.monotonic()
        done: asyncio.Future[str | None] = self.loop.create_future()
        factory = (lambda: HttpConnection(self, 1, done)) if self.target.kind == "http" else (
            lambda: FramedConnection(self, 1, done))
        try:
            try:
                if self.target.kind == "unix":
                    transport, protocol = await self.loop.create_unix_connection(factory, self.target.path)
                else:
                    transport, protocol = await self.loop.create_connection(factory, self.target.host,
                                                                            self.target.port)
            except OSError as exc:
                self.recorder.failure(time.monotonic(), type(exc).__name__)
                await asyncio.sleep(0.01)  # a refused connect must not spin
            else:
                protocol.pending.append((scheduled, sent, item))
                transport.write(item.wire)
                error = await done
                transport.close()
                if error != "ConnectionLost":
                    self.recorder.reply(time.monotonic(), scheduled, sent, item, error)
        finally:
            self.one_shots_in_flight -= 1
            self.slot_free(None)


class BaseConnection(asyncio.Protocol):
    """A connection's in-flight requests, oldest first: (scheduled, sent, item)."""

    def __init__(self, driver: Driver, depth: int, one_shot: asyncio.Future[str | None] | None = None) -> None:
        self.driver = driver
        self.depth = depth
        self.one_shot = one_shot
        self.pending: deque[tuple[float, float, Item]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, item: Item, scheduled: float) -> None:
        self.pending.append((scheduled, time.monotonic(), item))
        assert self.transport is not None
        self.transport.write(item.wire)

    def finished(self, head: bytes) -> None:
        """A whole reply arrived; ``head`` is its first bytes."""
        error = self.driver.check(head)
        if self.one_shot is not None:
            if not self.one_shot.done():
                self.one_shot.set_result(error)
            return
        now = time.monotonic()
        scheduled, sent, item = self.pending.popleft()
        self.driver.recorder.reply(now, scheduled, sent, item, error)
        self.driver.slot_free(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.one_shot is not None:
            if not self.one_shot.done():
                self.driver.recorder.failure(time.monotonic(), "ConnectionLost")
                self.one_shot.set_result("ConnectionLost")
            return
        if self.driver.running:
            self.driver.lost(self, "ConnectionLost")


class FramedConnection(BaseConnection):
    """The framing: 4-byte big-endian length, body. Keeps only each reply's first bytes."""

    def __init__(self, driver: Driver, depth: int, one_shot: asyncio.Future[str | None] | None = None) -> None:
        super().__init__(driver, depth, one_shot)
        self.prefix = b""  # a length split across reads
        self.length = -1  # body length of the reply being read, -1 between replies
        self.received = 0
        self.head = b""

    def data_received(self, data: bytes) -> None:
        position, size = 0, len(data)
        while position < size:
            if self.length < 0:
                if not self.prefix and size - position >= 4:
                    length = LENGTH.unpack_from(data, position)[0]
                    position += 4
                else:
                    take = min(4 - len(self.prefix), size - position)
                    self.prefix += data[position:position + take]
                    position += take
                    if len(self.prefix) < 4:
                        return
                    length = LENGTH.unpack(self.prefix)[0]
                    self.prefix = b""
                if size - position >= length:  # the whole body is here
                    self.finished(data[position:position + min(length, HEAD)])
                    position += length
                    continue
                self.length, self.received, self.head = length, 0, b""
            take = min(self.length - self.received, size - position)
            if len(self.head) < HEAD:
                self.head += data[position:position + min(take, HEAD - len(self.head))]
            self.received += take
            position += take
            if self.received == self.length:
                self.length = -1
                self.finished(self.head)
        self.driver.recorder.bytes_in += size


class HttpConnection(BaseConnection):
    """A minimal HTTP/1.1 client: Content-Length bodies only (what uvicorn sends for a Response)."""

    def __init__(self, driver: Driver, depth: int, one_shot: asyncio.Future[str | None] | None = None) -> None:
        super().__init__(driver, depth, one_shot)
        self.buffer = bytearray()
        self.body_length = -1
        self.status = 0

    def data_received(self, data: bytes) -> None:
        self.driver.recorder.bytes_in += len(data)
        buffer = self.buffer
        buffer += data
        while True:
            if self.body_length < 0:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end + 2])
                try:
                    self.status = int(head[9:12])
                except ValueError:
                    self.status = 0
                match = CONTENT_LENGTH.search(head)
                self.body_length = int(match.group(1)) if match else 0
                del buffer[:end + 4]
            if len(buffer) < self.body_length:
                return
            body_head = bytes(buffer[:min(self.body_length, HEAD)])
            del buffer[:self.body_length]
            self.body_length = -1
            if self.status == 200:
                self.finished(body_head)
            else:
                error = self.driver.check(body_head)
                self.finished_error(f"HTTP{self.status}" if error in (None, "BadReply") else error)

    def finished_error(self, error: str) -> None:
        if self.one_shot is not None:
            if not self.one_shot.done():
                self.one_shot.set_result(error)
            return
        scheduled, sent, item = self.pending.popleft()
        self.driver.recorder.reply(time.monotonic(), scheduled, sent, item, error)
        self.driver.slot_free(self)


class PreciseTimer:
    """A one-shot wake-up of the event loop at a ``time.monotonic()`` instant, to the microsecond.

    uvloop's timers count whole milliseconds, which would make an open-loop
    client send up to ~1 ms late and charge that to the server. On Linux a
    timerfd (CLOCK_MONOTONIC, the clock ``time.monotonic`` reads) registered
    with the loop wakes it when due; elsewhere the loop's own timers are used.
    """

    TFD_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
    CLOCK_MONOTONIC = 1
    TFD_TIMER_ABSTIME = 1

    class _Spec(ctypes.Structure):
        _fields_ = [("interval_sec", ctypes.c_long), ("interval_nsec", ctypes.c_long),
                    ("value_sec", ctypes.c_long), ("value_nsec", ctypes.c_long)]

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self.loop = loop
        self.callback = callback
        self.fd = -1
        self.handle: asyncio.TimerHandle | None = None
        if sys.platform.startswith("linux"):
            try:
                self.libc = ctypes.CDLL(None, use_errno=True)
                self.fd = self.libc.timerfd_create(self.CLOCK_MONOTONIC, self.TFD_NONBLOCK_CLOEXEC)
            except (OSError, AttributeError):
                self.fd = -1
        if self.fd >= 0:
            self.spec = self._Spec()
            loop.add_reader(self.fd, self._fired)

    def at(self, when: float) -> None:
        if self.fd < 0:
            self.handle = self.loop.call_at(self.loop.time() + max(0.0, when - time.monotonic()), self.callback)
            return
        seconds = int(when)
        self.spec.value_sec, self.spec.value_nsec = seconds, max(1, int((when - seconds) * 1e9))
        self.libc.timerfd_settime(self.fd, self.TFD_TIMER_ABSTIME, ctypes.byref(self.spec), None)

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return
        self.callback()

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if self.handle is not None:
            self.handle.cancel()


class Ticker:
    """Open loop: request k of this process is due at ``first + k * interval``, whatever the replies do."""

    MIN_GAP = 50e-6  # wake at most every 50 us; requests due meanwhile go out together

    def __init__(self, loop: asyncio.AbstractEventLoop, driver: "Driver", first: float, interval: float,
                 stop_at: float, done: asyncio.Future[None]) -> None:
        self.driver = driver
        self.first = first
        self.interval = interval
        self.stop_at = stop_at
        self.done = done
        self.k = 0
        self.timer = PreciseTimer(loop, self.tick)

    def start(self) -> None:
        self.timer.at(self.first)

    def tick(self) -> None:
        now = time.monotonic()
        due = self.first + self.k * self.interval
        while due <= now and due < self.stop_at:
            self.driver.scheduled(due)
            self.k += 1
            due = self.first + self.k * self.interval
        if due >= self.stop_at:
            self.timer.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.timer.at(max(due, now + self.MIN_GAP))


async def _drive(options: Options, target: Target, items: list[Item], entries: int, index: int, connections: int,
                 rate: float, start_at: float, progress: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    open_loop = rate > 0
    measure_from = start_at + options.warmup
    stop_at = measure_from + options.duration
    recorder = Recorder(measure_from, stop_at, entries, open_loop)
    check = any_reply if options.check == "none" else reply_error
    driver = Driver(loop, target, items, recorder, check, stop_at, open_loop)
    depth = 1 if target.kind == "http" or options.per_request_connection else max(1, options.pipeline)
    setup_errors: dict[str, int] = {}
    if not options.per_request_connection:
        for _ in range(connections):
            try:
                await driver.connect(depth)
            except OSError as exc:
                setup_errors[type(exc).__name__] = setup_errors.get(type(exc).__name__, 0) + 1
    # Each process starts from a different item so the processes do not send in lockstep.
    driver.position = (index * 7919) % len(items)
    cpu: dict[str, float] = {}
    received: dict[str, int] = {}

    def cpu_mark(name: str) -> None:
        """CPU time and bytes received at the window's edges."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu[name] = usage.ru_utime + usage.ru_stime
        received[name] = recorder.bytes_in

    loop.call_at(loop.time() + max(0.0, measure_from - time.monotonic()), cpu_mark, "start")
    loop.call_at(loop.time() + max(0.0, stop_at - time.monotonic()), cpu_mark, "end")
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    slots: list[Any] = []
    if options.per_request_connection:
        slots = [None] * connections
    else:
        for connection in driver.connections:
            slots.extend([connection] * depth)
    if open_loop:
        driver.idle.extend(slots)
    else:
        for slot in slots:
            driver.dispatch(slot, time.monotonic())

    ticking: asyncio.Future[None] | None = None
    if open_loop:
        ticking = loop.create_future()
        Ticker(loop, driver, start_at + index / (rate * options.processes), 1.0 / rate, stop_at, ticking).start()
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(0.25, max(0.0, stop_at - time.monotonic())))
        progress[2 * index] = recorder.total_replies
        progress[2 * index + 1] = recorder.total_errors
        recorder.flush()
    driver.running = False
    if ticking is not None:
        await ticking
    in_flight = sum(len(c.pending) for c in driver.connections) + driver.one_shots_in_flight
    backlog = len(driver.backlog)
    # Let in-flight replies land (they are outside the window) so servers see clean closes.
    grace_until = time.monotonic() + 1.0
    while time.monotonic() < grace_until and (
            any(c.pending for c in driver.connections) or driver.one_shots_in_flight):
        await asyncio.sleep(0.01)
    for connection in driver.connections:
        if connection.transport is not None:
            connection.transport.close()
    await asyncio.sleep(0)
    recorder.flush()
    if "end" not in cpu:
        cpu_mark("end")
    if "start" not in cpu:
        cpu["start"], received["start"] = cpu["end"], received["end"]
    errors = dict(recorder.errors)
    for name, count in setup_errors.items():
        errors[f"connect:{name}"] = errors.get(f"connect:{name}", 0) + count
    return {
        "ok": recorder.ok, "points": recorder.points, "errors": errors, "per_entry": recorder.per_entry,
        "bytes_out": recorder.bytes_out, "bytes_in": received["end"] - received["start"],
        "histogram": recorder.histogram,
        "send_histogram": recorder.send_histogram,
        "latency_sum": recorder.latency_sum, "latency_max": recorder.latency_max,
        "latency_min": recorder.latency_min,
        "cpu_window": cpu["end"] - cpu["start"], "in_flight_at_end": in_flight, "backlog_at_end": backlog,
        "connections": connections,
    }


def _child(options: Options, target: Target, items: list[Item], entries: int, index: int, connections: int,
           rate: float, start_at: float, progress: Any, results: multiprocessing.connection.Connection) -> None:
    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        result = loop.run_until_complete(
            _drive(options, target, items, entries, index, connections, rate, start_at, progress))
    except BaseException as exc:  # report, do not hang the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    finally:
        loop.close()
    results.send(result)
    results.close()


# ---------------------------------------------------------------------------
# The parent: start processes, print progress, merge
# ---------------------------------------------------------------------------

def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            fields = [float(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def run(options: Options) -> dict[str, Any]:
    """Run one load test; returns the results (also written to ``options.json_out``)."""
    target = parse_target(options.target)
    if options.processes < 1 or options.connections < 1 or options.duration <= 0:
        raise ValueError("processes, connections and duration must be positive")
    entries, items = build_workload(options, target)
    processes = options.processes
    connections = max(options.connections, processes)
    per_process = [connections // processes + (1 if k < connections % processes else 0) for k in range(processes)]
    rate = (options.rate or 0.0) / processes
    context = multiprocessing.get_context("fork")  # the children inherit the encoded bodies
    progress = context.RawArray("q", 2 * processes)
    start_at = time.monotonic() + 0.2 + 0.002 * connections
    before = os.times()
    children = []
    for index in range(processes):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(options, target, items, len(entries), index, per_process[index],
                                                     rate, start_at, progress, sender), daemon=True)
        child.start()
        sender.close()
        children.append((child, receiver))
    measure_from = start_at + options.warmup
    stop_at = measure_from + options.duration
    machine: dict[str, tuple[float, float] | None] = {}
    last_replies, last_errors, tick = 0, 0, 1
    while True:
        now = time.monotonic()
        if "start" not in machine and now >= measure_from:
            machine["start"] = _machine_busy()
        if "end" not in machine and now >= stop_at:
            machine["end"] = _machine_busy()
        if now >= stop_at or not all(child.is_alive() for child, _ in children):
            break
        if now >= start_at + tick:  # once a second: the replies of the last second
            replies, errors = sum(progress[0::2]), sum(progress[1::2])
            if options.progress:
                phase = "warmup" if now < measure_from else "measure"
                print(f"  [{tick:3d}s {phase}] {replies - last_replies:>9,} replies/s  "
                      f"errors {errors - last_errors:,}", file=sys.stderr, flush=True)
            last_replies, last_errors, tick = replies, errors, tick + 1
            continue
        wake = min(start_at + tick, stop_at, measure_from if "start" not in machine else stop_at)
        time.sleep(max(0.0, wake - now))
    parts = []
    for child, receiver in children:
        try:
            parts.append(receiver.recv() if receiver.poll(options.duration + 30) else {"fatal": "no result"})
        except EOFError:
            parts.append({"fatal": f"load process exited with {child.exitcode}"})
        child.join(10)
    after = os.times()
    fatal = [p["fatal"] for p in parts if "fatal" in p]
    if fatal:
        raise RuntimeError("load process failed: " + "; ".join(fatal))
    result = merge(options, entries, parts, cpu_total=(after.children_user + after.children_system)
                   - (before.children_user + before.children_system))
    if machine.get("start") and machine.get("end"):
        (busy0, total0), (busy1, total1) = machine["start"], machine["end"]  # type: ignore[misc]
        result["machine_busy_share"] = (busy1 - busy0) / (total1 - total0) if total1 > total0 else None
    if options.json_out:
        with open(options.json_out, "w") as out:
            json.dump(result, out, indent=2)
    return result


def merge(options: Options, entries: list[MixEntry], parts: list[dict[str, Any]], cpu_total: float) -> dict[str, Any]:
    duration = options.duration
    histogram = sum((p["histogram"] for p in parts), np.zeros(HIST_BUCKETS, dtype=np.int64))
    errors: dict[str, int] = {}
    for part in parts:
        for name, count in part["errors"].items():
            errors[name] = errors.get(name, 0) + count
    ok = sum(p["ok"] for p in parts)
    replies = int(histogram.sum())
    cpus = os.cpu_count() or 1
    cpu_window = [p["cpu_window"] for p in parts]
    core_use = [c / duration for c in cpu_window]
    result: dict[str, Any] = {
        "options": asdict(options),
        "mode": "open" if options.rate else "closed",
        "requests": ok,
        "requests_per_s": ok / duration,
        "points_per_s": sum(p["points"] for p in parts) / duration,
        "error_count": sum(errors.values()),
        "errors": errors,
        "by_entry": {e.name: sum(p["per_entry"][k] for p in parts) / duration for k, e in enumerate(entries)},
        "mb_out_per_s": sum(p["bytes_out"] for p in parts) / duration / 1e6,
        "mb_in_per_s": sum(p["bytes_in"] for p in parts) / duration / 1e6,
        "latency_ms": {
            **percentiles(histogram),
            "mean": sum(p["latency_sum"] for p in parts) / replies * 1e3 if replies else None,
            "min": min(p["latency_min"] for p in parts) * 1e3 if replies else None,
            "max": max(p["latency_max"] for p in parts) * 1e3 if replies else None,
        },
        "in_flight_at_end": sum(p["in_flight_at_end"] for p in parts),
        "backlog_at_end": sum(p["backlog_at_end"] for p in parts),
        "load_cpu_seconds": cpu_total,
        "load_cpu_seconds_window": sum(cpu_window),
        "load_cpu_share": sum(cpu_window) / (duration * cpus),
        "load_core_use": core_use,
        "load_saturated": any(c >= 0.9 for c in core_use),
        "cpus": cpus,
        "histogram": {"min_s": HIST_MIN, "ratio": HIST_RATIO,
                      "counts": {str(i): int(c) for i, c in enumerate(histogram) if c}},
    }
    if options.rate:
        send_histogram = sum((p["send_histogram"] for p in parts), np.zeros(HIST_BUCKETS, dtype=np.int64))
        result["offered_per_s"] = options.rate
        result["latency_from_send_ms"] = percentiles(send_histogram)
    return result


def summary(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        f"requests/s  {result['requests_per_s']:>14,.0f}   ({result['requests']:,} ok in {result['options']['duration']:g} s)",
        f"points/s    {result['points_per_s']:>14,.0f}",
        f"errors      {result['error_count']:>14,}   {result['errors'] or ''}",
        f"latency ms  p50 {ms(latency['p50'])}  p90 {ms(latency['p90'])}  p99 {ms(latency['p99'])}  "
        f"p99.9 {ms(latency['p99.9'])}  max {ms(latency['max'])}",
    ]
    if "latency_from_send_ms" in result:
        sent = result["latency_from_send_ms"]
        lines.append(f"from send   p50 {ms(sent['p50'])}  p99 {ms(sent['p99'])}   (offered "
                     f"{result['offered_per_s']:,.0f}/s; backlog at end {result['backlog_at_end']})")
    lines.append(f"traffic     {result['mb_out_per_s']:.1f} MB/s out, {result['mb_in_per_s']:.1f} MB/s in")
    cores = ", ".join(f"{c:.0%}" for c in result["load_core_use"])
    busy = result.get("machine_busy_share")
    lines.append(f"load gen    {result['load_cpu_seconds_window']:.2f} CPU s in the window = "
                 f"{result['load_cpu_share']:.0%} of {result['cpus']} CPUs (per process: {cores})"
                 + (f"; machine busy {busy:.0%}" if busy is not None else ""))
    if result["load_saturated"]:
        lines.append("WARNING: a load process kept a core busy: the load generator may be the bottleneck")
    return "\n".join(lines)


def options_from_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="unix:/path, tcp://host:port or http://host:port/compute")
    parser.add_argument("--connections", "-c", type=int, default=16, help="connections in total (default 16)")
    parser.add_argument("--pipeline", "-d", type=int, default=1, help="frames in flight per connection (default 1)")
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests/s in total")
    parser.add_argument("--per-request-connection", action="store_true",
                        help="old-style clients: connect, one request, close")
    parser.add_argument("--binary", action="store_true", help="binary mode bodies")
    parser.add_argument("--mix", default="sma:1000", help="e.g. sma:1000,rsi:1000:2,batch-rsi:100x1000")
    parser.add_argument("--processes", "-p", type=int, default=1, help="load processes (default 1)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (default 1)")
    parser.add_argument("--check", choices=("status", "none"), default="status",
                        help="'none' counts any reply as ok (the echo server)")
    parser.add_argument("--pool", type=int, default=8, help="distinct bodies per mix entry (default 8)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="write all results here")
    args = parser.parse_args(argv)
    return Options(target=args.target, connections=args.connections, pipeline=args.pipeline, rate=args.rate,
                   per_request_connection=args.per_request_connection, binary=args.binary, mix=args.mix,
                   processes=args.processes, duration=args.duration, warmup=args.warmup, check=args.check,
                   pool=args.pool, seed=args.seed, progress=not args.quiet, json_out=args.json_out)


def main(argv: list[str] | None = None) -> int:
    options = options_from_args(argv)
    result = run(options)
    print(summary(result))
    return 1 if result["error_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
