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

Numerics: each recurrence keeps one multiplication on its dependency chain
so that the step is a single FMA, and the hot ones advance several bars per
step (see ``ema_seeded``); results differ from TA-Lib only in the last bits.
Written ``prev * (1 - k) + k * x``, the step has two products and GCC may
fuse the wrong one (it did in ``kama_into``), so the other term is made
something that is not a plain product: an FMA result itself (``ema_seeded``'s
bracket, ``x - (1 - k) * x`` in ``kama_into``).
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

# Outputs per block of variance_window (its three buffers of this many floats stay in L1).
VARIANCE_BLOCK = 256
# Outputs per block of BBANDS' deviations.
DEVIATION_BLOCK = 1024


def fill_nan(out, stop):
    """out[:stop] = NaN, clamped to the array."""
    for i in range(min(stop, out.shape[0])):
        out[i] = np.nan


def sma_into(x, start, period, out):
    """Simple moving average of x[start:]; lookback period - 1.

    The average itself is carried, not the window sum: each bar moves it by
    d[i] / period, d[i] = x[i] - x[i - period]. Each group of eight bars
    adds the prefix sums of its d (computed off the chain) to the average
    at the group's start, one FMA an output, and the last of them is the
    next group's start, so the chain advances eight bars per FMA.

    Against the window-sum form (total + prefix, then times 1/period: 6.75
    instructions a bar, bound by the floating-point adders), 1.12x: 3.45-3.50x
    TA-Lib at 10^5 and 10^6 bars against 3.03-3.14x (scratch builds in one
    process; sixteen bars a group no faster). Outputs move from TA-Lib's by
    rounding that adds up along the series, ~1e-14 relative at 10^5 bars
    and ~4e-13 at 10^6. Where the input repeats itself for a whole window
    (a flat %K under a STOCH's slow line, say), d is exactly 0, so the
    outputs are exactly equal from that bar on, as TA-Lib's are: KAMA over
    them sees no noise there.
    """
    n = x.shape[0]
    first = start + period - 1
    fill_nan(out, first)
    if first >= n:
        return
    total = 0.0
    for i in range(start, first + 1):
        total += x[i]
    inv = 1.0 / period
    avg = total * inv
    out[first] = avg
    # Bars entering and leaving the window as two aligned views: indexing
    # x[i - period] directly makes Pythran guard every access against a
    # negative index, which halves the speed of this loop (measured).
    entering = x[first + 1:]
    leaving = x[start:n - period]
    dest = out[first + 1:]
    m = n - first - 1
    j = 0
    while j + 7 < m:
        p0 = entering[j] - leaving[j]
        p1 = p0 + (entering[j + 1] - leaving[j + 1])
        p2 = p1 + (entering[j + 2] - leaving[j + 2])
        p3 = p2 + (entering[j + 3] - leaving[j + 3])
        p4 = p3 + (entering[j + 4] - leaving[j + 4])
        p5 = p4 + (entering[j + 5] - leaving[j + 5])
        p6 = p5 + (entering[j + 6] - leaving[j + 6])
        p7 = p6 + (entering[j + 7] - leaving[j + 7])
        dest[j] = p0 * inv + avg
        dest[j + 1] = p1 * inv + avg
        dest[j + 2] = p2 * inv + avg
        dest[j + 3] = p3 * inv + avg
        dest[j + 4] = p4 * inv + avg
        dest[j + 5] = p5 * inv + avg
        dest[j + 6] = p6 * inv + avg
        avg = p7 * inv + avg
        dest[j + 7] = avg
        j += 8
    while j < m:
        avg = (entering[j] - leaving[j]) * inv + avg
        dest[j] = avg
        j += 1


