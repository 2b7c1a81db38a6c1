"""Momentum: RSI, CMO, MOM, ROC, TRIX, MACD, APO, PPO and the stochastic RSI.

Pythran kernels under the contract stated in ``mojo_pool.ext.overlap``.

Conventions of TA-Lib's that the kernels reproduce:

* RSI and CMO smooth the average gain and loss the Wilder way (seeded with
  the plain mean of the first ``period`` changes, then ``avg * (p-1)/p +
  change/p``); their first value is at index ``period``. A NaN change
  poisons the averages and TA-Lib answers 0, not NaN, from then on, as it
  does while there has been neither gain nor loss. RSI and CMO agree with
  TA-Lib to the last few bits; the RSI inside STOCHRSI is rounded exactly as
  TA-Lib rounds it (see :func:`rsi_exact_into`).
* MACD starts its fast EMA late, at ``slow - fast``, so that both EMAs first
  emit at ``slow - 1``: the fast EMA is seeded with the mean of
  ``x[slow-fast : slow]``, not of the first ``fast`` values. APO and PPO do
  not: both of their moving averages run from the first bar.
  In all three a slow period below the fast one is swapped with it.
* ROC (and TRIX's final rate of change) gives 0 where the reference value is
  exactly 0; PPO gives 0 where the slow average is within 1e-14 of 0.
* The stochastic of the RSI treats a window as flat, and answers 0, when its
  range is within 1e-14 of the sum of the extremes' magnitudes (a flat price
  stretch leaves rounding noise of a few ulps in the RSI, which an exact test
  would blow up into arbitrary values in [0, 100]); otherwise %K is
  ``((x - lowest) / (highest - lowest)) * 100``, in that order, as TA-Lib
  computes it, so %K matches TA-Lib bit for bit.
"""
import numpy as np

from .oscillators import fastk_into
from .overlap import fill_nan, ema_into, ma_into, ma_lookback

# TA-Lib's zero band for PPO's denominator and the flat-window test.
EPSILON = 1e-14

# Bars per block of wilder_into (two buffers of this many floats stay in L1).
WILDER_BLOCK = 512


def wilder_into(x, start, period, cmo, out):
    """RSI (cmo == 0) or CMO (cmo != 0) of x[start:]; lookback period.

    The sign split is ``up = max(d, 0)``, ``down = up - d`` (exact for finite
    d): no branch to mispredict on a random walk (a conditional expression
    per side compiles to branches and runs 2.5x slower). A NaN change makes
    both averages NaN (TA-Lib's only the gain): either way every later output
    is TA-Lib's 0.

    Each average is an EMA of its side with k = 1/period, advanced four bars
    per step the way ``overlap.ema_seeded`` advances one (the loop-carried
    chain is one FMA per four bars); the divisions for the outputs are left
    to a vectorised loop per block.
    """
    n = x.shape[0]
    first = start + period
    fill_nan(out, first)
    if first >= n:
        return
    gain = 0.0
    loss = 0.0
    for i in range(start + 1, first + 1):
        d = x[i] - x[i - 1]
        if d < 0.0:
            loss -= d
        else:
            gain += d
    k = 1.0 / period
    gain *= k
    loss *= k
    out[first] = wilder_value(gain, loss, cmo)
    a = 1.0 - k
    a2 = a * a
    a3 = a2 * a
    a4 = a2 * a2
    # Aligned views instead of x[i - 1]: see overlap.sma_into.
    cur = x[first + 1:]
    prev = x[first:n - 1]
    dest = out[first + 1:]
    m = n - first - 1
    # Block by block, the recurrence writes the averages into two small
    # buffers (L1-resident) and a second, elementwise loop divides them into
    # the output: that loop runs in SIMD lanes, where a division per bar in
    # the recurrence loop ran at the scalar divider's pace (measured 1.6x
    # TA-Lib, the divider's bound, before).
    gains = np.empty(WILDER_BLOCK)
    losses = np.empty(WILDER_BLOCK)
    for start in range(0, m, WILDER_BLOCK):
        stop = min(start + WILDER_BLOCK, m)
        c = cur[start:stop]
        p = prev[start:stop]
        mb = stop - start
        j = 0
        while j + 3 < mb:
            d0 = c[j] - p[j]
            d1 = c[j + 1] - p[j + 1]
            d2 = c[j + 2] - p[j + 2]
            d3 = c[j + 3] - p[j + 3]
            u0 = max(d0, 0.0)
            u1 = max(d1, 0.0)
            u2 = max(d2, 0.0)
            u3 = max(d3, 0.0)
            g0 = k * u0
            g1 = g0 * a + k * u1
            g2 = g1 * a + k * u2
            g3 = g2 * a + k * u3
            l0 = k * (u0 - d0)
            l1 = l0 * a + k * (u1 - d1)
            l2 = l1 * a + k * (u2 - d2)
            l3 = l2 * a + k * (u3 - d3)
            gains[j] = gain * a + g0
            gains[j + 1] = gain * a2 + g1
            gains[j + 2] = gain * a3 + g2
            losses[j] = loss * a + l0
            losses[j + 1] = loss * a2 + l1
            losses[j + 2] = loss * a3 + l2
            gain = gain * a4 + g3
            loss = loss * a4 + l3
            gains[j + 3] = gain
            losses[j + 3] = loss
            j += 4
        while j < mb:
            d = c[j] - p[j]
            up = max(d, 0.0)
            gain = gain * a + k * up
            loss = loss * a + k * (up - d)
            gains[j] = gain
            losses[j] = loss
            j += 1
        block = dest[start:stop]
        for j in range(mb):
            block[j] = wilder_value(gains[j], losses[j], cmo)


