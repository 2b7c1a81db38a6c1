"""Limits that protect the service from its clients.

1. Past --max-connections a new connection gets one clear error frame and is
   closed; once a connection closes, new ones are accepted again.
2. --idle-timeout closes a connection that sent half a frame and stalled
   (slowloris), but never one whose request is still being computed.
3. 10,000 random action names, symbols and unknown error-provoking fields
   add no metric series: every label value comes from a closed set.
4. The Unix socket is created with mode 0660 by default, and --socket-mode
   changes it.
5. Overload: with the queue full, further requests are refused with Busy
   while the admitted ones are computed, and the service serves normally
   right after.
6. An unexpected exception while handling a request costs that request an
   InternalError reply with no stack trace or detail; the worker lives on.
7. --max-queue-wait: while the only worker is busy, queued requests get
   Busy once they have waited that long (not after the worker frees up),
   the request being computed still completes, and the next ones are
   served at once; the refusals are counted as busy.
8. Arrays of 10**7 elements: numbers are computed and answered in full,
   strings and nulls get a TypeError reply, arrays of arrays (past the
   exact parser's 8 MiB) an InvalidRequest one; the service keeps serving,
   the worker's peak stays far below what a Python object per element
   would take, and the private memory of the supervisor and of the worker
   is back near where it started (the shared rings aside).
"""
from __future__ import annotations

import os
import random
import socket
import stat
import struct
import threading
import time

from mojo_pool import metrics
from mojo_pool.client import Client
from service import Service, read_reply, value


def test_1_max_connections():
    with Service("--max-connections", "3", workers=1) as service:
        clients = [Client(service.socket) for _ in range(3)]
        for client in clients:
            assert client.ping()
        with socket.socket(socket.AF_UNIX) as extra:
            extra.connect(service.socket)
            refusal = read_reply(extra)
            assert refusal is not None and refusal["status"] == "error" and "too many connections" in refusal["error"]
            assert extra.recv(1) == b""  # closed after the refusal
        clients[0].close()
        time.sleep(0.2)
        with Client(service.socket) as again:
            assert again.ping()
        for client in clients[1:]:
            assert client.ping()
            client.close()
        assert value(service.samples(), "mojo_compute_requests_rejected_total", reason="connections") == 1


def test_2_idle_timeout_closes_stalled_frames_only():
    with Service("--idle-timeout", "0.5", workers=1) as service:
        with socket.socket(socket.AF_UNIX) as stalled, Client(service.socket) as busy:
            stalled.connect(service.socket)
            stalled.sendall(struct.pack(">I", 1000) + b'{"action": "pi')  # half a frame, then nothing
            result: dict = {}
            thread = threading.Thread(target=lambda: result.update(
                busy.request({"action": "debug_sleep", "seconds": 2.0})))
            thread.start()
            stalled.settimeout(10)
            started = time.monotonic()
            assert stalled.recv(1) == b""  # closed by the service
            assert time.monotonic() - started < 5
            thread.join(10)
            assert result["status"] == "ok"  # computing for 2 s, yet not idle
        assert value(service.samples(), "mojo_compute_requests_rejected_total", reason="idle") >= 1


def test_3_random_names_add_no_series():
    with Service("--queue-limit", "20000", workers=2) as service:
        before = service.samples()
        rng = random.Random(5)
        requests = []
        for k in range(10_000):
            kind = k % 3
            if kind == 0:
                requests.append({"action": f"compute_{rng.getrandbits(40):x}", "prices": [1.0, 2.0]})
            elif kind == 1:
                requests.append({"action": "compute_sma", "symbol": f"S{rng.getrandbits(40):x}",
                                 "prices": [1.0, 2.0, 3.0], "period": 2})
            else:
                requests.append({"action": "compute_sma", f"field_{rng.getrandbits(40):x}": 1, "prices": [1.0]})
        with Client(service.socket) as client:
            replies = client.pipeline(requests)
        assert sum(r["status"] == "ok" for r in replies) == 3333
        after = service.samples()
        new_series = set(after) - set(before)
        labels = {dict(key[1]).get("action") for key in new_series} | {dict(key[1]).get("error_type")
                                                                       for key in new_series}
        assert labels <= metrics.ACTIONS | metrics.ERROR_TYPES | {None, "unknown"}
        assert len(new_series) < 120, sorted(new_series)[:20]
        assert value(after, "mojo_compute_requests_total", action="unknown", status="error") == 3334


def test_4_socket_mode():
    with Service(workers=1) as service:
        mode = os.stat(service.socket).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    with Service("--socket-mode", "600", workers=1) as service:
        assert stat.S_IMODE(os.stat(service.socket).st_mode) == 0o600


