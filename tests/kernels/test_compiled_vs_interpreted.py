"""The compiled kernels compute what their plain-Python sources say.

1. For every indicator, default parameters, a 300-bar series: the Pythran
   build and the interpreted module give the same outputs (to rounding: the
   compiler may fuse a multiply and an add into one FMA).
2. The same for every across-series (``lanes``) kernel on 40 time-major series.
3. The same for every row-tiled (``rows``) kernel on 40 row-major series.
"""
from __future__ import annotations

import numpy as np
import pytest

from market import bars
from mojo_pool import ext, indicators
from mojo_pool.indicators.registry import REGISTRY

try:
    ext.load("overlap", "compiled")
except ext.CompiledKernelsMissing as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"compiled kernels not built: {exc}", allow_module_level=True)


def close_enough(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_1_single_series(name: str) -> None:
    indicator = REGISTRY[name]
    inputs = bars(300, seed=11).inputs(indicator.inputs)
    compiled = indicators.compute(indicator, inputs, backend_name="compiled")
    interpreted = indicators.compute(indicator, inputs, backend_name="interpreted")
    for out_name, a, b in zip(indicator.outputs, compiled, interpreted):
        assert close_enough(a, b), f"{name}.{out_name}: compiled and interpreted differ"


@pytest.mark.parametrize("name", sorted(n for n, i in REGISTRY.items() if i.lanes))
def test_2_lanes_kernels(name: str) -> None:
    indicator = REGISTRY[name]
    rows = [bars(250, seed=s).inputs(indicator.inputs) for s in range(40)]
    stacked = [np.stack([row[k] for row in rows], axis=1) for k in range(len(indicator.inputs))]
    compiled = indicators.compute(indicator, stacked, backend_name="compiled", time_major=True)
    interpreted = indicators.compute(indicator, stacked, backend_name="interpreted", time_major=True)
    for out_name, a, b in zip(indicator.outputs, compiled, interpreted):
        assert close_enough(a, b), f"{name}.{out_name}: compiled and interpreted batch kernels differ"


@pytest.mark.parametrize("name", sorted(n for n, i in REGISTRY.items() if i.rows))
def test_3_row_tiled_kernels(name: str) -> None:
    indicator = REGISTRY[name]
    rows = [bars(250, seed=s).inputs(indicator.inputs) for s in range(40)]
    stacked = [np.stack([row[k] for row in rows]) for k in range(len(indicator.inputs))]
    compiled = indicators.compute(indicator, stacked, backend_name="compiled")
    interpreted = indicators.compute(indicator, stacked, backend_name="interpreted")
    for out_name, a, b in zip(indicator.outputs, compiled, interpreted):
        assert close_enough(a, b), f"{name}.{out_name}: compiled and interpreted row kernels differ"
