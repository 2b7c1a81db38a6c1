"""The service end to end: a real supervisor, real workers, real sockets.

1. Every seed action (ping, compute_sma/ema/rsi/macd/bollinger) round-trips
   over the Unix socket and over TCP, and equals the indicator API; values in
   the lookback are null.
2. An old-style client (a new connection per request, the json module, no
   mojo_pool code) gets the same replies.
3. 1,000 frames pipelined on one connection come back in request order.
4. A batch of 500 symbols equals 500 single calls; binary mode equals JSON.
5. Each worker is pinned to its own CPU (read from the kernel), with one
   BLAS thread and the pool's glibc malloc settings in its environment.
6. Errors over the wire get typed replies and the connection keeps working;
   a frame over the size limit gets FrameTooLarge and the connection closes.
7. The asyncio client: 200 concurrent calls on one connection.
8. /health and /ready describe the pool; metrics after a known run count
   exactly what was sent.
9. The speed-up gauge is measured again on --speedup-interval.
10. --supervisor-priority (off by default): the supervisor runs that many
    nice levels above the workers, which keep the niceness the service
    started with; it drops to their level at the first Busy refusal and goes
    back up once refusals stop for a second.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import time

import numpy as np
import pytest

from mojo_pool import indicators
from mojo_pool.arbiter import WORKER_MALLOC_TUNABLES
from mojo_pool.client import AsyncClient, Client, InvalidRequest
from service import Service, value


@pytest.fixture(scope="module")
def service():
    with Service("--max-frame-bytes", str(8 * 1024 * 1024)) as running:
        yield running


def prices(n: int = 1_000, seed: int = 7) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.01, n)))


def as_array(values: list) -> np.ndarray:
    return np.array(values, dtype=np.float64)  # None -> NaN


def nulls_then_values(values: list, lookback: int) -> None:
    assert all(v is None for v in values[:lookback])
    assert all(isinstance(v, float) for v in values[lookback:])


def old_style(address: str, request: dict) -> dict:
    """How the original clients talk: one connection, one request, json module."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(address)
        body = json.dumps(request).encode()
        sock.sendall(struct.pack(">I", len(body)) + body)
        header = b""
        while len(header) < 4:
            header += sock.recv(4 - len(header))
        length = struct.unpack(">I", header)[0]
        reply = b""
        while len(reply) < length:
            reply += sock.recv(length - len(reply))
    return json.loads(reply)


def test_1_seed_actions_over_unix_and_tcp(service):
    close = prices()
    for address in (service.socket, service.tcp):
        with Client(address) as client:
            assert client.ping()
            sma = client.request({"action": "compute_sma", "symbol": "TCS", "prices": close.tolist(), "period": 20})
            assert (sma["status"], sma["symbol"], sma["indicator"], sma["period"]) == ("ok", "TCS", "sma", 20)
            nulls_then_values(sma["values"], 19)
            np.testing.assert_array_equal(as_array(sma["values"]), indicators.sma(close, timeperiod=20))
            ema = client.request({"action": "compute_ema", "symbol": "TCS", "prices": close.tolist(), "period": 10})
            np.testing.assert_array_equal(as_array(ema["values"]), indicators.ema(close, timeperiod=10))
            rsi = client.request({"action": "compute_rsi", "symbol": "TCS", "prices": close.tolist(), "period": 14})
            nulls_then_values(rsi["values"], 14)
            np.testing.assert_array_equal(as_array(rsi["values"]), indicators.rsi(close, timeperiod=14))
            macd = client.request({"action": "compute_macd", "symbol": "TCS", "prices": close.tolist(),
                                   "fast_period": 12, "slow_period": 26, "signal_period": 9})
            expected = indicators.macd(close, fastperiod=12, slowperiod=26, signalperiod=9)
            for field, want in zip(("macd_line", "signal_line", "histogram"), expected):
                np.testing.assert_array_equal(as_array(macd[field]), want)
            bands = client.request({"action": "compute_bollinger", "symbol": "TCS", "prices": close.tolist(),
                                    "period": 20, "std_dev": 2.5})
            assert (bands["period"], bands["std_dev"]) == (20, 2.5)
            expected = indicators.bbands(close, timeperiod=20, nbdevup=2.5, nbdevdn=2.5)
            for field, want in zip(("upper_band", "middle_band", "lower_band"), expected):
                np.testing.assert_array_equal(as_array(bands[field]), want)


