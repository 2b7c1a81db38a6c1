"""Accuracy summary: how far every indicator is from TA-Lib, in numbers.

For each indicator with a TA-Lib twin, default parameters, on random walks
of 100,000 bars at price levels 1e-6, 1 and 1e6 (three seeds each, from the
test suite's market generator): whether the NaN positions are identical,
the largest relative error where |talib| is not near zero, and the largest
error measured against the tests' bound (below 1 passes).

    python benchmarks/accuracy.py [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import talib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "kernels"))
from market import bars  # noqa: E402

from mojo_pool import indicators  # noqa: E402
from mojo_pool.indicators.registry import REGISTRY  # noqa: E402


def compare(name: str, levels: tuple[float, ...] = (1e-6, 1.0, 1e6), n: int = 100_000) -> dict:
    indicator = REGISTRY[name]
    worst_rel = 0.0
    worst_bound = 0.0
    nan_identical = True
    for level in levels:
        for seed in range(3):
            inputs = bars(n, seed=seed, level=level).inputs(indicator.inputs)
            ours = indicators.compute(indicator, inputs)
            ref = getattr(talib, name.upper())(*inputs)
            for mine, theirs in zip(ours, ref if isinstance(ref, tuple) else (ref,)):
                nan_identical &= bool(np.array_equal(np.isnan(mine), np.isnan(theirs)))
                ok = ~np.isnan(theirs) & ~np.isnan(mine)
                if not ok.any():
                    continue
                error = np.abs(mine[ok] - theirs[ok])
                scale = max(1.0, level, float(np.max(np.abs(theirs[ok]))))
                worst_bound = max(worst_bound, float(np.max(error / (1e-9 * np.abs(theirs[ok]) + 1e-12 * scale))))
                big = np.abs(theirs[ok]) > 1e-6 * scale
                if big.any():
                    worst_rel = max(worst_rel, float(np.max(error[big] / np.abs(theirs[ok][big]))))
    return {"indicator": name, "nan_positions_identical": nan_identical, "max_relative_error": worst_rel,
            "max_error_over_test_bound": worst_bound}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rows = [compare(name) for name in sorted(REGISTRY) if hasattr(talib, name.upper())]
    print(f"{'indicator':<16} {'NaN same':>8} {'max rel err':>12} {'err/bound':>10}")
    for row in rows:
        print(f"{row['indicator']:<16} {str(row['nan_positions_identical']):>8} "
              f"{row['max_relative_error']:12.2e} {row['max_error_over_test_bound']:10.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps({"backend": indicators.BACKEND, "rows": rows}, indent=1))
    print(f"wrote {args.out / 'accuracy.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
