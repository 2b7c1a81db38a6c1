"""Across-series kernels: many series per call, the series in the SIMD lanes.

A single EMA, RSI or ATR is one long dependency chain (each bar needs the
previous bar's state), so SIMD cannot speed up one series: measured, xsimd
changes nothing there. Many series are independent chains, though, and laid
out time-major -- ``x[t, s]`` is series ``s`` at bar ``t``, one row per bar,
C-contiguous -- the inner loop over ``s`` runs the same step for 4 (AVX2) or 8
(AVX-512) series per instruction.

Called by ``mojo_pool.indicators.api.run_lanes`` with every column of ``x`` free of
leading NaN and ``n`` above the lookback. Each kernel computes exactly what the
single-series kernel of the same name does, lane by lane (tests compare them);
outputs are caller-owned ``(n, S)`` arrays.
"""
import numpy as np


def fill_rows_nan(out, stop):
    for t in range(min(stop, out.shape[0])):
        for s in range(out.shape[1]):
            out[t, s] = np.nan


#pythran export sma(float64[:,:], int, float64[:,:])
def sma(x, timeperiod, out):
    """Simple moving average of every column; lookback timeperiod - 1."""
    n, lanes = x.shape
    first = timeperiod - 1
    fill_rows_nan(out, first)
    total = np.zeros(lanes)
    for t in range(first):
        for s in range(lanes):
            total[s] += x[t, s]
    inv = 1.0 / timeperiod
    for t in range(first, n):
        old = t - first
        for s in range(lanes):
            v = total[s] + x[t, s]
            out[t, s] = v * inv
            total[s] = v - x[old, s]


#pythran export ema(float64[:,:], int, float64[:,:])
def ema(x, timeperiod, out):
    """EMA of every column, seeded with its first window's mean; lookback timeperiod - 1."""
    n, lanes = x.shape
    first = timeperiod - 1
    fill_rows_nan(out, first)
    for s in range(lanes):
        out[first, s] = 0.0
    for t in range(timeperiod):
        for s in range(lanes):
            out[first, s] += x[t, s]
    for s in range(lanes):
        out[first, s] /= timeperiod
    k = 2.0 / (timeperiod + 1)
    keep = 1.0 - k
    for t in range(first + 1, n):
        for s in range(lanes):
            out[t, s] = out[t - 1, s] * keep + k * x[t, s]


#pythran export rsi(float64[:,:], int, float64[:,:])
def rsi(x, timeperiod, out):
    """Wilder RSI of every column; lookback timeperiod.

    Same steps as the single-series kernel: averages of gains and losses
    seeded with the plain mean of the first ``timeperiod`` changes, then
    Wilder-smoothed; 0 where their sum is not positive (a flat series, or
    from an interior NaN on).
    """
    n, lanes = x.shape
    p = timeperiod
    fill_rows_nan(out, p)
    gain = np.zeros(lanes)
    loss = np.zeros(lanes)
    for t in range(1, p + 1):
        for s in range(lanes):
            d = x[t, s] - x[t - 1, s]
            if d > 0.0:
                gain[s] += d
            else:
                loss[s] -= d
    inv = 1.0 / p
    for s in range(lanes):
        out[p, s] = seed_lane(gain[s], loss[s], gain, loss, s, inv)
    rsi_steps(x, p, n - p - 1, lanes, gain, loss, p, out, p + 1)


def rsi_steps(src, first, m, width, gain, loss, period, dest, at):
    """Wilder steps for bars first + 1 .. first + m of time-major ``src`` (the
    changes from the bar before each), lanes 0 .. width - 1, averages carried
    in ``gain`` and ``loss``; the RSI of bar first + j + 1 goes to dest[at + j]."""
    inv = 1.0 / period
    keep = (period - 1) * inv
    for j in range(m):
        for s in range(width):
            dest[at + j, s] = wilder_lane(src[first + j + 1, s] - src[first + j, s], gain, loss, s, keep, inv)


def wilder_lane(d, gain, loss, s, keep, inv):
    """One Wilder step of lane ``s`` for the change ``d``: the averages in
    ``gain`` and ``loss`` move, and the RSI of the bar comes back."""
    up = d if d > 0.0 else 0.0
    down = up - d
    g = gain[s] * keep + up * inv
    lo = loss[s] * keep + down * inv
    gain[s] = g
    loss[s] = lo
    return rsi_value(g, lo)


def seed_lane(up, down, gain, loss, s, inv):
    """The first averages of lane ``s`` (the plain means of the first
    period's gains ``up`` and losses ``down``) into ``gain`` and ``loss``,
    and the RSI of that bar."""
    g = up * inv
    lo = down * inv
    gain[s] = g
    loss[s] = lo
    return rsi_value(g, lo)


def rsi_value(g, lo):
    """RSI from the average gain and loss. A select, not a branch, so the
    lanes stay in SIMD: 0 for a flat series and, as in TA-Lib, from an
    interior NaN on (NaN > 0 is false)."""
    total = g + lo
    return 100.0 * g / total if total > 0.0 else 0.0


# Row-major batches (``x[s, t]``, one series per row, what callers usually
# have) are stepped in place, ROW_GROUP rows at a time: the lanes read bar t
# of each row (16 sequential streams, which the hardware prefetchers follow)
# and write each RSI straight into its row. RSI over 512 x 2,000
# against TA-Lib called per row, scratch builds in one process, identical
# outputs: 16 x 64 tiles copied into a time-major L1 buffer and the results
# copied back out 2.8-3.2x; writing the results straight into the rows
# 3.3-3.7x; no tiles at all 3.9-4.2x (8 rows a group 3.3-3.5x, 32 rows
# 1.6-3.2x). Transposing whole arrays costs more than the lanes save
# (numpy's transposes 0.6 ms in, 5.5 ms back, the kernel 0.28 ms).
ROW_GROUP = 16


def rsi_steps_rows(x, first, stop, g0, width, gain, loss, period, out):
    """:func:`rsi_steps` for rows g0 .. g0 + width - 1 of row-major ``x``,
    bars first .. stop - 1, the RSI of each bar into the same place of ``out``."""
    inv = 1.0 / period
    keep = (period - 1) * inv
    for t in range(first, stop):
        for s in range(width):
            out[g0 + s, t] = wilder_lane(x[g0 + s, t] - x[g0 + s, t - 1], gain, loss, s, keep, inv)


#pythran export rsi_rows(float64[:,:], int, float64[:,:])
def rsi_rows(x, timeperiod, out):
    """:func:`rsi` of every row of a row-major batch, ROW_GROUP rows in the SIMD lanes.

    Rows whose first value is NaN come out wrong here; the caller computes
    those one by one. Needs ``n > timeperiod``.
    """
    rows, n = x.shape
    p = timeperiod
    inv = 1.0 / p
    gain = np.empty(ROW_GROUP)
    loss = np.empty(ROW_GROUP)
    for g0 in range(0, rows, ROW_GROUP):
        width = min(ROW_GROUP, rows - g0)
        # The seed, row by row (p + 1 bars): the plain mean of the first p changes.
        for s in range(width):
            row = x[g0 + s]
            dest = out[g0 + s]
            up = 0.0
            down = 0.0
            for t in range(1, p + 1):
                d = row[t] - row[t - 1]
                if d > 0.0:
                    up += d
                else:
                    down -= d
            for t in range(p):
                dest[t] = np.nan
            dest[p] = seed_lane(up, down, gain, loss, s, inv)
        rsi_steps_rows(x, p + 1, n, g0, width, gain, loss, p, out)
