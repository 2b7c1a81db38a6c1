"""Where a request's CPU goes: supervisor, workers, load generator.

Starts mojo_pool (2 workers unless --workers), drives it with
``benchmarks/load.py`` (16 connections, SMA-20 over 1,000 points, JSON), and
reads each process's user and system CPU from /proc over the run, as
microseconds per request. This is the measurement behind the README's
account of the supervisor-to-worker hop.

    flock /tmp/mojo_bench.lock python benchmarks/cpu_split.py [mojo-pool serve flags]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import Server  # noqa: E402
from mojo_pool.metrics_dir import default_parent  # noqa: E402

CLOCK = 100.0  # USER_HZ
# The load: 16 connections of SMA-20 over 1,000 points, JSON; MOJO_SPLIT_LOAD overrides
# (e.g. "-c 4 --binary --mix sma:1000000").
LOAD_ARGS = os.environ.get("MOJO_SPLIT_LOAD", "-c 16").split()
TRANSPORT = os.environ.get("MOJO_SPLIT_TRANSPORT", "unix")  # or "tcp", as compare.py drives it


def cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK, int(fields[12]) / CLOCK


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="mojo_split_", dir=default_parent()) as tmp:  # tmpfs, as the service's default
        path = f"{tmp}/split.sock"
        server = Server("split", "mojo_pool", [sys.executable, "-m", "mojo_pool", "serve", "--socket", path,
                                               "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
                                               "--metrics-dir", f"{tmp}/m", *(argv or ["--workers", "2"])],
                        kind="framed", ready_lines=(": ready:", 1), socket_path=path, transport=TRANSPORT)
        server.start()
        try:
            server.wait_ready()
            assert server.process is not None
            out = f"{tmp}/load.json"
            load = subprocess.Popen([sys.executable, str(HERE / "load.py"), server.target, *LOAD_ARGS, "--duration",
                                     "5", "--warmup", "1", "--quiet", "--json", out])
            time.sleep(1.5)
            pids = {"supervisor": server.process.pid}
            pids.update({f"worker {k}": pid for k, pid in enumerate(children(server.process.pid))})
            pids.update({f"load {k}": pid for k, pid in enumerate([load.pid, *children(load.pid)])})
            before = {name: cpu(pid) for name, pid in pids.items()}
            started = time.monotonic()
            time.sleep(3.0)
            after = {name: cpu(pid) for name, pid in pids.items()}
            elapsed = time.monotonic() - started
            load.wait(60)
            rate = json.loads(Path(out).read_text())["requests_per_s"]
        finally:
            server.stop()
    print(f"{rate:,.0f} requests/s")
    for name in pids:
        user = (after[name][0] - before[name][0]) / elapsed
        system = (after[name][1] - before[name][1]) / elapsed
        print(f"  {name:12s} {user:5.2f} + {system:5.2f} cores (user + system)  "
              f"{1e6 * (user + system) / rate:6.1f} us per request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