def ema_seeded(x, first, seed, k, out):
    """out[i] = out[i-1] * (1 - k) + k * x[i] for i >= first, from out[first - 1] = seed.

    Linear recurrences can skip ahead: y[i+3] = a^4 y[i-1] + (a^3 b[i] +
    a^2 b[i+1] + a b[i+2] + b[i+3]) with a = 1 - k and b = k x. The bracket
    does not depend on y, so the loop-carried chain is one FMA per four bars
    (the intermediate outputs hang off it): ~4x the throughput of the
    one-bar step, which is latency-bound. Also used by Wilder smoothing,
    where k = 1 / period.
    """
    n = x.shape[0]
    a = 1.0 - k
    a2 = a * a
    a3 = a2 * a
    a4 = a2 * a2
    y = seed
    i = first
    while i + 3 < n:
        b0 = k * x[i]
        c1 = b0 * a + k * x[i + 1]
        c2 = c1 * a + k * x[i + 2]
        c3 = c2 * a + k * x[i + 3]
        out[i] = y * a + b0
        out[i + 1] = y * a2 + c1
        out[i + 2] = y * a3 + c2
        y = y * a4 + c3
        out[i + 3] = y
        i += 4
    while i < n:
        y = y * a + k * x[i]
        out[i] = y
        i += 1


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
    """Linearly weighted moving average (weights 1..period); lookback period - 1.

    Two running sums move one bar per step: ``weighted`` = sum(w * x) with the
    newest bar weighted ``period``, and ``plain`` = the window's sum,
    subtracted once per step to age every weight by one. Both are rebuilt from
    the window every 8 * period outputs: their rounding errors scale with the
    largest prices seen, and after a long fall they would swamp the current
    average. The schedule is TA-Lib's (it decides where a series recovers
    from an interior NaN, so it is part of the contract).
    """
    n = x.shape[0]
    first = start + period - 1
    fill_nan(out, first)
    if first >= n:
        return
    scale = 2.0 / (period * (period + 1.0))  # 1 / sum of the weights
    weighted = 0.0
    plain = 0.0
    countdown = 0
    entering = x[first:]
    leaving = x[start:n - period + 1]
    dest = out[first:]
    for j in range(n - first):
        if countdown == 0:
            # The first build happens at the first output; the next after
            # 8 * period - 1 more, then every 8 * period.
            countdown = 8 * period if j > 0 else 8 * period - 1
            weighted = 0.0
            plain = 0.0
            w = 1
            for k in range(start + j, first + j):
                weighted += x[k] * w
                plain += x[k]
                w += 1
        countdown -= 1
        v = entering[j]
        # One add per chain per bar, the rest computed beside the chains.
        with_v = plain + v
        dest[j] = (weighted + v * period) * scale
        weighted = weighted + (v * period - with_v)
        plain = plain + (v - leaving[j])


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


def kama_weight(change, noise, slowest, span):
    """KAMA's smoothing constant: the efficiency ratio scaled between the slow and fast constants, squared."""
    if noise <= change or abs(noise) < 1e-14:
        ratio = 1.0
    else:
        ratio = abs(change / noise)
    sc = ratio * span + slowest
    return sc * sc


def kama_into(x, start, period, out):
    """Kaufman adaptive moving average; lookback period.

    The efficiency ratio |x[i] - x[i - period]| / noise, where noise sums the
    last ``period`` one-bar moves |x[j] - x[j - 1]|, scales the smoothing
    between the 2- and 30-bar EMA constants, squared; seeded with the
    previous bar. As in TA-Lib, a noise at or below the signed change, or
    within 1e-14 of zero, counts as a ratio of 1.

    The running noise subtracts the leaving move, then adds the entering
    one, as TA-Lib's loop does. A plain running sum keeps a few ulps of
    residue after a move leaves an otherwise flat window, and TA-Lib's
    results there are those of a noise of exactly 0 (checked on 1,600
    series with flat stretches at price levels 1e-6 to 1e6), so the moving
    bars in the window are counted and the sum is reset to 0 when none is
    left.

    The average moves as prev * (1 - sc) + sc * x, written so that the
    compiler can only fuse the multiplication by prev: sc * x is computed
    as x - (1 - sc) * x, an FMA of its own, which leaves one product for
    the step's addition. Written plainly, GCC fused sc * x instead, and the
    chain through prev was a multiplication and an FMA, no shorter than
    TA-Lib's subtraction and FMA. Outputs differ from TA-Lib's in the last
    bit or two (4e-16 relative on random walks). Against TA-Lib at 10^5
    and 10^6 bars, scratch builds in one process: TA-Lib's own step
    0.98-0.99x, the plain form 0.90-0.92x, this form 1.06-1.09x (one add
    on the noise chain as well: no further gain).
    """
    n = x.shape[0]
    if period == 1:
        # TA-Lib's KAMA(1) is the input itself.
        fill_nan(out, start)
        for i in range(start, n):
            out[i] = x[i]
        return
    first = start + period
    fill_nan(out, first)
    if first >= n:
        return
    slowest = 2.0 / (30 + 1)
    span = 2.0 / (2 + 1) - slowest
    noise = 0.0
    moving = 0
    for i in range(start, first):
        step = abs(x[i] - x[i + 1])
        noise += step
        moving += 1 if step != 0.0 else 0
    sc = kama_weight(x[first] - x[start], noise, slowest, span)
    keep = 1.0 - sc
    prev = x[first - 1] * keep + (x[first] - keep * x[first])
    out[first] = prev
    # Views aligned on the output index j (bar first + 1 + j): indexing
    # x[o - period] directly makes Pythran test every index for a negative
    # value. entering is the bar coming in, before the bar ahead of it;
    # trailed leaves the window after this step and leaving left before it.
    entering = x[first + 1:]
    before = x[first:]
    trailed = x[start + 1:]
    leaving = x[start:]
    dest = out[first + 1:]
    for j in range(n - first - 1):
        e = entering[j]
        t = trailed[j]
        gone = abs(leaving[j] - t)
        came = abs(e - before[j])
        noise -= gone
        noise += came
        moving += (1 if came != 0.0 else 0) - (1 if gone != 0.0 else 0)
        if moving == 0:
            noise = 0.0
        sc = kama_weight(e - t, noise, slowest, span)
        keep = 1.0 - sc
        prev = prev * keep + (e - keep * e)
        dest[j] = prev


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


