"""True range, directional movement and parabolic SAR (kernels: ``mojo_pool.ext.trend``)."""
from __future__ import annotations

from ..registry import Indicator, period, real, register

_HLC = ("high", "low", "close")


def _wilder(name: str, summary: str, minimum: int = 1, lookback=None) -> Indicator:
    return Indicator(
        name=name, family="trend", inputs=_HLC, params=(period(default=14, minimum=minimum),),
        outputs=("real",), lookback=lookback or (lambda timeperiod: timeperiod), summary=summary,
    )


register(
    Indicator(
        name="trange", family="trend", inputs=_HLC, params=(), outputs=("real",),
        lookback=lambda: 1,
        summary="True range: max(high - low, |prev close - high|, |prev close - low|).",
    ),
    _wilder("atr", "Average true range, Wilder-smoothed, seeded with the mean of the first timeperiod "
                   "true ranges (timeperiod 1: the true range)."),
    _wilder("natr", "Normalized ATR: 100 * ATR / close (0 where close is 0; timeperiod 1 returns the "
                    "un-normalized true range, as TA-Lib does)."),
    _wilder("plus_di", "Plus directional indicator: 100 * Wilder-smoothed +DM / smoothed true range "
                       "(timeperiod 1: the one-bar ratio +DM / TR, without the factor 100, as TA-Lib)."),
    _wilder("minus_di", "Minus directional indicator: 100 * Wilder-smoothed -DM / smoothed true range "
                        "(timeperiod 1: the one-bar ratio -DM / TR, without the factor 100, as TA-Lib)."),
    _wilder("adx", "Average directional index: Wilder-smoothed DX = 100 * |+DI - -DI| / (+DI + -DI).",
            minimum=2, lookback=lambda timeperiod: 2 * timeperiod - 1),
    Indicator(
        name="sar", family="trend", inputs=("high", "low"),
        params=(real("acceleration", 0.02, minimum=0.0, help="acceleration factor step (and start)"),
                real("maximum", 0.2, minimum=0.0, help="acceleration factor ceiling")),
        outputs=("real",), lookback=lambda acceleration, maximum: 1,
        summary="Parabolic SAR; initial direction short if bar 1's -DM is positive, else long.",
    ),
)
