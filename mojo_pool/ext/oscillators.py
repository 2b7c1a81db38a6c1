"""Range-bound oscillators: stochastics, Williams %R, CCI, ultimate oscillator, Aroon.

Pythran kernels under the contract stated in ``mojo_pool.ext.overlap``.

The reference is the TA-Lib C library inside the ``ta-lib`` wheel (0.8.x),
whose behaviour differs from older published sources in ways that matter
here; each is noted where it is reproduced:

* Rolling extremes. STOCH/STOCHF and AROON track the index of the current
  extreme and rescan the window only when it leaves (amortised O(1) a bar on
  prices, O(period) on a monotone series). Ties: the stochastics rescan with
  a strict comparison (the oldest of equal extremes wins) but let today's bar
  take over on equality; Aroon compares non-strictly everywhere, so the
  newest of equal extremes wins. A NaN that starts a rescan sticks until it
  leaves the window; elsewhere NaN never wins a comparison.
* Where the highs and lows hold no NaN and the period is at most
  ``EXTREMES_BLOCK``, the stochastics' %K and WILLR take the window
  extremes from doubling passes instead (``overlap.window_extremes_into``,
  shared with MIDPOINT): the values are the same, and the passes run in
  SIMD lanes without price-dependent branches.
* WILLR otherwise takes its extremes block-wise (van Herk / Gil-Werman:
  prefix extremes from each block start, suffix extremes from each block end,
  blocks of ``timeperiod`` bars from the first bar), O(1) a bar whatever the
  data, and clamps the result into [-100, 0]. A NaN high or low is skipped
  unless it starts a block's prefix or ends its suffix (then it poisons the
  windows that use that run).
* "Zero" is relative: a high-low range within 1e-14 of ``|high| + |low|``
  gives 0 (stochastics, %R); CCI compares against 1e-14 of the window mean.
  The ultimate oscillator instead restarts a window's running sums from
  exactly zero whenever every true range in it is zero, so the rounding
  residue a flat stretch leaves is never divided into, and it skips any
  window whose true-range sum is not > 0 (a NaN high or low gives 0, not NaN).
"""
import numpy as np

from .overlap import EXTREMES_BLOCK, fill_nan, ma_into, ma_lookback, window_extremes_into
from .trend import _true_range


def range_position_into(high, low, close, first, period, willr, out):
    """Outputs from bar ``first`` on, block by block from window_extremes_into:
    %K (fastk_into) or, with ``willr``, Williams %R (willr_value, without
    branches). False (and stopped) at a block with a NaN."""
    n = close.shape[0]
    size = EXTREMES_BLOCK + period
    ha = np.empty(size)
    la = np.empty(size)
    for t0 in range(first, n, EXTREMES_BLOCK):
        m = min(EXTREMES_BLOCK, n - t0)
        if window_extremes_into(high, low, t0, m, period, ha, la):
            return False
        c = close[t0:]
        dest = out[t0:]
        # Two loops rather than a test inside one, which stays out of the
        # SIMD loop; selects, not branches; a flat window divides by 1, not by ~0.
        if willr:
            for j in range(m):
                hi = ha[j]
                lo = la[j]
                span = hi - lo
                flat = abs(span) <= 1e-14 * (abs(hi) + abs(lo))
                r = (hi - c[j]) / (1.0 if flat else span) * -100.0
                r = -100.0 if r < -100.0 else r
                r = 0.0 if r > 0.0 else r
                dest[j] = 0.0 if flat else r
        else:
            for j in range(m):
                hi = ha[j]
                lo = la[j]
                span = hi - lo
                flat = abs(span) <= 1e-14 * (abs(hi) + abs(lo))
                value = (c[j] - lo) / (1.0 if flat else span) * 100.0
                dest[j] = 0.0 if flat else value
    return True


