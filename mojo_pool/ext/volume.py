"""Indicators that weigh price by traded volume (TA-Lib's "volume indicators"), plus a rolling VWAP.

Pythran kernels under the contract stated in ``overlap``'s docstring. The
cumulative lines (OBV, AD and the AD line inside ADOSC) are running totals
over the whole series, so they are computed with TA-Lib's exact operation
order: a total that crosses zero has no relative precision to spare, and
only the same roundings keep it within tolerance there.
"""
import numpy as np

from .overlap import fill_nan


def ad_increment(high, low, close, volume):
    """One bar's accumulation/distribution: the close location value times volume.

    ((close - low) - (high - close)) / (high - low) * volume, and nothing
    for a bar without range (high <= low), as TA-Lib does. A select, not a
    branch (-fno-trapping-math lets the division run speculatively).
    """
    spread = high - low
    # "+ 0.0" rounds the product by itself: the caller's addition to the
    # line stays a plain addition, as in TA-Lib, not a fused multiply-add
    # (whose different rounding the line would carry on).
    return (close - low - (high - close)) / spread * volume + 0.0 if spread > 0.0 else 0.0


#pythran export obv(float64[:], float64[:], float64[:])
def obv(real, volume, out):
    """On-balance volume; lookback 0.

    Starts at the first bar's volume (TA-Lib's convention, not at 0); each
    later bar adds its volume when the price rose, subtracts it when the price
    fell and leaves the total alone otherwise. A NaN price compares neither
    up nor down, so it and the bar after it leave the total unchanged.
    """
    n = real.shape[0]
    if n == 0:
        return
    total = volume[0]
    prev = real[0]
    for i in range(n):
        price = real[i]
        # Selects, not branches: up or down is a coin flip on market data and
        # a mispredicted branch costs more than the whole step.
        v = volume[i]
        up = v if price > prev else 0.0
        down = v if price < prev else 0.0
        total += up - down
        out[i] = total
        prev = price


# Bars per block of the two-pass form of ad and adosc (the block of
# increments stays in L1); a multiple of 8 (ad reads ahead one bar in 8).
AD_BLOCK = 512


def next_block_sum(high, low, close, volume, at):
    """Reads bar ``at`` of the four inputs (views of the next block), so that the caller touches the next
    block while it still works on this one (see ``ad``). The caller must use
    the sum somewhere the compiler cannot prove dead, or the reads go."""
    return high[at] + low[at] + close[at] + volume[at]


#pythran export ad(float64[:], float64[:], float64[:], float64[:], float64[:])
def ad(high, low, close, volume, out):
    """Chaikin accumulation/distribution line, cumulative from the first bar; lookback 0.

    The total is summed bar by bar in TA-Lib's order (see the module
    docstring); the chain of additions is the same as TA-Lib's, so the
    time goes into what surrounds it. Block by block, one loop computes the
    increments into the output in SIMD lanes (the divisions no longer go
    one at a time through the divider), a second sums them in place.

    While the second loop runs over a full block, it reads one bar in eight
    (one per cache line) of the next block's inputs. Without that, at 10^6
    bars (inputs streaming from memory, not cache) the first loop waited
    for memory and the second left it idle. The reads are independent of
    the chain, so they overlap with it. Measured against TA-Lib, each in its
    own process: 10^5 bars 1.15x without the reads, 1.42x with them; 10^6
    bars 0.63x and 1.24x (the reads in a separate loop: 0.86x; the previous
    one-pass form, four bars a step: 0.95x).
    """
    n = high.shape[0]
    total = 0.0
    touched = 0.0
    for start in range(0, n, AD_BLOCK):
        stop = min(start + AD_BLOCK, n)
        m = stop - start
        h = high[start:stop]
        lo = low[start:stop]
        c = close[start:stop]
        v = volume[start:stop]
        dest = out[start:stop]
        for j in range(m):
            dest[j] = ad_increment(h[j], lo[j], c[j], v[j])
        if stop + AD_BLOCK <= n:
            # Views of the next block: indexing them with the loop's own j
            # (known >= 0) spares the negative-index test that high[stop + j]
            # costs (measured: 69 vs 102 us at 10^5 bars).
            hn = high[stop:stop + AD_BLOCK]
            ln = low[stop:stop + AD_BLOCK]
            cn = close[stop:stop + AD_BLOCK]
            vn = volume[stop:stop + AD_BLOCK]
            for j in range(0, AD_BLOCK, 8):
                touched += next_block_sum(hn, ln, cn, vn, j)
                total += dest[j]
                dest[j] = total
                total += dest[j + 1]
                dest[j + 1] = total
                total += dest[j + 2]
                dest[j + 2] = total
                total += dest[j + 3]
                dest[j + 3] = total
                total += dest[j + 4]
                dest[j + 4] = total
                total += dest[j + 5]
                dest[j + 5] = total
                total += dest[j + 6]
                dest[j + 6] = total
                total += dest[j + 7]
                dest[j + 7] = total
        else:
            for j in range(m):
                total += dest[j]
                dest[j] = total
    if n > 0 and touched == 1.2345e-300:
        # Never true on market data, and harmless if it is: bar 0's value
        # again. It keeps the read-ahead sums alive.
        out[0] = 0.0 + ad_increment(high[0], low[0], close[0], volume[0])