def each_row(into, x, timeperiod, out):
    """A single-series ``*_into`` kernel over every row of a row-major batch, the row loop compiled.

    Each row starts at its first defined value, as api.run_series would
    start it. The single-series kernels already keep their chains short, so
    what a batch of short rows loses is the call per row from Python
    (~0.4 us): over 512 x 2,000 (kernels.py), EMA went from 2.98-3.43x
    TA-Lib looped to 4.8x and SMA from 2.53x to 3.7x, with the same values.
    Not every kernel gains: WMA, whose kernel takes ~2 us a row, measured
    1.37-1.43x this way and 1.35-1.45x through Python in the same process,
    so it keeps the Python loop. (Time-major tiles, as lanes.rsi_rows
    uses, came to 2.7x for EMA: the copies cost more than its one FMA a bar.)
    """
    for r in range(x.shape[0]):
        row = x[r]
        start = 0
        while start < row.shape[0] and row[start] != row[start]:
            start += 1
        into(row, start, timeperiod, out[r])


#pythran export sma_rows(float64[:,:], int, float64[:,:])
def sma_rows(x, timeperiod, out):
    each_row(sma_into, x, timeperiod, out)


#pythran export ema_rows(float64[:,:], int, float64[:,:])
def ema_rows(x, timeperiod, out):
    each_row(ema_into, x, timeperiod, out)


#pythran export kama(float64[:], int, float64[:])
def kama(real, timeperiod, out):
    kama_into(real, 0, timeperiod, out)


# Outputs per block of the window-extreme passes (their buffers stay in L1).
EXTREMES_BLOCK = 512


def widen_extremes(ha, la, shift, count):
    """ha[i] = max(ha[i], ha[i + shift]), la[i] = min(la[i], la[i + shift]) for i < count, in place.

    In place is safe: going up, ha[i + shift] is read before its own turn.
    """
    hs = ha[shift:]
    ls = la[shift:]
    for i in range(count):
        a = ha[i]
        b = hs[i]
        ha[i] = a if a > b else b
        a = la[i]
        b = ls[i]
        la[i] = a if a < b else b


def window_extremes_into(high, low, t0, m, period, ha, la):
    """Highest high and lowest low of the windows ending at bars t0 .. t0 + m - 1, left in ha[:m], la[:m].

    Window extremes double in width each pass (width 2w from two of width w,
    w apart), then the period's window is the better of two overlapping ones
    of the largest width w <= period: log2(period) + 1 passes over the block,
    each a max / min in SIMD lanes, and no branch that depends on the prices
    (the tracked extreme's comparisons mispredict on market data). Both
    buffers hold m + period values. On NaN-free input the values are those
    of the tracked extremes exactly (ties have equal values).

    Returns how many NaN the block's highs and lows hold, counted in the
    first pass (a separate pass over the whole series cost a tenth of
    WILLR's time at 10^5 bars, a third at 10^6): with any, the caller falls
    back to its tracked form, whose NaN rules these passes do not follow.
    """
    base = t0 - period + 1
    count = m + period - 1
    h0 = high[base:]
    l0 = low[base:]
    nan = 0
    if period == 1:
        for i in range(m):
            a = h0[i]
            b = l0[i]
            ha[i] = a
            la[i] = b
            nan += (a != a) | (b != b)
        return nan
    h1 = high[base + 1:]
    l1 = low[base + 1:]
    for i in range(count - 1):
        a = h0[i]
        b = h1[i]
        ha[i] = a if a > b else b
        c = l0[i]
        d = l1[i]
        la[i] = c if c < d else d
        nan += (a != a) | (b != b) | (c != c) | (d != d)
    w = 2
    while 2 * w <= period:
        widen_extremes(ha, la, w, count - 2 * w + 1)
        w *= 2
    widen_extremes(ha, la, period - w, m)
    return nan



