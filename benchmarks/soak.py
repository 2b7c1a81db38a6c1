"""Soak: mojo_pool under sustained load while things go wrong.

The integration tests prove each fault once, in seconds; this runs them for
as long as you like and reports what a trading desk would ask:

1. ``kill``: load runs while a random worker is killed with SIGKILL every
   ``--kill-every`` seconds. Reported: requests and failures (must be 0),
   worker restarts counted in /metrics, whether any counter went backwards
   between the once-a-second scrapes, and the metric files left behind.
2. ``hup``: the same with SIGHUP every few seconds (every worker replaced,
   new ones first): failures must be 0.
3. ``overload``: an open-loop load at ``--overload`` times the measured
   capacity against a bounded queue. Reported: how fast the excess gets
   ``Busy`` (a probe connection times its Busy replies), the p99 of the
   admitted requests as the generator saw them and, from the service's
   queue-time histogram, how long they waited inside the service, the
   supervisor's RSS before, during and after, and a closed-loop run right
   after the storm (recovery).

    flock /tmp/mojo_bench.lock python benchmarks/soak.py --duration 60
    flock /tmp/mojo_bench.lock python benchmarks/soak.py --only overload --overload 10
    flock /tmp/mojo_bench.lock python benchmarks/soak.py --only kill --binary \
        --mix sma:1000,sma:300000,bbands:200000 --ring-bytes 16777216   # large frames, both paths

Results: printed, and written as JSON to ``benchmarks/results/soak-<UTC>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import load  # noqa: E402
from compare import Server, _free_port  # noqa: E402
from mojo_pool.metrics_dir import default_parent  # noqa: E402

SMALL = "sma:1000"


def start(directory: Path, workers: int, *extra: str) -> tuple[Server, str]:
    metrics_port = _free_port()
    path = str(directory / "soak.sock")
    server = Server("soak", f"mojo_pool {workers} workers",
                    [sys.executable, "-m", "mojo_pool", "serve", "--socket", path, "--host", "127.0.0.1", "--port", "0",
                     "--metrics-port", str(metrics_port), "--workers", str(workers), "--metrics-dir",
                     str(directory / "metrics"), *extra],
                    kind="framed", ready_lines=(": ready:", 1), socket_path=path, transport="unix")
    server.start()
    server.wait_ready()
    return server, f"http://127.0.0.1:{metrics_port}"


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def queue_wait_buckets(url: str) -> dict[float, float]:
    """Cumulative counts of ``mojo_compute_queue_time_seconds`` by bucket bound."""
    return {float(dict(labels)["le"]): value for (name, labels), value in scrape(url).items()
            if name == "mojo_compute_queue_time_seconds_bucket"}


def bucket_quantiles(before: dict[float, float], after: dict[float, float],
                     quantiles: tuple[float, ...] = (0.5, 0.99, 0.999)) -> dict[str, Any]:
    """Upper bounds of the queue-wait quantiles between two scrapes, from the histogram buckets.

    The service's own view of admitted requests: from the frame's arrival in
    the supervisor to a worker starting on it. The load generator's latencies
    also hold its own backlog when it cannot send at the offered rate.
    """
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    result: dict[str, Any] = {"admitted": total}
    for q in quantiles:
        bound = next((b for b, c in counts.items() if total and c >= q * total), None)
        result[f"p{q * 100:g}_at_most_ms"] = None if bound is None else bound * 1000
    return result


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/health", timeout=10) as response:
        return json.loads(response.read())


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_load_in_thread(options: load.Options) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(load.run(options)), daemon=True)
    thread.start()
    return thread, result


def fault_soak(directory: Path, workers: int, duration: float, every: float, kind: str, mix: str = SMALL,
               binary: bool = False, ring_bytes: int | None = None) -> dict[str, Any]:
    rings = () if ring_bytes is None else ("--request-arena-bytes", str(ring_bytes), "--reply-arena-bytes",
                                           str(ring_bytes))
    server, url = start(directory / kind, workers, *rings)
    try:
        thread, result = run_load_in_thread(load.Options(server.target, connections=16, mix=mix, binary=binary,
                                                         duration=duration, warmup=0.5, progress=False))
        rng = random.Random(7)
        scrapes = []
        faults = 0
        deadline = time.monotonic() + duration
        next_fault = time.monotonic() + every
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, next_fault - time.monotonic())))
            if time.monotonic() >= next_fault:
                next_fault += every
                if kind == "kill":
                    pids = [w["pid"] for w in health(url)["workers"] if not w["retiring"]]
                    if pids:
                        try:
                            os.kill(rng.choice(pids), signal.SIGKILL)
                            faults += 1
                        except ProcessLookupError:
                            pass
                else:
                    assert server.process is not None
                    server.process.send_signal(signal.SIGHUP)
                    faults += 1
            scrapes.append({k: v for k, v in scrape(url).items() if k[0].endswith(("_total", "_count", "_sum"))})
        thread.join(duration + 60)
        went_back = sum(1 for a, b in zip(scrapes, scrapes[1:]) for k, v in a.items() if b.get(k, 0.0) < v)
        final = scrape(url)
        restarts = {dict(k[1]).get("reason"): v for k, v in final.items()
                    if k[0] == "mojo_compute_worker_restarts_total"}
        large = {"/".join(dict(k[1]).values()): v for k, v in final.items()
                 if k[0] == "mojo_compute_large_frames_total"}
        return {
            "kind": kind, "workers": workers, "duration_s": duration, "faults": faults, "mix": mix,
            "binary": binary, "large_frames": large,
            "requests": result.get("requests"), "requests_per_s": result.get("requests_per_s"),
            "failures": result.get("error_count"), "errors": result.get("errors"),
            "latency_ms": result.get("latency_ms"), "worker_restarts": restarts,
            "counter_decreases": went_back, "metric_files": len(os.listdir(directory / kind / "metrics")),
        }
    finally:
        server.stop()


def busy_probe(target: str, count: int, stop: threading.Event) -> list[float]:
    """Sequential requests on one connection during the storm: the latency of each Busy reply, in ms."""
    path = target.removeprefix("unix:")
    body = orjson.dumps({"action": "compute_sma", "prices": [100.0 + k % 7 for k in range(1000)], "period": 20})
    frame = len(body).to_bytes(4, "big") + body
    busy: list[float] = []
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.settimeout(30)
        for _ in range(count):
            if stop.is_set():
                break
            started = time.perf_counter()
            sock.sendall(frame)
            length = int.from_bytes(_exactly(sock, 4), "big")
            reply = _exactly(sock, length)
            if b'"Busy"' in reply:
                busy.append((time.perf_counter() - started) * 1000)
            time.sleep(0.002)
    return busy


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def overload(directory: Path, workers: int, duration: float, factor: float, queue: int,
             max_wait: float, priority: int | None = None) -> dict[str, Any]:
    extra = [] if priority is None else ["--supervisor-priority", str(priority)]
    server, url = start(directory / "overload", workers, "--queue-limit", str(queue), "--max-queue-wait", str(max_wait),
                        *extra)
    assert server.process is not None
    try:
        capacity = load.run(load.Options(server.target, connections=16, mix=SMALL, duration=3, warmup=0.5,
                                         progress=False))["requests_per_s"]
        rss_before = rss_mb(server.process.pid)
        waits_before = queue_wait_buckets(url)
        offered = capacity * factor
        # Enough connections that the client never waits for a slot: the excess reaches the service.
        thread, result = run_load_in_thread(load.Options(server.target, rate=offered, connections=512, mix=SMALL,
                                                         duration=duration, warmup=0.5, progress=False))
        stop = threading.Event()
        probe: dict[str, list[float]] = {}
        time.sleep(1.0)
        prober = threading.Thread(target=lambda: probe.update(busy=busy_probe(server.target, 400, stop)))
        prober.start()
        rss_during = []
        while thread.is_alive():
            rss_during.append(rss_mb(server.process.pid))
            thread.join(0.5)
        stop.set()
        prober.join(30)
        waits = bucket_quantiles(waits_before, queue_wait_buckets(url))
        after = load.run(load.Options(server.target, connections=16, mix=SMALL, duration=3, warmup=0.0,
                                      progress=False))
        busy = sorted(probe.get("busy", []))
        return {
            "workers": workers, "queue_limit": queue, "max_queue_wait": max_wait, "capacity_req_per_s": capacity, "offered_req_per_s": offered,
            "served_req_per_s": result.get("requests_per_s"), "errors": result.get("errors"),
            "admitted_latency_ms": result.get("latency_ms"),
            "service_queue_wait": waits,
            "busy_reply_ms": {"count": len(busy), "p50": busy[len(busy) // 2] if busy else None,
                              "p99": busy[int(len(busy) * 0.99)] if busy else None},
            "supervisor_rss_mb": {"before": rss_before, "max_during": max(rss_during, default=None),
                                  "after": rss_mb(server.process.pid)},
            "after_storm": {"requests_per_s": after.get("requests_per_s"), "errors": after.get("error_count"),
                            "latency_ms": after.get("latency_ms")},
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per soak (default 20)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--kill-every", type=float, default=1.0)
    parser.add_argument("--hup-every", type=float, default=3.0)
    parser.add_argument("--overload", type=float, default=10.0, help="offered load as a multiple of capacity")
    parser.add_argument("--queue-limit", type=int, default=256)
    parser.add_argument("--max-queue-wait", type=float, default=0.0, help="the service's --max-queue-wait (0: off)")
    parser.add_argument("--supervisor-priority", type=int, default=None,
                        help="the overload soak's --supervisor-priority (nice levels; default: the service's)")
    parser.add_argument("--only", choices=("kill", "hup", "overload"))
    parser.add_argument("--mix", default=SMALL, help=f"the kill and hup soaks' request mix (default {SMALL}); "
                        "e.g. sma:1000,sma:300000,bbands:200000 with --binary sends large frames through "
                        "the shared-memory rings")
    parser.add_argument("--binary", action="store_true", help="binary mode for the kill and hup soaks")
    parser.add_argument("--ring-bytes", type=int, default=None,
                        help="the service's --request-arena-bytes and --reply-arena-bytes (small rings fill, "
                             "so both paths run)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat()}
    with tempfile.TemporaryDirectory(prefix="mojo_soak_", dir=default_parent()) as tmp:  # tmpfs, as the service's default
        directory = Path(tmp)
        for name in ("kill", "hup", "overload"):
            if args.only not in (None, name):
                continue
            (directory / name).mkdir()
            if name == "overload":
                results[name] = overload(directory, args.workers, args.duration, args.overload, args.queue_limit,
                                         args.max_queue_wait, args.supervisor_priority)
            else:
                every = args.kill_every if name == "kill" else args.hup_every
                results[name] = fault_soak(directory, args.workers, args.duration, every, name, args.mix,
                                           args.binary, args.ring_bytes)
            print(f"{name}: {json.dumps(results[name], default=str)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = re.sub(r"[-:]", "", datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    path = args.out / f"soak-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {path}")
    failed = any((results.get(k) or {}).get("failures") for k in ("kill", "hup"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
