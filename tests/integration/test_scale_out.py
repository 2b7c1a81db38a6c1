"""Scale-out, proven on this machine: three mojo_pool hosts, each in its own network
namespace with its own address, behind HAProxy (the shipped deploy/haproxy.cfg, host lines
filled in) in a fourth, with a real Prometheus discovering the hosts through file_sd (the
shipped monitoring/prometheus.yml and a target file like monitoring/targets/).

One test, scenarios in order (each under load through HAProxy; mojo_pool.client sends a
request again, once, on a new connection when its connection broke):
  1. requests spread across the three hosts (Prometheus: sum by (host) of requests);
  2. SIGKILL one host's process group: 0 failed requests; Prometheus sees it down and the
     HostDown expression returns it; restarted, it rejoins (HAProxy UP, new connections reach
     it) with no error;
  3. SIGTERM one host started with --drain-grace 2: HAProxy marks it DOWN through /ready (503)
     before the process exits; 0 failed requests.

Needs root, ip netns (iproute2), haproxy and prometheus; skips with the reason otherwise.
"""
from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from mojo_pool.client import Client, ServiceError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import netns  # noqa: E402
from test_monitoring import MONITORING, Prometheus, program  # noqa: E402

pytestmark = pytest.mark.timeout(150)

PRICES = [100.0 + (k % 37) * 0.25 for k in range(1000)]
REQUEST = {"action": "compute_sma", "prices": PRICES, "period": 20}


class Load:
    """Client threads through HAProxy. Each keeps a connection for 25 requests then opens a
    new one (as clients come and go); a request that fails after the client's one retry, or
    any error reply, is a failure."""

    def __init__(self, address: str, threads: int = 6) -> None:
        self.address = address
        self.stop_event = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        client = Client(self.address, timeout=20)
        count = 0
        try:
            while not self.stop_event.is_set():
                try:
                    # The client library sends a request again, once, on a new
                    # connection when its connection broke before the reply.
                    reply = client.request(REQUEST)
                    assert len(reply["values"]) == len(PRICES)
                    with self.lock:
                        self.ok += 1
                except (ConnectionError, OSError, ServiceError, AssertionError) as exc:
                    with self.lock:
                        self.failures.append(repr(exc))
                    client.close()
                count += 1
                if count % 25 == 0:
                    client.close()
                time.sleep(0.002)
        finally:
            client.close()

    def close(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)


def wait_until(predicate, timeout: float, what: str, step: float = 0.1):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(step)


def by_host(prometheus: Prometheus, expr: str) -> dict[str, float]:
    return {r["metric"].get("host", ""): float(r["value"][1]) for r in prometheus.query(expr)}


