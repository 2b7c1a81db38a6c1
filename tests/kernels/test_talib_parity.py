"""Every registry indicator against TA-Lib, the oracle.

Scenarios, each over every indicator that TA-Lib has:

1. default parameters on random walks at price levels 1e-6, 1 and 1e6;
   (plus, in test_properties.py, random series and parameters drawn by
   hypothesis);
2. each parameter moved alone across its range (smallest allowed, small,
   large, every supported MA type);
3. lengths 0, 1, lookback - 1, lookback, lookback + 1, lookback + 2 and 10^5;
4. leading NaN rows (skipped as TA-Lib's wrapper skips them) and an interior
   NaN (which poisons what follows exactly as it does in TA-Lib); for
   BBANDS a NaN at many places of a long series (4b), for MIDPOINT at
   each place of a block, several periods (4c), and for ULTOSC every 7 bars
   through flat stretches (4d);
5. a parameter just outside its range is refused by both, with a ValueError
   naming the parameter from us;
6. volatile walks (10% and 30% a bar, levels 1e-6, 1 and 1e6), where
   window sums round and a kernel that adds in another order than TA-Lib
   drifts from it (a running sum of entering-minus-leaving terms in ULTOSC
   missed on 218 of 400 such series, by up to the whole output; in the
   variance of VAR, STDDEV and BBANDS by up to 1e-6 relative at 30% a bar);
   VAR's arithmetic is TA-Lib's to the bit, even at 100% a bar (6b; there
   KAMA, whose step is one FMA here, differs from TA-Lib where prices
   have fallen a million-fold within the series);
7. bad ticks: single bars printed 10^-6 .. 10^6 times the price, which the
   variance family's cancellation tests and re-anchoring must meet exactly
   as TA-Lib's do (the entering-minus-leaving variance missed 1 in 90 such
   series, by 1.7e-6 relative).

Agreement means identical NaN positions and, elsewhere,
|ours - talib| <= 1e-9 * |talib| + 1e-12 * scale, where scale is the
largest of 1, the price level and the largest |talib| in the series: "near
zero" is judged against the size of what the output is computed from (MACD
or ADOSC near a zero crossing is a difference of two large numbers and
cannot be exact to better than their rounding).
"""
from __future__ import annotations

import numpy as np
import pytest

from agreement import assert_agrees, level_for
from market import Bars, bars, volatile, with_bad_ticks, with_nan
from mojo_pool import indicators
from mojo_pool.indicators.registry import REGISTRY, Indicator, Param

talib = pytest.importorskip("talib", reason="ta-lib (PyPI) is the oracle for these tests")

WITH_TALIB = sorted(name for name in REGISTRY if hasattr(talib, name.upper()))

def both(indicator: Indicator, b: Bars, params: dict) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    inputs = b.inputs(indicator.inputs)
    ours = indicators.compute(indicator, inputs, params)
    ref = getattr(talib, indicator.name.upper())(*inputs, **params)
    return ours, (ref if isinstance(ref, tuple) else (ref,))


def check(indicator: Indicator, b: Bars, params: dict, level: float, what: str) -> None:
    ours, ref = both(indicator, b, params)
    assert len(ours) == len(ref) == len(indicator.outputs)
    for name, mine, theirs in zip(indicator.outputs, ours, ref):
        assert_agrees(mine, theirs, level_for(indicator.name, level), f"{indicator.name}{params} {name} ({what})")


def variations(p: Param) -> list:
    """Values worth trying for one parameter, all inside its range."""
    if p.choices is not None:
        return list(p.choices)
    if p.kind is int:
        return sorted({p.minimum, p.minimum + 1, 3 * int(p.minimum) + 4, 50, int(p.default)})
    return sorted({p.default, 0.0 if p.minimum <= 0.0 else p.minimum, p.default * 0.5, p.default * 3.0, 1.0})


def parameter_sets(indicator: Indicator) -> list[dict]:
    sets = [{}]
    for p in indicator.params:
        for value in variations(p):
            if value != p.default:
                sets.append({p.name: value})
    return sets


def accepted_by_talib(indicator: Indicator, params: dict) -> bool:
    probe = bars(200, seed=99)
    try:
        getattr(talib, indicator.name.upper())(*probe.inputs(indicator.inputs), **params)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name", WITH_TALIB)
@pytest.mark.parametrize("level", [1e-6, 1.0, 1e6])
def test_1_defaults_across_price_levels(name: str, level: float) -> None:
    indicator = REGISTRY[name]
    for seed in range(3):
        check(indicator, bars(3000, seed=seed, level=level), {}, level, f"seed {seed}")


@pytest.mark.parametrize("name", WITH_TALIB)
def test_2_each_parameter_across_its_range(name: str) -> None:
    indicator = REGISTRY[name]
    b = bars(1500, seed=7)
    for params in parameter_sets(indicator):
        if not accepted_by_talib(indicator, params):
            with pytest.raises(ValueError):
                indicators.compute(indicator, b.inputs(indicator.inputs), params)
            continue
        check(indicator, b, params, 100.0, "parameter sweep")


@pytest.mark.parametrize("name", WITH_TALIB)
def test_3_lengths_around_the_lookback(name: str) -> None:
    indicator = REGISTRY[name]
    lookback = indicator.lookback(**indicator.defaults())
    for n in sorted({0, 1, max(0, lookback - 1), lookback, lookback + 1, lookback + 2, 100_000}):
        b = bars(n, seed=n)
        if n == 0:
            ours = indicators.compute(indicator, b.inputs(indicator.inputs))
            assert all(out.shape == (0,) for out in ours)
            continue
        check(indicator, b, {}, 100.0, f"n={n}")