#pythran export midpoint(float64[:], int, float64[:])
def midpoint(real, timeperiod, out):
    """(highest + lowest) / 2 over the window; lookback timeperiod - 1.

    Block by block from window_extremes_into (the window passes %K and WILLR
    use, in SIMD lanes) for periods up to EXTREMES_BLOCK; a series with NaN,
    whose rules those passes do not follow, and longer periods take
    ``midpoint_tracked``. Against TA-Lib, period 14 (kernels.py, two runs):
    the passes 1.35-1.40x at 10^5 and 10^6 bars and 1.08-1.11x at 2,000;
    the tracked form 0.91-1.11x and 0.82-0.98x, its speed moving by 15% with
    where the compiler happened to place its loops (the same source built
    beside another version of sma_into).
    """
    p = timeperiod
    fill_nan(out, p - 1)
    if p <= EXTREMES_BLOCK:
        n = real.shape[0]
        ha = np.empty(EXTREMES_BLOCK + p)
        la = np.empty(EXTREMES_BLOCK + p)
        done = True
        for t0 in range(p - 1, n, EXTREMES_BLOCK):
            m = min(EXTREMES_BLOCK, n - t0)
            if window_extremes_into(real, real, t0, m, p, ha, la):
                done = False
                break
            dest = out[t0:]
            for j in range(m):
                dest[j] = (ha[j] + la[j]) / 2.0
        if done:
            return
    midpoint_tracked(real, p, out)


def midpoint_tracked(real, timeperiod, out):
    """MIDPOINT with TA-Lib's NaN rules, for any period.

    Van Herk / Gil-Werman: cut the series into blocks of ``timeperiod`` bars.
    A window ending inside block b+1 is a suffix of block b plus a prefix of
    block b+1, so with the suffix extremes of block b in a small buffer and
    the running prefix extremes of block b+1, each bar costs a fixed six
    comparisons whatever the period and however the prices move (a tracked
    extreme that is rescanned when it leaves the window costs O(period) on a
    falling market).

    TA-Lib 0.8's MIDPOINT is (MAX + MIN) / 2 of its own MAX and MIN, which
    take their extremes the same block-wise way (500 of 500 random series
    with NaN agree), and these are its NaN rules: only a strictly better
    value replaces a running extreme, so a NaN that ends a block (where its
    suffixes start) poisons every window reaching into that block's end, a
    NaN that starts a block's prefix is passed over (the prefix wins only
    when strictly better), and any other NaN is skipped (the same rules as
    WILLR's block-wise form).
    """
    n = real.shape[0]
    p = timeperiod
    fill_nan(out, p - 1)
    suffix_hi = np.empty(p)
    suffix_lo = np.empty(p)
    for b in range(0, n - p + 1, p):
        hi = real[b + p - 1]
        lo = hi
        for k in range(p - 1, -1, -1):
            v = real[b + k]
            hi = v if v > hi else hi
            lo = v if v < lo else lo
            suffix_hi[k] = hi
            suffix_lo[k] = lo
        out[b + p - 1] = (hi + lo) / 2.0
        stop = min(b + 2 * p - 1, n)
        if b + p < stop:
            run_hi = real[b + p]
            run_lo = run_hi
            for i in range(b + p, stop):
                v = real[i]
                run_hi = v if v > run_hi else run_hi
                run_lo = v if v < run_lo else run_lo
                k = i - b - p + 1
                # The prefix wins only when strictly better: a NaN that starts
                # the prefix is passed over, one that ends the suffix sticks.
                whole_hi = run_hi if run_hi > suffix_hi[k] else suffix_hi[k]
                whole_lo = run_lo if run_lo < suffix_lo[k] else suffix_lo[k]
                out[i] = (whole_hi + whole_lo) / 2.0