#pythran export adosc(float64[:], float64[:], float64[:], float64[:], int, int, float64[:])
def adosc(high, low, close, volume, fastperiod, slowperiod, out):
    """Chaikin A/D oscillator: EMA(fastperiod) - EMA(slowperiod) of the AD line.

    Lookback max(fastperiod, slowperiod) - 1. Unlike TA-Lib's EMA (seeded with
    a window mean), both EMAs start at the first bar's AD value and run from
    there with k = 2 / (period + 1); the first output comes after the slower
    one's lookback. ``fastperiod`` need not be the smaller: the result is
    always EMA(fastperiod) - EMA(slowperiod).

    The oscillator is a small difference of two EMAs of a line that grows to
    1e8 and more, so near its zero crossings only its absolute error (a few
    ulps of the line) is meaningful, not its relative one.

    Block by block as in ``ad`` (increments in SIMD lanes, then the line,
    reading ahead into the next block), and each EMA advanced four bars per
    FMA on its chain the way ``overlap.ema_seeded`` does. Measured against
    TA-Lib in one process (3/10, random walk): one pass four bars a step
    0.91x at 10^5 bars and 0.88x at 10^6; blocks 1.15x and 0.65x; blocks
    reading ahead 1.18x and 1.07x. The bars before the first output are
    computed too, then overwritten by NaN.
    """
    n = high.shape[0]
    first = max(fastperiod, slowperiod) - 1
    if first >= n:
        fill_nan(out, n)
        return
    fk = 2.0 / (fastperiod + 1.0)
    fa = 1.0 - fk
    fa2 = fa * fa
    fa3 = fa2 * fa
    fa4 = fa2 * fa2
    sk = 2.0 / (slowperiod + 1.0)
    sa = 1.0 - sk
    sa2 = sa * sa
    sa3 = sa2 * sa
    sa4 = sa2 * sa2
    line = 0.0
    fast = 0.0
    slow = 0.0
    touched = 0.0
    for start in range(0, n, AD_BLOCK):
        stop = min(start + AD_BLOCK, n)
        m = stop - start
        ahead = min(stop + AD_BLOCK, n) - stop
        h = high[start:stop]
        lo = low[start:stop]
        c = close[start:stop]
        v = volume[start:stop]
        hn = high[stop:]
        ln = low[stop:]
        cn = close[stop:]
        vn = volume[stop:]
        dest = out[start:stop]
        for j in range(m):
            dest[j] = ad_increment(h[j], lo[j], c[j], v[j])
        j = 0
        if start == 0:
            line = dest[0]
            fast = line
            slow = line
            dest[0] = 0.0
            j = 1
        while j + 3 < m:
            if j < ahead:
                touched += next_block_sum(hn, ln, cn, vn, j)
            l0 = line + dest[j]
            l1 = l0 + dest[j + 1]
            l2 = l1 + dest[j + 2]
            line = l2 + dest[j + 3]
            fb0 = fk * l0
            fc1 = fb0 * fa + fk * l1
            fc2 = fc1 * fa + fk * l2
            fc3 = fc2 * fa + fk * line
            sb0 = sk * l0
            sc1 = sb0 * sa + sk * l1
            sc2 = sc1 * sa + sk * l2
            sc3 = sc2 * sa + sk * line
            dest[j] = (fast * fa + fb0) - (slow * sa + sb0)
            dest[j + 1] = (fast * fa2 + fc1) - (slow * sa2 + sc1)
            dest[j + 2] = (fast * fa3 + fc2) - (slow * sa3 + sc2)
            fast = fast * fa4 + fc3
            slow = slow * sa4 + sc3
            dest[j + 3] = fast - slow
            j += 4
        while j < m:
            line += dest[j]
            fast = fast * fa + fk * line
            slow = slow * sa + sk * line
            dest[j] = fast - slow
            j += 1
    out[0] = touched  # keeps the read-ahead sums alive; first >= 1 overwrites it
    fill_nan(out, first)


