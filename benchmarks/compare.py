"""mojo_pool side by side with what it replaces and what it competes with.

One invocation starts every server, drives each with the same load generator
(``benchmarks/load.py``) and the same request bodies, and reports absolute
figures and ratios. The point is to answer, on this machine, today: is the
service worth running instead of (a) the old single-process mojo-compute and
(b) the HTTP + TA-Lib stack a Python team would otherwise build, and how
close does it get to the cost of merely moving the bytes?

Servers (each on temporary sockets / free ports, stopped afterwards; the
whole process group is killed if one does not stop):

* ``mojo_pool`` with 1 worker, with N workers (N = CPU count), and with N
  workers and ``--request-metrics off``;
* the reference server (``servers/reference.py``): the old design, one
  process, one frame per connection, pure-Python loops, ``json``;
* the uvicorn stack (``servers/http_app.py``): Starlette + orjson + TA-Lib,
  N uvicorn workers, uvloop, httptools;
* the echo server (``servers/echo.py``): sends each frame back, the ceiling
  for moving the bytes with this framing and this client.

Scenarios:

* SMA-20 over 1,000 points, JSON, persistent connections (16 connections,
  one request in flight each): every server. The reference server closes
  each connection after one reply, so it is driven the only way it can be,
  one connection per request;
* the same with old-style clients (a connection per request) on mojo_pool;
* in-process TA-Lib: ``talib.SMA`` on the same 1,000 points in a tight loop
  (calls/s: what no network service can beat);
* metrics on vs ``--request-metrics off``;
* binary mode, 1,000,000-point SMA requests (points/s), against echo;
* compute-heavy requests (a batch of 100 x 1,000-point RSI series, JSON),
  1 worker vs N workers;
* throughput vs concurrency (1..64 connections) for mojo_pool, uvicorn, echo;
* latency vs offered load: open loop at 20%..100% of mojo_pool's measured
  peak for the small request (latency from the scheduled send time).

The servers the headline ratios compare run at the same time and are
measured in interleaved rounds (median of ``--rounds``), so a neighbour's
load drifting over the run hits every side alike. The load generator
reports its own CPU use with every figure; a load process that kept its
core busy is flagged, since then the figure is the client's limit.

Targets (SMA-20 over 1,000 points, JSON, persistent connections, unless said):

* >= 1.5x the uvicorn stack and >= 20x the reference server, with 0 errors;
* old-style clients (a connection per request) >= 8x the reference server;
* >= 50% of the echo server;
* binary mode, 1M-point SMA requests: >= 200M points/s;
* request metrics on >= 97% of metrics off;
* compute-heavy requests: N (2) workers >= 1.6x one worker;
* p99 latency at 80% of peak load <= 5 ms.

The machine is shared: run it under ``flock /tmp/mojo_bench.lock`` so no two
benchmarks overlap, and read ratios rather than absolute figures.

    flock /tmp/mojo_bench.lock python benchmarks/compare.py --quick          # smoke test, ~1 min
    flock /tmp/mojo_bench.lock python benchmarks/compare.py --out benchmarks/published

Writes ``compare-<UTC timestamp>.json`` (every run, all figures) and
``compare-<UTC timestamp>.png`` (throughput vs concurrency, latency vs
offered load) to ``--out`` (default ``benchmarks/results``, not committed).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402  (benchmarks/ is not a package)
from mojo_pool.metrics_dir import default_parent  # noqa: E402

SMALL = "sma:1000"
HEAVY = "batch-rsi:100x1000"
BIG = "sma:1000000"
CONNECTIONS = 16


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

class ServerFailed(RuntimeError):
    pass


class Server:
    """A server in its own process group; ``target`` is where the load generator points."""

    def __init__(self, key: str, label: str, command: list[str], *, kind: str, ready_lines: tuple[str, int] | None,
                 http_port: int = 0, socket_path: str = "", transport: str = "tcp") -> None:
        self.key = key
        self.label = label
        self.command = command
        self.kind = kind  # "framed", "echo" or "http"
        self.ready_lines = ready_lines  # (text, how many lines must contain it)
        self.http_port = http_port
        self.socket_path = socket_path
        self.transport = transport
        self.tcp: tuple[str, int] | None = None
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.error: str | None = None

    def start(self) -> None:
        environment = {**os.environ}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=environment, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            match = re.search(r"tcp://([\d.]+):(\d+)", line)
            if match and self.tcp is None:
                self.tcp = (match.group(1), int(match.group(2)))

    @property
    def output(self) -> str:
        return "".join(self.lines[-30:])

    @property
    def target(self) -> str:
        if self.kind == "http":
            return f"http://127.0.0.1:{self.http_port}/compute"
        if self.transport == "unix":
            return f"unix:{self.socket_path}"
        assert self.tcp is not None
        return f"tcp://{self.tcp[0]}:{self.tcp[1]}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until the process says it is up and a real request gets a good reply."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.1)  # let the reader take the last lines
                raise ServerFailed(f"{self.label} exited with {self.process.returncode}:\n{self.output}")
            listening = self.kind == "http" or self.tcp is not None
            marks = self.ready_lines is None or sum(self.ready_lines[0] in line for line in self.lines) >= \
                self.ready_lines[1]
            if listening and marks and self.probe():
                return
            time.sleep(0.1)
        raise ServerFailed(f"{self.label} did not answer within {timeout:.0f} s:\n{self.output}")

    def probe(self) -> bool:
        request = orjson.dumps({"action": "compute_sma", "symbol": "PROBE", "prices": [float(100 + k % 7)
                                                                                      for k in range(100)],
                                "period": 20})
        try:
            if self.kind == "http":
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=5) as sock:
                    sock.sendall(b"POST /compute HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 + f"Content-Length: {len(request)}\r\nConnection: close\r\n\r\n".encode() + request)
                    reply = _read_all(sock)
                return reply.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in reply
            address: str | tuple[str, int] | None = self.socket_path if self.transport == "unix" else self.tcp
            family = socket.AF_UNIX if self.transport == "unix" else socket.AF_INET
            if address is None:
                return False
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(address)
                sock.sendall(load.LENGTH.pack(len(request)) + request)
                header = _read_exactly(sock, 4)
                body = _read_exactly(sock, load.LENGTH.unpack(header)[0])
            return body == request if self.kind == "echo" else load.reply_error(body) is None
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # whatever of its group is still there (a stuck worker), or the server itself

    def kill(self) -> None:
        """SIGKILL to the whole process group (workers included)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("closed early")
        chunks += chunk
    return bytes(chunks)


