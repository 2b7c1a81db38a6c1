"""True range, Wilder's directional movement family and the parabolic SAR.

Pythran kernels under the contract stated in ``mojo_pool.ext.overlap``.

Conventions shared with TA-Lib:

* The true range of bar i needs the close of bar i - 1, so bar 0 only seeds
  it: TRANGE's lookback is 1 and every average of it starts one bar late.
  It starts from high - low and is replaced by |prev close - high| or
  |prev close - low| only when strictly greater; a NaN close therefore drops
  out of the next bar's true range instead of poisoning it (TA-Lib behaves
  the same way, so an interior NaN close leaves these kernels defined).
* Directional movement between two bars: up = high - prev high,
  down = prev low - low; +DM = up when up > 0 and up > down, -DM = down when
  down > 0 and down > up, else 0 (ties give 0 to both).
* Wilder smoothing keeps a *sum*-scaled state for DM and TR
  (s = s * (1 - 1/p) + x) and a mean-scaled one for ATR and ADX
  (m = m * (1 - 1/p) + x / p): one FMA on the dependency chain each.
* "Divide unless zero" tests are exact, as in this TA-Lib build (its tests
  accept even subnormal divisors): DI and DX divide only by a smoothed TR
  (or DM sum) that is > 0, so a NaN or non-positive one gives 0 / no DX;
  NATR divides by any close != 0 (a NaN close gives NaN, a 0 close 0).
"""
from .overlap import fill_nan


def _true_range(high, low, prev_close):
    """Greatest of high - low, |prev_close - high|, |prev_close - low| (NaN close ignored)."""
    greatest = high - low
    other = abs(prev_close - high)
    if other > greatest:
        greatest = other
    other = abs(prev_close - low)
    if other > greatest:
        greatest = other
    return greatest


# The one-bar DMs are written without branches: their conditions are coin
# flips on market data, and mispredicting them tripled the cost of the DI/ADX
# loops. They differ from the branching rule only when up or down is NaN (NaN
# instead of 0); that needs a NaN high or low, which already makes the true
# range, hence the smoothed TR every DI and DX divides by, NaN for good, so
# the outputs are unaffected. The timeperiod-1 DIs divide each bar by its own
# TR and use the exact rule instead.

def _plus_dm(up, down):
    """One-bar +DM from up = high - prev high, down = prev low - low."""
    return max(up, 0.0) * float(up > down)


def _minus_dm(up, down):
    """One-bar -DM from up = high - prev high, down = prev low - low."""
    return max(down, 0.0) * float(down > up)


def trange_into(high, low, close, out):
    """True range; out[0] is NaN (no previous close)."""
    n = high.shape[0]
    fill_nan(out, 1)
    # Aligned views instead of close[i - 1]: Pythran guards an index that may
    # be negative on every access, which costs more than the arithmetic here.
    h = high[1:]
    lo = low[1:]
    prev_close = close[:n - 1]
    dest = out[1:]
    for j in range(n - 1):
        dest[j] = _true_range(h[j], lo[j], prev_close[j])


# Bars per block of atr_into (the block of true ranges stays in L1).
TR_BLOCK = 512