#pythran export mfi(float64[:], float64[:], float64[:], float64[:], int, float64[:])
def mfi(high, low, close, volume, timeperiod, out):
    """Money flow index over ``timeperiod`` typical-price moves; lookback timeperiod.

    Money flow is typical price (h + l + c) / 3 times volume, counted as
    positive when the typical price rose from the previous bar and negative
    when it fell. MFI = 100 * positive / (positive + negative) over the
    window. Conventions of the current TA-Lib, reproduced here:

    * a move within 1e-14 of (|tp| + |previous tp|) counts as no move: such a
      bar contributes nothing to either side;
    * the two window sums are running sums; after ``timeperiod`` consecutive
      bars that contributed nothing they are reset to exactly 0 (an empty
      window is then recognised exactly, and a NaN that entered the sums is
      flushed out only then);
    * an empty window gives 0, and the positive sum is clamped into
      [0, total] against rounding.
    """
    n = high.shape[0]
    fill_nan(out, timeperiod)
    if timeperiod >= n:
        return
    pos_ring = np.empty(timeperiod)
    neg_ring = np.empty(timeperiod)
    slot = 0
    prev = (high[0] + low[0] + close[0]) / 3.0
    pos_sum = 0.0
    neg_sum = 0.0
    null_run = 0
    for i in range(1, n):
        if i > timeperiod:
            pos_sum -= pos_ring[slot]
            neg_sum -= neg_ring[slot]
        tp = (high[i] + low[i] + close[i]) / 3.0
        move = tp - prev
        scale = abs(tp) + abs(prev)
        prev = tp
        flow = tp * volume[i]
        if abs(move) <= 1e-14 * scale:
            flow = 0.0
        pos_flow = flow
        neg_flow = 0.0
        if move < 0.0:
            pos_flow = 0.0
            neg_flow = flow
        pos_ring[slot] = pos_flow
        neg_ring[slot] = neg_flow
        pos_sum += pos_flow
        neg_sum += neg_flow
        if flow == 0.0:
            null_run += 1
        else:
            null_run = 0
        if null_run >= timeperiod:
            null_run = timeperiod
            pos_sum = 0.0
            neg_sum = 0.0
        slot += 1
        if slot == timeperiod:
            slot = 0
        if i >= timeperiod:
            total = pos_sum + neg_sum
            pos = pos_sum
            if pos < 0.0:
                pos = 0.0
            elif pos > total:
                pos = total
            if total <= 0.0:
                out[i] = 0.0
            else:
                out[i] = 100.0 * (pos / total)


def compensated_add(total, carry, x):
    """total + x as Neumaier's compensated sum: the new total and rounding carry.

    The running value is total + carry; the carry collects each addition's
    rounding error exactly, so adding and later subtracting the same terms
    leaves no residue worth mentioning, however many steps pass.
    """
    t = total + x
    if abs(total) >= abs(x):
        carry += (total - t) + x
    else:
        carry += (x - t) + total
    return t, carry


# Bars per block of vwap (three buffers of this many floats stay in L1).
VWAP_BLOCK = 512


