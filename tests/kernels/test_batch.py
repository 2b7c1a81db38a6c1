"""2-D input: rows are series, computed in one call, equal to one call per row.

1. 70 series with default parameters (row-grouped kernels: four full groups
   of 16 and a part group): each row of the batch result equals the
   single-series result for that row (NaN positions identical, values to
   1e-12 relative: the across-series kernels run the same arithmetic).
2. Rows that start with NaN (a symbol listed later) and rows shorter than the
   lookback in effect (all NaN but the last few) are handled per row.
3. A batch of one series, and a batch of series shorter than the lookback.
4. Time-major input (one bar per row, ``time_major=True``) gives the
   transposed result, through the across-series kernel where one exists,
   also with an interior NaN inside the lanes.
"""
from __future__ import annotations

import numpy as np
import pytest

from market import bars
from mojo_pool import indicators
from mojo_pool.indicators.registry import REGISTRY


def stacked(names: tuple[str, ...], seeds: range, n: int) -> list[np.ndarray]:
    rows = [bars(n, seed=s).inputs(names) for s in seeds]
    return [np.stack([row[k] for row in rows]) for k in range(len(names))]


def assert_rows_match(name: str, inputs: list[np.ndarray]) -> None:
    indicator = REGISTRY[name]
    batch = indicators.compute(indicator, inputs)
    for row in range(inputs[0].shape[0]):
        single = indicators.compute(indicator, [values[row] for values in inputs])
        for out_name, b, s in zip(indicator.outputs, batch, single):
            assert np.array_equal(np.isnan(b[row]), np.isnan(s)), f"{name}.{out_name} row {row}: NaN positions"
            np.testing.assert_allclose(b[row], s, rtol=1e-12, atol=1e-12, equal_nan=True,
                                       err_msg=f"{name}.{out_name} row {row}")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_1_batch_equals_one_call_per_row(name: str) -> None:
    indicator = REGISTRY[name]
    assert_rows_match(name, stacked(indicator.inputs, range(70), 400))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_2_rows_with_leading_nan(name: str) -> None:
    indicator = REGISTRY[name]
    inputs = stacked(indicator.inputs, range(8), 300)
    for values in inputs:
        values[2, :40] = np.nan   # listed late
        values[5, :295] = np.nan  # too short to produce more than a few values
    assert_rows_match(name, inputs)


@pytest.mark.parametrize("name", ["sma", "ema", "rsi"])
def test_3_single_row_and_short_batches(name: str) -> None:
    indicator = REGISTRY[name]
    assert_rows_match(name, stacked(indicator.inputs, range(1), 300))
    short = stacked(indicator.inputs, range(4), 5)
    for out in indicators.compute(indicator, short):
        assert out.shape == (4, 5) and np.isnan(out).all()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_4_time_major_batches(name: str) -> None:
    indicator = REGISTRY[name]
    by_rows = stacked(indicator.inputs, range(24), 300)
    by_rows[0][3, :30] = np.nan  # one late series forces the transposing path too
    with_gap = stacked(indicator.inputs, range(24), 300)
    with_gap[0][5, 150] = np.nan  # an interior NaN inside the SIMD lanes
    for inputs in (stacked(indicator.inputs, range(24), 300), by_rows, with_gap):
        expected = indicators.compute(indicator, inputs)
        got = indicators.compute(indicator, [np.ascontiguousarray(v.T) for v in inputs], time_major=True)
        for out_name, e, g in zip(indicator.outputs, expected, got):
            np.testing.assert_allclose(g.T, e, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"{name}.{out_name}")
