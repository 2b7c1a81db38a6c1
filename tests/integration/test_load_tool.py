"""The benchmark tools work: load generator, echo server, reference server.

Real processes, about a second of load each:

1. ``load.run`` against the echo server (persistent, pipelined frames) and
   against the reference server (one connection per request, every seed
   action): requests counted, no errors, percentiles in order.
2. The open-loop mode keeps its timetable against the echo server.
3. The reference server's SMA equals ``mojo_pool.indicators.sma`` to 1e-9
   relative, with ``null`` in the lookback: the baseline computes the same
   thing as the service it is compared with.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from mojo_pool import indicators

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import load  # noqa: E402

LENGTH = struct.Struct(">I")


def start(script: str, socket_path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, str(BENCHMARKS / "servers" / script), "--socket", str(socket_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on unix:" in line, line + process.stdout.read()
    return process


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    directory = tmp_path_factory.mktemp("load_tool")
    paths = {"echo": directory / "echo.sock", "reference": directory / "reference.sock"}
    processes = [start("echo.py", paths["echo"]), start("reference.py", paths["reference"])]
    try:
        yield paths
    finally:
        for process in processes:
            stop(process)


def quick(target: Path, **settings: object) -> dict:
    options = load.Options(target=f"unix:{target}", duration=0.8, warmup=0.2, processes=1, progress=False,
                           **settings)  # type: ignore[arg-type]
    return load.run(options)


def check_result(result: dict) -> None:
    assert result["requests"] > 0
    assert result["error_count"] == 0, result["errors"]
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"]
    assert latency["min"] <= latency["mean"] <= latency["max"]
    assert 0 <= result["load_cpu_share"] <= 1.0


def test_echo_framed_pipelined(servers: dict[str, Path]) -> None:
    result = quick(servers["echo"], connections=4, pipeline=4, check="none", mix="sma:1000,batch-rsi:4x500:2")
    check_result(result)
    assert result["points_per_s"] > result["requests_per_s"]  # each reply carries 1,000 or 2,000 points
    assert set(result["by_entry"]) == {"sma:1000", "batch-rsi:4x500"}


def test_reference_per_request_connections(servers: dict[str, Path]) -> None:
    result = quick(servers["reference"], connections=2, per_request_connection=True,
                   mix="sma:1000,ema:1000,rsi:1000,macd:1000,bollinger:1000")
    check_result(result)
    assert all(rate > 0 for rate in result["by_entry"].values()), result["by_entry"]


def test_reference_errors_are_counted_by_type(servers: dict[str, Path]) -> None:
    # The reference server knows only the five seed actions: ATR comes back as UnknownAction.
    result = quick(servers["reference"], connections=1, per_request_connection=True, mix="atr:100")
    assert result["requests"] == 0
    assert set(result["errors"]) == {"UnknownAction"} and result["error_count"] > 0


def test_open_loop_keeps_its_rate(servers: dict[str, Path]) -> None:
    result = quick(servers["echo"], connections=2, pipeline=4, check="none", rate=500.0)
    check_result(result)
    assert result["mode"] == "open"
    assert abs(result["requests_per_s"] - 500.0) <= 25.0, result["requests_per_s"]
    assert result["backlog_at_end"] == 0


def test_reference_sma_equals_mojo_pool(servers: dict[str, Path]) -> None:
    prices = 100.0 * np.exp(np.cumsum(np.random.default_rng(11).normal(0.0, 0.01, 1_000)))
    body = json.dumps({"action": "compute_sma", "symbol": "TCS", "prices": prices.tolist(), "period": 20}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(servers["reference"]))
        sock.sendall(LENGTH.pack(len(body)) + body)
        received = b""
        while chunk := sock.recv(1 << 16):  # the server closes after its one reply
            received += chunk
    (length,) = LENGTH.unpack(received[:4])
    assert len(received) == 4 + length
    reply = json.loads(received[4:])
    assert reply["status"] == "ok" and reply["symbol"] == "TCS" and reply["period"] == 20
    assert reply["indicator"] == "sma"
    values = reply["values"]
    assert len(values) == len(prices)
    assert values[:19] == [None] * 19 and None not in values[19:]
    expected = indicators.sma(prices, timeperiod=20)
    np.testing.assert_allclose(np.array(values[19:], dtype=np.float64), expected[19:], rtol=1e-9, atol=0)


def test_mix_parsing() -> None:
    entries = load.parse_mix("sma:1000, batch-rsi:100x1000:3 ,atr:50:0.5")
    assert [(e.indicator, e.series, e.points, float(e.weight)) for e in entries] == [
        ("sma", 0, 1000, 1.0), ("rsi", 100, 1000, 3.0), ("atr", 0, 50, 0.5)]
    for bad in ("", "sma", "batch-rsi:100", "sma:0", "sma:10:0"):
        with pytest.raises(ValueError):
            load.parse_mix(bad)
