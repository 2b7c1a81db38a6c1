"""Faults and signals, on a real service.

1. kill -9 of the worker computing a request: the client still gets the
   right answer (re-sent to the other worker), the slot gets a new worker,
   and the restart is counted with reason "killed".
2. A request that kills every worker it touches is re-sent once, then
   answered with WorkerLost; the service keeps serving.
3. A worker stuck past the request deadline: the client gets TimeoutError
   at the deadline, the worker is replaced, the other one kept serving.
4. Past the queue bound, requests get Busy at once; the admitted ones are
   answered.
5. SIGTERM with requests in flight: every accepted request is answered,
   new connections are refused, the service exits 0.
6. SIGHUP under load: every worker replaced, no request fails, never fewer
   ready workers than configured.
7. SIGTTIN adds a worker, SIGTTOU removes one; SIGINT stops at once.
8. Workers that cannot start stop the service with a clear error instead
   of crash-looping.
9. The supervisor killed with SIGKILL leaves no orphaned workers.
10. With its stdout closed (the reader died), SIGTERM still drains and exits.
"""
from __future__ import annotations

import os
import subprocess
import sys
import signal
import socket
import threading
import time

import numpy as np
import orjson
import pytest

from mojo_pool import indicators
from mojo_pool.client import Busy, Client, ServiceTimeout, WorkerLost, encode_request
from service import Service, value


def prices(n: int = 500) -> np.ndarray:
    return 100.0 + np.cumsum(np.random.default_rng(11).normal(size=n))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def counters(samples: dict) -> dict:
    return {k: v for k, v in samples.items()
            if k[0].endswith(("_total", "_count", "_sum", "_bucket")) and k[0] != "mojo_compute_active_connections"}


def test_1_kill_9_mid_request_loses_nothing():
    with Service(workers=2) as service:
        pids = service.worker_pids()
        with Client(service.socket) as client:
            client.pipeline([{"action": "compute_sma", "prices": prices(), "period": 20}] * 50)
            before = counters(service.samples())
            # Two requests in flight, one per worker; slot 0's worker is killed.
            results = service.kill_during({"action": "debug_sleep", "seconds": 1.0}, pids[0])
            assert [r["status"] for r in results] == ["ok", "ok"]
            assert pids[0] not in [r["pid"] for r in results]
            close = prices()
            np.testing.assert_array_equal(client.compute("sma", close, timeperiod=9),
                                          indicators.sma(close, timeperiod=9))
        new = service.wait_workers(2, exclude={pids[0]})
        assert pids[1] in new
        after = service.samples()
        assert value(after, "mojo_compute_worker_restarts_total", reason="killed") == 1
        # The respawned worker continues its slot's files: no counter went back.
        decreased = {k: (v, after.get(k)) for k, v in before.items() if after.get(k, 0.0) < v}
        assert decreased == {}
        assert value(after, "mojo_compute_requests_total", action="compute_sma", status="success") >= 51


def test_2_a_request_that_kills_workers_gets_worker_lost():
    with Service(workers=2) as service:
        with Client(service.socket) as client:
            with pytest.raises(WorkerLost):
                client.request({"action": "debug_crash"})
            assert client.ping()
        service.wait_workers(2)
        assert value(service.samples(), "mojo_compute_errors_total", error_type="WorkerLost") == 1


def test_3_timeout_replaces_the_stuck_worker():
    with Service("--request-timeout", "1.0", workers=2) as service:
        pids = service.worker_pids()
        stuck: dict = {}
        with Client(service.socket) as slow, Client(service.socket) as fast:
            started = time.monotonic()
            thread = threading.Thread(target=lambda: stuck.update(
                error=pytest.raises(ServiceTimeout, slow.request, {"action": "debug_sleep", "seconds": 30,
                                                                   "id": "stuck"})))
            thread.start()
            time.sleep(0.2)
            for _ in range(20):  # the other worker keeps serving meanwhile
                assert fast.ping()
            thread.join(10)
            elapsed = time.monotonic() - started
            assert stuck["error"].value.reply["id"] == "stuck"
            assert 0.9 <= elapsed < 5.0
            assert fast.ping()
        new = service.wait_replaced(pids, 1)
        assert len(set(new) - set(pids)) == 1
        samples = service.samples()
        assert value(samples, "mojo_compute_worker_restarts_total", reason="timeout") == 1
        assert value(samples, "mojo_compute_requests_rejected_total", reason="timeout") == 1
        assert value(samples, "mojo_compute_errors_total", error_type="TimeoutError") == 1


