"""Clients with several endpoints, and the drain grace load balancers rely on.

1. An endpoint that refuses connections is skipped: the client connects to
   the next one.
2. A host dying mid-request (its whole service SIGKILLed): the sync client
   sends the request again, once, to the next endpoint and gets the answer.
3. The asyncio client does the same for every call in flight.
4. SIGTERM with --drain-grace: /ready answers 503 at once while new
   connections are still served; after the grace the listener closes and
   the service exits 0.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

from mojo_pool import indicators
from mojo_pool.client import AsyncClient, Client
from service import Service


def test_1_refused_endpoint_is_skipped(tmp_path):
    with Service(workers=1) as service:
        with Client([str(tmp_path / "nobody.sock"), service.socket]) as client:
            assert client.ping()
            assert client.current == 1


def test_2_host_dies_mid_request():
    with Service(workers=1) as first, Service(workers=1) as second:
        close = 100.0 + np.cumsum(np.random.default_rng(2).normal(size=300))
        with Client([first.socket, second.socket]) as client:
            assert client.ping() and client.current == 0
            result: dict = {}
            thread = threading.Thread(target=lambda: result.update(
                client.request({"action": "debug_sleep", "seconds": 1.0})))
            thread.start()
            time.sleep(0.3)
            os.killpg(first.pid, signal.SIGKILL)
            thread.join(30)
            assert result["status"] == "ok" and result["pid"] in second.worker_pids()
            assert client.current == 1
            np.testing.assert_array_equal(client.compute("sma", close, timeperiod=5), indicators.sma(close, timeperiod=5))


def test_3_async_client_fails_over():
    with Service(workers=1) as first, Service(workers=1) as second:
        async def run() -> list[dict]:
            async with AsyncClient([first.socket, second.socket]) as client:
                assert await client.ping()
                calls = [asyncio.ensure_future(client.request({"action": "debug_sleep", "seconds": 0.5}))
                         for _ in range(3)]
                await asyncio.sleep(0.2)
                os.killpg(first.pid, signal.SIGKILL)
                return await asyncio.gather(*calls)

        replies = asyncio.run(run())
        assert [r["status"] for r in replies] == ["ok"] * 3
        assert {r["pid"] for r in replies} <= set(second.worker_pids())


def test_4_drain_grace_keeps_serving_while_not_ready():
    service = Service("--drain-grace", "1.5", workers=1)
    try:
        assert service.get("/ready")[0] == 200
        service.signal(signal.SIGTERM)
        time.sleep(0.3)
        assert service.get("/ready")[0] == 503
        with Client(service.socket) as client:  # a new connection, during the grace
            assert client.ping()
        assert service.wait(15) == 0
        with pytest.raises((ConnectionRefusedError, FileNotFoundError)):
            socket.socket(socket.AF_UNIX).connect(service.socket)
    finally:
        service.stop()