def test_2_old_style_clients(service):
    close = prices(300, seed=3)
    assert old_style(service.socket, {"action": "ping"}) == {"status": "ok", "message": "pong"}
    for _ in range(20):
        reply = old_style(service.socket, {"action": "compute_sma", "symbol": "INFY", "prices": close.tolist(),
                                           "period": 20})
        np.testing.assert_array_equal(as_array(reply["values"]), indicators.sma(close, timeperiod=20))
    reply = old_style(service.socket, {"action": "compute_sma", "symbol": "INFY", "prices": []})
    assert (reply["status"], reply["error_type"]) == ("error", "EmptyPrices")


def test_3_pipelining_keeps_order(service):
    close = prices(200)
    requests = [{"action": "compute_sma", "prices": (close + k).tolist(), "period": 5, "id": k} for k in range(1_000)]
    with Client(service.socket) as client:
        replies = client.pipeline(requests)
    assert [r["id"] for r in replies] == list(range(1_000))
    for k in (0, 1, 499, 999):
        np.testing.assert_array_equal(as_array(replies[k]["values"]), indicators.sma(close + k, timeperiod=5))


def test_4_batch_and_binary(service):
    series = {f"S{k:03d}": prices(500, seed=k) for k in range(500)}
    with Client(service.socket) as client:
        batch = client.batch("rsi", series, timeperiod=14)
        binary = client.batch("rsi", series, binary=True, timeperiod=14)
        singles = client.pipeline([{"action": "compute_rsi", "symbol": s, "prices": p, "period": 14}
                                   for s, p in series.items()])
        assert list(batch) == list(series)
        for reply in singles:
            # Batch RSI runs in SIMD lanes, one bar a step (lanes.rsi_rows); a
            # single call four bars a step: equal to 1e-12, NaN for NaN.
            np.testing.assert_allclose(batch[reply["symbol"]], as_array(reply["values"]), rtol=1e-12, atol=0)
            np.testing.assert_array_equal(binary[reply["symbol"]], batch[reply["symbol"]])
        # Unequal lengths and several outputs, in both modes.
        ragged = {"A": prices(100, 1), "B": prices(250, 2)}
        for mode in (False, True):
            out = client.batch("macd", ragged, binary=mode)
            for symbol, close in ragged.items():
                for got, want in zip(out[symbol], indicators.macd(close)):
                    np.testing.assert_array_equal(got, want)
        high, low, close = prices(800, 4) + 1.0, prices(800, 4) - 1.0, prices(800, 4)
        json_atr = client.compute("atr", high, low, close, timeperiod=14)
        binary_atr = client.compute("atr", high, low, close, binary=True, timeperiod=14)
        np.testing.assert_array_equal(json_atr, indicators.atr(high, low, close, timeperiod=14))
        np.testing.assert_array_equal(binary_atr, json_atr)


