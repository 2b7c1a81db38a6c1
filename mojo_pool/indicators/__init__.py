"""TA-Lib-shaped indicator functions over the compiled kernels.

``mojo_pool.indicators.<name>`` exists for every registry entry, with TA-Lib's
positional inputs, keyword parameters (names and defaults) and outputs::

    from mojo_pool import indicators
    indicators.rsi(close, timeperiod=14)
    macd, signal, hist = indicators.macd(close, fastperiod=12, slowperiod=26, signalperiod=9)
    indicators.ema(closes_2d, timeperiod=20)   # rows = series, one call for all

:data:`BACKEND` says whether the compiled (Pythran) or interpreted kernels run.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from . import api
from .registry import MA_TYPES, REGISTRY, Indicator, Param

__all__ = ["REGISTRY", "Indicator", "Param", "MA_TYPES", "BACKEND", "compute"] + sorted(REGISTRY)

compute = api.compute


def _make_function(indicator: Indicator) -> Callable[..., Any]:
    signature = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in indicator.inputs]
        + [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.default)
           for p in indicator.params]
    )
    n_inputs = len(indicator.inputs)
    single = len(indicator.outputs) == 1

    def function(*args: Any, **kwargs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        bound = signature.bind(*args, **kwargs)
        values = list(bound.arguments.values())
        params = dict(list(bound.arguments.items())[n_inputs:])
        outs = api.compute(indicator, values[:n_inputs], params)
        return outs[0] if single else outs

    params_doc = "\n".join(
        f"    {p.name}: {p.kind.__name__} = {p.default!r}, {p.describe()}" + (f" — {p.help}" if p.help else "")
        for p in indicator.params
    )
    function.__name__ = function.__qualname__ = indicator.name
    function.__signature__ = signature  # type: ignore[attr-defined]
    function.__doc__ = (
        f"{indicator.summary}\n\nInputs: {', '.join(indicator.inputs)} (1-D, or 2-D with rows = series)\n"
        f"Parameters:\n{params_doc or '    none'}\n"
        f"Returns: {', '.join(indicator.outputs)}"
    )
    return function


for _name, _indicator in REGISTRY.items():
    globals()[_name] = _make_function(_indicator)


def __getattr__(name: str) -> Any:
    # BACKEND is resolved on first use, so importing the package never warns.
    if name == "BACKEND":
        return api.backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
