"""How much CPU time this machine takes away from a process that never sleeps.

A tail-latency target can be no tighter than the machine's own noise: if a
CPU is taken away for 8 ms now and then (a kernel thread, the hypervisor),
the requests a worker on that CPU holds wait 8 ms, whatever the service
does. This measures that floor. One process per CPU, pinned to it, reads
the monotonic clock in a tight loop; a gap between two reads longer than
0.1 ms is time the CPU spent on something else. Run it on an otherwise idle
machine.

Reported per CPU: the gaps by size and the share of the run they took, the
longest gap, and the CPU time that kernel threads (kswapd, kdamond, ...)
used over the same run, from /proc.

    python benchmarks/cpu_gaps.py [--duration 30] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

# Upper bounds of the gap classes, in ns; the last class is open.
BOUNDS = (500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000)
NAMES = ("0.1-0.5 ms", "0.5-1 ms", "1-2 ms", "2-5 ms", "5-10 ms", ">10 ms")
THRESHOLD = 100_000  # ns: a loop iteration takes well under 1 us
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def spin(cpu: int, seconds: float, results: "multiprocessing.Queue[dict]") -> None:
    os.sched_setaffinity(0, {cpu})
    clock = time.monotonic_ns
    counts = [0] * len(NAMES)
    totals = [0] * len(NAMES)
    longest = 0
    last = start = clock()
    end = start + int(seconds * 1e9)
    while last < end:
        now = clock()
        gap = now - last
        last = now
        if gap > THRESHOLD:
            k = 0
            while k < len(BOUNDS) and gap >= BOUNDS[k]:
                k += 1
            counts[k] += 1
            totals[k] += gap
            longest = max(longest, gap)
    elapsed = last - start
    results.put({"cpu": cpu, "gaps": dict(zip(NAMES, counts)),
                 "share_lost": sum(totals) / elapsed, "share_by_class": dict(zip(NAMES, (t / elapsed for t in totals))),
                 "longest_ms": longest / 1e6})


def kernel_threads() -> dict[str, float]:
    """CPU seconds used so far by each kernel thread (children of kthreadd, pid 2)."""
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            rest = fields[1].split()
        except (OSError, IndexError):
            continue
        if rest[1] == "2":  # parent pid: kthreadd
            key = f"{name}[{entry.name}]"
            used[key] = (int(rest[11]) + int(rest[12])) / CLOCK_TICK
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    before = kernel_threads()
    results: multiprocessing.Queue[dict] = multiprocessing.Queue()
    spinners = [multiprocessing.Process(target=spin, args=(cpu, args.duration, results)) for cpu in cpus]
    for process in spinners:
        process.start()
    per_cpu = sorted((results.get(timeout=args.duration + 60) for _ in spinners), key=lambda r: r["cpu"])
    for process in spinners:
        process.join()
    after = kernel_threads()
    busy_threads = {name: round(after[name] - before.get(name, 0.0), 2) for name in after
                    if after[name] - before.get(name, 0.0) > 0}
    for result in per_cpu:
        classes = "  ".join(f"{name}: {count}" for name, count in result["gaps"].items())
        print(f"cpu {result['cpu']}: {100 * result['share_lost']:.2f}% of the time lost; longest "
              f"{result['longest_ms']:.1f} ms; gaps {classes}")
    print("kernel threads' CPU seconds over the run:",
          ", ".join(f"{name} {seconds}" for name, seconds in sorted(busy_threads.items(), key=lambda kv: -kv[1]))
          or "none")
    if args.json:
        args.json.write_text(json.dumps({"duration": args.duration, "cpus": per_cpu,
                                         "kernel_threads_cpu_s": busy_threads}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