def test_5_workers_pinned_to_distinct_cpus(service):
    cpus = sorted(os.sched_getaffinity(0))
    workers = service.health()["workers"]
    assert len(workers) == 2
    pinned = [os.sched_getaffinity(w["pid"]) for w in workers]
    assert all(len(p) == 1 for p in pinned)
    assert [next(iter(p)) for p in pinned] == [cpus[k % len(cpus)] for k in range(2)]
    if len(cpus) >= 2:
        assert pinned[0] != pinned[1]
    for worker in workers:  # one BLAS/OpenMP thread, set before numpy loaded
        environ = open(f"/proc/{worker['pid']}/environ", "rb").read().split(b"\0")
        assert b"OMP_NUM_THREADS=1" in environ and b"OPENBLAS_NUM_THREADS=1" in environ
        # glibc cuts the variable at its first ':' in place while parsing it, so
        # the process's environ shows the first tunable (or the caller's own).
        expected = os.environ.get("GLIBC_TUNABLES", WORKER_MALLOC_TUNABLES).split(":")[0].encode()
        assert any(entry.startswith(b"GLIBC_TUNABLES=" + expected) for entry in environ), environ


BAD_REQUESTS = [
    (b"{not json", "InvalidJSON"),
    (b"\xff\xfe", "InvalidJSON"),
    (b'{"action": "compute_sma", "prices": [NaN, 1.0]}', "InvalidJSON"),
    (b"[1, 2]", "InvalidRequest"),
    (b'{"prices": [1.0]}', "InvalidRequest"),
    (b'{"action": "compute_nothing", "prices": [1.0]}', "UnknownAction"),
    (b'{"action": "compute_sma"}', "EmptyPrices"),
    (b'{"action": "compute_sma", "prices": []}', "EmptyPrices"),
    (b'{"action": "compute_sma", "prices": [1.0, "2"]}', "TypeError"),
    (b'{"action": "compute_sma", "prices": [1.0, 2.0], "period": "20"}', "TypeError"),
    (b'{"action": "compute_sma", "prices": [1.0, 2.0], "period": 0}', "ValueError"),
    (b'{"action": "compute_atr", "high": [1.0, 2.0], "low": [1.0], "close": [1.0, 2.0]}', "ValueError"),
    (b'{"action": "compute_sma", "prices": [1.0], "colour": "red"}', "InvalidRequest"),
    (b"", "InvalidJSON"),
]


def test_6_errors_are_typed_and_the_connection_survives(service):
    with Client(service.socket) as client:
        sock = client.connect()
        for body, error_type in BAD_REQUESTS:
            reply = json.loads(client.exchange([body])[0])
            assert reply["status"] == "error" and reply["error_type"] == error_type, (body, reply)
            assert reply["error"]
            assert client.ping()  # same connection, still serving
            assert client.sock is sock
        with pytest.raises(InvalidRequest) as raised:
            client.request({"action": "compute_sma", "prices": [], "id": "req-9"})
        assert raised.value.reply["id"] == "req-9" and raised.value.error_type == "EmptyPrices"
    # Over the limit: an error reply, then the service closes the connection.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(service.socket)
        sock.sendall(struct.pack(">I", 9 * 1024 * 1024) + b"{" * 1000)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        length = struct.unpack(">I", data[:4])[0]
        reply = json.loads(data[4:4 + length])
        assert reply["error_type"] == "FrameTooLarge" and len(data) == 4 + length
    with Client(service.socket) as client:
        assert client.ping()


def test_7_async_client_concurrent_calls(service):
    close = prices(400)

    async def run() -> list[np.ndarray]:
        async with AsyncClient(service.socket) as client:
            return await asyncio.gather(*(client.compute("ema", close + k, timeperiod=10) for k in range(200)))

    results = asyncio.run(run())
    for k in (0, 57, 199):
        np.testing.assert_array_equal(results[k], indicators.ema(close + k, timeperiod=10))