#pythran export bbands(float64[:], int, float64, float64, int, float64[:], float64[:], float64[:])
def bbands(real, timeperiod, nbdevup, nbdevdn, matype, upper, middle, lower):
    """Bollinger bands around MA(matype) with the population standard deviation.

    The deviation is taken about the window mean (not the MA of another
    type), from ``variance_window``'s running sums. Lookback is the MA's. The
    variances go into ``upper`` first; a block at a time they become
    deviations and then both bands, in one loop.

    The square root is the slowest step after the variances: this CPU's
    SIMD sqrt takes ~0.8 ns a double (np.sqrt over 100k: 89 us). Here a
    float32 reciprocal square root (eight lanes, a fraction of the cost)
    gives 24 correct bits, and two Newton steps in float64,
    r <- r (1.5 - 0.5 v r^2), square the error twice, to within an ulp or
    two of the correctly rounded root (measured: 2.2e-16 relative at most on
    10^6 windows; BBANDS 1.3x faster). Variances outside float32's
    comfortable range (below 1e-30, above 1e30, NaN) send the whole block
    through the exact ``np.sqrt`` (NaN stays NaN); exact zeros stay 0. With
    the roots in a pass of their own before the bands' loop, BBANDS ran
    1.46-1.47x TA-Lib's speed; in the same loop, 1.51-1.56x.
    """
    n = real.shape[0]
    # The SMA middle band comes out of the variance pass: one pass less over
    # the data. Period 1 copies the input.
    fused = matype == MA_SMA and timeperiod > 1
    if not fused:
        ma_into(real, 0, timeperiod, matype, middle)
    first = ma_lookback(timeperiod, matype)
    fill_nan(upper, first)
    fill_nan(lower, first)
    if fused:
        fill_nan(middle, first)
    variance_window(real, timeperiod, first, upper, middle, fused)
    kept = np.empty(DEVIATION_BLOCK)
    for b0 in range(first, n, DEVIATION_BLOCK):
        b1 = min(n, b0 + DEVIATION_BLOCK)
        up = upper[b0:b1]
        mid = middle[b0:b1]
        low = lower[b0:b1]
        odd = 0
        for k in range(b1 - b0):
            v = up[k]
            kept[k] = v
            inside = (v > 1e-30) & (v < 1e30)
            odd += (v != 0.0) & (not inside)
            w = v if inside else 1.0
            r = np.float64(np.float32(1.0) / np.sqrt(np.float32(w)))
            r = r * (1.5 - 0.5 * w * r * r)
            r = r * (1.5 - 0.5 * w * r * r)
            d = w * r if inside else 0.0
            m = mid[k]
            up[k] = m + nbdevup * d
            low[k] = m - nbdevdn * d
        if odd:
            for k in range(b1 - b0):
                v = kept[k]
                d = np.sqrt(v) if v != 0.0 else 0.0
                m = mid[k]
                up[k] = m + nbdevup * d
                low[k] = m - nbdevdn * d


