"""What a request may hold, checked once: actions, fields, parameters, arrays.

:mod:`mojo_pool.protocol` reads a body (JSON or binary) into a dict and
hands it here. ``ACTIONS`` maps every action to its indicator, its wire
field names (the original service's ``period``, ``fast_period``, ``std_dev``
next to TA-Lib's), its defaults and its reply fields; :class:`Arrays` turns
input fields into float64 arrays (JSON lists, or a binary payload read in
the header's order); :func:`single` and :func:`batch` compute a request and
build its reply. Every refusal is a :class:`ProtocolError` naming its type.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .fast_json import NotNumbers
from .indicators import REGISTRY, api
from .indicators.registry import Indicator

class ProtocolError(Exception):
    """A request the service refuses; ``error_type`` goes on the wire."""

    error_type = "InvalidRequest"

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        if error_type is not None:
            self.error_type = error_type


def not_numbers(name: str, kinds: set[type]) -> ProtocolError:
    return ProtocolError(f"{name} must hold numbers only, found "
                         f"{', '.join(sorted(k.__name__ for k in kinds - {float, int}))}", "TypeError")


class Arrays:
    """Where a request's arrays come from: JSON lists, or a binary payload read in order."""

    def __init__(self, payload: memoryview | None) -> None:
        self.payload = payload
        self.offset = 0

    @property
    def binary(self) -> bool:
        return self.payload is not None

    def take(self, name: str, value: object) -> np.ndarray:
        if value is None:
            raise ProtocolError(f"{name} is missing", "EmptyPrices")
        if self.payload is not None:
            return self._take_binary(name, value)
        if type(value) is np.ndarray:  # read by fast_json: numbers only, exact as doubles
            if not value.size:
                raise ProtocolError(f"{name} is empty", "EmptyPrices")
            return value
        if type(value) is NotNumbers:  # read by fast_json: the types of its elements
            raise not_numbers(name, value.kinds)
        if not isinstance(value, list):
            raise ProtocolError(f"{name} must be an array of numbers, got {type(value).__name__}", "TypeError")
        if not value:
            raise ProtocolError(f"{name} is empty", "EmptyPrices")
        # The fast path (~16 us per 1,000): numpy infers the type. Strings,
        # nulls and nested lists make it non-numeric or not 1-D. Booleans would
        # pass as 0/1 and integers beyond 2**53 would round, so an array holding
        # a 0, a 1 or a magnitude past 2**53 (rare in prices) takes the exact
        # path below instead. (Searching the body for "true" costs ~17 us.)
        try:
            values = np.array(value)
        except ValueError:  # ragged nesting
            raise ProtocolError(f"{name} must hold numbers only, found nested arrays", "TypeError") from None
        if values.ndim == 1 and values.dtype.kind in "fiu" and (
                values.max() < 2**53 and values.min() > -(2**53)) and not ((values == 0) | (values == 1)).any():
            return values.astype(np.float64, copy=False)
        # One pass over the element types (~11 us per 1,000) keeps out what
        # numpy would convert silently: booleans, numeric strings, nested lists.
        kinds = set(map(type, value))
        if kinds <= {float}:
            return np.array(value, dtype=np.float64)
        if not kinds <= {float, int}:
            raise not_numbers(name, kinds)
        # Integers wider than a double's mantissa would round silently; JSON
        # parsers already refuse NaN and Infinity, so floats are finite here.
        if max(abs(v) for v in value if type(v) is int) > 2**53:
            raise ProtocolError(f"{name} holds an integer too large to be exact as a float", "ValueError")
        return np.array(value, dtype=np.float64)

    def _take_binary(self, name: str, count: object) -> np.ndarray:
        if type(count) is not int or count < 0:
            raise ProtocolError(f"{name}: in binary mode an array field holds its length, got {count!r}",
                                "TypeError")
        if count == 0:
            raise ProtocolError(f"{name} is empty", "EmptyPrices")
        assert self.payload is not None
        end = self.offset + 8 * count
        if end > len(self.payload):
            raise ProtocolError(f"{name}: binary payload holds {len(self.payload) // 8} values, "
                                f"the header asks for more", "ValueError")
        values = np.frombuffer(self.payload[self.offset:end], dtype="<f8")
        if not values.flags.aligned or not values.flags.writeable:
            values = values.copy()  # the kernels want aligned arrays; clients that pad the header avoid this
        self.offset = end
        # One pass: a sum is finite unless a value is NaN or infinite (or the
        # sum overflows, which the exact check then tells apart).
        if not np.isfinite(values.sum()) and not np.isfinite(values).all():
            raise ProtocolError(f"{name} holds NaN or Infinity", "ValueError")
        return values

    def finish(self) -> None:
        if self.payload is not None and self.offset != len(self.payload):
            raise ProtocolError(f"binary payload has {len(self.payload)} bytes, the header describes "
                                f"{self.offset}", "ValueError")


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """How one action's request fields map onto a registry indicator and back.

    ``aliases`` maps the original service's parameter names onto TA-Lib's
    (one wire name may set several TA-Lib parameters: Bollinger's
    ``std_dev`` is both ``nbdevup`` and ``nbdevdn``); ``outputs`` names the
    reply fields in TA-Lib's output order.
    """

    indicator: Indicator
    label: str  # the reply's "indicator" field and the metrics label
    aliases: Mapping[str, tuple[str, ...]]
    defaults: Mapping[str, object]
    outputs: tuple[str, ...]
    seed: bool  # replies echo the aliased parameters instead of "params"

    @property
    def input_fields(self) -> tuple[str, ...]:
        return ("prices",) if self.indicator.inputs == ("real",) else self.indicator.inputs