def test_8_health_ready_and_exact_metrics():
    with Service(workers=2) as fresh:
        status, body = fresh.get("/ready")
        assert status == 200
        health = json.loads(body)
        assert (health["workers_alive"], health["workers_expected"], health["status"]) == (2, 2, "ok")
        close = prices(300)
        with Client(fresh.socket) as client:
            client.pipeline([{"action": "compute_sma", "prices": close, "period": 20}] * 37)
            client.pipeline([{"action": "compute_rsi", "prices": close}] * 5)
            client.pipeline([{"action": "compute_sma", "prices": []}] * 3)
            client.pipeline([{"action": "made_up_%d" % k} for k in range(4)])
            client.batch("ema", {f"S{k}": close for k in range(6)}, timeperiod=10)
            assert fresh.health()["active_connections"] == 1
        samples = fresh.samples()
        assert value(samples, "mojo_compute_requests_total", action="compute_sma", status="success") == 37
        assert value(samples, "mojo_compute_requests_total", action="compute_rsi", status="success") == 5
        assert value(samples, "mojo_compute_requests_total", action="compute_sma", status="error") == 3
        assert value(samples, "mojo_compute_requests_total", action="unknown", status="error") == 4
        assert value(samples, "mojo_compute_requests_total", action="batch", status="success") == 1
        assert value(samples, "mojo_compute_errors_total", error_type="EmptyPrices") == 3
        assert value(samples, "mojo_compute_errors_total", error_type="UnknownAction") == 4
        assert value(samples, "mojo_compute_indicator_time_seconds_count", indicator="sma") == 37
        assert value(samples, "mojo_compute_indicator_data_points_sum", indicator="sma") == 37 * 300
        assert value(samples, "mojo_compute_indicator_data_points_sum", indicator="ema") == 6 * 300
        assert value(samples, "mojo_compute_batch_series_sum") == 6
        assert value(samples, "mojo_compute_request_duration_seconds_count", action="compute_sma") == 40
        assert value(samples, "mojo_compute_active_connections") == 0
        assert value(samples, "mojo_compute_workers_alive") == 2
        assert value(samples, "mojo_compute_indicator_speedup", indicator="sma") > 10
        info = [k for k in samples if k[0] == "mojo_compute_info"]
        assert len(info) == 1 and ("simd", "on") in info[0][1]


def test_9_speedup_is_measured_again_on_its_interval():
    """9. With --speedup-interval 0.3 each worker re-measures, idle or busy: the gauge keeps changing."""
    with Service("--speedup-interval", "0.3", workers=1) as fresh:
        seen = set()
        for _ in range(8):
            seen.add(value(fresh.samples(), "mojo_compute_indicator_speedup", indicator="sma"))
            time.sleep(0.4)
        assert len(seen) >= 3 and min(seen) > 10
        with Client(fresh.socket) as client:  # and it kept serving
            assert client.ping()


def test_10_supervisor_priority():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if os.geteuid() != 0:
        pytest.skip("raising a process's priority needs CAP_SYS_NICE (root); CI runs as root")
    with Service("--supervisor-priority", "3", workers=2) as service:
        assert os.getpriority(os.PRIO_PROCESS, service.pid) == max(-20, base - 3)
        pids = service.wait_workers(2)
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids] == [base, base]
        with Client(service.socket) as client:
            assert client.ping()
    with Service(workers=1) as service:
        assert os.getpriority(os.PRIO_PROCESS, service.pid) == base  # off by default
    with Service("--supervisor-priority", "5", "--queue-limit", "0", "--worker-inflight", "1",
                 workers=1) as service:
        assert os.getpriority(os.PRIO_PROCESS, service.pid) == max(-20, base - 5)
        with Client(service.socket) as client:
            replies = client.pipeline([{"action": "debug_sleep", "seconds": 0.3}, {"action": "ping"}])
            assert [r.get("error_type") for r in replies] == [None, "Busy"]
            assert os.getpriority(os.PRIO_PROCESS, service.pid) == base  # refusing: no boost
            deadline = time.monotonic() + 10
            while os.getpriority(os.PRIO_PROCESS, service.pid) == base and time.monotonic() < deadline:
                time.sleep(0.05)
            assert time.monotonic() - (deadline - 10) >= 0.5  # not before the refusals had stopped a while
            assert os.getpriority(os.PRIO_PROCESS, service.pid) == max(-20, base - 5)
            assert client.ping()
