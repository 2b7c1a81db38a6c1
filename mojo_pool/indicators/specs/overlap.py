"""Moving averages and bands (kernels: ``mojo_pool.ext.overlap``)."""
from __future__ import annotations

from ..registry import Indicator, matype, period, real, register


def _ma_lookback(timeperiod: int, matype: int = 0) -> int:
    """TA-Lib's MA lookback for each moving-average type."""
    if timeperiod == 1:
        return 0
    return {3: 2, 4: 3}.get(matype, 1) * (timeperiod - 1) + (1 if matype == 6 else 0)


def _single(name: str, summary: str, default: int = 30, minimum: int = 1, lookback=None,
            lanes: str | None = None, rows: str | None = None) -> Indicator:
    return Indicator(
        name=name, family="overlap", inputs=("real",), params=(period(default=default, minimum=minimum),),
        outputs=("real",), lookback=lookback or (lambda timeperiod: timeperiod - 1), summary=summary,
        lanes=lanes, rows=rows,
    )


register(
    _single("sma", "Simple moving average.", lanes="sma", rows="overlap.sma_rows"),
    _single("ema", "Exponential moving average, k = 2/(timeperiod+1), seeded with the first window's mean.",
            lanes="ema", rows="overlap.ema_rows"),
    _single("wma", "Linearly weighted moving average (newest bar weighs timeperiod)."),
    _single("dema", "Double exponential moving average: 2*EMA - EMA(EMA).",
            lookback=lambda timeperiod: 2 * (timeperiod - 1)),
    _single("tema", "Triple exponential moving average: 3*EMA - 3*EMA(EMA) + EMA(EMA(EMA)).",
            lookback=lambda timeperiod: 3 * (timeperiod - 1)),
    _single("trima", "Triangular moving average (an SMA of an SMA)."),
    _single("kama", "Kaufman adaptive moving average.", lookback=lambda timeperiod: 0 if timeperiod == 1 else timeperiod),
    _single("midpoint", "Midpoint of the window: (highest + lowest) / 2.", default=14, minimum=2),
    Indicator(
        name="bbands", family="overlap", inputs=("real",),
        params=(period(default=20), real("nbdevup", 2.0, help="deviations above the middle band"),
                real("nbdevdn", 2.0, help="deviations below the middle band"), matype()),
        outputs=("upperband", "middleband", "lowerband"),
        lookback=lambda timeperiod, nbdevup, nbdevdn, matype: _ma_lookback(timeperiod, matype),
        summary="Bollinger bands: MA(matype) +/- nbdev population standard deviations of the window.",
    ),
)