def test_three_hosts_behind_haproxy(tmp_path):
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    program("prometheus")
    help_text = __import__("subprocess").run([sys.executable, "-m", "mojo_pool", "serve", "--help"],
                                             capture_output=True, text=True).stdout
    assert "--drain-grace" in help_text, "mojo-pool serve lacks --drain-grace"

    lab = netns.Lab(hosts=3)
    prometheus = load = None
    try:
        hosts = lab.host_names
        serve_args = ("--drain-grace", "2", "--drain-timeout", "10")
        for name in hosts:
            lab.serve(name, tmp_path, extra=serve_args)
        lab.haproxy(netns.haproxy_config({name: lab.address[name] for name in hosts}), tmp_path)
        wait_until(lambda: all(s["status"] == "UP" for s in netns.stats(lab).values()), 10, "hosts never UP")

        # Prometheus with the shipped config; the hosts come from a file_sd target file.
        (tmp_path / "targets").mkdir()
        (tmp_path / "targets" / "mojo_pool_hosts.json").write_text(json.dumps(
            [{"targets": [f"{lab.address[name]}:9090"], "labels": {"host": name}} for name in hosts]))
        prometheus = Prometheus(tmp_path, "127.0.0.1:1")
        wait_until(lambda: prometheus.scalar('sum(up{job="mojo_pool_hosts"})') == 3, 20,
                   "Prometheus never scraped the three hosts")

        # 1. Load spreads across the hosts.
        address = f"tcp://{lab.address['lb']}:6101"
        load = Load(address)
        time.sleep(4)
        shares = wait_until(lambda: (s := by_host(prometheus, 'sum by (host) (mojo_compute_requests_total'
                                                  '{job="mojo_pool_hosts"})')) and len(s) == 3
                            and all(v > 0 for v in s.values()) and s, 10, "not every host served")
        total = sum(shares.values())
        assert all(v / total > 0.1 for v in shares.values()), shares
        dashboard = json.loads((MONITORING / "grafana_dashboard.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                # Every by-host panel shows the three hosts (errors: none were sent, no series).
                if "by (host)" in target["expr"] and "errors" not in target["expr"]:
                    expr = target["expr"].replace("$__rate_interval", "5s").replace("$host", ".*")
                    assert set(by_host(prometheus, expr)) == set(hosts), (panel["title"], expr)

        # 2. SIGKILL host h2's whole service under load.
        before = load.ok
        lab.kill("h2", signal.SIGKILL)
        lab.processes["h2"].wait(10)
        wait_until(lambda: netns.stats(lab)["h2"]["status"].startswith("DOWN"), 5, "HAProxy kept h2 UP")
        wait_until(lambda: prometheus.scalar('up{job="mojo_pool_hosts",host="h2"}') == 0, 10,
                   "Prometheus never saw h2 down")
        host_down = next(expr for alert, expr in __import__("test_monitoring").alert_expressions()
                         if alert == "HostDown")
        assert [r["metric"]["host"] for r in prometheus.query(host_down)] == ["h2"]
        time.sleep(1)
        assert load.ok > before + 50, "the load stalled while h2 was down"
        assert load.failures == [], load.failures

        # ... and back: it rejoins, new connections reach it, nothing fails.
        served_before = by_host(prometheus, 'sum by (host) (mojo_compute_requests_total{job="mojo_pool_hosts"})')
        lab.serve("h2", tmp_path, extra=serve_args)
        wait_until(lambda: netns.stats(lab)["h2"]["status"] == "UP", 10, "h2 never rejoined HAProxy")
        wait_until(lambda: prometheus.scalar('up{job="mojo_pool_hosts",host="h2"}') == 1, 10,
                   "Prometheus never saw h2 back")
        wait_until(lambda: prometheus.scalar('sum(mojo_compute_requests_total{job="mojo_pool_hosts",host="h2"})')
                   > 20, 15, "h2 got no requests after rejoining")
        assert prometheus.query(host_down) == []
        assert served_before.get("h2", 0) >= 0
        assert load.failures == [], load.failures

        # 3. SIGTERM host h3 under load: /ready turns 503, HAProxy marks it DOWN while it still
        #    serves (--drain-grace 2), then it drains and exits; nothing fails.
        before = load.ok
        process = lab.processes["h3"]
        lab.kill("h3", signal.SIGTERM)
        down_at = exited_at = None
        check_code = ""
        deadline = time.monotonic() + 20
        while (down_at is None or exited_at is None) and time.monotonic() < deadline:
            now = time.monotonic()
            if down_at is None:
                row = netns.stats(lab)["h3"]
                if row["status"].startswith("DOWN") or row["status"].startswith("MAINT"):
                    down_at, check_code = now, row.get("check_code", "")
            if exited_at is None and process.poll() is not None:
                exited_at = now
            time.sleep(0.05)
        assert down_at is not None, "HAProxy never took h3 out"
        assert exited_at is not None, "h3 did not exit after SIGTERM"
        assert down_at < exited_at, "h3 stopped before HAProxy took it out of the pool"
        assert check_code == "503", check_code
        assert process.returncode == 0
        assert "drained" in (tmp_path / "h3.log").read_text()
        time.sleep(1)
        assert load.ok > before + 50
        assert load.failures == [], load.failures
        load.close()
        assert load.failures == [], load.failures
        assert load.ok > 500
    finally:
        if load is not None:
            load.close()
        if prometheus is not None:
            prometheus.stop()
        lab.close()
