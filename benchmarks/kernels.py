"""Kernel benchmark: mojo_pool vs TA-Lib vs plain NumPy, measured side by side.

For every registry indicator and each series length, mojo_pool and TA-Lib
are timed in one process, interleaved (A B, B A, ...: the order alternates
so neither always follows the other) so that a noisy neighbour slows both
alike, and the median of the repeats is kept. The NumPy baseline is timed
the same way right after, on its own: interleaved with the other two it
left them cold memory (it frees tens of megabytes of temporaries per call)
in proportion to how often each ran right after it, which the rotation did
not even out. The figure that matters is the ratio in the same run, not
the absolute time: this machine is shared.

At 2,000 bars each call gets the next of 64 different series (the same for
both): given one series over and over, the CPU's branch predictor learns
TA-Lib's data-dependent branches by heart, which no real caller's data
allows. Measured side by side: OBV 1.70 us a call on one repeated series,
8.94 us cycling through 64 (mojo_pool, branch-free, 2.17 and 2.19); SAR 3.36
and 10.69 (ours 4.36 and 9.06); MFI 6.09 and 20.64 (7.85, 7.99); MOM and
AD, which do not branch on the data, the same either way. At 10^5 bars and
more one series is used: no predictor holds 10^5 branches, and 64 series of
that size would measure memory bandwidth instead of the kernels.

Batch mode times 512 series x 2,000 bars as one 2-D call against TA-Lib
called once per series in a Python loop.

    python benchmarks/kernels.py                 # full run, writes JSON + PNG
    python benchmarks/kernels.py --quick         # fewer sizes and repeats
    python benchmarks/kernels.py --only sma,ema,rsi

Results: benchmarks/results/kernels.json and kernels.png (or --out DIR).

Unless GLIBC_TUNABLES is already set, the script re-executes itself with
glibc's malloc told to keep arrays up to 32 MiB on its heap and not to hand
freed memory back: otherwise every large output array is a fresh mmap whose
pages fault in on first write (measured, BBANDS at 100k points: 359 page
faults and 819 us per call, 247 us without them). Both mojo_pool and TA-Lib
allocate their outputs through NumPy, so both gain alike; --no-malloc-tuning
measures the default.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import talib

from mojo_pool import indicators
from mojo_pool._build_info import CPU_TARGET, PYTHRAN_VERSION, SIMD
from mojo_pool.indicators.registry import REGISTRY

Call = Callable[[], object]


def market(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    spread = np.abs(rng.normal(0.0, 0.004, n)) * close
    return {
        "real": close, "close": close, "open": np.roll(close, 1),
        "high": close + spread, "low": close - spread, "volume": np.round(rng.lognormal(10.0, 1.0, n)),
    }


def numpy_baselines(data: dict[str, np.ndarray]) -> dict[str, Call]:
    """Plain NumPy versions of the indicators that have an obvious one."""
    x = data["real"]
    h, lo, c, v = data["high"], data["low"], data["close"], data["volume"]

    def sma() -> np.ndarray:
        return sliding_window_view(x, 30).mean(axis=1)

    def wma() -> np.ndarray:
        weights = np.arange(30, 0, -1, dtype=np.float64)
        return np.convolve(x, weights / weights.sum(), mode="valid")

    def bbands() -> tuple[np.ndarray, ...]:
        windows = sliding_window_view(x, 20)
        mid = windows.mean(axis=1)
        dev = windows.std(axis=1)
        return mid + 2 * dev, mid, mid - 2 * dev

    def stddev() -> np.ndarray:
        return sliding_window_view(x, 5).std(axis=1)

    def var() -> np.ndarray:
        return sliding_window_view(x, 5).var(axis=1)

    def mom() -> np.ndarray:
        return x[10:] - x[:-10]

    def roc() -> np.ndarray:
        return (x[10:] / x[:-10] - 1.0) * 100.0

    def midpoint() -> np.ndarray:
        windows = sliding_window_view(x, 14)
        return (windows.max(axis=1) + windows.min(axis=1)) / 2

    def trange() -> np.ndarray:
        prev = c[:-1]
        return np.maximum(h[1:], prev) - np.minimum(lo[1:], prev)

    def obv() -> np.ndarray:
        return np.cumsum(np.sign(np.diff(c, prepend=c[0])) * v)

    def ad() -> np.ndarray:
        span = h - lo
        clv = np.divide((c - lo) - (h - c), span, out=np.zeros_like(span), where=span != 0)
        return np.cumsum(clv * v)

    def willr() -> np.ndarray:
        hh = sliding_window_view(h, 14).max(axis=1)
        ll = sliding_window_view(lo, 14).min(axis=1)
        return -100.0 * (hh - c[13:]) / (hh - ll)

    return {f.__name__: f for f in (sma, wma, bbands, stddev, var, mom, roc, midpoint, trange, obv, ad, willr)}


def measure(calls: dict[str, Call], repeats: int, budget: float) -> dict[str, float]:
    """Median seconds per call of each implementation, interleaved."""
    # Size each sample so it lasts ~budget/repeats, judged on the slowest one.
    for call in calls.values():
        call()
    slowest = 0.0
    for call in calls.values():
        t0 = time.perf_counter()
        call()
        slowest = max(slowest, time.perf_counter() - t0)
    number = max(1, int(budget / repeats / max(slowest, 1e-7) / len(calls)))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for repeat in range(repeats):
        # The order rotates each repeat, so that no implementation always runs
        # right after the same other one.
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            t0 = time.perf_counter()
            for _ in range(number):
                call()
            samples[name].append((time.perf_counter() - t0) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


# Up to this length, each call takes the next of DISTINCT_SERIES series (see the module docstring).
DISTINCT_UP_TO = 10_000
DISTINCT_SERIES = 64


def cycling(function: Callable[..., object], inputs: list[list[np.ndarray]]) -> Call:
    """A call of ``function`` on the next input set each time, round and round."""
    state = {"next": 0}
    count = len(inputs)

    def call() -> object:
        k = state["next"]
        state["next"] = k + 1 if k + 1 < count else 0
        return function(*inputs[k])

    return call


def single_series(names: list[str], sizes: list[int], repeats: int, budget: float) -> list[dict]:
    rows = []
    for n in sizes:
        data = market(n)
        baselines = numpy_baselines(data)
        markets = [data] + [market(n, seed) for seed in range(1, DISTINCT_SERIES if n <= DISTINCT_UP_TO else 1)]
        for name in names:
            indicator = REGISTRY[name]
            inputs = [[m[i] for i in indicator.inputs] for m in markets]
            ours = getattr(indicators, name)
            calls: dict[str, Call] = {"mojo_pool": cycling(ours, inputs)}
            if hasattr(talib, name.upper()):
                calls["talib"] = cycling(getattr(talib, name.upper()), inputs)
            times = measure(calls, repeats, budget)
            if name in baselines:
                # Timed apart: after a NumPy baseline frees its large
                # temporaries, the next call pays for memory going cold, and
                # with three rotating, mojo_pool followed NumPy in 4 of 7
                # repeats and TA-Lib in 2 (AD over 10^6 bars: 0.86-0.91x
                # TA-Lib that way, 1.19-1.25x timed apart, 1.26-1.29x alone).
                times.update(measure({"numpy": baselines[name]}, repeats, budget))
            row = {"indicator": name, "n": n, "seconds": times,
                   "points_per_second": {k: n / t for k, t in times.items()}}
            if "talib" in times:
                row["speedup_vs_talib"] = times["talib"] / times["mojo_pool"]
            if "numpy" in times:
                row["speedup_vs_numpy"] = times["numpy"] / times["mojo_pool"]
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def batch(names: list[str], series: int, n: int, repeats: int, budget: float) -> list[dict]:
    rows = []
    per_series = [market(n, seed=s) for s in range(series)]
    for name in names:
        indicator = REGISTRY[name]
        if not hasattr(talib, name.upper()):
            continue
        stacked = [np.stack([d[i] for d in per_series]) for i in indicator.inputs]
        loose = [[d[i] for i in indicator.inputs] for d in per_series]
        ours = getattr(indicators, name)
        reference = getattr(talib, name.upper())
        calls: dict[str, Call] = {
            "mojo_pool": lambda: ours(*stacked),
            "talib": lambda: [reference(*a) for a in loose],
        }
        if indicator.lanes:
            # The same data already laid out one bar per row: series in SIMD lanes.
            time_major = [np.ascontiguousarray(a.T) for a in stacked]
            calls["mojo_pool_time_major"] = lambda: indicators.compute(indicator, time_major, time_major=True)
        times = measure(calls, repeats, budget)
        row = {"indicator": name, "series": series, "n": n, "seconds": times,
               "kernel": "single-series kernel per row",
               "points_per_second": {k: series * n / t for k, t in times.items()},
               "speedup_vs_talib": times["talib"] / times["mojo_pool"]}
        if "mojo_pool_time_major" in times:
            row["time_major_speedup_vs_talib"] = times["talib"] / times["mojo_pool_time_major"]
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    pps = row["points_per_second"]
    label = f"{row['indicator']:<16}" + (f"{row['series']}x{row['n']:<9}" if "series" in row else f"n={row['n']:<10}")
    cells = "  ".join(f"{k} {pps[k] / 1e6:9.1f} Mpt/s" for k in ("mojo_pool", "talib", "numpy") if k in pps)
    ratio = f"  x{row['speedup_vs_talib']:.2f} vs talib" if "speedup_vs_talib" in row else ""
    if "time_major_speedup_vs_talib" in row:
        ratio += f" (time-major x{row['time_major_speedup_vs_talib']:.2f})"
    numpy_ratio = f"  x{row['speedup_vs_numpy']:.2f} vs numpy" if "speedup_vs_numpy" in row else ""
    return f"{label} {cells}{ratio}{numpy_ratio}"


def plot(single: list[dict], batched: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in single})
    names = sorted({r["indicator"] for r in single if "speedup_vs_talib" in r})
    fig, axes = plt.subplots(2, 1, figsize=(14, 9))
    width = 0.8 / (len(sizes) + 1)
    for k, n in enumerate(sizes):
        ratio = {r["indicator"]: r["speedup_vs_talib"] for r in single if r["n"] == n and "speedup_vs_talib" in r}
        axes[0].bar(np.arange(len(names)) + k * width, [ratio.get(nm, 0.0) for nm in names], width, label=f"n={n:,}")
    axes[0].axhline(1.0, color="black", linewidth=0.8)
    axes[0].set_xticks(np.arange(len(names)) + width * (len(sizes) - 1) / 2, names, rotation=70, fontsize=8)
    axes[0].set_ylabel("speed-up vs TA-Lib (same run)")
    axes[0].set_title("Single series: mojo_pool time / TA-Lib time, inverted (higher is faster)")
    axes[0].legend()
    if batched:
        bnames = [r["indicator"] for r in batched]
        axes[1].bar(bnames, [r["speedup_vs_talib"] for r in batched], color="tab:green")
        axes[1].axhline(1.0, color="black", linewidth=0.8)
        axes[1].tick_params(axis="x", rotation=70, labelsize=8)
        first = batched[0]
        axes[1].set_title(f"Batch: {first['series']} series x {first['n']:,} bars in one call vs TA-Lib in a loop")
        axes[1].set_ylabel("speed-up vs TA-Lib loop")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="sizes 2k and 100k, 3 repeats")
    parser.add_argument("--only", help="comma-separated indicator names (default: all)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=0.6, help="seconds per indicator and size")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default mmap threshold")
    args = parser.parse_args(argv)
    if not args.no_malloc_tuning and "GLIBC_TUNABLES" not in os.environ:
        os.environ["GLIBC_TUNABLES"] = MALLOC_TUNABLES
        os.execv(sys.executable, [sys.executable, *sys.argv])

    names = sorted(REGISTRY) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown indicator(s): {', '.join(unknown)}")
    sizes = [2_000, 100_000] if args.quick else [2_000, 100_000, 1_000_000]
    repeats = 3 if args.quick else args.repeats
    if indicators.BACKEND != "compiled":
        print("WARNING: interpreted kernels in use; the figures below are meaningless", file=sys.stderr)

    print(f"backend {indicators.BACKEND}, pythran {PYTHRAN_VERSION}, -march={CPU_TARGET}, simd {SIMD}, "
          f"talib {talib.__version__}, numpy {np.__version__}")
    single = single_series(names, sizes, repeats, args.budget)
    batched = batch(names, 512, 2_000, repeats, args.budget)

    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "affinity": len(os.sched_getaffinity(0))},
        "build": {"backend": indicators.BACKEND, "pythran": PYTHRAN_VERSION, "cpu_target": CPU_TARGET, "simd": SIMD},
        "versions": {"talib": talib.__version__, "numpy": np.__version__},
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "method": f"median of {repeats} interleaved repeats per implementation; up to {DISTINCT_UP_TO} bars each "
                  f"call takes the next of {DISTINCT_SERIES} different series, beyond that one series",
        "single_series": single,
        "batch": batched,
    }
    (args.out / "kernels.json").write_text(json.dumps(result, indent=1))
    plot(single, batched, args.out / "kernels.png")
    print(f"wrote {args.out / 'kernels.json'} and {args.out / 'kernels.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
