"""Stochastics, %R, CCI, ultimate oscillator, Aroon (kernels: ``mojo_pool.ext.oscillators``)."""
from __future__ import annotations

from ..registry import Indicator, matype, period, register
from .overlap import _ma_lookback

_HLC = ("high", "low", "close")


def _hlc_period(name: str, summary: str, lookback=None) -> Indicator:
    return Indicator(
        name=name, family="oscillators", inputs=_HLC, params=(period(default=14),), outputs=("real",),
        lookback=lookback or (lambda timeperiod: timeperiod - 1), summary=summary,
    )


register(
    Indicator(
        name="stoch", family="oscillators", inputs=_HLC,
        params=(period("fastk_period", 5, minimum=1, help="bars in the %K range"),
                period("slowk_period", 3, minimum=1, help="bars smoothing %K into slow %K"),
                matype("slowk_matype"),
                period("slowd_period", 3, minimum=1, help="bars smoothing slow %K into slow %D"),
                matype("slowd_matype")),
        outputs=("slowk", "slowd"),
        lookback=lambda fastk_period, slowk_period, slowk_matype, slowd_period, slowd_matype: (
            fastk_period - 1 + _ma_lookback(slowk_period, slowk_matype) + _ma_lookback(slowd_period, slowd_matype)),
        summary="Slow stochastic: %K = 100*(close-lowest low)/(highest high-lowest low) smoothed by "
                "MA(slowk_matype), and %D its MA(slowd_matype).",
    ),
    Indicator(
        name="stochf", family="oscillators", inputs=_HLC,
        params=(period("fastk_period", 5, minimum=1, help="bars in the %K range"),
                period("fastd_period", 3, minimum=1, help="bars smoothing %K into %D"),
                matype("fastd_matype")),
        outputs=("fastk", "fastd"),
        lookback=lambda fastk_period, fastd_period, fastd_matype: (
            fastk_period - 1 + _ma_lookback(fastd_period, fastd_matype)),
        summary="Fast stochastic: raw %K = 100*(close-lowest low)/(highest high-lowest low) and %D its "
                "MA(fastd_matype).",
    ),
    _hlc_period("willr", "Williams %R: -100*(highest high-close)/(highest high-lowest low)."),
    _hlc_period("cci", "Commodity channel index: (typical price - its SMA) / (0.015 * mean absolute "
                       "deviation), typical price (high+low+close)/3."),
    Indicator(
        name="ultosc", family="oscillators", inputs=_HLC,
        params=(period("timeperiod1", 7, minimum=1, help="shortest window (weight 4 once sorted)"),
                period("timeperiod2", 14, minimum=1, help="middle window (weight 2 once sorted)"),
                period("timeperiod3", 28, minimum=1, help="longest window (weight 1 once sorted)")),
        outputs=("real",),
        lookback=lambda timeperiod1, timeperiod2, timeperiod3: max(timeperiod1, timeperiod2, timeperiod3),
        summary="Ultimate oscillator: weighted (4:2:1) ratios of buying pressure to true range over "
                "three windows, scaled to 0..100.",
    ),
    Indicator(
        name="aroon", family="oscillators", inputs=("high", "low"), params=(period(default=14),),
        outputs=("aroondown", "aroonup"), lookback=lambda timeperiod: timeperiod,
        summary="Aroon down/up: 100*(timeperiod - bars since the lowest low / highest high)/timeperiod "
                "over the last timeperiod+1 bars.",
    ),
    Indicator(
        name="aroonosc", family="oscillators", inputs=("high", "low"), params=(period(default=14),),
        outputs=("real",), lookback=lambda timeperiod: timeperiod,
        summary="Aroon oscillator: Aroon up - Aroon down.",
    ),
)