def wilder_value(gain, loss, cmo):
    """RSI or CMO from the smoothed gain and loss; 0 when both are 0 or NaN.

    Selects, not branches, so that a loop of these vectorises.
    """
    total = gain + loss
    top = gain - loss if cmo != 0 else gain
    return 100.0 * (top / total) if total > 0.0 else 0.0


def rsi_into(x, start, period, out):
    """Wilder's relative strength index of x[start:]; lookback period."""
    wilder_into(x, start, period, 0, out)


def rsi_exact_into(x, start, period, out):
    """RSI of x[start:] rounded step for step as TA-Lib rounds it.

    TA-Lib's step is ``avg = (avg * (p-1) + change) * (1/p)``: three
    roundings, two of them multiplications on the dependency chain, one bar
    per step (with the clamp below, 2.4x the time of :func:`wilder_into`).
    The stochastic RSI needs the exact
    bits: on a flat price stretch TA-Lib's RSI wanders by a few ulps, and a
    window whose real range is small turns that wander into %K values far
    above the tolerance. The product must not be fused with the addition
    that follows it (an FMA rounds once where TA-Lib rounds twice), and C
    compilers fuse them when allowed to: the clamp, which never fires
    (averages are never negative, and NaN passes through), gives the product
    a second use, and a product with a non-additive use is not fused.
    """
    n = x.shape[0]
    first = start + period
    fill_nan(out, first)
    if first >= n:
        return
    gain = 0.0
    loss = 0.0
    for i in range(start + 1, first + 1):
        d = x[i] - x[i - 1]
        if d < 0.0:
            loss -= d
        else:
            gain += d
    inv = 1.0 / period
    older = float(period - 1)
    gain *= inv
    loss *= inv
    out[first] = wilder_value(gain, loss, 0)
    cur = x[first + 1:]
    prev = x[first:n - 1]
    dest = out[first + 1:]
    for j in range(n - first - 1):
        d = cur[j] - prev[j]
        up = max(d, 0.0)
        down = up - d
        g = gain * older
        if g < 0.0:
            g = 0.0
        l = loss * older
        if l < 0.0:
            l = 0.0
        gain = (g + up) * inv
        loss = (l + down) * inv
        dest[j] = wilder_value(gain, loss, 0)


def roc_ratio(value, reference):
    """TA-Lib's rate of change in percent; 0 for a reference of exactly 0."""
    if reference != 0.0:
        return (value / reference - 1.0) * 100.0
    return 0.0


#pythran export rsi(float64[:], int, float64[:])
def rsi(real, timeperiod, out):
    wilder_into(real, 0, timeperiod, 0, out)


#pythran export cmo(float64[:], int, float64[:])
def cmo(real, timeperiod, out):
    """Chande momentum oscillator, 100 * (gain - loss) / (gain + loss), Wilder-smoothed."""
    wilder_into(real, 0, timeperiod, 1, out)


#pythran export mom(float64[:], int, float64[:])
def mom(real, timeperiod, out):
    """x[i] - x[i - timeperiod]; lookback timeperiod.

    A loop over aligned views (see overlap.sma_into): it runs in SIMD lanes
    and measured 1.3x faster than the slice expression
    ``out[p:] = real[p:] - real[:n - p]``, which Pythran evaluates through
    its generic expression machinery.
    """
    n = real.shape[0]
    fill_nan(out, timeperiod)
    cur = real[timeperiod:]
    prev = real[:n - timeperiod]
    dest = out[timeperiod:]
    for j in range(n - timeperiod):
        dest[j] = cur[j] - prev[j]


