"""The :9090 endpoint, over real HTTP.

1. /metrics serves Prometheus text with the mojo_compute metrics, the
   Info line and the live pool state; with an OpenMetrics Accept header it
   answers OpenMetrics.
2. /health is JSON with status, workers alive/expected, connections and
   uptime; /ready is 200 while every worker is up, 503 when one is down or
   the service drains.
3. With basic auth configured, /metrics needs the right credentials (no
   header and wrong ones get 401); /health and /ready stay open.
4. With a certificate, the endpoint speaks TLS (checked with a real
   handshake against a self-signed certificate made by openssl).
5. Unknown paths get 404.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mojo_pool import prometheus_metrics as pm
from mojo_pool.exporter import Exporter, Health
from mojo_pool.pool_collector import PoolSnapshot, WorkerSlot


class Supervisor:
    """Stands in for the supervisor's live state: a real object the test drives."""

    def __init__(self) -> None:
        self.alive = 4
        self.draining = False
        self.started = time.time()

    def health(self) -> Health:
        return Health(self.alive, 4, 3, self.started, self.draining)


def get(url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture
def served():
    supervisor = Supervisor()
    pool = PoolSnapshot(queue_depth=2, queue_limit=64, workers_expected=1, workers=(WorkerSlot(0, os.getpid()),))
    exporter = Exporter(supervisor.health, "127.0.0.1", 0, pool=lambda: pool).start()
    yield supervisor, "http://%s:%d" % exporter.address
    exporter.stop()


def test_1_metrics_text_and_openmetrics(served) -> None:  # noqa: ANN001
    _, base = served
    pm.set_service_info(version="0.1.0")
    pm.record_error("EmptyPrices")
    status, headers, body = get(base + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    assert 'mojo_compute_info{version="0.1.0"} 1.0' in text
    assert 'mojo_compute_errors_total{error_type="EmptyPrices"}' in text
    assert "mojo_compute_queue_depth 2.0" in text and 'mojo_compute_worker_memory_bytes{slot="0"}' in text
    status, headers, body = get(base + "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_2_health_and_ready(served) -> None:  # noqa: ANN001
    supervisor, base = served
    status, _, body = get(base + "/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["workers_alive"] == 4 and health["workers_expected"] == 4
    assert health["active_connections"] == 3 and health["uptime_seconds"] >= 0
    assert get(base + "/ready")[0] == 200
    supervisor.alive = 3
    assert get(base + "/ready")[0] == 503
    assert json.loads(get(base + "/health")[2])["status"] == "degraded"
    supervisor.alive, supervisor.draining = 4, True
    assert get(base + "/ready")[0] == 503


def test_3_basic_auth() -> None:
    supervisor = Supervisor()
    exporter = Exporter(supervisor.health, "127.0.0.1", 0, basic_auth=("prom", "s3cret")).start()
    base = "http://%s:%d" % exporter.address
    try:
        def auth(user: str, password: str) -> dict[str, str]:
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

        assert get(base + "/metrics")[0] == 401
        assert get(base + "/metrics", auth("prom", "wrong"))[0] == 401
        assert get(base + "/metrics", auth("prom", "s3cret"))[0] == 200
        assert get(base + "/health")[0] == 200 and get(base + "/ready")[0] == 200
    finally:
        exporter.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_4_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    supervisor = Supervisor()
    exporter = Exporter(supervisor.health, "127.0.0.1", 0, certfile=str(cert), keyfile=str(key)).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        status, _, body = get("https://%s:%d/metrics" % exporter.address, context=context)
        assert status == 200 and b"# HELP mojo_compute_requests_total" in body
        with pytest.raises(urllib.error.URLError):
            get("https://%s:%d/health" % exporter.address, context=ssl.create_default_context())
    finally:
        exporter.stop()


def test_5_unknown_path(served) -> None:  # noqa: ANN001
    _, base = served
    assert get(base + "/nope")[0] == 404
