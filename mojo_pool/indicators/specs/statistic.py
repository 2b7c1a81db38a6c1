"""Statistic functions (kernels: ``mojo_pool.ext.statistic``)."""
from __future__ import annotations

from ..registry import Indicator, period, real, register


def _window(name: str, summary: str, params: tuple, default: int = 14) -> Indicator:
    return Indicator(
        name=name, family="statistic", inputs=("real",), params=params, outputs=("real",),
        # The registry calls lookbacks with the parameters in order, by position.
        lookback=(lambda timeperiod, nbdev: timeperiod - 1) if len(params) == 2 else (lambda timeperiod: timeperiod - 1),
        summary=summary,
    )


register(
    _window("stddev", "Population standard deviation of the window times nbdev.",
            (period(default=5), real("nbdev", 1.0, help="multiplier of the deviation"))),
    _window("var", "Population variance of the window (nbdev is accepted and ignored, as in TA-Lib).",
            (period(default=5, minimum=1), real("nbdev", 1.0, help="ignored (TA-Lib accepts it unused)"))),
    _window("linearreg", "Least-squares line over the window, evaluated at its newest bar.",
            (period(default=14),)),
    _window("linearreg_slope", "Slope per bar of the least-squares line over the window.",
            (period(default=14),)),
)