#pythran export roc(float64[:], int, float64[:])
def roc(real, timeperiod, out):
    """(x[i] / x[i - timeperiod] - 1) * 100; lookback timeperiod."""
    n = real.shape[0]
    fill_nan(out, timeperiod)
    cur = real[timeperiod:]
    prev = real[:n - timeperiod]
    dest = out[timeperiod:]
    for j in range(n - timeperiod):
        dest[j] = roc_ratio(cur[j], prev[j])


#pythran export trix(float64[:], int, float64[:])
def trix(real, timeperiod, out):
    """One-bar rate of change (percent) of EMA(EMA(EMA(x))); lookback 3 * (timeperiod - 1) + 1.

    Three ``ema_into`` passes (each EMA seeded, as TA-Lib seeds them, with
    the mean of the first ``timeperiod`` values of its input): their
    four-bars-a-step recurrence makes this 1.6x faster than one fused pass
    advancing the three EMAs a bar at a time (measured).
    """
    n = real.shape[0]
    lag = timeperiod - 1
    first = 3 * lag + 1
    tmp = np.empty(n)
    ema_into(real, 0, timeperiod, tmp)
    ema_into(tmp, lag, timeperiod, out)
    ema_into(out, 2 * lag, timeperiod, tmp)
    fill_nan(out, first)
    cur = tmp[first:]
    prev = tmp[first - 1:n - 1]
    dest = out[first:]
    for j in range(n - first):
        dest[j] = roc_ratio(cur[j], prev[j])


def ema_pair_difference(x, first, fast_seed, fast_k, slow_seed, slow_k, out):
    """out[i] = fast EMA - slow EMA of x for i >= first, both seeded at bar first - 1.

    The two recurrences of ``overlap.ema_seeded`` in one pass, four bars per
    FMA on each chain: MACD's line without writing either EMA out and
    reading both back (a pass over the output costs ~0.15 ms at 10^6 bars).
    Each EMA is carried divided by its k (z = y / k steps as z * (1 - k) + x),
    so the bars enter the chains' prefixes without a multiplication each:
    seven FMAs per EMA per four bars instead of eleven operations.
    """
    n = x.shape[0]
    fa = 1.0 - fast_k
    fa2 = fa * fa
    fa3 = fa2 * fa
    fa4 = fa2 * fa2
    sa = 1.0 - slow_k
    sa2 = sa * sa
    sa3 = sa2 * sa
    sa4 = sa2 * sa2
    fast = fast_seed / fast_k
    slow = slow_seed / slow_k
    i = first
    while i + 3 < n:
        v0 = x[i]
        v1 = x[i + 1]
        v2 = x[i + 2]
        v3 = x[i + 3]
        fc1 = v0 * fa + v1
        fc2 = fc1 * fa + v2
        fc3 = fc2 * fa + v3
        sc1 = v0 * sa + v1
        sc2 = sc1 * sa + v2
        sc3 = sc2 * sa + v3
        out[i] = fast_k * (fast * fa + v0) - slow_k * (slow * sa + v0)
        out[i + 1] = fast_k * (fast * fa2 + fc1) - slow_k * (slow * sa2 + sc1)
        out[i + 2] = fast_k * (fast * fa3 + fc2) - slow_k * (slow * sa3 + sc2)
        fast = fast * fa4 + fc3
        slow = slow * sa4 + sc3
        out[i + 3] = fast_k * fast - slow_k * slow
        i += 4
    while i < n:
        fast = fast * fa + x[i]
        slow = slow * sa + x[i]
        out[i] = fast_k * fast - slow_k * slow
        i += 1


def ema_and_gap(x, first, seed, k, out, gap):
    """``overlap.ema_seeded`` that also writes gap[i] = x[i] - out[i] (MACD's histogram)."""
    n = x.shape[0]
    a = 1.0 - k
    a2 = a * a
    a3 = a2 * a
    a4 = a2 * a2
    y = seed
    i = first
    while i + 3 < n:
        v0 = x[i]
        v1 = x[i + 1]
        v2 = x[i + 2]
        v3 = x[i + 3]
        b0 = k * v0
        c1 = b0 * a + k * v1
        c2 = c1 * a + k * v2
        c3 = c2 * a + k * v3
        y0 = y * a + b0
        y1 = y * a2 + c1
        y2 = y * a3 + c2
        y = y * a4 + c3
        out[i] = y0
        out[i + 1] = y1
        out[i + 2] = y2
        out[i + 3] = y
        gap[i] = v0 - y0
        gap[i + 1] = v1 - y1
        gap[i + 2] = v2 - y2
        gap[i + 3] = v3 - y
        i += 4
    while i < n:
        y = y * a + k * x[i]
        out[i] = y
        gap[i] = x[i] - y
        i += 1