def _seed_action(name: str, label: str, aliases: dict[str, tuple[str, ...]], defaults: dict[str, object],
                 outputs: tuple[str, ...]) -> Action:
    return Action(REGISTRY[name], label, aliases, defaults, outputs, seed=True)


def _generic_action(indicator: Indicator) -> Action:
    outputs = ("values",) if len(indicator.outputs) == 1 else indicator.outputs
    return Action(indicator, indicator.name, {}, {}, outputs, seed=False)


ACTIONS: dict[str, Action] = {f"compute_{name}": _generic_action(ind) for name, ind in REGISTRY.items()}
# The original service's five actions: its field names and its defaults
# (period 20 for SMA, EMA and Bollinger, 14 for RSI, MACD 12/26/9, 2 standard
# deviations). TA-Lib's parameter names are accepted as well.
ACTIONS.update({
    "compute_sma": _seed_action("sma", "sma", {"period": ("timeperiod",)}, {"period": 20}, ("values",)),
    "compute_ema": _seed_action("ema", "ema", {"period": ("timeperiod",)}, {"period": 20}, ("values",)),
    "compute_rsi": _seed_action("rsi", "rsi", {"period": ("timeperiod",)}, {"period": 14}, ("values",)),
    "compute_macd": _seed_action(
        "macd", "macd",
        {"fast_period": ("fastperiod",), "slow_period": ("slowperiod",), "signal_period": ("signalperiod",)},
        {"fast_period": 12, "slow_period": 26, "signal_period": 9}, ("macd_line", "signal_line", "histogram")),
    "compute_bollinger": _seed_action(
        "bbands", "bollinger", {"period": ("timeperiod",), "std_dev": ("nbdevup", "nbdevdn")},
        {"period": 20, "std_dev": 2.0}, ("upper_band", "middle_band", "lower_band")),
})
COMMON_FIELDS = frozenset({"action", "id", "symbol"})
# The fields each action accepts, computed once.
ALLOWED: dict[str, frozenset[str]] = {
    name: COMMON_FIELDS | set(action.input_fields) | set(action.aliases) | set(action.indicator.param_index)
    for name, action in ACTIONS.items()
}


