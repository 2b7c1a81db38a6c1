"""The TA-Lib-shaped API: signatures, conversions and refusals.

1. Every registry entry is a function in ``mojo_pool.indicators`` whose
   signature lists TA-Lib's inputs then TA-Lib's keyword parameters with
   TA-Lib's defaults (checked against talib.abstract where TA-Lib has it).
2. Integer and float32 inputs are converted to float64; lists work too.
3. Wrong dtypes, 3-D input, mismatched lengths, wrong parameter types and
   out-of-range parameters raise errors naming what is wrong.
4. Parameters may be passed positionally, as in TA-Lib.
5. The backend in use is reported.
6. The one-step path for plain calls (1-D float64 inputs, parameters of
   their exact type) gives the same arrays as the fully checked path for
   every indicator, and anything else (other dtypes, lists, strided views,
   a leading NaN, empty inputs, numpy scalars as parameters, parameters out
   of range, unequal lengths) is left to the checked path.
7. A registry entry whose lookback names its parameters differently (or in
   another order) is refused: the one-step path calls it by position.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from mojo_pool import indicators
from mojo_pool.indicators import api
from mojo_pool.indicators.registry import REGISTRY, Indicator, period

talib = pytest.importorskip("talib", reason="ta-lib (PyPI) gives the reference signatures")
from talib import abstract  # noqa: E402


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if hasattr(talib, n.upper())))
def test_1_signature_matches_talib(name: str) -> None:
    ours = inspect.signature(getattr(indicators, name))
    info = abstract.Function(name.upper()).info
    theirs = dict(info["parameters"])
    params = [p for p in ours.parameters.values() if p.default is not inspect.Parameter.empty]
    assert {p.name: p.default for p in params} == theirs
    assert list(ours.parameters)[len(ours.parameters) - len(params):] == list(theirs)
    # Positional inputs, named as in TA-Lib's function docstring.
    doc_inputs = [part.split()[1] for part in getattr(talib, name.upper()).__doc__.split("(", 1)[1]
                  .split(")", 1)[0].split(", ") if part.startswith("ndarray")]
    assert list(ours.parameters)[: len(doc_inputs)] == doc_inputs
    outputs = REGISTRY[name].outputs
    assert list(outputs) == list(info["output_names"])


def test_2_inputs_are_converted() -> None:
    prices = list(range(1, 41))
    as_float = indicators.sma(np.array(prices, dtype=np.float64), timeperiod=5)
    np.testing.assert_array_equal(indicators.sma(prices, timeperiod=5), as_float)
    np.testing.assert_array_equal(indicators.sma(np.array(prices, dtype=np.int32), timeperiod=5), as_float)
    np.testing.assert_allclose(indicators.sma(np.array(prices, dtype=np.float32), timeperiod=5), as_float)
    strided = np.repeat(np.array(prices, dtype=np.float64), 2)[::2]
    np.testing.assert_array_equal(indicators.sma(strided, timeperiod=5), as_float)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: indicators.sma(np.array(["a", "b"]), 2), TypeError, "real numbers"),
        (lambda: indicators.sma(np.array([1 + 2j, 3j]), 2), TypeError, "real numbers"),
        (lambda: indicators.sma(np.ones((2, 2, 2)), 2), ValueError, "3-D"),
        (lambda: indicators.atr(np.ones(10), np.ones(10), np.ones(9)), ValueError, "lengths differ"),
        (lambda: indicators.sma(np.ones(10), timeperiod=0), ValueError, r"timeperiod must be in \[1, 100000\]"),
        (lambda: indicators.sma(np.ones(10), timeperiod=100001), ValueError, "timeperiod"),
        (lambda: indicators.sma(np.ones(10), timeperiod=2.5), ValueError, "timeperiod must be an integer"),
        (lambda: indicators.sma(np.ones(10), timeperiod="5"), ValueError, "timeperiod must be a number"),
        (lambda: indicators.sma(np.ones(10), timeperiod=True), ValueError, "timeperiod must be a number"),
        (lambda: indicators.bbands(np.ones(30), matype=7), ValueError, "matype must be one of"),
        (lambda: indicators.bbands(np.ones(30), nbdevup=float("nan")), ValueError, "nbdevup"),
        (lambda: indicators.sma(np.ones(10), period=5), TypeError, "period"),
        (lambda: indicators.compute(REGISTRY["sma"], [np.ones(10)], {"bogus": 1}), ValueError, "bogus"),
    ],
)
def test_3_bad_input_is_refused_clearly(call, error, message) -> None:  # noqa: ANN001
    with pytest.raises(error, match=message):
        call()


def test_4_positional_parameters() -> None:
    x = np.linspace(1.0, 2.0, 50)
    np.testing.assert_array_equal(indicators.bbands(x, 10, 1.5, 2.5, 1)[0],
                                  indicators.bbands(x, timeperiod=10, nbdevup=1.5, nbdevdn=2.5, matype=1)[0])


def test_5_backend_is_reported() -> None:
    assert indicators.BACKEND in ("compiled", "interpreted")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_6_one_step_path_matches_checked_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    indicator = REGISTRY[name]
    function = getattr(indicators, name)
    checked_calls: list[tuple] = []

    def checked(*args: object) -> object:
        checked_calls.append(args)
        return api.compute(*args)  # type: ignore[arg-type]

    # The function's globals are the namespace it was compiled in.
    monkeypatch.setitem(function.__globals__, "_compute", checked)
    rng = np.random.default_rng(6)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 300))
    columns = {"real": close, "open": close + 0.1, "high": close + 1.0, "low": close - 1.0, "close": close,
               "volume": rng.uniform(1e3, 1e4, 300)}
    inputs = tuple(columns[input_name] for input_name in indicator.inputs)
    values = tuple(p.default for p in indicator.params)
    plain = function(*inputs, *values)
    assert checked_calls == []
    reference = api.compute(indicator, inputs, indicator.defaults())
    for mine, theirs in zip(plain if isinstance(plain, tuple) else (plain,), reference):
        np.testing.assert_array_equal(mine, theirs)
    # What the one-step path leaves to the checked one (which converts or refuses).
    first = indicator.params[0] if indicator.params else None
    others = inputs[1:]
    leading_nan = inputs[0].copy()
    leading_nan[0] = np.nan
    unusual = [((inputs[0].astype(np.float32),) + others, values), ((list(inputs[0]),) + others, values),
               ((np.repeat(inputs[0], 2)[::2],) + others, values), ((leading_nan,) + others, values),
               ((inputs[0][:0],) + tuple(array[:0] for array in others), values)]
    if first is not None:
        unusual.append((inputs, (np.int64(first.default) if first.kind is int else np.float64(first.default),)
                        + values[1:]))
    for arrays, params in unusual:
        checked_calls.clear()
        function(*arrays, *params)
        assert len(checked_calls) == 1
    if first is not None:
        with pytest.raises(ValueError):
            function(*inputs, first.kind(abs(first.maximum) * 2 + 1), *values[1:])
        if len(indicator.inputs) > 1:
            with pytest.raises(ValueError):
                function(*inputs[:-1], inputs[-1][1:], *values)


def test_7_lookback_must_name_the_parameters_in_order() -> None:
    with pytest.raises(ValueError, match="lookback takes"):
        Indicator(name="x", family="overlap", inputs=("real",), params=(period("a"), period("b")),
                  outputs=("real",), lookback=lambda b, a: a + b, summary="")