def fastk_into(high, low, close, start, period, out):
    """Raw stochastic %K over bars start.., (close - lowest) / (highest - lowest) * 100.

    Lookback period - 1 from ``start``. Not clamped: a close outside its
    bar's range gives a %K outside [0, 100]. STOCHRSI runs it on one series
    (high = low = close = the RSI).

    NaN-free highs and lows take the extremes block-wise from
    ``window_extremes_into`` when the period is at most ``EXTREMES_BLOCK``
    (each block's passes cover m + period bars: longer periods would cost
    O(period) a bar); otherwise the tracked extremes below, whose NaN rules
    (see the module docstring) the block-wise form does not reproduce.
    Measured over 10^5 bars (us per %K, tracked vs passes of one max each):
    period 5: 719 vs 131, 14: 694 vs 324; the doubling passes cut the latter
    further.
    """
    n = close.shape[0]
    first = start + period - 1
    fill_nan(out, first)
    if first >= n:
        return
    if period <= EXTREMES_BLOCK and range_position_into(high, low, close, first, period, False, out):
        return
    hi_at = -1
    lo_at = -1
    hi = 0.0
    lo = 0.0
    for today in range(first, n):
        oldest = today - period + 1
        v = low[today]
        if lo_at < oldest:
            lo_at = oldest
            lo = low[oldest]
            for j in range(oldest + 1, today + 1):
                if low[j] < lo:
                    lo_at = j
                    lo = low[j]
        elif v <= lo:
            lo_at = today
            lo = v
        v = high[today]
        if hi_at < oldest:
            hi_at = oldest
            hi = high[oldest]
            for j in range(oldest + 1, today + 1):
                if high[j] > hi:
                    hi_at = j
                    hi = high[j]
        elif v >= hi:
            hi_at = today
            hi = v
        span = hi - lo
        if abs(span) <= 1e-14 * (abs(hi) + abs(lo)):
            out[today] = 0.0
        else:
            out[today] = (close[today] - lo) / span * 100.0


#pythran export stoch(float64[:], float64[:], float64[:], int, int, int, int, int, float64[:], float64[:])
def stoch(high, low, close, fastk_period, slowk_period, slowk_matype, slowd_period, slowd_matype,
          slowk, slowd):
    """Slow stochastic: %K smoothed by MA(slowk), and that smoothed again by MA(slowd).

    Lookback (fastk_period - 1) plus both MA lookbacks; %K is reported only
    from where %D is defined, as TA-Lib does.
    """
    n = close.shape[0]
    raw = np.empty(n)
    fastk_into(high, low, close, 0, fastk_period, raw)
    k_first = fastk_period - 1
    ma_into(raw, k_first, slowk_period, slowk_matype, slowk)
    d_start = k_first + ma_lookback(slowk_period, slowk_matype)
    ma_into(slowk, d_start, slowd_period, slowd_matype, slowd)
    fill_nan(slowk, d_start + ma_lookback(slowd_period, slowd_matype))


#pythran export stochf(float64[:], float64[:], float64[:], int, int, int, float64[:], float64[:])
def stochf(high, low, close, fastk_period, fastd_period, fastd_matype, fastk, fastd):
    """Fast stochastic: raw %K and its MA(fastd); %K reported from where %D is defined."""
    fastk_into(high, low, close, 0, fastk_period, fastk)
    k_first = fastk_period - 1
    ma_into(fastk, k_first, fastd_period, fastd_matype, fastd)
    fill_nan(fastk, k_first + ma_lookback(fastd_period, fastd_matype))


def suffix_max_into(x, start, stop, buf, at):
    """Running maxima of x[start:stop] taken from the end backwards, into buf[at:].

    Only a strictly greater value replaces the running maximum, so a NaN at
    the end sticks and any other NaN is passed over.
    """
    m = x[stop - 1]
    buf[at + stop - 1 - start] = m
    for i in range(stop - 2, start - 1, -1):
        v = x[i]
        if v > m:
            m = v
        buf[at + i - start] = m


def suffix_min_into(x, start, stop, buf, at):
    """suffix_max_into for minima."""
    m = x[stop - 1]
    buf[at + stop - 1 - start] = m
    for i in range(stop - 2, start - 1, -1):
        v = x[i]
        if v < m:
            m = v
        buf[at + i - start] = m


def willr_value(hi, lo, c):
    """%R from the window's extremes: 0 for a flat window, clamped to [-100, 0]."""
    span = hi - lo
    if abs(span) <= 1e-14 * (abs(hi) + abs(lo)):
        return 0.0
    r = (hi - c) / span * -100.0
    if r < -100.0:
        return -100.0
    if r > 0.0:
        return 0.0
    return r


# willr takes the window passes (range_position_into) up to this period, as
# fastk_into does. Measured against TA-Lib in one process (WILLR, random
# walks), after the passes went in place, window passes vs the block-wise
# van Herk form below: 10^4 bars period 14 1.58 vs 1.00x, 64 1.14 vs 0.76x,
# 128 0.96 vs 0.70x; 10^5 bars period 14 1.46 vs 0.98x; 10^6 bars period 14
# 1.35 vs 0.96x, 128 0.92 vs 0.39x; 2,000 bars period 14 1.61 vs 1.07x.
# (Before the passes went in place, van Herk won at 10^6 bars and from
# period 24 on, so willr took the passes only for 10^4-4x10^5 bars up to 24.)
WILLR_PASSES_PERIOD_MAX = EXTREMES_BLOCK


