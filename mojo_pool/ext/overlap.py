"""Moving averages and the bands built on them (TA-Lib's "overlap studies").

Pythran kernels, written as plain Python loops so the module also runs
interpreted: the tests compare both. Called by ``mojo_pool.indicators``, which
guarantees every contract stated here before it calls.

Kernel contract, shared by every family module in ``mojo_pool.ext``:

* Inputs are C-contiguous float64 arrays of one length ``n``, starting at the
  first index where every input is defined (the caller strips leading NaNs, as
  TA-Lib's Python wrapper does) and longer than the indicator's lookback.
* Outputs are caller-owned float64 arrays of the same length; a kernel writes
  every element, NaN for the first ``lookback`` ones, and never allocates its
  outputs (allocation of a large result costs more than computing it).
* The ``*_into(x, start, ..., out)`` building blocks compute over ``x[start:]``
  and leave ``out[:start + lookback]`` NaN; the families chain them (DEMA is an
  EMA of an EMA that starts where the first one became defined).

Numerics: each recurrence keeps at most one multiplication on its dependency
chain (``prev * (1 - k) + k * x`` instead of ``(x - prev) * k + prev``) so the
compiler turns the step into a single FMA; results differ from TA-Lib only in
the last bits.
"""
import numpy as np

# TA-Lib's moving-average type codes (the ``matype`` parameters).
MA_SMA = 0
MA_EMA = 1
MA_WMA = 2
MA_DEMA = 3
MA_TEMA = 4
MA_TRIMA = 5
MA_KAMA = 6
MA_MAMA = 7
MA_T3 = 8


def fill_nan(out, stop):
    """out[:stop] = NaN, clamped to the array."""
    for i in range(min(stop, out.shape[0])):
        out[i] = np.nan


def sma_into(x, start, period, out):
    """Simple moving average of x[start:]; lookback period - 1."""
    n = x.shape[0]
    first = start + period - 1
    fill_nan(out, first)
    if first >= n:
        return
    total = 0.0
    for i in range(start, first):
        total += x[i]
    inv = 1.0 / period
    # Keep the running sum on the dependency chain with one add: the
    # difference x[i] - x[i - period] does not depend on the previous step.
    for i in range(first, n):
        total += x[i]
        out[i] = total * inv
        total -= x[i - period + 1]


def ema_seeded(x, first, seed, k, out):
    """EMA recurrence from out[first - 1] = seed onward with smoothing k."""
    n = x.shape[0]
    prev = seed
    keep = 1.0 - k
    for i in range(first, n):
        prev = prev * keep + k * x[i]
        out[i] = prev


def ema_into(x, start, period, out):
    """Exponential moving average of x[start:] with k = 2 / (period + 1).

    Seeded, like TA-Lib, with the mean of the first ``period`` values;
    lookback period - 1.
    """
    n = x.shape[0]
    first = start + period - 1
    fill_nan(out, first)
    if first >= n:
        return
    total = 0.0
    for i in range(start, first + 1):
        total += x[i]
    seed = total / period
    out[first] = seed
    ema_seeded(x, first + 1, seed, 2.0 / (period + 1), out)


def wma_into(x, start, period, out):
    """Linearly weighted moving average (weights 1..period); lookback period - 1."""
    n = x.shape[0]
    first = start + period - 1
    fill_nan(out, first)
    if first >= n:
        return
    divider = period * (period + 1) / 2.0
    # weighted = sum(w * x) with the newest value weighted `period`; plain is
    # the unweighted window sum, subtracted once per step to age every weight.
    weighted = 0.0
    plain = 0.0
    w = 1
    for i in range(start, first):
        weighted += x[i] * w
        plain += x[i]
        w += 1
    for i in range(first, n):
        v = x[i]
        plain += v
        weighted += v * period
        out[i] = weighted / divider
        weighted -= plain
        plain -= x[i - period + 1]


def dema_into(x, start, period, out):
    """Double EMA, 2*e1 - e2 with e2 = EMA(e1); lookback 2 * (period - 1)."""
    e1 = np.empty(x.shape[0])
    e2 = np.empty(x.shape[0])
    ema_into(x, start, period, e1)
    ema_into(e1, start + period - 1, period, e2)
    first = start + 2 * (period - 1)
    fill_nan(out, first)
    for i in range(first, x.shape[0]):
        out[i] = 2.0 * e1[i] - e2[i]


def tema_into(x, start, period, out):
    """Triple EMA, 3*e1 - 3*e2 + e3; lookback 3 * (period - 1)."""
    e1 = np.empty(x.shape[0])
    e2 = np.empty(x.shape[0])
    e3 = np.empty(x.shape[0])
    ema_into(x, start, period, e1)
    ema_into(e1, start + period - 1, period, e2)
    ema_into(e2, start + 2 * (period - 1), period, e3)
    first = start + 3 * (period - 1)
    fill_nan(out, first)
    for i in range(first, x.shape[0]):
        out[i] = 3.0 * (e1[i] - e2[i]) + e3[i]


def trima_into(x, start, period, out):
    """Triangular moving average, an SMA of an SMA; lookback period - 1.

    Odd period p: SMA((p+1)/2) of SMA((p+1)/2); even: SMA(p/2 + 1) of SMA(p/2).
    """
    inner = period // 2 + period % 2
    outer = period // 2 + 1 if period % 2 == 0 else inner
    tmp = np.empty(x.shape[0])
    sma_into(x, start, inner, tmp)
    sma_into(tmp, start + inner - 1, outer, out)