@pytest.mark.parametrize("name", WITH_TALIB)
def test_4_leading_and_interior_nan(name: str) -> None:
    indicator = REGISTRY[name]
    b = bars(600, seed=3)
    check(indicator, with_nan(b, leading=17), {}, 100.0, "17 leading NaN")
    check(indicator, with_nan(b, leading=0, interior=300), {}, 100.0, "NaN at 300")
    check(indicator, with_nan(b, leading=600), {}, 100.0, "all NaN")


@pytest.mark.parametrize("timeperiod", [2, 3, 5, 20])
def test_4b_bbands_interior_nan_anywhere(timeperiod: int) -> None:
    """BBANDS' SMA middle band comes out of the variance pass, whose running
    sums recover from a NaN at their next re-anchor; TA-Lib's never do.
    NaN at many places (before, on and after re-anchors, flat stretches that
    make them fire) must give TA-Lib's NaN positions and values."""
    indicator = REGISTRY["bbands"]
    b = bars(3_000, seed=44)
    for interior in (0, 1, timeperiod, 101, 1_000, 2_998, 2_999):
        for flat in (False, True):
            nan_bars = with_nan(b, leading=0, interior=interior)
            if flat and interior > timeperiod + 3:
                # A flat window two bars before the NaN: its zero variance
                # fires a re-anchor in the same block, just ahead of the NaN.
                start = interior - timeperiod - 3
                nan_bars.close[start:interior - 2] = nan_bars.close[start]
            check(indicator, nan_bars, {"timeperiod": timeperiod}, 100.0, f"NaN at {interior}, flat={flat}")


@pytest.mark.parametrize("timeperiod", [2, 3, 14, 100, 600])
def test_4c_midpoint_interior_nan_anywhere(timeperiod: int) -> None:
    """MIDPOINT with a NaN: TA-Lib takes the window's extremes block-wise
    (blocks of timeperiod bars from the first), so a NaN that ends a block
    poisons the windows reaching into that block's end and any other NaN is
    passed over. A NaN at each place of a block (start, inside, end), and
    periods on both sides of the window passes' limit (512)."""
    indicator = REGISTRY["midpoint"]
    b = bars(2_000, seed=45)
    for interior in (1, timeperiod - 1, timeperiod, timeperiod + 1, 2 * timeperiod - 1, 1_000, 1_999):
        check(indicator, with_nan(b, leading=0, interior=interior), {"timeperiod": timeperiod}, 100.0,
              f"NaN at {interior}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_4d_ultosc_interior_nan_around_flat_stretches(seed: int) -> None:
    """ULTOSC restarts a window's sums once it holds only bars that add
    nothing, which drops a NaN carried since an earlier bar. A NaN close in
    a flat stretch adds a NaN pressure to a true range of 0: it counts as a
    bar that adds something, so TA-Lib drops it a window later than a count
    of true ranges alone would (which put NaN at other bars in 35 of 1,600
    such series). A NaN every 7 bars, one at a time, through series with
    flat stretches (bars(600, 0) is flat at 200-229)."""
    indicator = REGISTRY["ultosc"]
    b = bars(600, seed=seed)
    for interior in range(30, 600, 7):
        check(indicator, with_nan(b, leading=0, interior=interior), {}, 100.0, f"NaN at {interior}")


@pytest.mark.parametrize("name", WITH_TALIB)
def test_5_out_of_range_parameters_are_refused(name: str) -> None:
    indicator = REGISTRY[name]
    b = bars(300, seed=5)
    for p in indicator.params:
        if p.choices is not None:
            outside = [max(p.choices) + 1, -1]
        elif p.kind is int:
            outside = [int(p.minimum) - 1, int(p.maximum) + 1]
        else:
            outside = [p.minimum * 2 if p.minimum < 0 else p.minimum - 1.0, p.maximum * 2]
        for value in outside:
            with pytest.raises(ValueError, match=p.name):
                indicators.compute(indicator, b.inputs(indicator.inputs), {p.name: value})
            if p.choices is None:
                assert not accepted_by_talib(indicator, {p.name: value}), f"talib accepts {p.name}={value}"


@pytest.mark.parametrize("name", WITH_TALIB)
def test_6_volatile_walks(name: str) -> None:
    indicator = REGISTRY[name]
    for move in (0.1, 0.3):
        for level in (1e-6, 1.0, 1e6):
            for seed in range(3):
                check(indicator, volatile(2000, seed, move, level), {}, level, f"move {move} seed {seed}")


@pytest.mark.parametrize("timeperiod", [2, 5, 20, 100])
def test_6b_variance_is_talibs_to_the_bit(timeperiod: int) -> None:
    """Every add in TA-Lib's order and every square rounded on its own: one
    square fused into its add (an FMA) or one difference added in place of
    two terms shows up here as a last-bit difference."""
    for move in (0.01, 0.3, 1.0):
        for seed in range(4):
            close = volatile(3000, seed, move).close
            ours = indicators.var(close, timeperiod=timeperiod)
            ref = talib.VAR(close, timeperiod=timeperiod)
            assert np.array_equal(ours, ref, equal_nan=True), f"move {move} seed {seed}"


@pytest.mark.parametrize("name", WITH_TALIB)
def test_7_bad_ticks(name: str) -> None:
    indicator = REGISTRY[name]
    for level in (1e-6, 1.0, 1e6):
        for seed in range(4):
            check(indicator, with_bad_ticks(bars(2000, seed, level), seed), {}, level, f"seed {seed}")