def _read_all(sock: socket.socket) -> bytes:
    chunks = bytearray()
    while chunk := sock.recv(65536):
        chunks += chunk
    return bytes(chunks)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_servers(directory: Path, workers: int, transport: str) -> dict[str, Server]:
    python = sys.executable

    def mojo(key: str, label: str, count: int, *extra: str) -> Server:
        path = str(directory / f"{key}.sock")
        return Server(key, label, [python, "-m", "mojo_pool", "serve", "--socket", path, "--host", "127.0.0.1",
                                   "--port", "0", "--metrics-port", "0", "--workers", str(count),
                                   "--speedup-interval", "0", "--metrics-dir", str(directory / f"{key}-metrics"),
                                   *extra],
                      kind="framed", ready_lines=(": ready:", 1), socket_path=path, transport=transport)

    def script(key: str, label: str, name: str, kind: str) -> Server:
        path = str(directory / f"{key}.sock")
        return Server(key, label, [python, str(HERE / "servers" / name), "--socket", path, "--host", "127.0.0.1",
                                   "--port", "0"], kind=kind, ready_lines=None, socket_path=path, transport=transport)

    port = _free_port()
    servers = [
        mojo("mojo_n", f"mojo_pool {workers} workers", workers),
        mojo("mojo_1", "mojo_pool 1 worker", 1),
        mojo("mojo_n_nometrics", f"mojo_pool {workers} workers, --request-metrics off", workers,
             "--request-metrics", "off"),
        script("reference", "reference server", "reference.py", "framed"),
        script("echo", "echo server", "echo.py", "echo"),
        Server("uvicorn", f"uvicorn stack {workers} workers",
               [python, "-m", "uvicorn", "benchmarks.servers.http_app:app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log"],
               kind="http", ready_lines=("Application startup complete", workers), http_port=port),
    ]
    return {server.key: server for server in servers}


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

