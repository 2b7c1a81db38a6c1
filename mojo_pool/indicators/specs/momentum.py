"""RSI, CMO, MOM, ROC, TRIX, MACD, APO, PPO, STOCHRSI (kernels: ``mojo_pool.ext.momentum``)."""
from __future__ import annotations

from ..registry import Indicator, matype, period, register
from .overlap import _ma_lookback


def _single(name: str, summary: str, default: int, minimum: int = 2, lookback=None,
            lanes: str | None = None, rows: str | None = None) -> Indicator:
    return Indicator(
        name=name, family="momentum", inputs=("real",), params=(period(default=default, minimum=minimum),),
        outputs=("real",), lookback=lookback or (lambda timeperiod: timeperiod), summary=summary, lanes=lanes,
        rows=rows,
    )


def _oscillator(name: str, summary: str) -> Indicator:
    return Indicator(
        name=name, family="momentum", inputs=("real",),
        params=(period("fastperiod", 12, help="bars in the fast moving average"),
                period("slowperiod", 26, help="bars in the slow moving average (swapped with fast if smaller)"),
                matype(default=1)),
        outputs=("real",),
        lookback=lambda fastperiod, slowperiod, matype: _ma_lookback(max(fastperiod, slowperiod), matype),
        summary=summary,
    )


register(
    _single("rsi", "Relative strength index, Wilder-smoothed gains over gains plus losses (0 when flat).", 14,
            lanes="rsi", rows="lanes.rsi_rows"),
    _single("cmo", "Chande momentum oscillator: 100*(gain-loss)/(gain+loss), Wilder-smoothed (0 when flat).", 14),
    _single("mom", "Momentum: real - real timeperiod bars ago.", 10, minimum=1),
    _single("roc", "Rate of change in percent: (real / real timeperiod bars ago - 1) * 100 (0 after a 0).", 10,
            minimum=1),
    _single("trix", "One-bar rate of change (percent) of a triple EMA.", 30, minimum=1,
            lookback=lambda timeperiod: 3 * (timeperiod - 1) + 1),
    Indicator(
        name="macd", family="momentum", inputs=("real",),
        params=(period("fastperiod", 12, help="bars in the fast EMA"),
                period("slowperiod", 26, help="bars in the slow EMA (swapped with fast if smaller)"),
                period("signalperiod", 9, minimum=1, help="bars in the signal line's EMA")),
        outputs=("macd", "macdsignal", "macdhist"),
        lookback=lambda fastperiod, slowperiod, signalperiod: max(fastperiod, slowperiod) + signalperiod - 2,
        summary="Moving average convergence/divergence: EMA(fast) - EMA(slow), its signal EMA, and "
                "the histogram (line - signal).",
    ),
    _oscillator("apo", "Absolute price oscillator: MA(fast) - MA(slow)."),
    _oscillator("ppo", "Percentage price oscillator: 100 * (MA(fast) - MA(slow)) / MA(slow)."),
    Indicator(
        name="stochrsi", family="momentum", inputs=("real",),
        params=(period(default=14, help="bars in the RSI"),
                period("fastk_period", 5, minimum=1, help="bars in the %K range of the RSI"),
                period("fastd_period", 3, minimum=1, help="bars smoothing %K into %D"),
                matype("fastd_matype")),
        outputs=("fastk", "fastd"),
        lookback=lambda timeperiod, fastk_period, fastd_period, fastd_matype: (
            timeperiod + fastk_period - 1 + _ma_lookback(fastd_period, fastd_matype)),
        summary="Stochastic RSI: fast stochastic %K of RSI(timeperiod) over fastk_period and its "
                "MA(fastd_matype) %D.",
    ),
)