def variance_window(x, period, first, out, means, with_means):
    """Population variance of each window x[i-period+1 : i+1] for i >= first.

    With ``with_means`` true the window means go into ``means`` as well (the
    shift plus the mean deviation: BBANDS' middle band for an SMA, without a
    pass of its own); otherwise ``means`` is not touched. A NaN keeps the
    running sums NaN only until the next re-anchor, whereas TA-Lib's SMA
    stays NaN for good; so a re-anchor whose window's sums are NaN makes
    every later mean NaN too (``poison``, added to each).

    Running sums of deviations from a shift near the window keep the sums at
    the scale of the spread, not of the price (the textbook E[x^2] - E[x]^2
    loses eight digits on prices near 1e6 with cents of spread). The shift is
    re-anchored on the window mean, with a fresh two-pass over the window,
    whenever cancellation could still cost digits: the variance fell below
    1e-6 of the mean squared deviation, a far outlier just left the window, or
    32 windows passed. A re-anchored variance below 1e-12 of the mean squared
    deviation is the rounding of the mean, not a spread, and gives 0; an
    exactly flat window therefore gives exactly 0.

    These are TA-Lib 0.8's rules, and the arithmetic is TA-Lib's to the bit
    (its VAR, checked on walks moving up to 100% a bar): each sum takes the
    entering term and then gives back the leaving one, two adds a bar on its
    chain. Adding their difference instead, one add a bar, made VAR 1.2x and
    BBANDS 1.1x faster, but drifted from TA-Lib by up to 1e-6 relative once
    a bar moves 30%, and by whole multiples where a bad tick a thousand
    times the price leaves the window (the cancellation tests then fire on
    sums that rounded differently, and re-anchor at other bars).
    Every product is rounded on its own, as TA-Lib's build rounds it:
    ``a * b + 0.0``, which GCC may fuse only into an FMA by zero (the same
    bits), keeps a square from being fused into the add that follows it.

    Work goes in blocks of VARIANCE_BLOCK outputs, two passes each: the
    running sums (the chain; the squares beside it cost nothing there) into
    small buffers, then an elementwise loop, which GCC runs in SIMD lanes,
    that turns them into variances and counts the bars where a cancellation
    test fires. Only a block with such a bar is scanned for the first one,
    and the sums restart from a re-anchor there. Measured against TA-Lib in
    one process (``kernels.py --only var,stddev,bbands``): the squares in a
    SIMD pass of their own, VAR 1.08x and BBANDS 1.33-1.40x; beside the
    chain, 1.12x and 1.45-1.47x; the variances computed in the chain loop
    too, 0.95x; and BBANDS' roots and bands written per block in this loop,
    no faster, with GCC needing 4-8 GB of memory to compile it.
    """
    n = x.shape[0]
    if first >= n:
        return
    inv = 1.0 / period
    poison = 0.0
    oldest = first - period + 1
    shift = x[oldest]
    s1 = 0.0
    s2 = 0.0
    for j in range(oldest, first):
        d = x[j] - shift
        s1 += d
        s2 += d * d + 0.0
    entering = x[first:]
    leaving = x[first - period + 1:n - period + 1]
    dest = out[first:]
    dest_means = means[first:]
    m = n - first
    sums1 = np.empty(VARIANCE_BLOCK)
    sums2 = np.empty(VARIANCE_BLOCK)
    square_out = np.empty(VARIANCE_BLOCK)
    forced = 32 * period - 1
    j = 0
    while j < m:
        stop = min(m, j + VARIANCE_BLOCK, forced)
        count = stop - j
        ein = entering[j:stop]
        lin = leaving[j:stop]
        for k in range(count):
            din = ein[k] - shift
            dout = lin[k] - shift
            gone = dout * dout + 0.0
            square_out[k] = gone
            full1 = s1 + din
            full2 = s2 + (din * din + 0.0)
            sums1[k] = full1
            sums2[k] = full2
            s1 = full1 - dout
            s2 = full2 - gone
        block = dest[j:stop]
        block_means = dest_means[j:stop]
        fired = 0
        for k in range(count):
            mean = sums1[k] * inv
            full2 = sums2[k]
            var = (full2 * inv + 0.0) - (mean * mean + 0.0)
            block[k] = var
            if with_means:
                block_means[k] = shift + mean + poison
            d2 = square_out[k]
            rest = full2 - d2
            fired += (var < 1e-6 * (rest * inv)) | (d2 > 1e6 * rest)
        at = stop
        # NaN if the sums at the re-anchor are (for the NaN test below): a sum,
        # or the variance where a cancellation test fired.
        state = s1
        if fired:
            for k in range(count):
                var = block[k]
                d2 = square_out[k]
                rest = sums2[k] - d2
                if (var < 1e-6 * (rest * inv)) | (d2 > 1e6 * rest):
                    at = j + k
                    state = var
                    break
        elif stop < forced:
            j = stop
            continue
        if at >= m:
            break
        # Re-anchor at output ``at`` (a cancellation test fired, or the
        # 32-window rebuild is due) with a fresh two-pass over its window.
        poison = state if state != state else poison
        i = first + at
        oldest = i - period + 1
        total = 0.0
        for k in range(oldest, i + 1):
            total += x[k]
        shift = total * inv
        s1 = 0.0
        s2 = 0.0
        for k in range(oldest, i + 1):
            d = x[k] - shift
            s1 += d
            s2 += d * d + 0.0
        mean = s1 * inv
        spread = s2 * inv
        var = (spread + 0.0) - (mean * mean + 0.0)
        dest[at] = 0.0 if var < 1e-12 * spread else var
        if with_means:
            dest_means[at] = shift + mean + poison
        d = x[oldest] - shift
        s1 -= d
        s2 -= d * d + 0.0
        forced = at + 32 * period
        j = at + 1