def _symbol(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ProtocolError(f"symbol must be a string, got {type(value).__name__}", "TypeError")


def _params(action: Action, fields: Mapping[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(TA-Lib parameters, wire parameters to echo) from a request's fields."""
    given: dict[str, object] = {}
    echoed: dict[str, object] = {}
    for wire, value in {**action.defaults, **{k: v for k, v in fields.items() if k in action.aliases}}.items():
        echoed[wire] = value
        for target in action.aliases[wire]:
            given[target] = value
    aliased = {target for wire in action.aliases if wire in fields for target in action.aliases[wire]}
    for name in action.indicator.param_index:
        if name in fields:
            if name in aliased:
                raise ProtocolError(f"give {name} or its alias, not both", "InvalidRequest")
            given[name] = fields[name]
    if any(type(v) is bool or not isinstance(v, (int, float)) for v in given.values()):
        bad = next(k for k, v in given.items() if type(v) is bool or not isinstance(v, (int, float)))
        raise ProtocolError(f"{bad} must be a number, got {type(given[bad]).__name__}", "TypeError")
    try:
        checked = action.indicator.check_params(given)
    except ValueError as exc:
        raise ProtocolError(str(exc), "ValueError") from None
    for wire, targets in action.aliases.items():
        if wire in echoed:
            echoed[wire] = checked[targets[0]]
    return checked, echoed


def unknown_fields(fields: Mapping[str, object], allowed: set[str] | frozenset[str], where: str) -> None:
    unknown = [k for k in fields if k not in allowed]
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {', '.join(sorted(unknown)[:5])}", "InvalidRequest")


# ---------------------------------------------------------------------------
# Computing an action
# ---------------------------------------------------------------------------

@dataclass
class Outcome:
    """What the worker records about a request after handling it."""

    action: str | None
    indicator: str | None = None
    points: int = 0
    series: int = 0
    compute_seconds: float = 0.0
    error_type: str | None = None


Computer = Callable[[Indicator, list[np.ndarray], Mapping[str, object]], tuple[np.ndarray, ...]]


def default_computer(indicator: Indicator, arrays: list[np.ndarray], params: Mapping[str, object]) -> tuple[
        np.ndarray, ...]:
    return api.compute_checked(indicator, arrays, params)


def single(action: Action, request: Mapping[str, Any], arrays: Arrays, compute: Computer,
            outcome: Outcome) -> dict[str, object]:
    fields = action.input_fields
    unknown_fields(request, ALLOWED[request["action"]], str(request["action"]))
    symbol = _symbol(request.get("symbol"))
    checked, echoed = _params(action, request)
    inputs = _inputs(request, fields, arrays)
    outcome.indicator = action.label
    started = time.perf_counter()
    outs = compute(action.indicator, inputs, checked)
    outcome.compute_seconds = time.perf_counter() - started
    outcome.points, outcome.series = len(inputs[0]), 1
    reply: dict[str, object] = {"status": "ok", "symbol": symbol, "indicator": action.label}
    if action.seed:
        reply.update(echoed)
    else:
        reply["params"] = checked
    reply.update(zip(action.outputs, outs))
    return reply


def _inputs(item: Mapping[str, Any], fields: tuple[str, ...], arrays: Arrays) -> list[np.ndarray]:
    """The input arrays in the indicator's order; a binary payload is read in the header's order."""
    order = [name for name in item if name in fields] if arrays.binary else list(fields)
    taken = {name: arrays.take(name, item.get(name)) for name in order}
    inputs = [taken[name] if name in taken else arrays.take(name, None) for name in fields]
    _same_lengths(fields, inputs)
    return inputs


def _same_lengths(names: tuple[str, ...], inputs: list[np.ndarray]) -> None:
    for name, values in zip(names[1:], inputs[1:]):
        if len(values) != len(inputs[0]):
            raise ProtocolError(f"input lengths differ: {names[0]} has {len(inputs[0])} values, "
                                f"{name} has {len(values)}", "ValueError")


BATCH_FIELDS = COMMON_FIELDS | {"indicator", "params", "series"}


def batch(request: Mapping[str, Any], arrays: Arrays, compute: Computer, outcome: Outcome) -> dict[str, object]:
    """Many symbols' series through one indicator, equal lengths as one 2-D batch."""
    unknown_fields(request, BATCH_FIELDS, "batch")
    name = request.get("indicator")
    action = ACTIONS.get(f"compute_{name}") if isinstance(name, str) else None
    if action is None:
        raise ProtocolError(f"batch: unknown indicator {str(name)[:64]!r}", "UnknownAction")
    params = request.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError("batch: params must be an object", "TypeError")
    unknown_fields(params, set(action.aliases) | set(action.indicator.param_index), "batch params")
    checked, echoed = _params(action, params)
    series = request.get("series")
    if not isinstance(series, list) or not series:
        raise ProtocolError("batch: series must be a non-empty array of objects", "EmptyPrices")
    fields = action.input_fields
    symbols: list[str | None] = []
    inputs: list[list[np.ndarray]] = []
    for index, item in enumerate(series):
        if not isinstance(item, dict):
            raise ProtocolError(f"batch: series[{index}] must be an object", "TypeError")
        try:
            unknown_fields(item, {"symbol", *fields}, "series")
            symbols.append(_symbol(item.get("symbol")))
            one = _inputs(item, fields, arrays)
        except ProtocolError as exc:
            raise ProtocolError(f"batch: series[{index}]: {exc}", exc.error_type) from None
        inputs.append(one)
    outcome.indicator = action.label
    started = time.perf_counter()
    lengths = {len(one[0]) for one in inputs}
    if len(lengths) == 1 and len(inputs) > 1:
        stacked = [np.stack([one[k] for one in inputs]) for k in range(len(fields))]
        outs = compute(action.indicator, stacked, checked)
        per_series = [tuple(out[row] for out in outs) for row in range(len(inputs))]
    else:
        per_series = [compute(action.indicator, one, checked) for one in inputs]
    outcome.compute_seconds = time.perf_counter() - started
    outcome.points = sum(len(one[0]) for one in inputs)
    outcome.series = len(inputs)
    results = [{"symbol": symbol, **dict(zip(action.outputs, outs))} for symbol, outs in zip(symbols, per_series)]
    reply: dict[str, object] = {"status": "ok", "indicator": action.label}
    reply.update(echoed if action.seed else {"params": checked})
    reply["outputs"] = list(action.outputs)
    reply["results"] = results
    return reply
