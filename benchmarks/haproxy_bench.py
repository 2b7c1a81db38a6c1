"""Throughput and latency through HAProxy (deploy/haproxy.cfg) with 1, 2 and 3 mojo_pool hosts,
each in its own network namespace (benchmarks/netns.py), against direct connections to one host.

All hosts share this machine's cores, so the figures show HAProxy's overhead, not scaling:
HAProxy's CPU time per request (read from /proc for the haproxy process) and the latency it adds.

    sudo .venv/bin/python benchmarks/haproxy_bench.py [--duration 4] [--connections 8]

Writes benchmarks/results/haproxy-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import netns  # noqa: E402
from load import Options, run  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one(target: str, args: argparse.Namespace) -> dict:
    return run(Options(target=target, connections=args.connections, duration=args.duration, warmup=1.0,
                       mix=args.mix, progress=False))


def summary(result: dict) -> dict:
    latency = result["latency_ms"]
    return {"requests_per_s": round(result["requests_per_s"], 1), "errors": result["error_count"],
            "latency_ms_mean": round(latency["mean"], 3), "latency_ms_p50": latency.get("p50"),
            "latency_ms_p99": latency.get("p99")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--mix", default="sma:1000")
    args = parser.parse_args()
    reason = netns.unavailable()
    if reason:
        sys.exit(f"haproxy_bench: {reason}")
    runs = {}
    with tempfile.TemporaryDirectory() as tmp, netns.Lab(hosts=3) as lab:
        directory = Path(tmp)
        for name in lab.host_names:
            lab.serve(name, directory)
        direct = one(f"tcp://{lab.address['h1']}:6101", args)
        runs["direct, 1 host"] = {**summary(direct), "haproxy_cpu_us_per_request": 0.0}
        print("direct, 1 host:", runs["direct, 1 host"], flush=True)
        for count in (1, 2, 3):
            names = lab.host_names[:count]
            process = lab.haproxy(netns.haproxy_config({n: lab.address[n] for n in names}), directory)
            time.sleep(1.5)  # checks mark every host UP
            cpu0 = cpu_seconds(process.pid)
            result = one(f"tcp://{lab.address['lb']}:6101", args)
            cpu1 = cpu_seconds(process.pid)
            total = result["requests_per_s"] * (result["options"]["duration"] + result["options"]["warmup"])
            label = f"haproxy, {count} host{'s' if count > 1 else ''}"
            # CPU over warm-up + measurement (+ a few health checks), over the requests in both.
            runs[label] = {**summary(result), "haproxy_cpu_us_per_request": round((cpu1 - cpu0) / total * 1e6, 1)}
            print(f"{label}:", runs[label], flush=True)
            lab.kill("haproxy")
            process.wait(10)
    base = runs["direct, 1 host"]
    one_host = runs["haproxy, 1 host"]
    report = {
        "what": "mojo_pool behind HAProxy (deploy/haproxy.cfg) in network namespaces on one machine",
        "cpus": os.cpu_count(), "options": vars(args), "runs": runs,
        "haproxy_cost": {
            "cpu_us_per_request": one_host["haproxy_cpu_us_per_request"],
            "added_latency_ms_mean": round(one_host["latency_ms_mean"] - base["latency_ms_mean"], 3),
            "throughput_change_1_host": round(one_host["requests_per_s"] / base["requests_per_s"] - 1, 3),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"haproxy-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["haproxy_cost"]), "->", out)


if __name__ == "__main__":
    main()
