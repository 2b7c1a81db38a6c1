"""The indicator registry: every indicator described once.

An :class:`Indicator` names its TA-Lib function, the kernel family that
computes it, its positional inputs, its parameters (default, type, valid
range), its outputs in TA-Lib's order and its lookback. The Python API, the
wire protocol, metric labels and the docs all read this table; adding an
indicator means one entry in ``specs/<family>.py`` plus its kernel.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

Number = int | float

# TA-Lib's moving-average types, by the code its ``matype`` parameters take.
MA_TYPES: dict[int, str] = {
    0: "SMA", 1: "EMA", 2: "WMA", 3: "DEMA", 4: "TEMA", 5: "TRIMA", 6: "KAMA", 7: "MAMA", 8: "T3",
}
# MAMA and T3 have no kernel (yet): refused with a message naming them.
SUPPORTED_MA_TYPES: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)

PRICE_INPUTS: tuple[str, ...] = ("real", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Param:
    """One keyword parameter, as TA-Lib's Python function API names it."""

    name: str
    default: Number
    kind: type  # int or float
    minimum: Number
    maximum: Number
    help: str = ""
    choices: tuple[int, ...] | None = None  # a closed set (matype codes)

    def check(self, value: object) -> Number:
        """The value converted to ``kind``, or ValueError naming the parameter and its range."""
        if type(value) is self.kind and self.choices is None and self.minimum <= value <= self.maximum:  # type: ignore[operator]
            return value  # type: ignore[return-value]  # the common case, without conversions
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_numpy_number(value):
            raise ValueError(f"{self.name} must be a number ({self.describe()}), got {value!r}")
        if self.kind is int:
            as_float = float(value)  # type: ignore[arg-type]
            if not as_float.is_integer():
                raise ValueError(f"{self.name} must be an integer ({self.describe()}), got {value!r}")
            number: Number = int(as_float)
        else:
            number = float(value)  # type: ignore[arg-type]
            if math.isnan(number):
                raise ValueError(f"{self.name} must not be NaN ({self.describe()})")
        if self.choices is not None:
            if number not in self.choices:
                raise ValueError(f"{self.name} must be one of {self.describe()}, got {value!r}")
        elif not (self.minimum <= number <= self.maximum):
            raise ValueError(f"{self.name} must be in {self.describe()}, got {value!r}")
        return number

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(f"{code} ({MA_TYPES[code]})" for code in self.choices)
        return f"[{self.minimum:g}, {self.maximum:g}]"


def _is_numpy_number(value: object) -> bool:
    import numpy as np

    return isinstance(value, (np.integer, np.floating))


def period(name: str = "timeperiod", default: int = 14, minimum: int = 2,
           help: str = "bars in the window") -> Param:
    """An integer period with TA-Lib's usual bounds [minimum, 100000]."""
    return Param(name, default, int, minimum, 100000, help)


def real(name: str, default: float, minimum: float = -3e37, maximum: float = 3e37, help: str = "") -> Param:
    """A float parameter with TA-Lib's usual bounds."""
    return Param(name, default, float, minimum, maximum, help)


def matype(name: str = "matype", default: int = 0) -> Param:
    """A moving-average type code (TA-Lib's MA_Type)."""
    return Param(name, default, int, 0, 8, "moving average type", SUPPORTED_MA_TYPES)


@dataclass(frozen=True)
class Indicator:
    """One indicator: how it is called, what it returns, which kernel computes it."""

    name: str  # TA-Lib's function name in lower case; also the kernel's name
    family: str  # module in mojo_pool.ext
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    # Called with the checked parameters, as keywords or in order by position:
    # its parameter names must be the params' names, in the same order.
    lookback: Callable[..., int]
    summary: str
    # Name of the across-series kernel in ext.lanes for time-major batches
    # (one bar per row, series in the SIMD lanes), or None.
    lanes: str | None = None
    # "module.function" of a kernel in mojo_pool.ext that takes a whole
    # row-major batch (one series per row) in one call, or None: one
    # single-series call per row from Python (~0.4 us a row).
    rows: str | None = None
    param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in self.inputs:
            if name not in PRICE_INPUTS:
                raise ValueError(f"{self.name}: unknown input {name!r}")
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})
        names = list(inspect.signature(self.lookback).parameters)
        if names != [p.name for p in self.params]:
            raise ValueError(f"{self.name}: lookback takes {names}, parameters are {list(self.param_index)}")

    def defaults(self) -> dict[str, Number]:
        return {p.name: p.default for p in self.params}

    def check_params(self, given: Mapping[str, object]) -> dict[str, Number]:
        """Defaults filled in, every value checked; unknown names refused."""
        index = self.param_index
        for name in given:  # a loop, not a set difference: ~0.2 us less a call
            if name not in index:
                unknown = sorted(set(given) - set(index))
                known = ", ".join(index) or "none"
                raise ValueError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; known: {known}")
        return {p.name: p.check(given[p.name]) if p.name in given else p.default for p in self.params}


REGISTRY: dict[str, Indicator] = {}


def register(*indicators: Indicator) -> None:
    for indicator in indicators:
        if indicator.name in REGISTRY:
            raise ValueError(f"indicator {indicator.name!r} registered twice")
        REGISTRY[indicator.name] = indicator


def _load_specs() -> None:
    # Import for side effect: each specs module registers its family's table.
    from .specs import momentum, oscillators, overlap, statistic, trend, volume  # noqa: F401


_load_specs()
