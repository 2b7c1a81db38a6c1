"""Windowed statistics (TA-Lib's "statistic functions"): deviation, variance, linear regression.

Pythran kernels under the contract stated in ``overlap``'s docstring.
"""
import numpy as np

from .overlap import fill_nan, variance_window

def regression_constants(period):
    """p, sum of the bar offsets 0..p-1, and the least-squares divisor.

    Exact in doubles for every period allowed (the sums stay below 2^53).
    """
    p = float(period)
    sum_a = p * (p - 1.0) * 0.5
    sum_aa = p * (p - 1.0) * (2.0 * p - 1.0) / 6.0
    return p, sum_a, sum_a * sum_a - p * sum_aa


def regression_sums(x, newest, oldest_age):
    """sum(x) and sum(age * x) over the bars newest - oldest_age .. newest.

    Ages count back from the newest bar (0); summed oldest first, in TA-Lib's
    order, so a rebuild gives TA-Lib's sums.
    """
    sum_y = 0.0
    sum_ay = 0.0
    for age in range(oldest_age, -1, -1):
        v = x[newest - age]
        sum_y += v
        sum_ay += age * v
    return sum_y, sum_ay


def linreg_window(x, period, out):
    """The least-squares line through each window x[i-period+1 : i+1], at its newest bar.

    Lookback period - 1.

    Bars are numbered by age, a = 0 (newest) .. period - 1 (oldest), and two
    running sums move one bar per step: ``sum_y`` = sum(x) and ``sum_ay`` =
    sum(a * x). A step ages every bar by one (adds ``sum_y``), drops the
    bar that reaches age ``period`` and takes the new bar at age 0. With
    S_a = sum(a) and S_aa = sum(a^2), the slope per bar forward in time is
    (period * sum_ay - S_a * sum_y) / (S_a^2 - period * S_aa), the line's
    intercept at the oldest bar (sum_y - slope * S_a) / period, and its value
    at the newest bar intercept + slope * (period - 1).

    The sums are raw (not shifted), rebuilt from the window at the first
    output and then every 32 * period outputs, and stepped with TA-Lib's
    operations in TA-Lib's order: that makes the rounding drift (which on a
    long fall from 100 to 0.06 with a period in the thousands reaches 1e-9
    relative, in TA-Lib too) the same as TA-Lib's, and the output recover
    from an interior NaN at the same bar (until the next rebuild, NaN).

    Speed (measured, period 14, against TA-Lib in one process: 1.0x before,
    1.7x after, at 10^5 and 10^6 bars): the two divisions per bar, by the
    divisor and by the period, were the limit (the scalar divider's
    throughput, not the chain of sums), so they are multiplications by
    reciprocals computed once; that moves the output by an ulp or so, far
    inside the agreement bound, while the sums stay exactly TA-Lib's. The
    bar leaving the window is read through an aligned view, not x[i - period]
    (which Pythran guards against a negative index on every access).
    """
    n = x.shape[0]
    first = period - 1
    fill_nan(out, first)
    if first >= n:
        return
    p, sum_a, divisor = regression_constants(period)
    top = p - 1.0
    inv_divisor = 1.0 / divisor
    inv_p = 1.0 / p
    # Bar first + 1 + j enters the window as entering[j], and leaving[j]
    # leaves it; its output goes to dest[j].
    entering = x[first + 1:]
    leaving = x[:n - period]
    dest = out[first + 1:]
    i = first
    while i < n:
        # Rebuild at bar i, then up to 32 * period - 1 rolling steps.
        sum_y, sum_ay = regression_sums(x, i, first)
        slope = (p * sum_ay - sum_a * sum_y) * inv_divisor
        out[i] = (sum_y - slope * sum_a) * inv_p + slope * top
        stop = min(n, i + 32 * period)
        for j in range(i - first, stop - first - 1):
            gone = leaving[j]
            # "+ 0.0" rounds the product by itself, so the subtraction below
            # stays a plain subtraction as in TA-Lib instead of being fused
            # into a multiply-add (different rounding, and a longer latency
            # on the chain of sums).
            gone_p = p * gone + 0.0
            sum_ay = (sum_ay + sum_y) - gone_p
            sum_y = (sum_y - gone) + entering[j]
            slope = (p * sum_ay - sum_a * sum_y) * inv_divisor
            dest[j] = (sum_y - slope * sum_a) * inv_p + slope * top
        i = stop


def linreg_slope_window(x, period, out):
    """The slope per bar of linreg_window's line, with one add per bar on each running sum.

    Same sums, rebuilt at the same bars (first output, then every
    32 * period outputs), so NaN recovery is the same; but the steps are
    regrouped as sum_y += (entering - leaving) and sum_ay += (sum_y -
    period * leaving), with the bracketed terms computed off the dependency
    chain. That doubles the speed (the chain of two dependent adds per bar
    was the limit) at the price of bit-identity with TA-Lib: the rounding
    differs by a few ulps of the sums, far inside the agreement bound.
    """
    n = x.shape[0]
    first = period - 1
    fill_nan(out, first)
    if first >= n:
        return
    p, sum_a, divisor = regression_constants(period)
    # Views of the bar entering (x[i]) and leaving (x[i - period]) at bar
    # first + 1 + j, with non-negative indices (see overlap.sma_into).
    entering = x[first + 1:]
    leaving = x[:n - period]
    dest = out[first + 1:]
    i = first
    while i < n:
        # Rebuild at bar i, then 32 * period - 1 rolling steps.
        sum_y, sum_ay = regression_sums(x, i, first)
        out[i] = (p * sum_ay - sum_a * sum_y) / divisor
        stop = min(n, i + 32 * period)
        for j in range(i - first, stop - first - 1):
            gone = leaving[j]
            sum_ay = sum_ay + (sum_y - p * gone)
            sum_y = sum_y + (entering[j] - gone)
            dest[j] = (p * sum_ay - sum_a * sum_y) / divisor
        i = stop


#pythran export stddev(float64[:], int, float, float64[:])
def stddev(real, timeperiod, nbdev, out):
    """Population standard deviation of the window times ``nbdev``; lookback timeperiod - 1.

    The square root is taken unconditionally, as TA-Lib 0.8 takes it: the
    variance is never negative, exactly 0 on a flat window, and NaN stays
    NaN (older TA-Lib releases zeroed variances under 1e-14). A negative
    ``nbdev`` flips the sign.
    """
    first = timeperiod - 1
    fill_nan(out, first)
    variance_window(real, timeperiod, first, out, out, False)
    for i in range(first, real.shape[0]):
        out[i] = np.sqrt(out[i]) * nbdev


#pythran export var(float64[:], int, float, float64[:])
def var(real, timeperiod, nbdev, out):
    """Population variance of the window; lookback timeperiod - 1.

    ``nbdev`` is accepted and ignored, as TA-Lib ignores it. Period 1 gives 0.
    """
    first = timeperiod - 1
    fill_nan(out, first)
    variance_window(real, timeperiod, first, out, out, False)


#pythran export linearreg(float64[:], int, float64[:])
def linearreg(real, timeperiod, out):
    """Least-squares line over the window, evaluated at its newest bar; lookback timeperiod - 1."""
    linreg_window(real, timeperiod, out)


#pythran export linearreg_slope(float64[:], int, float64[:])
def linearreg_slope(real, timeperiod, out):
    """Slope per bar of the least-squares line over the window; lookback timeperiod - 1."""
    linreg_slope_window(real, timeperiod, out)
