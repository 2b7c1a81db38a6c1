"""The HTTP endpoint on :9090: /metrics, /health and /ready.

Built from the standard library and prometheus_client, nothing hand-rolled:
``prometheus_client.make_wsgi_app`` renders /metrics (and switches to
OpenMetrics when the scraper's Accept header asks for it), ``wsgiref``
serves it from a daemon thread as prometheus_client's own
``start_http_server`` does, and ``ssl`` wraps the socket when a certificate
is configured. Basic auth, when configured, guards /metrics only: health
checks from load balancers stay unauthenticated.

/health is JSON (status, workers alive/expected, active connections,
uptime); /ready answers 200 only while every worker is up and the service is
not draining, 503 otherwise, so a load balancer drops a host before it fails
requests.
"""
from __future__ import annotations

import base64
import hmac
import json
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from . import metrics, prometheus_metrics
from .pool_collector import PoolCollector, PoolSnapshot

StartResponse = Callable[..., object]


@dataclass(frozen=True)
class Health:
    """What the supervisor reports about itself at one instant."""

    workers_alive: int
    workers_expected: int
    active_connections: int
    started_at: float  # time.time() when the service started
    draining: bool = False
    workers: tuple[dict[str, object], ...] = ()  # slot, pid, cpu, ready of each current worker

    @property
    def ready(self) -> bool:
        return not self.draining and self.workers_alive >= self.workers_expected

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ready else ("draining" if self.draining else "degraded"),
            "workers_alive": self.workers_alive,
            "workers_expected": self.workers_expected,
            "active_connections": self.active_connections,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "workers": list(self.workers),
        }


def scrape_registry(pool: Callable[[], PoolSnapshot] | None = None) -> CollectorRegistry:
    """One registry for /metrics: the process metrics, the supervisor-local
    ones and, given a snapshot source, the live pool state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged())
    registry.register(metrics.LOCAL_REGISTRY)
    if pool is not None:
        registry.register(PoolCollector(pool))
    return registry


class _Merged:
    """The process metrics, re-resolved at every scrape (files come and go)."""

    def collect(self):  # noqa: ANN201 - prometheus_client's Collector interface
        return prometheus_metrics.exposition_registry().collect()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Scrapes every 5 s would flood the log; errors still surface as 5xx."""


class Exporter:
    """The metrics/health HTTP server, running in a daemon thread."""

    def __init__(self, health: Callable[[], Health], host: str = "127.0.0.1", port: int = 9090, *,
                 pool: Callable[[], PoolSnapshot] | None = None, certfile: str | None = None,
                 keyfile: str | None = None, basic_auth: tuple[str, str] | None = None) -> None:
        self.health = health
        self.metrics_app = make_wsgi_app(scrape_registry(pool))
        self.expected_auth = (
            "Basic " + base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            if basic_auth else None
        )
        self.server = make_server(host, port, self.app, ThreadingWSGIServer, handler_class=_QuietHandler)
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="mojo-pool-exporter", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> "Exporter":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def app(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/health", "/ready"):
            state = self.health()
            code = "200 OK" if path == "/health" or state.ready else "503 Service Unavailable"
            body = json.dumps(state.as_json()).encode()
            start_response(code, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/metrics":
            if self.expected_auth and not hmac.compare_digest(
                    environ.get("HTTP_AUTHORIZATION", "").encode(), self.expected_auth.encode()):
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="mojo_pool"'),
                                                    ("Content-Length", "0")])
                return [b""]
            return self.metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /health or /ready\n"]
