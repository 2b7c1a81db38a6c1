"""The shipped operations files, proven against the real programs.

1. ``promtool check config`` accepts monitoring/prometheus.yml,
   ``promtool check rules`` accepts monitoring/alerts.yml and
   ``promtool test rules`` passes monitoring/alerts_test.yml.
2. The dashboard is valid JSON with a Prometheus datasource variable and
   the panels operators expect.
3. A real Prometheus, started with the shipped config (only addresses and
   intervals changed), scrapes a real service under a known load with
   errors; through its HTTP API every dashboard expression and every alert
   expression parses and evaluates, and the request, error and duration
   figures equal what was sent.
4. The service runs under a real supervisord with the shipped
   supervisor.conf (paths moved to a temporary directory): it serves, and
   ``supervisorctl stop`` drains it and leaves no worker behind.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from mojo_pool.client import Client
from service import Service

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"


def program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package prometheus / PyPI supervisor)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_1_promtool_checks_and_rule_tests():
    promtool = program("promtool")
    for command in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                    ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run([promtool, *command], cwd=MONITORING, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "grafana_dashboard.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def alert_expressions() -> list[tuple[str, str]]:
    """(alert, expr) from alerts.yml, read without a YAML library: each rule's
    ``expr:`` line follows its ``- alert:`` line."""
    text = (MONITORING / "alerts.yml").read_text()
    return re.findall(r"- alert: (\w+)\n\s+expr: (.+)\n", text)


def test_2_dashboard_is_importable():
    dashboard = json.loads((MONITORING / "grafana_dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("Request rate", "p95 request duration", "indicator compute time", "Errors", "Active connections",
                   "Queue depth", "Workers alive", "restarts", "heatmap", "Speed-up", "Success rate"):
        assert wanted.lower() in titles.lower(), wanted
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert len(alert_expressions()) == 10


class Prometheus:
    def __init__(self, directory: Path, target: str) -> None:
        self.port = free_port()
        config = (MONITORING / "prometheus.yml").read_text()
        config = config.replace("127.0.0.1:9090", target).replace("127.0.0.1:9091", f"127.0.0.1:{self.port}")
        # Faster intervals so the test needs seconds, not minutes; nothing else changes.
        config = config.replace("scrape_interval: 5s", "scrape_interval: 1s").replace("scrape_timeout: 4s",
                                                                                      "scrape_timeout: 1s")
        config = config.replace("evaluation_interval: 5s", "evaluation_interval: 1s")
        (directory / "prometheus.yml").write_text(config)
        shutil.copy(MONITORING / "alerts.yml", directory / "alerts.yml")
        self.process = subprocess.Popen(
            [program("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--storage.tsdb.path={directory / 'data'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("prometheus did not start")

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{expr}: {exc.read().decode()}") from None
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def scalar(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_for(prometheus: Prometheus, expr: str, expected: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while prometheus.scalar(expr) != expected:
        assert time.monotonic() < deadline, f"{expr} never reached {expected}"
        time.sleep(0.25)


def panel_query(expr: str) -> str:
    return expr.replace("$__rate_interval", "30s").replace("$instance", ".*").replace("$host", ".*")


def test_3_real_prometheus_sees_what_was_sent(tmp_path):
    with Service(workers=2) as service:
        target = service.metrics_url.removeprefix("http://")
        prometheus = Prometheus(tmp_path, target)
        try:
            close = [100.0 + k * 0.1 for k in range(500)]
            sma_ok = {"action": "compute_sma", "prices": close, "period": 20}
            sma_bad = {"action": "compute_sma", "prices": []}
            rsi_ok = {"action": "compute_rsi", "prices": close}
            with Client(service.socket) as client:
                # One of each first, scraped before the rest: rate() needs each
                # series to exist before the increase it measures.
                client.pipeline([sma_ok, sma_bad, rsi_ok])
                wait_for(prometheus, 'sum(mojo_compute_request_duration_seconds_count{action="compute_sma"})', 2)
                time.sleep(1.5)
                client.pipeline([sma_ok] * 39 + [sma_bad] * 6 + [rsi_ok] * 4)
            wait_for(prometheus, 'sum(mojo_compute_request_duration_seconds_count{action="compute_sma"})', 47)
            time.sleep(2.5)  # one more scrape for rate()
            assert prometheus.scalar('up{job="mojo_pool"}') == 1
            sent = 'sum(mojo_compute_requests_total{action="compute_sma",status="success"})'
            assert prometheus.scalar(sent) == 40
            assert prometheus.scalar('sum(mojo_compute_requests_total{action="compute_sma",status="error"})') == 7
            assert prometheus.scalar('sum(mojo_compute_requests_total{action="compute_rsi"})') == 5
            assert prometheus.scalar('sum(mojo_compute_errors_total{error_type="EmptyPrices"})') == 7
            assert prometheus.scalar('sum(mojo_compute_workers_alive)') == 2

            results = {title + " :: " + expr: prometheus.query(panel_query(expr))
                       for title, expr in dashboard_expressions()}
            by_title = {key.split(" :: ")[0]: value for key, value in results.items()}
            rate = {r["metric"].get("action"): float(r["value"][1]) for r in by_title["Request rate by action"]}
            assert rate["compute_sma"] > 0 and rate["compute_rsi"] > 0
            errors = {r["metric"].get("error_type"): float(r["value"][1]) for r in by_title["Errors by type"]}
            assert errors["EmptyPrices"] > 0
            # In the window, after the first scrape: 39 + 4 of 49 requests succeeded.
            # rate() extrapolates each series to the window's edges by its own
            # factor (it depends on the series' first value), so the ratio is
            # close, not exact; the counters above are exact.
            success = float(by_title["Success rate"][0]["value"][1])
            assert abs(success - 43 / 49) < 0.03
            p95 = {r["metric"].get("action"): float(r["value"][1])
                   for r in by_title["p95 request duration by action"]}
            assert 0 < p95["compute_sma"] <= 0.1
            assert float(by_title["Workers alive / expected"][0]["value"][1]) == 2
            speedups = {r["metric"]["indicator"]: float(r["value"][1])
                        for r in by_title["Speed-up over pure Python, by indicator"]}
            assert speedups["sma"] > 1
            for alert, expr in alert_expressions():
                result = prometheus.query(expr)
                # A healthy pool fires nothing (the error rate stays under 0.1/s over 5m).
                assert alert in ("HighErrorRate",) or result == [], (alert, result)
        finally:
            prometheus.stop()


def test_4_supervisord_runs_and_stops_the_service(tmp_path):
    supervisord = program("supervisord")
    supervisorctl = program("supervisorctl")
    (tmp_path / "run").mkdir()
    (tmp_path / "log").mkdir()
    sock = tmp_path / "mojo.sock"
    conf = (ROOT / "supervisor.conf").read_text()
    conf = conf.replace("/opt/mojo_pool/.venv/bin/mojo-pool", str(Path(sys.executable).parent / "mojo-pool"))
    conf = conf.replace("/opt/mojo_pool", str(ROOT)).replace("/run/mojo_pool", str(tmp_path / "run"))
    conf = conf.replace("/var/log/mojo_pool", str(tmp_path / "log"))
    conf = conf.replace("serve --drain-timeout 30",
                        f"serve --drain-timeout 30 --socket {sock} --port 0 --metrics-port 0 --workers 2")
    assert f"--socket {sock}" in conf
    config = tmp_path / "supervisord.conf"
    config.write_text(conf)
    daemon = subprocess.Popen([supervisord, "-n", "-c", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    log = tmp_path / "log" / "mojo_pool.log"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (log.exists() and ": ready:" in log.read_text()):
            time.sleep(0.1)
        text = log.read_text()
        assert ": ready:" in text, text
        metrics = re.search(r"metrics on (http://[\d.]+:\d+)", text).group(1)
        with Client(str(sock)) as client:
            assert client.ping()
            assert len(client.compute("sma", [float(k) for k in range(100)], timeperiod=10)) == 100
        health = json.loads(urllib.request.urlopen(metrics + "/health", timeout=5).read())
        pids = [w["pid"] for w in health["workers"]]
        deadline = time.monotonic() + 30  # RUNNING once it has stayed up for startsecs
        while "RUNNING" not in (status := subprocess.run([supervisorctl, "-c", str(config), "status", "mojo_pool"],
                                                         capture_output=True, text=True).stdout):
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        service_pid = int(re.search(r"pid (\d+)", status).group(1))
        stopped = subprocess.run([supervisorctl, "-c", str(config), "stop", "mojo_pool"], capture_output=True,
                                 text=True, timeout=60)
        assert "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
        assert not alive(service_pid)
        assert not any(alive(pid) for pid in pids), "a worker outlived the service"
        assert "drained" in log.read_text()
        assert not sock.exists()
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