def test_4_busy_past_the_queue_bound():
    with Service("--queue-limit", "2", "--worker-inflight", "1", workers=1) as service:
        with Client(service.socket) as client:
            requests = [{"action": "debug_sleep", "seconds": 0.3, "id": k} for k in range(8)]
            started = time.monotonic()
            replies = client.pipeline(requests)
            statuses = [(r["id"], r["status"], r.get("error_type")) for r in replies]
        # One in the worker, two queued, the rest refused at once.
        assert [s[1] for s in statuses[:3]] == ["ok"] * 3
        assert all(s[1:] == ("error", "Busy") for s in statuses[3:])
        assert time.monotonic() - started < 5
        samples = service.samples()
        assert value(samples, "mojo_compute_requests_rejected_total", reason="busy") == 5
        assert value(samples, "mojo_compute_errors_total", error_type="Busy") == 5
        with Client(service.socket) as client, pytest.raises(Busy):
            client.pipeline([{"action": "debug_sleep", "seconds": 0.2}] * 5, raise_errors=True)


def test_5_sigterm_answers_everything_accepted():
    service = Service("--drain-timeout", "20", workers=2)
    try:
        close = prices()
        requests = [{"action": "debug_sleep", "seconds": 0.1, "id": k} for k in range(12)]
        requests += [{"action": "compute_sma", "prices": close, "period": 5, "id": 100 + k} for k in range(20)]
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(service.socket)
            bodies = [encode_request(r, False) for r in requests]
            sock.sendall(b"".join(len(b).to_bytes(4, "big") + b for b in bodies))
            time.sleep(0.2)  # every frame read by the supervisor: accepted
            service.signal(signal.SIGTERM)
            time.sleep(0.1)
            with pytest.raises((ConnectionRefusedError, FileNotFoundError)):
                socket.socket(socket.AF_UNIX).connect(service.socket)
            replies = [orjson.loads(frame) for frame in _read_frames(sock, len(requests) + 1)]
        assert [r["id"] for r in replies] == [r["id"] for r in requests]
        assert all(r["status"] == "ok" for r in replies)
        assert service.wait(30) == 0
        assert "drained" in service.output
    finally:
        service.stop()


def _read_frames(sock: socket.socket, count: int) -> list[bytes]:
    sock.setblocking(True)
    sock.settimeout(30)
    frames = []
    buffer = b""
    while len(frames) < count:  # until the count, or the service closes the connection
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buffer += chunk
        while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
            length = int.from_bytes(buffer[:4], "big")
            frames.append(buffer[4:4 + length])
            buffer = buffer[4 + length:]
    return frames


def test_6_sighup_replaces_workers_without_a_failure():
    with Service(workers=2) as service:
        before = set(service.worker_pids())
        close = prices(300)
        expected = indicators.ema(close, timeperiod=10)
        failures: list[object] = []
        low_water: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with Client(service.socket) as client:
                while not stop.is_set():
                    try:
                        np.testing.assert_array_equal(client.compute("ema", close, timeperiod=10), expected)
                    except Exception as exc:  # noqa: BLE001 - collected and asserted below
                        failures.append(exc)

        def watch() -> None:
            while not stop.is_set():
                low_water.append(service.health()["workers_alive"])
                time.sleep(0.01)

        threads = [threading.Thread(target=load) for _ in range(3)] + [threading.Thread(target=watch)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        service.signal(signal.SIGHUP)
        after = service.wait_workers(2, exclude=before)
        time.sleep(0.3)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert failures == []
        assert min(low_water) == 2
        assert not set(after) & before
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in before)
        assert value(service.samples(), "mojo_compute_worker_restarts_total", reason="reload") == 2


def test_7_ttin_and_ttou():
    with Service(workers=1) as service:
        service.signal(signal.SIGTTIN)
        service.wait_workers(2)
        assert service.health()["workers_expected"] == 2
        pids = service.worker_pids()
        service.signal(signal.SIGTTOU)
        service.wait_workers(1)
        with Client(service.socket) as client:
            assert client.ping()
        remaining = service.worker_pids()
        # INT stops at once: exit 0, workers gone, socket removed.
        service.signal(signal.SIGINT)
        assert service.wait(10) == 0
        assert not any(alive(pid) for pid in pids + remaining)
        assert not os.path.exists(service.socket)


def test_8_workers_that_cannot_start_stop_the_service():
    service = Service("--start-failures", "3", workers=1, env={"MOJO_POOL_KERNELS": "no-such-backend"},
                      wait_ready=False)
    try:
        assert service.wait(60) == 1
        assert "failed to start 3 times in a row" in service.output
        assert "MOJO_POOL_KERNELS" in service.output  # the worker's own reason is shown
    finally:
        service.stop()


def test_9_no_orphans_when_the_supervisor_dies():
    with Service(workers=2) as service:
        pids = service.worker_pids()
        service.signal(signal.SIGKILL)
        service.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids)


def test_10_sigterm_works_with_stdout_gone(tmp_path):
    """The reader of the service's stdout died (a closed pipe): TERM still drains and exits."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mojo_pool", "serve", "--socket", str(tmp_path / "s.sock"), "--port", "0",
         "--metrics-port", "0", "--workers", "1", "--metrics-dir", str(tmp_path / "metrics")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if ": ready:" in line:
                break
        process.stdout.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