#pythran export vwap(float64[:], float64[:], float64[:], float64[:], float64[:])
def vwap(high, low, close, volume, out):
    """TA-Lib's VWAP: cumulative sum(tp * volume) / cumulative sum(volume) from the first bar.

    tp = (high + low + close) / 3; 0 while nothing has traded yet; lookback 0.
    A bar with a NaN in any input is left out of both sums, as TA-Lib does
    (the output repeats the previous value there).

    Block by block: an elementwise loop computes the flows, the two running
    sums go into L1 buffers, and a second elementwise loop divides them into
    the output. The elementwise loops run in SIMD lanes; bar by bar, the
    two divisions (by 3 and by the volume) ran at the scalar divider's pace
    (measured 0.96x TA-Lib).
    """
    n = high.shape[0]
    flows = np.empty(VWAP_BLOCK)
    pvs = np.empty(VWAP_BLOCK)
    vols = np.empty(VWAP_BLOCK)
    pv = 0.0
    vol = 0.0
    for start in range(0, n, VWAP_BLOCK):
        stop = min(start + VWAP_BLOCK, n)
        m = stop - start
        h = high[start:stop]
        lo = low[start:stop]
        c = close[start:stop]
        v = volume[start:stop]
        for j in range(m):
            flows[j] = (h[j] + lo[j] + c[j]) / 3.0 * v[j]
        for j in range(m):
            flow = flows[j]
            # Selects: adding 0 leaves a sum exactly as skipping the bar does.
            defined = flow == flow
            pv += flow if defined else 0.0
            vol += v[j] if defined else 0.0
            pvs[j] = pv
            vols[j] = vol
        dest = out[start:stop]
        for j in range(m):
            total = vols[j]
            dest[j] = pvs[j] / total if total != 0.0 else 0.0


#pythran export rolling_vwap(float64[:], float64[:], float64[:], float64[:], int, float64[:])
def rolling_vwap(high, low, close, volume, timeperiod, out):
    """Rolling volume-weighted average price (not in TA-Lib); lookback timeperiod - 1.

    Definition: for each window of the last ``timeperiod`` bars,

        VWAP = sum(tp * volume) / sum(volume),  tp = (high + low + close) / 3.

    A window whose total volume is zero (with non-negative volumes: nothing
    traded in it) gives NaN, as does a window holding a NaN in any input;
    windows after the NaN has left are clean again.

    Both sums run along the series, each bar added when it enters the window
    and subtracted when it leaves, as compensated sums (no drift even over a
    long fall in price with a period in the tens of thousands). A NaN bar
    never enters them: it is counted instead, and so are the bars that
    traded, so that an empty window is recognised exactly and the sums are
    reset to exactly 0 there.
    """
    n = high.shape[0]
    first = timeperiod - 1
    fill_nan(out, first)
    if first >= n:
        return
    pv = 0.0  # sum of tp * volume over the window's defined bars ...
    pv_carry = 0.0  # ... and its rounding carry
    vol = 0.0  # sum of volume over the window's defined bars ...
    vol_carry = 0.0
    traded = 0  # bars in the window with nonzero volume
    missing = 0  # bars in the window with a NaN input
    for i in range(n):
        v = volume[i]
        flow = (high[i] + low[i] + close[i]) / 3.0 * v
        if flow != flow:
            missing += 1
        elif v != 0.0:
            traded += 1
            pv, pv_carry = compensated_add(pv, pv_carry, flow)
            vol, vol_carry = compensated_add(vol, vol_carry, v)
        if i < first:
            continue
        total = vol + vol_carry
        if missing > 0 or traded == 0 or total == 0.0:
            out[i] = np.nan
        else:
            out[i] = (pv + pv_carry) / total
        # The window's oldest bar leaves before the next step.
        j = i - first
        v = volume[j]
        flow = (high[j] + low[j] + close[j]) / 3.0 * v
        if flow != flow:
            missing -= 1
        elif v != 0.0:
            traded -= 1
            if traded == 0:
                pv = 0.0
                pv_carry = 0.0
                vol = 0.0
                vol_carry = 0.0
            else:
                pv, pv_carry = compensated_add(pv, pv_carry, -flow)
                vol, vol_carry = compensated_add(vol, vol_carry, -v)
