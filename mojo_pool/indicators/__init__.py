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

from typing import Any, Callable

from . import api
from .registry import MA_TYPES, REGISTRY, Indicator, Param

__all__ = ["REGISTRY", "Indicator", "Param", "MA_TYPES", "BACKEND", "compute"] + sorted(REGISTRY)

compute = api.compute


def _make_function(indicator: Indicator) -> Callable[..., Any]:
    """A plain function with the indicator's TA-Lib signature.

    Written out as source and compiled, the way dataclasses builds its
    methods, rather than as ``*args, **kwargs`` bound through
    ``inspect.Signature``: binding cost ~2 us a call, a third of the whole
    overhead on a 1,000-point series. Parameter names come from the
    registry, which holds identifiers only.
    """
    inputs = list(indicator.inputs)
    names = [p.name for p in indicator.params]
    arguments = ", ".join(inputs + [f"{name}=_defaults[{name!r}]" for name in names])
    result = "outs[0]" if len(indicator.outputs) == 1 else "tuple(outs)"
    source = (
        f"def {indicator.name}({arguments}):\n"
        f"    outs = _plain(_indicator, ({', '.join(inputs)},), ({''.join(n + ', ' for n in names)}))\n"
        f"    if outs is None:\n"
        f"        outs = _compute(_indicator, ({', '.join(inputs)},), {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n"
        f"    return {result}\n"
    )
    namespace: dict[str, Any] = {"_compute": api.compute, "_plain": api.compute_plain, "_indicator": indicator,
                                 "_defaults": indicator.defaults()}
    exec(compile(source, f"<mojo_pool.indicators.{indicator.name}>", "exec"), namespace)
    function = namespace[indicator.name]
    params_doc = "\n".join(
        f"    {p.name}: {p.kind.__name__} = {p.default!r}, {p.describe()}" + (f" — {p.help}" if p.help else "")
        for p in indicator.params
    )
    function.__module__ = __name__
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