#pythran export willr(float64[:], float64[:], float64[:], int, float64[:])
def willr(high, low, close, timeperiod, out):
    """Williams %R, (highest - close) / (highest - lowest) * -100, clamped to [-100, 0].

    Lookback timeperiod - 1. The window passes of range_position_into give
    the window extremes; a series with NaN (whose rules those passes do not
    follow) and periods past WILLR_PASSES_PERIOD_MAX take them block-wise
    (see the module docstring): the window ending at t spans the suffix of
    one block and the prefix of the next, so extreme = the better of
    suffix[t - p + 1] and prefix[t]; when it is exactly one block both runs
    cover it, and the suffix is kept unless the prefix is strictly better.
    The suffixes of the current and the previous block live in the two
    halves of a 2p buffer.
    """
    n = close.shape[0]
    p = timeperiod
    fill_nan(out, p - 1)
    if p <= WILLR_PASSES_PERIOD_MAX and range_position_into(high, low, close, p - 1, p, True, out):
        return
    hs = np.empty(2 * p)
    ls = np.empty(2 * p)
    cur = 0
    for s in range(0, n, p):
        e = min(s + p, n)
        prev = cur
        cur = p - cur
        suffix_max_into(high, s, e, hs, cur)
        suffix_min_into(low, s, e, ls, cur)
        hi_run = high[s]
        lo_run = low[s]
        if s > 0:
            # Windows ending inside the block: previous block's suffix + this prefix.
            hi = hs[prev + 1]
            lo = ls[prev + 1]
            out[s] = willr_value(hi_run if hi_run > hi else hi, lo_run if lo_run < lo else lo, close[s])
            for t in range(s + 1, min(e, s + p - 1)):
                v = high[t]
                if v > hi_run:
                    hi_run = v
                v = low[t]
                if v < lo_run:
                    lo_run = v
                k = prev + t - s + 1
                hi = hs[k]
                lo = ls[k]
                out[t] = willr_value(hi_run if hi_run > hi else hi, lo_run if lo_run < lo else lo, close[t])
        else:
            for t in range(1, min(e, p - 1)):
                v = high[t]
                if v > hi_run:
                    hi_run = v
                v = low[t]
                if v < lo_run:
                    lo_run = v
        if e - s == p:
            # The window that is exactly this block.
            t = e - 1
            v = high[t]
            if v > hi_run:
                hi_run = v
            v = low[t]
            if v < lo_run:
                lo_run = v
            hi = hs[cur]
            lo = ls[cur]
            out[t] = willr_value(hi_run if hi_run > hi else hi, lo_run if lo_run < lo else lo, close[t])


def aroon_into(high, low, timeperiod, osc, down, up):
    """Aroon from the newest highest high / lowest low of the last timeperiod + 1 bars.

    Writes down/up (osc false) or up - down into ``down`` (osc true, ``up``
    unused). Ties go to the newest bar, both in a rescan and when today's
    bar equals the extreme. Lookback timeperiod.
    """
    n = high.shape[0]
    fill_nan(down, timeperiod)
    if not osc:
        fill_nan(up, timeperiod)
    factor = 100.0 / timeperiod
    hi_at = -1
    lo_at = -1
    hi = 0.0
    lo = 0.0
    for today in range(timeperiod, n):
        oldest = today - timeperiod
        v = low[today]
        if lo_at < oldest:
            lo_at = oldest
            lo = low[oldest]
            for j in range(oldest + 1, today + 1):
                if low[j] <= lo:
                    lo_at = j
                    lo = low[j]
        elif v <= lo:
            lo_at = today
            lo = v
        v = high[today]
        if hi_at < oldest:
            hi_at = oldest
            hi = high[oldest]
            for j in range(oldest + 1, today + 1):
                if high[j] >= hi:
                    hi_at = j
                    hi = high[j]
        elif v >= hi:
            hi_at = today
            hi = v
        if osc:
            down[today] = factor * (hi_at - lo_at)
        else:
            up[today] = factor * (timeperiod - (today - hi_at))
            down[today] = factor * (timeperiod - (today - lo_at))


