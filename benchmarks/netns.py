"""Network namespaces standing in for machines: shared by tests/integration/test_scale_out.py
and benchmarks/haproxy_bench.py.

Topology (one /24 picked at random in 10.231-10.238.x):

    root namespace: bridge <tag>br, address .1 (Prometheus and the clients run here)
      |-- veth <tag>v1 <-> eth0 in <tag>-h1, address .11   mojo-pool serve
      |-- veth <tag>v2 <-> eth0 in <tag>-h2, address .12   mojo-pool serve
      |-- veth <tag>v3 <-> eth0 in <tag>-h3, address .13   mojo-pool serve
      `-- veth <tag>vlb <-> eth0 in <tag>-lb, address .10  haproxy

Everything created is recorded and removed by :meth:`Lab.close` (processes first, then
namespaces, veths and the bridge), also after a failure.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth, bridge)"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"ip netns unavailable: {probe.stderr.strip()}"
    return None


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class Lab:
    def __init__(self, hosts: int = 3) -> None:
        self.tag = "mp%04x" % random.randrange(1 << 16)
        self.net = f"10.{random.randrange(231, 239)}.{random.randrange(256)}"
        self.bridge = f"{self.tag}br"
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.processes: dict[str, subprocess.Popen] = {}
        self.host_names = [f"h{k}" for k in range(1, hosts + 1)]
        self.address = {f"h{k}": f"{self.net}.{10 + k}" for k in range(1, hosts + 1)}
        self.address["lb"] = f"{self.net}.10"
        self.address["root"] = f"{self.net}.1"
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            self.links.append(self.bridge)
            sh("ip", "addr", "add", f"{self.address['root']}/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            for name in [*self.host_names, "lb"]:
                self._namespace(name)
        except BaseException:
            self.close()
            raise

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def _namespace(self, name: str) -> None:
        ns, veth = self.ns(name), f"{self.tag}v{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(veth)
        sh("ip", "link", "set", veth, "master", self.bridge)
        sh("ip", "link", "set", veth, "up")
        sh("ip", "-n", ns, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    # ---- processes -------------------------------------------------------
    def start(self, key: str, name: str, argv: list[str], log: Path) -> subprocess.Popen:
        """Run argv inside namespace ``name`` in its own process group."""
        with open(log, "ab") as out:
            process = subprocess.Popen(["ip", "netns", "exec", self.ns(name), *argv], stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[key] = process
        return process

    def serve(self, name: str, log_dir: Path, workers: int = 1, extra: tuple[str, ...] = ()) -> subprocess.Popen:
        address = self.address[name]
        # Metrics files under log_dir: hosts end with SIGKILL, which leaves no
        # chance to remove a directory of the service's own.
        process = self.start(name, name, [sys.executable, "-m", "mojo_pool", "serve", "--host", address,
                                          "--metrics-host", address, "--workers", str(workers), "--socket", "",
                                          "--metrics-dir", str(log_dir / f"{name}-metrics"), *extra],
                             log_dir / f"{name}.log")
        wait_http(f"http://{address}:9090/ready", process, timeout=60)
        return process

    def haproxy(self, config_text: str, directory: Path) -> subprocess.Popen:
        """HAProxy in the lb namespace with ``config_text`` (host lines already filled in)."""
        config = directory / "haproxy.cfg"
        config.write_text(config_text)
        check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(check.stdout + check.stderr)
        process = self.start("haproxy", "lb", ["haproxy", "-db", "-f", str(config)], directory / "haproxy.log")
        wait_http(f"http://{self.address['lb']}:8404/stats", process, timeout=10)
        return process

    def kill(self, key: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[key]
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        for ns in self.namespaces:
            # Anything still running inside (a stray worker) goes with it.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()
        for link in reversed(self.links):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        self.links.clear()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_http(url: str, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url}: process exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.1)


HOST_LINES = re.compile(r"(    # ---- hosts:.*\n)(?:    server .*\n)+")


def haproxy_config(addresses: dict[str, str], source: Path = ROOT / "deploy" / "haproxy.cfg") -> str:
    """The shipped config with its `server` lines replaced by ``{name: address}``."""
    text = source.read_text()
    lines = "".join(f"    server {name} {address}:6101\n" for name, address in addresses.items())
    new, count = HOST_LINES.subn(lambda m: m.group(1) + lines, text)
    if count != 1:
        raise ValueError("deploy/haproxy.cfg: the host lines were not found")
    return new


def stats(lab: Lab) -> dict[str, dict[str, str]]:
    """HAProxy's stats CSV, by server name (backend mojo_pool_hosts)."""
    with urllib.request.urlopen(f"http://{lab.address['lb']}:8404/stats;csv", timeout=2) as response:
        rows = response.read().decode().splitlines()
    header = rows[0].lstrip("# ").split(",")
    out = {}
    for row in rows[1:]:
        fields = dict(zip(header, row.split(",")))
        if fields.get("pxname") == "mojo_pool_hosts":
            out[fields["svname"]] = fields
    return out