@dataclass
class Scenario:
    key: str
    label: str
    server: str
    load: dict[str, Any]
    family: str  # "small", "big", "heavy": which comparison rows apply
    unit: str = "req/s"
    runs: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None

    @property
    def values(self) -> list[float]:
        key = "points_per_s" if self.unit == "points/s" else "requests_per_s"
        return [run[key] for run in self.runs]

    @property
    def median_run(self) -> dict[str, Any] | None:
        if not self.runs:
            return None
        values = self.values
        order = sorted(range(len(values)), key=values.__getitem__)
        return self.runs[order[(len(order) - 1) // 2]]

    @property
    def value(self) -> float | None:
        return statistics.median(self.values) if self.runs else None


COMPARABLE = {  # family -> {column: scenario key}
    "small": {"uvicorn": "small_uvicorn", "reference": "small_reference", "echo": "small_echo"},
    "big": {"echo": "big_echo"},
    "heavy": {"1 worker": "heavy_mojo_1"},
}


def headline_scenarios(workers: int) -> list[Scenario]:
    persistent = {"mix": SMALL, "connections": CONNECTIONS, "pipeline": 1}
    oldstyle = {"mix": SMALL, "connections": CONNECTIONS, "per_request_connection": True}
    heavy = {"mix": HEAVY, "connections": 4, "pipeline": 1}
    return [
        Scenario("small_mojo_n", f"mojo_pool {workers}w, SMA 1k JSON, persistent", "mojo_n", persistent, "small"),
        Scenario("small_uvicorn", f"uvicorn stack {workers}w, SMA 1k JSON, keep-alive", "uvicorn", persistent, "small"),
        Scenario("small_reference", "reference server, SMA 1k JSON, connection per request", "reference", oldstyle,
                 "small"),
        Scenario("small_echo", "echo server, SMA 1k JSON body, persistent", "echo",
                 {**persistent, "check": "none"}, "small"),
        Scenario("small_mojo_n_nometrics", f"mojo_pool {workers}w --request-metrics off, SMA 1k JSON",
                 "mojo_n_nometrics", persistent, "small"),
        Scenario("small_mojo_1", "mojo_pool 1w, SMA 1k JSON, persistent", "mojo_1", persistent, "small"),
        Scenario("oldstyle_mojo_n", f"mojo_pool {workers}w, SMA 1k JSON, connection per request", "mojo_n", oldstyle,
                 "small"),
        Scenario("heavy_mojo_1", "mojo_pool 1w, batch RSI 100x1k JSON", "mojo_1", heavy, "heavy", "points/s"),
        Scenario("heavy_mojo_n", f"mojo_pool {workers}w, batch RSI 100x1k JSON", "mojo_n", heavy, "heavy",
                 "points/s"),
    ]


def big_scenarios(workers: int) -> list[Scenario]:
    big = {"mix": BIG, "binary": True, "connections": 4, "pipeline": 1, "pool": 4}
    return [
        Scenario("big_mojo_n", f"mojo_pool {workers}w, binary SMA 1M points", "mojo_n", big, "big", "points/s"),
        Scenario("big_echo", "echo server, binary SMA 1M-point body", "echo", {**big, "check": "none"}, "big",
                 "points/s"),
    ]


class Bench:
    def __init__(self, args: argparse.Namespace, servers: dict[str, Server]) -> None:
        self.args = args
        self.servers = servers
        self.unavailable: dict[str, str] = {}

    def run_load(self, server_key: str, **settings: Any) -> dict[str, Any]:
        server = self.servers[server_key]
        options = load.Options(target=server.target, duration=self.args.duration, warmup=self.args.warmup,
                               processes=self.args.processes, progress=False, **settings)
        return load.run(options)

    def measure(self, scenario: Scenario, note: str = "") -> None:
        if scenario.server in self.unavailable:
            scenario.skipped = f"server unavailable: {self.unavailable[scenario.server]}"
            return
        try:
            result = self.run_load(scenario.server, **scenario.load)
        except Exception as exc:  # one failed run must not lose the others
            scenario.skipped = f"{type(exc).__name__}: {exc}"
            print(f"  {scenario.key:<24} FAILED {scenario.skipped}", flush=True)
            return
        scenario.runs.append(result)
        print(f"  {scenario.key:<24}{note} {describe(result, scenario.unit)}", flush=True)


def describe(result: dict[str, Any], unit: str) -> str:
    value = result["points_per_s"] if unit == "points/s" else result["requests_per_s"]
    latency = result["latency_ms"]
    flag = "  LOAD-GEN SATURATED" if result["load_saturated"] else ""
    p50 = "-" if latency["p50"] is None else f"{latency['p50']:.2f}"
    p99 = "-" if latency["p99"] is None else f"{latency['p99']:.2f}"
    return (f"{value:>14,.0f} {unit:<8} p50 {p50} ms  p99 {p99} ms  errors {result['error_count']}"
            f"  load CPU {sum(result['load_core_use']):.0%} of a core{flag}")


def talib_in_process(seconds: float) -> dict[str, Any]:
    """talib.SMA on 1,000 points in a tight loop: calls/s, the no-network bound."""
    import talib

    rng = np.random.default_rng(1)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 1000)))
    calls = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            talib.SMA(prices, timeperiod=20)
        calls += 1000
    elapsed = time.perf_counter() - started
    return {"requests_per_s": calls / elapsed, "calls": calls, "seconds": elapsed,
            "cpu_seconds": time.process_time() - cpu_started}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def scenario_table(scenarios: dict[str, Scenario], talib_rate: float | None) -> tuple[str, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for scenario in scenarios.values():
        comparable = COMPARABLE.get(scenario.family, {})
        run = scenario.median_run
        rows.append({
            "key": scenario.key, "label": scenario.label, "value": scenario.value, "unit": scenario.unit,
            "runs": scenario.values, "skipped": scenario.skipped,
            "errors": run["error_count"] if run else None,
            "p50_ms": run["latency_ms"]["p50"] if run else None,
            "p99_ms": run["latency_ms"]["p99"] if run else None,
            "load_core_use": sum(run["load_core_use"]) if run else None,
            "load_saturated": run["load_saturated"] if run else None,
            "ratios": {column: ratio(scenario.value, scenarios[other].value)
                       for column, other in comparable.items() if other in scenarios},
        })
    if talib_rate is not None:
        rows.append({"key": "talib_in_process", "label": "in-process talib.SMA, 1k points (no network)",
                     "value": talib_rate, "unit": "calls/s", "runs": [talib_rate], "skipped": None, "errors": 0,
                     "p50_ms": None, "p99_ms": None, "load_core_use": None, "load_saturated": None,
                     "ratios": {column: ratio(talib_rate, scenarios[other].value)
                                for column, other in COMPARABLE["small"].items() if other in scenarios}})
    columns = ["uvicorn", "reference", "echo", "1 worker"]
    lines = [f"{'scenario':<58} {'value':>14} {'unit':<9} {'err':>4} {'p50 ms':>7} {'p99 ms':>7} {'loadgen':>7}  "
             + "  ".join(f"{'vs ' + c:>13}" for c in columns)]
    for row in rows:
        if row["value"] is None:
            lines.append(f"{row['label']:<58} {'skipped: ' + str(row['skipped'])[:80]}")
            continue

        def num(value: float | None, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        load_use = "-" if row["load_core_use"] is None else f"{row['load_core_use']:.0%}" + (
            "!" if row["load_saturated"] else "")
        lines.append(f"{row['label'][:58]:<58} {row['value']:>14,.0f} {row['unit']:<9} {num(row['errors'], 'd'):>4} "
                     f"{num(row['p50_ms'], '.2f'):>7} {num(row['p99_ms'], '.2f'):>7} {load_use:>7}  "
                     + "  ".join(f"{fmt_ratio(row['ratios'].get(c)):>13}" for c in columns))
    lines.append("loadgen: the load generator's CPU in the window, in cores ('!': a load process kept its core busy, "
                 "the figure may be the client's limit)")
    return "\n".join(lines), rows


@dataclass
class Target:
    name: str
    measured: float | None
    threshold: float
    higher_is_better: bool
    shown: Callable[[float], str]
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "n/a"
        ok = self.measured >= self.threshold if self.higher_is_better else self.measured <= self.threshold
        return "PASS" if ok else "MISS"


def targets(scenarios: dict[str, Scenario], latency: list[dict[str, Any]], workers: int) -> list[Target]:
    def value(key: str) -> float | None:
        return scenarios[key].value if key in scenarios else None

    def times(v: float) -> str:
        return f"{v:.2f}x"

    def share(v: float) -> str:
        return f"{v:.1%}"

    small = scenarios.get("small_mojo_n")
    small_errors = float(small.median_run["error_count"]) if small and small.median_run else None
    all_errors = float(sum(sum(r["error_count"] for r in s.runs) for s in scenarios.values()
                           if s.server.startswith("mojo")))
    at_80 = next((row for row in latency if abs(row["fraction"] - 0.8) < 1e-9), None)
    return [
        Target("JSON persistent vs uvicorn stack", ratio(value("small_mojo_n"), value("small_uvicorn")), 1.5, True,
               times),
        Target("JSON persistent vs reference server", ratio(value("small_mojo_n"), value("small_reference")), 20.0,
               True, times),
        Target("JSON persistent: errors", small_errors, 0.0, False, lambda v: f"{v:.0f}"),
        Target("every mojo_pool run: errors", all_errors, 0.0, False, lambda v: f"{v:.0f}"),
        Target("old-style clients vs reference server", ratio(value("oldstyle_mojo_n"), value("small_reference")),
               8.0, True, times),
        Target("JSON persistent vs echo server", ratio(value("small_mojo_n"), value("small_echo")), 0.5, True, share),
        Target("binary 1M-point SMA, points/s", value("big_mojo_n"), 200e6, True, lambda v: f"{v / 1e6:,.0f}M"),
        Target("request metrics on vs off", ratio(value("small_mojo_n"), value("small_mojo_n_nometrics")), 0.97,
               True, share),
        Target(f"compute-heavy, {workers} workers vs 1", ratio(value("heavy_mojo_n"), value("heavy_mojo_1")), 1.6,
               True, times),
        Target("p99 at 80% of peak, ms", at_80["p99_ms"] if at_80 else None, 5.0, False, lambda v: f"{v:.2f}"),
    ]


def other_ratios(scenarios: dict[str, Scenario], talib_rate: float | None, workers: int) -> list[tuple[str, float | None]]:
    def value(key: str) -> float | None:
        return scenarios[key].value if key in scenarios else None

    return [
        ("mojo_pool JSON: persistent vs connection per request", ratio(value("small_mojo_n"), value("oldstyle_mojo_n"))),
        (f"mojo_pool JSON small: {workers} workers vs 1", ratio(value("small_mojo_n"), value("small_mojo_1"))),
        ("uvicorn stack vs reference server", ratio(value("small_uvicorn"), value("small_reference"))),
        ("in-process talib.SMA vs mojo_pool JSON persistent", ratio(talib_rate, value("small_mojo_n"))),
        ("binary 1M: mojo_pool vs echo (points/s)", ratio(value("big_mojo_n"), value("big_echo"))),
    ]


def target_table(rows: list[Target]) -> str:
    lines = [f"{'target':<42} {'measured':>12} {'needed':>12}  verdict"]
    for row in rows:
        needed = ("≥ " if row.higher_is_better else "≤ ") + row.shown(row.threshold)
        measured = "-" if row.measured is None else row.shown(row.measured)
        lines.append(f"{row.name:<42} {measured:>12} {needed:>12}  {row.verdict}")
    return "\n".join(lines)


def plot(path: Path, concurrency: dict[str, list[dict[str, Any]]], latency: list[dict[str, Any]],
         labels: dict[str, str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for key, points in concurrency.items():
        points = [p for p in points if p["requests_per_s"] is not None]
        if points:
            line, = left.plot([p["connections"] for p in points], [p["requests_per_s"] for p in points], marker="o",
                              label=labels.get(key, key))
            saturated = [p for p in points if p.get("load_saturated")]
            if saturated:  # hollow rings: the load generator's core was busy, a floor for the server
                left.scatter([p["connections"] for p in saturated], [p["requests_per_s"] for p in saturated], s=150,
                             facecolors="none", edgecolors=line.get_color(), linewidths=1.5)
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("connections (1 request in flight each)")
    left.set_ylabel("requests/s")
    left.set_title("Throughput vs concurrency (SMA-20, 1,000 points, JSON)\n"
                   "ringed: load generator's core busy (figure is a floor)", fontsize=10)
    left.grid(True, alpha=0.3)
    left.legend()
    rows = [row for row in latency if row["p50_ms"] is not None]
    if rows:
        offered = [row["offered_per_s"] for row in rows]
        right.plot(offered, [row["p50_ms"] for row in rows], marker="o", label="p50")
        right.plot(offered, [row["p99_ms"] for row in rows], marker="s", label="p99")
        right.axhline(5.0, color="grey", linestyle="--", linewidth=1, label="5 ms target (p99 at 80%)")
        for row in rows:
            overloaded = (row.get("achieved_per_s") or 0.0) < 0.95 * row["offered_per_s"]
            right.annotate(f"{row['fraction']:.0%}" + (" behind" if overloaded else ""),
                           (row["offered_per_s"], row["p99_ms"]), fontsize=8,
                           textcoords="offset points", xytext=(0, 6), ha="center")
        right.set_yscale("log")
    right.set_xlabel("offered load, requests/s (open loop)")
    right.set_ylabel("latency from scheduled send, ms")
    right.set_title("mojo_pool latency vs offered load (SMA-20, 1,000 points)")
    right.grid(True, alpha=0.3, which="both")
    right.legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per run (default 5; quick 0.8)")
    parser.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per run (default 1; quick 0.2)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds of the headline runs "
                                                                  "(median; default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="very short runs and fewer sweep points (smoke test)")
    parser.add_argument("--processes", type=int, default=1, help="load processes per run (default 1)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N (default: CPU count)")
    parser.add_argument("--transport", choices=("tcp", "unix"), default="tcp",
                        help="framed servers over loopback TCP (default; as uvicorn's HTTP) or Unix sockets")
    parser.add_argument("--out", default=str(HERE / "results"), help="directory for the JSON and PNG")
    args = parser.parse_args(argv)
    args.duration = args.duration or (0.8 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if args.quick else 1.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    sweep_connections = [1, 4, 16, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64]
    fractions = [0.2, 0.4, 0.6, 0.8, 1.0]
    workers = args.workers
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    # tmpfs, where the service puts its metrics files by default (mojo_pool.metrics_dir).
    directory = Path(tempfile.mkdtemp(prefix="mojo_compare_", dir=default_parent()))
    servers = make_servers(directory, workers, args.transport)
    bench = Bench(args, servers)
    scenarios: dict[str, Scenario] = {}
    concurrency: dict[str, list[dict[str, Any]]] = {}
    latency: list[dict[str, Any]] = []
    talib_result: dict[str, Any] | None = None
    print(f"compare: N={workers} workers, {args.duration:g} s runs after {args.warmup:g} s warm-up, "
          f"{args.rounds} round(s), {args.processes} load process(es), framed servers over {args.transport}",
          flush=True)
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            try:
                server.wait_ready()
                print(f"  up: {server.label:<45} {server.target}", flush=True)
            except ServerFailed as exc:
                bench.unavailable[server.key] = str(exc).splitlines()[-1][:200] if str(exc) else "failed"
                print(f"  UNAVAILABLE: {exc}", flush=True)
                server.kill()

        print("headline scenarios, interleaved:", flush=True)
        for scenario in headline_scenarios(workers):
            scenarios[scenario.key] = scenario
        for round_number in range(args.rounds):
            for scenario in headline_scenarios(workers):
                bench.measure(scenarios[scenario.key], note=f" r{round_number + 1}" if args.rounds > 1 else "")

        print("binary, 1M-point SMA:", flush=True)
        for scenario in big_scenarios(workers):
            scenarios[scenario.key] = scenario
            bench.measure(scenario)

        talib_result = talib_in_process(min(args.duration, 2.0))
        print(f"  talib_in_process         {talib_result['requests_per_s']:>14,.0f} calls/s", flush=True)

        print("throughput vs concurrency:", flush=True)
        sweep_servers = [("mojo_n", {}), ("uvicorn", {}), ("echo", {"check": "none"})]
        for connections in sweep_connections:
            for key, extra in sweep_servers:
                row: dict[str, Any] = {"connections": connections, "requests_per_s": None}
                if key not in bench.unavailable:
                    try:
                        result = bench.run_load(key, mix=SMALL, connections=connections, pipeline=1, **extra)
                        row.update(requests_per_s=result["requests_per_s"], p50_ms=result["latency_ms"]["p50"],
                                   p99_ms=result["latency_ms"]["p99"], errors=result["error_count"],
                                   load_core_use=sum(result["load_core_use"]),
                                   load_saturated=result["load_saturated"])
                        print(f"  {key:<16} c={connections:<3}     {describe(result, 'req/s')}", flush=True)
                    except Exception as exc:
                        row["error"] = f"{type(exc).__name__}: {exc}"
                concurrency.setdefault(key, []).append(row)

        peak = scenarios["small_mojo_n"].value
        print(f"latency vs offered load (peak {peak or 0:,.0f} req/s):", flush=True)
        if peak and "mojo_n" not in bench.unavailable:
            for fraction in fractions:
                rate = peak * fraction
                try:
                    result = bench.run_load("mojo_n", mix=SMALL, connections=CONNECTIONS, pipeline=8, rate=rate)
                except Exception as exc:
                    latency.append({"fraction": fraction, "offered_per_s": rate, "p50_ms": None, "p99_ms": None,
                                    "error": f"{type(exc).__name__}: {exc}"})
                    continue
                latency.append({
                    "fraction": fraction, "offered_per_s": rate, "achieved_per_s": result["requests_per_s"],
                    "p50_ms": result["latency_ms"]["p50"], "p90_ms": result["latency_ms"]["p90"],
                    "p99_ms": result["latency_ms"]["p99"], "p99.9_ms": result["latency_ms"]["p99.9"],
                    "from_send_p99_ms": result["latency_from_send_ms"]["p99"], "errors": result["error_count"],
                    "backlog_at_end": result["backlog_at_end"], "load_core_use": sum(result["load_core_use"]),
                })
                print(f"  {fraction:>4.0%} offered {rate:>9,.0f}/s  {describe(result, 'req/s')}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)

    table, rows = scenario_table(scenarios, talib_result["requests_per_s"] if talib_result else None)
    goal_rows = targets(scenarios, latency, workers)
    talib_rate = talib_result["requests_per_s"] if talib_result else None
    others = other_ratios(scenarios, talib_rate, workers)
    print()
    print(table)
    print()
    for name, value in others:
        print(f"{name:<58} {fmt_ratio(value):>10}")
    print()
    print(target_table(goal_rows))
    labels = {key: server.label for key, server in servers.items()}
    meta = {
        "timestamp": stamp, "commit": git_commit(), "cpus": os.cpu_count(), "workers": workers,
        "python": platform.python_version(), "platform": platform.platform(), "load_average": os.getloadavg(),
        "duration": args.duration, "warmup": args.warmup, "rounds": args.rounds, "quick": args.quick,
        "processes": args.processes, "transport": args.transport, "elapsed_s": time.monotonic() - started,
        "servers": {key: {"label": s.label, "command": s.command, "unavailable": bench.unavailable.get(key)}
                    for key, s in servers.items()},
    }
    document = {
        "meta": meta,
        "table": rows,
        "other_ratios": dict(others),
        "targets": [{"name": t.name, "measured": t.measured, "threshold": t.threshold,
                     "higher_is_better": t.higher_is_better, "verdict": t.verdict} for t in goal_rows],
        "scenarios": {key: {"label": s.label, "server": s.server, "load": s.load, "unit": s.unit, "value": s.value,
                            "skipped": s.skipped, "runs": s.runs} for key, s in scenarios.items()},
        "talib_in_process": talib_result,
        "concurrency_sweep": concurrency,
        "latency_sweep": latency,
    }
    json_path = out / f"compare-{stamp}.json"
    json_path.write_text(json.dumps(document, indent=1, default=float))
    png_path = out / f"compare-{stamp}.png"
    title = (f"{stamp}  commit {str(meta['commit'])[:10]}  {meta['cpus']} CPUs (shared), N={workers}, "
             f"{args.duration:g} s runs{' (quick: smoke test, noisy)' if args.quick else ''}")
    plot(png_path, concurrency, latency, labels, title)
    print(f"\nwrote {json_path} and {png_path} ({meta['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