def test_5_overload_refuses_then_recovers():
    with Service("--queue-limit", "4", "--worker-inflight", "1", workers=1) as service:
        with Client(service.socket) as client:
            offered = [{"action": "debug_sleep", "seconds": 0.05, "id": k} for k in range(100)]
            replies = client.pipeline(offered)
            ok = [r for r in replies if r["status"] == "ok"]
            busy = [r for r in replies if r.get("error_type") == "Busy"]
            assert len(ok) + len(busy) == 100
            assert 5 <= len(ok) < 100 and busy
            assert [r["id"] for r in replies] == list(range(100))  # order kept, nothing lost
            for _ in range(20):  # load gone: served at once
                assert client.ping()
        samples = service.samples()
        assert value(samples, "mojo_compute_requests_rejected_total", reason="busy") == len(busy)
        assert value(samples, "mojo_compute_queue_depth") == 0


def test_6_internal_errors_do_not_leak():
    with Service(workers=1) as service:
        pid = service.worker_pids()[0]
        with Client(service.socket) as client:
            reply = client.pipeline([{"action": "debug_raise"}])[0]
            assert reply["error_type"] == "InternalError"
            assert "secret" not in reply["error"] and "Traceback" not in reply["error"] and "passwd" not in reply["error"]
            assert client.ping()
        assert service.worker_pids() == [pid]
        assert value(service.samples(), "mojo_compute_errors_total", error_type="InternalError") == 1


def test_7_max_queue_wait_bounds_the_wait():
    with Service("--max-queue-wait", "0.2", "--worker-inflight", "1", workers=1) as service:
        with Client(service.socket) as slow, Client(service.socket) as queued:
            result: dict[str, object] = {}
            runner = threading.Thread(target=lambda: result.update(
                reply=slow.request({"action": "debug_sleep", "seconds": 1.5, "id": "slow"})))
            runner.start()
            time.sleep(0.1)  # the slow request holds the only worker
            started = time.monotonic()
            replies = queued.pipeline([{"action": "ping", "id": k} for k in range(5)])
            waited = time.monotonic() - started
            assert [r.get("error_type") for r in replies] == ["Busy"] * 5
            assert [r["id"] for r in replies] == list(range(5))
            assert all("0.2 s" in r["error"] for r in replies)
            # Refused by the queue-wait bound, not when the worker freed up at 1.5 s.
            assert waited < 1.0
            runner.join(10)
            assert result["reply"]["status"] == "ok" and result["reply"]["id"] == "slow"
            for _ in range(10):
                assert queued.ping()
        samples = service.samples()
        assert value(samples, "mojo_compute_requests_rejected_total", reason="busy") == 5


def private_mb(pid: int) -> float:
    """Anonymous resident memory: the shared rings' pages (RssShmem) are not counted."""
    status = open(f"/proc/{pid}/status").read()
    return int(status.split("RssAnon:")[1].split()[0]) / 1024


def exchange(path: str, body: bytes) -> dict:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.settimeout(120)
        sock.sendall(struct.pack(">I", len(body)) + body)
        reply = read_reply(sock)
    assert reply is not None, "closed before the reply"
    return reply


def test_8_ten_million_element_arrays():
    count = 10**7

    def request(element: bytes) -> bytes:
        return b'{"action":"compute_sma","period":20,"prices":[' + b",".join([element] * count) + b"]}"

    with Service(workers=1) as service:
        with Client(service.socket) as client:
            client.pipeline([{"action": "compute_sma", "prices": [1.0] * 1000, "period": 5}] * 50)
        [worker] = service.worker_pids()
        supervisor_before, worker_before = private_mb(service.pid), private_mb(worker)

        reply = exchange(service.socket, request(b"1.5"))  # 38 MB of JSON
        assert reply["status"] == "ok" and len(reply["values"]) == count
        assert reply["values"][18] is None and reply["values"][19] == 1.5 and reply["values"][-1] == 1.5
        for element, kind in ((b'"x"', "str"), (b"null", "NoneType")):
            reply = exchange(service.socket, request(element))
            assert reply["error_type"] == "TypeError" and f"numbers only, found {kind}" in reply["error"]
        reply = exchange(service.socket, request(b"[1]"))
        assert reply["error_type"] == "InvalidRequest" and "8 MiB" in reply["error"]
        # One Python object per element took the worker past 1 GB (measured: 1,000 MB for the
        # strings, 1,267 MB for the arrays of arrays); simdjson's own tape for the arrays of
        # arrays is what is left (peak 692 MB, the numbers 465 MB).
        peak = int(open(f"/proc/{worker}/status").read().split("VmHWM:")[1].split()[0]) / 1024
        assert peak < 850
        with Client(service.socket) as client:
            assert client.ping()
            assert client.request({"action": "compute_sma", "prices": [1.0, 2.0, 3.0], "period": 2})["values"] == \
                [None, 1.5, 2.5]
        assert service.worker_pids() == [worker]  # no worker died on the way
        # A leak of the 80 MB array, or of the 10**7 strings (1 GB at the worker's
        # peak), would be far past these bounds.
        assert private_mb(service.pid) < supervisor_before + 16
        assert private_mb(worker) < worker_before + 48
