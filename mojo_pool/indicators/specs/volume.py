"""Volume indicators (kernels: ``mojo_pool.ext.volume``)."""
from __future__ import annotations

from ..registry import Indicator, period, register

_HLCV = ("high", "low", "close", "volume")

register(
    Indicator(
        name="obv", family="volume", inputs=("real", "volume"), params=(), outputs=("real",),
        lookback=lambda: 0,
        summary="On-balance volume: starts at the first bar's volume, then adds the volume of each "
                "up bar and subtracts that of each down bar.",
    ),
    Indicator(
        name="ad", family="volume", inputs=_HLCV, params=(), outputs=("real",),
        lookback=lambda: 0,
        summary="Chaikin accumulation/distribution line: cumulative "
                "((close-low) - (high-close)) / (high-low) * volume; bars without range add nothing.",
    ),
    Indicator(
        name="adosc", family="volume", inputs=_HLCV,
        params=(period("fastperiod", default=3, help="bars in the first EMA of the AD line"),
                period("slowperiod", default=10, help="bars in the subtracted EMA of the AD line")),
        outputs=("real",),
        lookback=lambda fastperiod, slowperiod: max(fastperiod, slowperiod) - 1,
        summary="Chaikin A/D oscillator: EMA(fastperiod) - EMA(slowperiod) of the AD line, both EMAs "
                "seeded with the first bar's AD value.",
    ),
    Indicator(
        name="mfi", family="volume", inputs=_HLCV, params=(period(default=14),), outputs=("real",),
        lookback=lambda timeperiod: timeperiod,
        summary="Money flow index: 100 * positive / total money flow (typical price * volume) "
                "over the window; an empty window gives 0.",
    ),
    Indicator(
        name="vwap", family="volume", inputs=_HLCV, params=(), outputs=("real",), lookback=lambda: 0,
        summary="Volume-weighted average price from the first bar (TA-Lib's VWAP): cumulative "
                "sum(tp * volume) / cumulative sum(volume), tp = (high + low + close) / 3; 0 until "
                "something trades.",
    ),
    Indicator(
        name="rolling_vwap", family="volume", inputs=_HLCV, params=(period(default=14, minimum=1),),
        outputs=("real",),
        lookback=lambda timeperiod: timeperiod - 1,
        summary="Rolling volume-weighted average price (not in TA-Lib): sum(tp * volume) / sum(volume) "
                "over the last timeperiod bars, tp = (high + low + close) / 3; NaN for a window with "
                "zero total volume or holding a NaN.",
    ),
)