def atr_into(high, low, close, period, normalize, out):
    """Wilder's average true range, lookback ``period``.

    Seeded with the mean of the true ranges of bars 1..period, then
    smoothed with k = 1/period by ``ema_seeded``'s recurrence (four bars per
    step of the dependency chain). Block by block as in ``volume.ad``: the
    true ranges go into the output in SIMD lanes, then the recurrence runs
    over them in place while reading ahead into the next block's inputs.
    Measured against TA-Lib in one process (ATR-14): true ranges inside the
    recurrence loop 1.34x at 10^5 bars and 1.23x at 10^6; blocks with the
    read-ahead 1.50x and 1.47x (without it, blocks had measured 0.97-1.04x
    of the one-loop form).
    With ``normalize`` the output is 100 * ATR / close (0 where the close
    is 0), in a pass of its own that vectorises (a division in the
    recurrence loop runs at the scalar divider's pace). ``period`` 1 runs
    the same recurrence (prev * 0 + tr): the true range for finite input,
    but a NaN high or low poisons every later bar, as in TA-Lib.
    """
    n = high.shape[0]
    if period >= n:
        fill_nan(out, n)
        return
    fill_nan(out, period)
    total = 0.0
    for i in range(1, period + 1):
        total += _true_range(high[i], low[i], close[i - 1])
    y = total / period
    out[period] = y
    k = 1.0 / period
    a = 1.0 - k
    a2 = a * a
    a3 = a2 * a
    a4 = a2 * a2
    touched = 0.0
    for start in range(period + 1, n, TR_BLOCK):
        stop = min(start + TR_BLOCK, n)
        m = stop - start
        h = high[start:stop]
        lo = low[start:stop]
        prev_close = close[start - 1:stop - 1]
        dest = out[start:stop]
        for j in range(m):
            dest[j] = _true_range(h[j], lo[j], prev_close[j])
        # The next block's bars, read one in four while the chain runs here.
        ahead = min(stop + TR_BLOCK, n) - stop
        h_next = high[stop:]
        lo_next = low[stop:]
        close_next = close[stop:]
        j = 0
        while j + 3 < m:
            if j < ahead:
                touched += h_next[j] + lo_next[j] + close_next[j]
            b0 = k * dest[j]
            c1 = b0 * a + k * dest[j + 1]
            c2 = c1 * a + k * dest[j + 2]
            c3 = c2 * a + k * dest[j + 3]
            dest[j] = y * a + b0
            dest[j + 1] = y * a2 + c1
            dest[j + 2] = y * a3 + c2
            y = y * a4 + c3
            dest[j + 3] = y
            j += 4
        while j < m:
            y = y * a + k * dest[j]
            dest[j] = y
            j += 1
    if touched == 1.2345e-300:
        # Never true on market data, and harmless: the seed again. It keeps
        # the read-ahead sums alive (volume.ad explains them).
        out[period] = total / period
    if normalize:
        c = close[period:]
        atr = out[period:]
        for j in range(n - period):
            v = c[j]
            atr[j] = atr[j] / v * 100.0 if v != 0.0 else 0.0


