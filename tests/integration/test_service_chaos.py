"""Chaos on a real service: random kills under load, and hostile bytes.

1. While three clients keep computing, a random worker is killed with
   SIGKILL every half second: no request fails, every reply is right, the
   workers come back to their slots, no counter in /metrics ever goes back
   between scrapes, and the metrics directory keeps a bounded set of files.
2. Hypothesis throws byte streams at the frame reader — truncated frames,
   lengths of 0 and 2**32-1, lengths that lie, invalid UTF-8, garbage: each
   connection gets typed error replies or a clean close, the service keeps
   answering, and the supervisor's memory returns to where it was.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import struct
import threading
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mojo_pool import indicators
from mojo_pool.client import Client
from service import Service


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def counters(samples: dict) -> dict:
    return {k: v for k, v in samples.items() if k[0].endswith(("_total", "_count", "_sum", "_bucket"))}


def test_1_random_kills_under_load_lose_nothing():
    with Service(workers=2) as service:
        close = 100.0 + np.cumsum(np.random.default_rng(3).normal(size=400))
        expected = indicators.rsi(close, timeperiod=14)
        stop = threading.Event()
        failures: list[object] = []
        answered = [0]

        def load() -> None:
            with Client(service.socket) as client:
                while not stop.is_set():
                    try:
                        np.testing.assert_array_equal(client.compute("rsi", close, timeperiod=14), expected)
                        answered[0] += 1
                    except Exception as exc:  # noqa: BLE001 - collected and asserted below
                        failures.append(exc)

        scrapes: list[dict] = []
        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        rng = random.Random(1)
        kills = 0
        for _ in range(8):
            time.sleep(0.5)
            pids = service.worker_pids()
            if pids:
                try:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            scrapes.append(counters(service.samples()))
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert failures == [], failures[:3]
        assert answered[0] > 100 and kills >= 6
        service.wait_workers(2)
        scrapes.append(counters(service.samples()))
        for earlier, later in zip(scrapes, scrapes[1:]):
            went_back = {k: (v, later.get(k)) for k, v in earlier.items() if later.get(k, 0.0) < v}
            assert went_back == {}
        files = os.listdir(service.directory / "metrics")
        # One set per worker-slot id (a respawn reuses its slot's id) plus the supervisor's.
        assert len(files) <= 8 * 5, files


FRAMES = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda n, body: struct.pack(">I", n) + body, st.sampled_from([0, 1, 5, 2**32 - 1, 2**31, 70_000_000]),
              st.binary(max_size=32)),
    st.builds(lambda body, lie: struct.pack(">I", len(body) + lie) + body,
              st.sampled_from([b'{"action": "ping"}', b"\xff\xfe\xfd", b"[" * 2000 + b"]" * 2000,
                               b'{"action": "compute_sma", "prices": [1e400]}', b"\x00\x00\x00\x01{"]),
              st.integers(-3, 3)),
)


def test_2_hostile_bytes_never_take_the_service_down():
    with Service("--max-frame-bytes", str(16 * 1024 * 1024), "--idle-timeout", "0.3", workers=1) as service:
        with Client(service.socket) as warm:
            warm.pipeline([{"action": "compute_sma", "prices": [1.0] * 1000, "period": 5}] * 200)
        baseline = rss_bytes(service.pid)

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(FRAMES, min_size=1, max_size=4))
        def attack(chunks: list[bytes]) -> None:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(service.socket)
                sock.settimeout(2.0)
                try:
                    sock.sendall(b"".join(chunks))
                    sock.shutdown(socket.SHUT_WR)
                    data = b""
                    while chunk := sock.recv(65536):  # replies until the service closes
                        data += chunk
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    data = b""
            # Whatever came back is whole frames of typed replies.
            offset = 0
            while offset < len(data):
                length = struct.unpack(">I", data[offset:offset + 4])[0]
                body = data[offset + 4:offset + 4 + length]
                assert len(body) == length
                assert b'"status"' in body
                offset += 4 + length
            with Client(service.socket) as client:
                assert client.ping()

        attack()
        assert service.process.poll() is None
        assert rss_bytes(service.pid) < baseline + 32 * 1024 * 1024
