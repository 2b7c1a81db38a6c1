"""Synthetic market data for the parity tests: reproducible, and hostile where it counts.

Every series is a seeded random walk with a trend, price gaps and flat
stretches (where running sums must cancel to exactly zero), scaled to the
requested price level so the same shapes are tried around 1e-6, 1 and 1e6.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bars:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def inputs(self, names: tuple[str, ...]) -> list[np.ndarray]:
        """The arrays an indicator takes, ``real`` meaning the close."""
        return [self.close if name == "real" else getattr(self, name) for name in names]


def walk(n: int, seed: int, level: float = 100.0) -> np.ndarray:
    """A positive random walk around ``level`` with trend, gaps and flat stretches."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, n) + 0.0005 * np.sin(np.arange(n) / 250.0)
    gaps = rng.random(n) < 0.01
    steps[gaps] += rng.normal(0.0, 0.05, gaps.sum())
    for _ in range(max(1, n // 500)):  # flat stretches: no move at all
        begin = int(rng.integers(0, max(1, n)))
        steps[begin:begin + int(rng.integers(5, 60))] = 0.0
    return level * np.exp(np.cumsum(steps))


def bars(n: int, seed: int = 0, level: float = 100.0) -> Bars:
    """OHLCV bars consistent with one another (low <= open, close <= high)."""
    return around(walk(n, seed, level), np.random.default_rng(seed + 1_000_003), 0.004)


def volatile(n: int, seed: int, move: float, level: float = 100.0) -> Bars:
    """Bars whose close moves ``move`` (log standard deviation) a bar: at
    0.3, prices cross orders of magnitude within a window, so window sums
    are no longer exact in doubles and the order of each addition decides
    the rounding (on calm data, differences of nearby prices sum exactly,
    and every order gives the same bits)."""
    rng = np.random.default_rng(seed + 7_000_001)
    return around(level * np.exp(np.cumsum(rng.normal(0.0, move, n))), rng, 0.05)


def around(close: np.ndarray, rng: np.random.Generator, spread_sd: float) -> Bars:
    """Open, high, low and volume around a close series: each open is the
    previous close, the bar's range reaches ``spread_sd`` (relative) beyond
    them, and a flat stretch of the close is flat in every field."""
    n = len(close)
    open_ = np.empty(n)
    if n:
        open_[0] = close[0]
        open_[1:] = close[:-1]
    spread = np.abs(rng.normal(0.0, spread_sd, n)) * close
    flat = np.diff(close, prepend=close[:1]) == 0.0
    spread[flat] = 0.0
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread * rng.random(n)
    volume = np.round(rng.lognormal(10.0, 1.0, n))
    volume[rng.random(n) < 0.02] = 0.0
    return Bars(open_, high, low, close, volume)


def with_nan(b: Bars, leading: int = 0, interior: int | None = None) -> Bars:
    """The same bars with NaN in the first ``leading`` rows and at ``interior``."""
    def poke(values: np.ndarray, which: str) -> np.ndarray:
        values = values.copy()
        values[:leading] = np.nan
        if interior is not None and which == "close":
            values[interior] = np.nan
        return values

    return Bars(*(poke(getattr(b, f), f) for f in ("open", "high", "low", "close", "volume")))


def with_bad_ticks(b: Bars, seed: int, count: int = 4) -> Bars:
    """The same bars with ``count`` bad prints: at a few bars every price is
    10^-6 .. 10^6 times what it was (a fat finger, a feed that dropped the
    decimal point), volume untouched. A window that holds one sums numbers
    far apart in size, and when it leaves, what stays is dwarfed by the
    rounding it left behind."""
    rng = np.random.default_rng(seed + 5_000_011)
    n = len(b.close)
    at = rng.integers(0, n, count) if n else np.zeros(0, dtype=int)
    factor = 10.0 ** rng.integers(-6, 7, len(at)).astype(float)

    def poke(values: np.ndarray) -> np.ndarray:
        values = values.copy()
        values[at] *= factor
        return values

    return Bars(poke(b.open), poke(b.high), poke(b.low), poke(b.close), b.volume)