#pythran export macd(float64[:], int, int, int, float64[:], float64[:], float64[:])
def macd(real, fastperiod, slowperiod, signalperiod, line, signal, hist):
    """EMA(fast) - EMA(slow), its EMA(signal) and their difference.

    Lookback max(fast, slow) - 1 + signalperiod - 1, for all three outputs.
    Each EMA is seeded as ``overlap.ema_into`` seeds it (the fast one with
    the mean of x[slow-fast : slow], see the module docstring); two fused
    passes then write the line, and the signal with the histogram.
    """
    n = real.shape[0]
    fast = fastperiod
    slow = slowperiod
    if slow < fast:
        fast = slowperiod
        slow = fastperiod
    line_first = slow - 1
    first = line_first + signalperiod - 1
    fill_nan(line, first)
    fill_nan(signal, first)
    fill_nan(hist, first)
    if line_first >= n:
        return
    slow_total = 0.0
    for i in range(0, slow):
        slow_total += real[i]
    fast_total = 0.0
    for i in range(slow - fast, slow):
        fast_total += real[i]
    fast_seed = fast_total / fast
    slow_seed = slow_total / slow
    line[line_first] = fast_seed - slow_seed
    ema_pair_difference(real, line_first + 1, fast_seed, 2.0 / (fast + 1), slow_seed, 2.0 / (slow + 1), line)
    if first >= n:
        fill_nan(line, n)
        return
    total = 0.0
    for i in range(line_first, first + 1):
        total += line[i]
    seed = total / signalperiod
    signal[first] = seed
    hist[first] = line[first] - seed
    ema_and_gap(line, first + 1, seed, 2.0 / (signalperiod + 1), signal, hist)
    fill_nan(line, first)


def price_oscillator(x, fastperiod, slowperiod, matype, percent, out):
    """MA(fast) - MA(slow) (percent == 0) or 100 * that / MA(slow) (PPO)."""
    n = x.shape[0]
    fast = fastperiod
    slow = slowperiod
    if slow < fast:
        fast = slowperiod
        slow = fastperiod
    first = ma_lookback(slow, matype)
    tmp = np.empty(n)
    ma_into(x, 0, fast, matype, tmp)
    ma_into(x, 0, slow, matype, out)
    for i in range(first, n):
        s = out[i]
        if percent == 0:
            out[i] = tmp[i] - s
        elif abs(s) < EPSILON:
            out[i] = 0.0
        else:
            out[i] = ((tmp[i] - s) / s) * 100.0


#pythran export apo(float64[:], int, int, int, float64[:])
def apo(real, fastperiod, slowperiod, matype, out):
    """Absolute price oscillator, MA(fast) - MA(slow); lookback the slow MA's."""
    price_oscillator(real, fastperiod, slowperiod, matype, 0, out)


#pythran export ppo(float64[:], int, int, int, float64[:])
def ppo(real, fastperiod, slowperiod, matype, out):
    """Percentage price oscillator, 100 * (MA(fast) - MA(slow)) / MA(slow)."""
    price_oscillator(real, fastperiod, slowperiod, matype, 1, out)


#pythran export stochrsi(float64[:], int, int, int, int, float64[:], float64[:])
def stochrsi(real, timeperiod, fastk_period, fastd_period, fastd_matype, fastk, fastd):
    """Fast stochastic of RSI(timeperiod): %K over fastk_period, %D its MA.

    Lookback timeperiod + fastk_period - 1 + the MA's, for both outputs. The
    RSI is parked in ``fastd`` until %K is formed.
    """
    k_first = timeperiod + fastk_period - 1
    first = k_first + ma_lookback(fastd_period, fastd_matype)
    rsi_exact_into(real, 0, timeperiod, fastd)
    fastk_into(fastd, fastd, fastd, timeperiod, fastk_period, fastk)
    ma_into(fastk, k_first, fastd_period, fastd_matype, fastd)
    fill_nan(fastk, first)
    fill_nan(fastd, first)