#pythran export aroon(float64[:], float64[:], int, float64[:], float64[:])
def aroon(high, low, timeperiod, aroondown, aroonup):
    """Aroon down/up: 100 * (timeperiod - bars since the extreme) / timeperiod; lookback timeperiod.

    The window spans timeperiod + 1 bars (today and timeperiod before it).
    """
    aroon_into(high, low, timeperiod, False, aroondown, aroonup)


#pythran export aroonosc(float64[:], float64[:], int, float64[:])
def aroonosc(high, low, timeperiod, out):
    """Aroon up - Aroon down, as 100 * (index of high - index of low) / timeperiod; lookback timeperiod."""
    aroon_into(high, low, timeperiod, True, out, out)


def cci_value(last, mean, dev, period):
    """CCI of one bar from its typical price, the window mean and the summed |deviation|.

    A flat window gives 0: TA-Lib's test is relative, tp - mean or the mean
    deviation within 1e-14 * |mean| (a flat window's mean keeps a few ulp of
    residue).
    """
    dev = dev / period
    diff = last - mean
    band = 1e-14 * abs(mean)
    if abs(diff) <= band or abs(dev) <= band:
        return 0.0
    return diff / (0.015 * dev)


def cci_one(cur, prev, r, period):
    """CCI of the bar at ring slot r, cur holding its block's typical prices and prev the block before.

    The ring as TA-Lib sees it at that bar holds cur in slots 0..r and prev
    in slots r + 1.., summed from slot 0.
    """
    total = 0.0
    for j in range(period):
        total += cur[j] if j <= r else prev[j]
    mean = total / period
    dev = 0.0
    for j in range(period):
        dev += abs((cur[j] if j <= r else prev[j]) - mean)
    return cci_value(cur[r], mean, dev, period)


#pythran export cci(float64[:], float64[:], float64[:], int, float64[:])
def cci(high, low, close, timeperiod, out):
    """Commodity channel index: (tp - SMA(tp)) / (0.015 * mean |tp - SMA(tp)|), tp = (h + l + c) / 3.

    Lookback timeperiod - 1. The mean deviation has no running form, so each
    window is summed afresh (O(timeperiod) a bar), as in TA-Lib, and in
    TA-Lib's order: the typical prices sit in a ring buffer summed from slot 0,
    which keeps the cancellation in tp - mean bit-identical.

    Summed one bar at a time that is a chain of dependent additions, one add
    latency per term. Bar k sits in slot k % timeperiod, so the bars come in
    blocks of timeperiod that fill the ring once: the bar at slot r of a
    block sees this block's typical prices in slots 0..r and the previous
    block's in slots r + 1... Four consecutive bars of a block are summed
    together, each into its own accumulator in the same slot order (so each
    result is the same as alone), and the four chains overlap. Only the three
    slots after r differ between the four; the bars left over at a block's
    end (and the first output, alone in its block) are summed one at a time.
    """
    n = close.shape[0]
    p = timeperiod
    fill_nan(out, p - 1)
    cur = np.empty(p)
    prev = np.zeros(p)
    for s in range(0, n, p):
        m = min(p, n - s)
        for j in range(m):
            cur[j] = (high[s + j] + low[s + j] + close[s + j]) / 3.0
        # The first block has one output, its last bar; later ones one per bar.
        r = p - 1 if s == 0 else 0
        while r + 3 < m:
            t0 = 0.0
            t1 = 0.0
            t2 = 0.0
            t3 = 0.0
            for j in range(r + 1):
                a = cur[j]
                t0 += a
                t1 += a
                t2 += a
                t3 += a
            for j in range(r + 1, r + 4):
                a = cur[j]
                b = prev[j]
                t0 += b
                t1 += a if j <= r + 1 else b
                t2 += a if j <= r + 2 else b
                t3 += a
            for j in range(r + 4, p):
                b = prev[j]
                t0 += b
                t1 += b
                t2 += b
                t3 += b
            m0 = t0 / p
            m1 = t1 / p
            m2 = t2 / p
            m3 = t3 / p
            d0 = 0.0
            d1 = 0.0
            d2 = 0.0
            d3 = 0.0
            for j in range(r + 1):
                a = cur[j]
                d0 += abs(a - m0)
                d1 += abs(a - m1)
                d2 += abs(a - m2)
                d3 += abs(a - m3)
            for j in range(r + 1, r + 4):
                a = cur[j]
                b = prev[j]
                d0 += abs(b - m0)
                d1 += abs((a if j <= r + 1 else b) - m1)
                d2 += abs((a if j <= r + 2 else b) - m2)
                d3 += abs(a - m3)
            for j in range(r + 4, p):
                b = prev[j]
                d0 += abs(b - m0)
                d1 += abs(b - m1)
                d2 += abs(b - m2)
                d3 += abs(b - m3)
            out[s + r] = cci_value(cur[r], m0, d0, p)
            out[s + r + 1] = cci_value(cur[r + 1], m1, d1, p)
            out[s + r + 2] = cci_value(cur[r + 2], m2, d2, p)
            out[s + r + 3] = cci_value(cur[r + 3], m3, d3, p)
            r += 4
        while r < m:
            out[s + r] = cci_one(cur, prev, r, p)
            r += 1
        for j in range(m):
            prev[j] = cur[j]


