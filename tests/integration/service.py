"""A real mojo_pool service in a subprocess, for integration tests.

Starts ``python -m mojo_pool serve`` on a temporary Unix socket and free TCP
and metrics ports (port 0: the service prints what it bound), waits for its
"ready" line, and stops it at the end, killing the whole process group if it
does not stop by itself.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mojo_pool.protocol import decode

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Service:
    def __init__(self, *args: str, workers: int = 2, env: dict[str, str] | None = None,
                 wait_ready: bool = True) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="mojo_pool_test_"))
        self.socket = str(self.directory / "mojo.sock")
        command = [sys.executable, "-m", "mojo_pool", "serve", "--socket", self.socket, "--port", "0",
                   "--metrics-port", "0", "--workers", str(workers),
                   "--metrics-dir", str(self.directory / "metrics"), *args]
        environment = {**os.environ, "MOJO_POOL_DEBUG_ACTIONS": "1", **(env or {})}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=environment, start_new_session=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.listening = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.listening.wait(60):
            self.stop()
            raise RuntimeError("service did not start:\n" + self.output)
        if wait_ready and not self.ready.wait(60):
            self.stop()
            raise RuntimeError("service did not get ready:\n" + self.output)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            match = re.search(r"tcp://([\d.]+):(\d+).*metrics on https?://([\d.]+):(\d+)", line)
            if match:
                self.tcp = (match.group(1), int(match.group(2)))
                self.metrics_url = f"http://{match.group(3)}:{match.group(4)}"
                self.listening.set()
            if ": ready:" in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: int) -> None:
        os.kill(self.process.pid, sig)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.reader.join(5)

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the HTTP endpoint ---------------------------------------------
    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> dict:
        return json.loads(self.get("/health")[1])

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.health()["workers"] if not w["retiring"]]

    def wait_workers(self, count: int, exclude: set[int] = frozenset(), timeout: float = 30) -> list[int]:
        """Wait until ``count`` ready workers run, none of them in ``exclude``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = [w for w in self.health()["workers"] if not w["retiring"]]
            pids = [w["pid"] for w in workers if w["ready"]]
            if len(pids) == count and len(workers) == count and not set(pids) & set(exclude):
                return pids
            time.sleep(0.05)
        raise AssertionError(f"workers did not come back: {self.health()}\n{self.output}")

    def wait_replaced(self, pids: list[int], count: int, timeout: float = 30) -> list[int]:
        """Wait until exactly ``count`` of ``pids`` were replaced by new ready workers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = [w for w in self.health()["workers"] if not w["retiring"]]
            current = [w["pid"] for w in workers if w["ready"]]
            if len(current) == len(pids) == len(workers) and len(set(pids) - set(current)) == count:
                return current
            time.sleep(0.05)
        raise AssertionError(f"{count} worker(s) were not replaced: {self.health()}\n{self.output}")

    def kill_during(self, request: dict, pid: int, after: float = 0.3) -> list[dict]:
        """Send ``request`` on two connections at once (one per worker), SIGKILL ``pid``
        ``after`` seconds in, and return both replies."""
        from mojo_pool.client import Client

        results: list[dict] = []

        def call() -> None:
            with Client(self.socket) as own:
                results.append(own.request(request))

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(after)
        os.kill(pid, signal.SIGKILL)
        for thread in threads:
            thread.join(30)
        return results

    def samples(self) -> Samples:
        status, body = self.get("/metrics")
        assert status == 200
        out: Samples = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def read_reply(sock: socket.socket) -> dict | None:
    """One reply frame from a raw socket, decoded (a binary reply's arrays as
    numpy arrays); None if the peer closed before the frame began. The body
    is received into one buffer of its announced size: replies of 10**7
    values are hundreds of MB."""
    head = sock.recv(4, socket.MSG_WAITALL)
    if len(head) < 4:
        return None
    body = bytearray(struct.unpack(">I", head)[0])
    view = memoryview(body)
    have = 0
    while have < len(body):
        received = sock.recv_into(view[have:])
        assert received, "closed mid-reply"
        have += received
    return decode(bytes(body))
