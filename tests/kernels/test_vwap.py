"""rolling_vwap, which has no TA-Lib twin, against a plain numpy reference.

Our definition: over the last ``timeperiod`` bars,
VWAP = sum(tp * volume) / sum(volume) with tp = (high + low + close) / 3;
NaN for the first timeperiod - 1 bars, for a window whose total volume is
zero and for a window holding a NaN. The reference computes every window
from scratch with sliding windows, so it shares none of the kernel's running
sums, rebuild schedule or zero-volume bookkeeping.

Scenarios:

1. random walks at price levels 1e-6, 1 and 1e6, several periods (1, 2, 14,
   100, 1000);
2. zero-volume stretches shorter and longer than the window, with integer
   and fractional volumes (an all-zero window must be NaN, not rounding
   residue divided by rounding residue), and a window where one bar traded
   (exactly that bar's typical price);
3. lengths around the lookback, and 10^5 bars whose price falls from 100 to
   about 0.06 (running sums must not drift);
4. leading NaN rows, in every input or in one input only (skipped as TA-Lib's
   wrapper skips them), and an interior NaN (NaN while it is in the window,
   clean after), in 1-D and in rows of a 2-D batch;
5. timeperiod outside [1, 100000] is refused with a ValueError naming it.

Agreement is the parity test's: identical NaN positions and, elsewhere,
|ours - reference| <= 1e-9 * |reference| + 1e-12 * scale.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from agreement import assert_agrees
from market import Bars, bars, with_nan
from mojo_pool import indicators
from mojo_pool.indicators.registry import REGISTRY

VWAP = REGISTRY["rolling_vwap"]


def reference(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray,
              timeperiod: int) -> np.ndarray:
    """Every window summed from scratch; NaN for zero total volume or a NaN inside."""
    n = len(close)
    out = np.full(n, np.nan)
    if n < timeperiod:
        return out
    tp = (high + low + close) / 3.0
    flow = sliding_window_view(tp * volume, timeperiod).sum(axis=1)
    traded = sliding_window_view(volume, timeperiod).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[timeperiod - 1:] = np.where(traded == 0.0, np.nan, flow / traded)
    return out


def vwap(b: Bars, timeperiod: int | None = None) -> np.ndarray:
    params = {} if timeperiod is None else {"timeperiod": timeperiod}
    (out,) = indicators.compute(VWAP, [b.high, b.low, b.close, b.volume], params)
    return out


def check(b: Bars, timeperiod: int, level: float, what: str) -> np.ndarray:
    ours = vwap(b, timeperiod)
    assert_agrees(ours, reference(b.high, b.low, b.close, b.volume, timeperiod), level, what)
    return ours


def with_volume(b: Bars, volume: np.ndarray) -> Bars:
    return Bars(b.open, b.high, b.low, b.close, volume)


def test_registry_entry() -> None:
    assert VWAP.family == "volume"
    assert VWAP.inputs == ("high", "low", "close", "volume")
    assert VWAP.defaults() == {"timeperiod": 14}
    assert VWAP.lookback(timeperiod=14) == 13
    assert "zero total volume" in VWAP.summary


@pytest.mark.parametrize("level", [1e-6, 1.0, 1e6])
@pytest.mark.parametrize("timeperiod", [1, 2, 14, 100, 1000])
def test_1_random_walks_across_price_levels(level: float, timeperiod: int) -> None:
    for seed in range(3):
        b = bars(3000, seed=seed, level=level * 100.0)
        check(b, timeperiod, level * 100.0, f"seed {seed}, timeperiod {timeperiod}")


@pytest.mark.parametrize("fractional", [False, True])
@pytest.mark.parametrize("timeperiod", [1, 5, 14])
def test_2_zero_volume_stretches(fractional: bool, timeperiod: int) -> None:
    b = bars(2000, seed=11)
    volume = np.maximum(b.volume, 1.0)  # no idle bars but the ones placed below
    if fractional:
        volume /= 7.0
    volume[100:100 + timeperiod - 1] = 0.0  # never a whole window: defined throughout
    volume[300:300 + timeperiod] = 0.0  # exactly one empty window
    volume[500:500 + 3 * timeperiod + 7] = 0.0  # many empty windows in a row
    volume[900:1100:2 * timeperiod + 1] = 0.0  # isolated idle bars
    volume[1500:1600] = 0.0
    volume[1550] = 3.5  # a lone trade in a quiet stretch
    b = with_volume(b, volume)
    ours = check(b, timeperiod, 100.0, f"timeperiod {timeperiod}, fractional {fractional}")

    assert np.isnan(ours[300 + timeperiod - 1])
    assert np.all(np.isnan(ours[500 + timeperiod - 1:500 + 3 * timeperiod + 7]))
    assert not np.any(np.isnan(ours[timeperiod - 1:300 + timeperiod - 1]))
    tp = (b.high[1550] + b.low[1550] + b.close[1550]) / 3.0
    lone = ours[1550:1550 + timeperiod]
    assert np.allclose(lone, tp, rtol=1e-12, atol=0.0), "a window with one trade is that trade's price"
    assert np.isnan(ours[1550 + timeperiod])


def test_2_all_volume_zero() -> None:
    b = bars(200, seed=12)
    ours = vwap(with_volume(b, np.zeros(200)))
    assert np.all(np.isnan(ours))


@pytest.mark.parametrize("timeperiod", [1, 14, 200])
def test_3_lengths_around_the_lookback(timeperiod: int) -> None:
    lookback = VWAP.lookback(timeperiod=timeperiod)
    for n in sorted({0, 1, max(0, lookback - 1), lookback, lookback + 1, lookback + 2}):
        b = bars(n, seed=n)
        ours = vwap(b, timeperiod)
        assert ours.shape == (n,)
        if n:
            check(b, timeperiod, 100.0, f"n={n}")


@pytest.mark.parametrize("timeperiod", [2, 14, 1000, 20000])
def test_3_long_fall_does_not_drift(timeperiod: int) -> None:
    b = bars(100_000, seed=100_000)
    assert b.close[0] > 50.0 and b.close.min() < 0.1, "the series should fall by three decades"
    volume = b.volume.copy()
    volume[60_000:60_000 + timeperiod + 50] = 0.0  # a quiet spell late in the fall
    check(with_volume(b, volume), timeperiod, 100.0, f"10^5 bars, timeperiod {timeperiod}")


def test_4_leading_nan_rows_are_skipped() -> None:
    b = bars(600, seed=3)
    for leading in (1, 17, 599):
        lead = with_nan(b, leading=leading)
        ours = vwap(lead)
        assert np.all(np.isnan(ours[:leading + 13]))
        stripped = reference(b.high[leading:], b.low[leading:], b.close[leading:], b.volume[leading:], 14)
        assert_agrees(ours[leading:], stripped, 100.0, f"{leading} leading NaN")
    assert np.all(np.isnan(vwap(with_nan(b, leading=600))))


def test_4_leading_nan_in_one_input_only() -> None:
    b = bars(600, seed=4)
    volume = b.volume.copy()
    volume[:40] = np.nan
    ours = vwap(with_volume(b, volume))
    assert np.all(np.isnan(ours[:40 + 13]))
    stripped = reference(b.high[40:], b.low[40:], b.close[40:], b.volume[40:], 14)
    assert_agrees(ours[40:], stripped, 100.0, "NaN volume in the first 40 rows")


@pytest.mark.parametrize("field", ["high", "close", "volume"])
def test_4_interior_nan_only_spoils_its_windows(field: str) -> None:
    b = bars(600, seed=5)
    values = getattr(b, field).copy()
    values[300] = np.nan
    b = Bars(**{**{f: getattr(b, f) for f in ("open", "high", "low", "close", "volume")}, field: values})
    ours = check(b, 14, 100.0, f"NaN {field} at 300")
    assert np.all(np.isnan(ours[300:314]))
    assert not np.any(np.isnan(ours[13:300])) and not np.any(np.isnan(ours[314:]))


def test_4_batch_rows_match_single_series() -> None:
    rows = [with_nan(bars(500, seed=s), leading=lead) for s, lead in ((20, 0), (21, 9), (22, 0))]
    stacked = [np.stack([getattr(r, f) for r in rows]) for f in ("high", "low", "close", "volume")]
    (batch,) = indicators.compute(VWAP, stacked, {"timeperiod": 10})
    for row, r in zip(batch, rows):
        np.testing.assert_array_equal(row, vwap(r, 10))


@pytest.mark.parametrize("value", [0, -1, 100_001, 2.5])
def test_5_out_of_range_timeperiod_is_refused(value: float) -> None:
    b = bars(300, seed=6)
    with pytest.raises(ValueError, match="timeperiod"):
        vwap(b, value)  # type: ignore[arg-type]


def test_5_range_limits_are_accepted() -> None:
    b = bars(300, seed=7)
    assert np.all(np.isnan(vwap(b, 100_000)))
    check(b, 1, 100.0, "timeperiod 1")