# Bars per segment of ultosc's window sums (six buffers of this many, and the
# next segment's inputs read ahead, stay in L2).
ULTOSC_SEGMENT = 2048


#pythran export ultosc(float64[:], float64[:], float64[:], int, int, int, float64[:])
def ultosc(high, low, close, timeperiod1, timeperiod2, timeperiod3, out):
    """Ultimate oscillator: 100/7 * (4 A/B over the shortest + 2 A/B over the middle + A/B over the longest).

    A = sum of close - true low, B = sum of true ranges, as running sums added
    and trimmed in TA-Lib's order. The periods are sorted first (the weights
    follow the lengths, not the argument order); lookback is the longest.
    A bar is blank when both its terms are exactly 0 (a NaN is not 0). Once a
    window has held only blank bars, its sums restart from exactly 0
    (dropping the residue of a flat stretch, and a NaN carried since an
    earlier bar), and a window contributes only while its B > 0: TA-Lib
    0.8's rule. Restarting when a window held no true range, as this kernel
    did, dropped a NaN close inside a flat stretch (true range 0, pressure
    NaN) a bar or two before TA-Lib does: 35 of 1,600 series with one NaN
    had NaN at other bars. The run of blank bars is one integer, where the
    three windows' counts of bars with a true range were six updates a bar:
    against TA-Lib (``kernels.py --only ultosc``), 1.11x/1.34x/1.12x at
    2k/10^5/10^6 bars, where the counts gave 0.97x/1.11x/0.97x.

    Per segment of bars, three loops, so that only the running sums stay one
    bar at a time: each
    bar's terms (the true low takes the previous close unless the low is
    below it, so a NaN previous close reaches the pressure; a NaN never wins
    the true-range maximum) in SIMD lanes; the six sums, written per segment
    into buffers; the three divisions a bar in SIMD lanes. Measured against
    TA-Lib in one process (7/14/28): the one-loop form with a ring of terms
    0.91x at 10^5 bars and 0.92x at 10^6; terms and sums for the whole series
    1.14x and 0.76x; sums per segment 1.10x and 0.88x; terms and sums per
    segment: see the commit. Each segment recomputes the terms of the p3 - 1
    bars before it (its windows trim them).

    At 10^6 bars the inputs stream from memory, and the terms loop waited
    for them while the sums loop left memory idle. So the sums loop also
    reads one bar in eight of the next segment's inputs (as ``ad`` does);
    those reads hang off no chain. Against TA-Lib at 10^6 bars, six
    interleaved rounds in one process: 0.95-0.96x without them, 1.03-1.07x
    with them and 2,048-bar segments (1.00-1.06x with 8,192).
    """
    n = close.shape[0]
    p1 = timeperiod1
    p2 = timeperiod2
    p3 = timeperiod3
    # Sort ascending: p1 <= p2 <= p3.
    if p1 > p2:
        p1, p2 = p2, p1
    if p2 > p3:
        p2, p3 = p3, p2
    if p1 > p2:
        p1, p2 = p2, p1
    fill_nan(out, p3)
    if p3 >= n:
        return
    a1 = 0.0
    b1 = 0.0
    a2 = 0.0
    b2 = 0.0
    a3 = 0.0
    b3 = 0.0
    # Bars in a row, up to the current one, that add nothing (blank).
    run = 0
    touched = 0.0
    # Per segment, the terms of bars s0 - p3 + 1 .. s0 + count - 1 (from the
    # oldest bar any window trims), index k for bar s0 - p3 + 1 + k.
    pressure = np.empty(ULTOSC_SEGMENT + p3)
    ranges = np.empty(ULTOSC_SEGMENT + p3)
    blank = np.empty(ULTOSC_SEGMENT + p3, dtype=np.int64)
    # The six window sums of each bar of a segment, one buffer in six parts.
    sums = np.empty(6 * ULTOSC_SEGMENT)
    sa1 = sums[:ULTOSC_SEGMENT]
    sb1 = sums[ULTOSC_SEGMENT:2 * ULTOSC_SEGMENT]
    sa2 = sums[2 * ULTOSC_SEGMENT:3 * ULTOSC_SEGMENT]
    sb2 = sums[3 * ULTOSC_SEGMENT:4 * ULTOSC_SEGMENT]
    sa3 = sums[4 * ULTOSC_SEGMENT:5 * ULTOSC_SEGMENT]
    sb3 = sums[5 * ULTOSC_SEGMENT:]
    for s0 in range(p3, n, ULTOSC_SEGMENT):
        count = min(ULTOSC_SEGMENT, n - s0)
        first = s0 - p3 + 1
        h = high[first:]
        lo = low[first:]
        c = close[first:]
        prev_close = close[first - 1:]
        for k in range(count + p3 - 1):
            v = lo[k]
            prev = prev_close[k]
            a = c[k] - (v if v < prev else prev)
            b = _true_range(h[k], v, prev)
            pressure[k] = a
            ranges[k] = b
            blank[k] = 1 if (a == 0.0) & (b == 0.0) else 0
        if s0 == p3:
            # The windows before the first output: bars 1 .. p3 - 1.
            for k in range(p3 - 1):
                a = pressure[k]
                b = ranges[k]
                run = (run + 1) * blank[k]
                if k >= p3 - p1:
                    a1 += a
                    b1 += b
                if k >= p3 - p2:
                    a2 += a
                    b2 += b
                a3 += a
                b3 += b
        # The bar entering each window and the one leaving it after the output.
        a_in = pressure[p3 - 1:]
        b_in = ranges[p3 - 1:]
        blank_in = blank[p3 - 1:]
        a_out1 = pressure[p3 - p1:]
        b_out1 = ranges[p3 - p1:]
        a_out2 = pressure[p3 - p2:]
        b_out2 = ranges[p3 - p2:]
        a_out3 = pressure[0:]
        b_out3 = ranges[0:]
        # The next segment's first bars, read one in eight (one per cache
        # line) while the sums run: see the docstring.
        following = min(s0 + ULTOSC_SEGMENT - p3 + 1, n)
        ahead = min(count, n - following)
        h_next = high[following:]
        l_next = low[following:]
        c_next = close[following:]
        for j in range(count):
            if j % 8 == 0 and j < ahead:
                touched += h_next[j] + l_next[j] + c_next[j]
            a = a_in[j]
            b = b_in[j]
            a1 += a
            a2 += a
            a3 += a
            b1 += b
            b2 += b
            b3 += b
            # A window that has held only blank bars since its oldest one
            # sums to exactly 0; restart it there (p1 <= p2 <= p3). The run
            # is counted in integers: the adders are busy with the sums.
            run = (run + 1) * blank_in[j]
            if run >= p1:
                a1 = 0.0
                b1 = 0.0
                if run >= p2:
                    a2 = 0.0
                    b2 = 0.0
                    if run >= p3:
                        a3 = 0.0
                        b3 = 0.0
            sa1[j] = a1
            sb1[j] = b1
            sa2[j] = a2
            sb2[j] = b2
            sa3[j] = a3
            sb3[j] = b3
            a1 -= a_out1[j]
            b1 -= b_out1[j]
            a2 -= a_out2[j]
            b2 -= b_out2[j]
            a3 -= a_out3[j]
            b3 -= b_out3[j]
        dest = out[s0:]
        for j in range(count):
            # A window whose B is not > 0 adds +0.0, which leaves the total
            # as skipping it would; it divides by 1, not by 0 or NaN.
            x = sb1[j]
            y = sb2[j]
            z = sb3[j]
            t1 = 4.0 * (sa1[j] / (x if x > 0.0 else 1.0))
            t2 = 2.0 * (sa2[j] / (y if y > 0.0 else 1.0))
            t3 = sa3[j] / (z if z > 0.0 else 1.0)
            total = 0.0 + (t1 if x > 0.0 else 0.0)
            total += t2 if y > 0.0 else 0.0
            total += t3 if z > 0.0 else 0.0
            dest[j] = 100.0 * (total / 7.0)
    if touched == 1.2345e-300:
        # Never true on market data, and harmless if it is (the value is
        # unchanged). It keeps the read-ahead sums alive.
        out[p3] = out[p3] + 0.0