def kama_into(x, start, period, out):
    """Kaufman adaptive moving average; lookback period.

    Efficiency ratio over ``period`` steps scales the smoothing between the
    2- and 30-bar EMA constants, squared; seeded with the previous close.
    """
    n = x.shape[0]
    first = start + period
    fill_nan(out, first)
    if first >= n:
        return
    fastest = 2.0 / (2 + 1)
    slowest = 2.0 / (30 + 1)
    span = fastest - slowest
    noise = 0.0
    for i in range(start + 1, first):
        noise += abs(x[i] - x[i - 1])
    prev = x[first - 1]
    for i in range(first, n):
        noise += abs(x[i] - x[i - 1])
        if i > first:
            noise -= abs(x[i - period] - x[i - period - 1])
        change = abs(x[i] - x[i - period])
        if noise <= change or noise == 0.0:
            ratio = 1.0
        else:
            ratio = change / noise
        sc = ratio * span + slowest
        sc = sc * sc
        prev = prev + (x[i] - prev) * sc
        out[i] = prev


def ma_lookback(period, matype):
    """Leading NaN count of ma_into for one matype (TA-Lib's MA lookback)."""
    if period == 1:
        return 0
    if matype == MA_DEMA:
        return 2 * (period - 1)
    if matype == MA_TEMA:
        return 3 * (period - 1)
    if matype == MA_KAMA:
        return period
    return period - 1


def ma_into(x, start, period, matype, out):
    """TA-Lib's MA(matype) over x[start:]; period 1 copies the input.

    MAMA and T3 are not offered: the indicators layer refuses them first.
    """
    if period == 1:
        fill_nan(out, start)
        for i in range(start, x.shape[0]):
            out[i] = x[i]
    elif matype == MA_EMA:
        ema_into(x, start, period, out)
    elif matype == MA_WMA:
        wma_into(x, start, period, out)
    elif matype == MA_DEMA:
        dema_into(x, start, period, out)
    elif matype == MA_TEMA:
        tema_into(x, start, period, out)
    elif matype == MA_TRIMA:
        trima_into(x, start, period, out)
    elif matype == MA_KAMA:
        kama_into(x, start, period, out)
    else:
        sma_into(x, start, period, out)


#pythran export sma(float64[:], int, float64[:])
def sma(real, timeperiod, out):
    sma_into(real, 0, timeperiod, out)


#pythran export ema(float64[:], int, float64[:])
def ema(real, timeperiod, out):
    ema_into(real, 0, timeperiod, out)


#pythran export wma(float64[:], int, float64[:])
def wma(real, timeperiod, out):
    wma_into(real, 0, timeperiod, out)


#pythran export dema(float64[:], int, float64[:])
def dema(real, timeperiod, out):
    dema_into(real, 0, timeperiod, out)


#pythran export tema(float64[:], int, float64[:])
def tema(real, timeperiod, out):
    tema_into(real, 0, timeperiod, out)


#pythran export trima(float64[:], int, float64[:])
def trima(real, timeperiod, out):
    trima_into(real, 0, timeperiod, out)


#pythran export kama(float64[:], int, float64[:])
def kama(real, timeperiod, out):
    kama_into(real, 0, timeperiod, out)


#pythran export midpoint(float64[:], int, float64[:])
def midpoint(real, timeperiod, out):
    """(max + min) / 2 over the window; lookback timeperiod - 1."""
    n = real.shape[0]
    first = timeperiod - 1
    fill_nan(out, first)
    for i in range(first, n):
        lo = real[i - first]
        hi = lo
        for j in range(i - first + 1, i + 1):
            v = real[j]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        out[i] = (hi + lo) / 2.0


#pythran export bbands(float64[:], int, float64, float64, int, float64[:], float64[:], float64[:])
def bbands(real, timeperiod, nbdevup, nbdevdn, matype, upper, middle, lower):
    """Bollinger bands around MA(matype) with the population standard deviation.

    The deviation is taken about the window mean (not the MA of another type)
    in two passes over the window's running sums of centred values, which
    avoids the cancellation of E[x^2] - E[x]^2 on prices far from zero.
    Lookback is the MA's.
    """
    n = real.shape[0]
    ma_into(real, 0, timeperiod, matype, middle)
    first = ma_lookback(timeperiod, matype)
    fill_nan(upper, first)
    fill_nan(lower, first)
    stddev_window(real, timeperiod, first, upper)
    for i in range(first, n):
        d = upper[i]
        m = middle[i]
        upper[i] = m + nbdevup * d
        lower[i] = m - nbdevdn * d


def stddev_window(x, period, first, out):
    """Population standard deviation of each window x[i-period+1 : i+1], i >= first.

    A sliding Welford update: the window mean and the sum of squared
    deviations M2 move by terms the size of the spread, never of the price, so
    prices near 1e6 with cents of spread keep full precision (the textbook
    E[x^2] - E[x]^2 loses eight digits there).
    """
    n = x.shape[0]
    if first >= n:
        return
    mean = 0.0
    m2 = 0.0
    count = 0
    for i in range(first - period + 1, first + 1):
        count += 1
        d = x[i] - mean
        mean += d / count
        m2 += d * (x[i] - mean)
    inv = 1.0 / period
    out[first] = np.sqrt(m2 * inv) if m2 > 0.0 else 0.0
    for i in range(first + 1, n):
        incoming = x[i]
        outgoing = x[i - period]
        step = incoming - outgoing
        new_mean = mean + step * inv
        m2 += step * ((incoming - new_mean) + (outgoing - mean))
        mean = new_mean
        out[i] = np.sqrt(m2 * inv) if m2 > 0.0 else 0.0