def di_into(high, low, close, period, minus, out):
    """+DI (or -DI with ``minus``): 100 * smoothed DM / smoothed TR, lookback ``period``.

    The smoothed sums are seeded with the plain sums over bars 1..period-1 and
    take their first Wilder step at bar ``period``, the first output. With
    ``period`` 1 TA-Lib outputs the one-bar ratio DM / TR *without* the factor
    100 (and 0 when DM is 0 or TR is not > 0).
    """
    n = high.shape[0]
    if period <= 1:
        fill_nan(out, 1)
        for i in range(1, n):
            up = high[i] - high[i - 1]
            down = low[i - 1] - low[i]
            if minus:
                up, down = down, up
            if up > 0.0 and up > down:
                tr = _true_range(high[i], low[i], close[i - 1])
                out[i] = up / tr if tr > 0.0 else 0.0
            else:
                out[i] = 0.0
        return
    fill_nan(out, period)
    if period >= n:
        return
    dm_sum = 0.0
    tr_sum = 0.0
    for i in range(1, period):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        dm_sum += _minus_dm(up, down) if minus else _plus_dm(up, down)
        tr_sum += _true_range(high[i], low[i], close[i - 1])
    keep = 1.0 - 1.0 / period
    for i in range(period, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        dm = _minus_dm(up, down) if minus else _plus_dm(up, down)
        dm_sum = dm_sum * keep + dm
        tr_sum = tr_sum * keep + _true_range(high[i], low[i], close[i - 1])
        out[i] = 100.0 * (dm_sum / tr_sum) if tr_sum > 0.0 else 0.0


def adx_into(high, low, close, period, out):
    """Average directional index, lookback 2 * period - 1.

    DM and TR are smoothed as in :func:`di_into`; from bar ``period`` on each
    bar gives DX = 100 * |+DM - -DM| / (+DM + -DM) (the TR scaling of the DIs
    cancels). The ADX is the mean of the DX of bars period..2*period-1, then
    Wilder-smoothed. A bar whose smoothed TR or DM sum is not > 0 (NaN
    included) has no DX: it adds
    nothing to the seed sum (still divided by ``period``) and leaves the ADX
    unchanged afterwards.
    """
    n = high.shape[0]
    first = 2 * period - 1
    fill_nan(out, first)
    if first >= n:
        return
    plus = 0.0
    minus = 0.0
    tr_sum = 0.0
    for i in range(1, period):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus += _plus_dm(up, down)
        minus += _minus_dm(up, down)
        tr_sum += _true_range(high[i], low[i], close[i - 1])
    inv = 1.0 / period
    keep = 1.0 - inv
    dx_sum = 0.0
    for i in range(period, first + 1):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus = plus * keep + _plus_dm(up, down)
        minus = minus * keep + _minus_dm(up, down)
        tr_sum = tr_sum * keep + _true_range(high[i], low[i], close[i - 1])
        both = plus + minus
        if tr_sum > 0.0 and both > 0.0:
            dx_sum += 100.0 * (abs(minus - plus) / both)
    adx = dx_sum / period
    out[first] = adx
    for i in range(first + 1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        plus = plus * keep + _plus_dm(up, down)
        minus = minus * keep + _minus_dm(up, down)
        tr_sum = tr_sum * keep + _true_range(high[i], low[i], close[i - 1])
        both = plus + minus
        if tr_sum > 0.0 and both > 0.0:
            adx = adx * keep + (100.0 * inv) * (abs(minus - plus) / both)
        out[i] = adx


def sar_into(high, low, acceleration, maximum, out):
    """Parabolic SAR, lookback 1.

    Start (as TA-Lib): short if bar 1 has a positive one-bar -DM, else long;
    the first SAR is bar 0's low (long) or high (short) and the first extreme
    point bar 1's high (long) or low (short). An acceleration above
    ``maximum`` is lowered to it. Each bar outputs the SAR computed on the
    previous one, or, when the bar penetrates it, the reversal SAR (the old
    extreme point clamped outside the last two bars' range); the next SAR is
    sar + af * (ep - sar), clamped so it never enters the last two bars.
    """
    n = high.shape[0]
    fill_nan(out, 1)
    if n < 2:
        return
    if acceleration > maximum:
        acceleration = maximum
    af = acceleration
    up = high[1] - high[0]
    down = low[0] - low[1]
    is_long = not (down > 0.0 and up < down)  # no positive -DM on bar 1
    if is_long:
        ep = high[1]
        sar = low[0]
    else:
        ep = low[1]
        sar = high[0]
    new_low = low[1]
    new_high = high[1]
    for i in range(1, n):
        prev_low = new_low
        prev_high = new_high
        new_low = low[i]
        new_high = high[i]
        if is_long:
            if new_low <= sar:
                # Reverse to short at the extreme point.
                is_long = False
                sar = ep
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
                out[i] = sar
                af = acceleration
                ep = new_low
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
            else:
                out[i] = sar
                # A new extreme is a coin flip on market data: selects, not
                # a branch (see the note above the one-bar DMs).
                extends = new_high > ep
                raised = af + acceleration
                raised = maximum if raised > maximum else raised
                ep = new_high if extends else ep
                af = raised if extends else af
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
        else:
            if new_high >= sar:
                # Reverse to long at the extreme point.
                is_long = True
                sar = ep
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
                out[i] = sar
                af = acceleration
                ep = new_high
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
            else:
                out[i] = sar
                extends = new_low < ep
                raised = af + acceleration
                raised = maximum if raised > maximum else raised
                ep = new_low if extends else ep
                af = raised if extends else af
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high


#pythran export trange(float64[:], float64[:], float64[:], float64[:])
def trange(high, low, close, out):
    trange_into(high, low, close, out)


#pythran export atr(float64[:], float64[:], float64[:], int, float64[:])
def atr(high, low, close, timeperiod, out):
    atr_into(high, low, close, timeperiod, False, out)


#pythran export natr(float64[:], float64[:], float64[:], int, float64[:])
def natr(high, low, close, timeperiod, out):
    # TA-Lib returns ATR(1), the un-normalized true range, for timeperiod 1.
    atr_into(high, low, close, timeperiod, timeperiod > 1, out)


#pythran export plus_di(float64[:], float64[:], float64[:], int, float64[:])
def plus_di(high, low, close, timeperiod, out):
    di_into(high, low, close, timeperiod, False, out)


#pythran export minus_di(float64[:], float64[:], float64[:], int, float64[:])
def minus_di(high, low, close, timeperiod, out):
    di_into(high, low, close, timeperiod, True, out)


#pythran export adx(float64[:], float64[:], float64[:], int, float64[:])
def adx(high, low, close, timeperiod, out):
    adx_into(high, low, close, timeperiod, out)


#pythran export sar(float64[:], float64[:], float64, float64, float64[:])
def sar(high, low, acceleration, maximum, out):
    sar_into(high, low, acceleration, maximum, out)
