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

import numpy as np

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

    The common call -- 1-D float64 contiguous inputs of one length that
    start with a defined value, parameters of their exact type inside their
    range, a series longer than the lookback -- is tested in line and goes
    straight to the kernel; anything else takes :func:`api.compute`, which
    checks, converts and explains. The tests written out for this one
    indicator's inputs and parameters cost about half of what a general
    loop over them did (MOM over 100 points: 1.14 -> ~0.6 us a call; TA-Lib's
    wrapper takes ~0.45), which at 2,000 points is most of the difference.
    """
    inputs = list(indicator.inputs)
    names = [p.name for p in indicator.params]
    arguments = ", ".join(inputs + [f"{name}=_defaults[{name!r}]" for name in names])
    first = inputs[0]
    tests = []
    for name in inputs:
        tests += [f"type({name}) is _ndarray", f"{name}.dtype is _float64", f"{name}.ndim == 1",
                  f"{name}.flags.c_contiguous"]
        if name != first:
            tests.append(f"len({name}) == len({first})")
    for index, param in enumerate(indicator.params):
        tests.append(f"type({param.name}) is _kinds[{index}]")
        tests.append(f"{param.name} in _choices[{index}]" if param.choices is not None
                     else f"{param.minimum!r} <= {param.name} <= {param.maximum!r}")
    # The first values' sum is NaN when one of them is (x == x: not NaN); one
    # test for all inputs, each first value read once (AD: 1.43 -> ~1.2 us).
    defined = f"(_first := {' + '.join(f'{name}.item(0)' for name in inputs)}) == _first"
    # Without parameters the lookback is a constant, written in (a call costs ~85 ns).
    lookback = repr(indicator.lookback()) if not names else f"_lookback({', '.join(names)})"
    outputs = [f"_out{k}" for k in range(len(indicator.outputs))]
    result = outputs[0] if len(outputs) == 1 else f"({', '.join(outputs)})"
    source = (
        f"def {indicator.name}({arguments}):\n"
        f"    if {' and '.join(tests)}:\n"
        f"        n = {first}.shape[0]\n"
        f"        if n > {lookback} and {defined}:\n"
        f"            kernel = _kernels.get((_name, _api._backend)) or _api.kernel_for(_indicator, _api.backend())\n"
        + "".join(f"            {out} = _empty(n)\n" for out in outputs) +
        f"            kernel({', '.join(inputs + names + outputs)})\n"
        f"            return {result}\n"
        f"    outs = _compute(_indicator, ({', '.join(inputs)},), {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n"
        f"    return {'outs[0]' if len(outputs) == 1 else 'tuple(outs)'}\n"
    )
    namespace: dict[str, Any] = {
        "_compute": api.compute, "_api": api, "_kernels": api._kernels, "_indicator": indicator,
        "_name": indicator.name, "_lookback": indicator.lookback, "_defaults": indicator.defaults(),
        "_ndarray": np.ndarray, "_float64": api.FLOAT64, "_empty": np.empty,
        "_kinds": tuple(p.kind for p in indicator.params),
        "_choices": tuple(frozenset(p.choices) if p.choices is not None else None for p in indicator.params),
    }
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
