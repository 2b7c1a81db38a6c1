"""Calling a registered indicator: input checks, TA-Lib's NaN conventions, batches.

:func:`compute` is the one path from arrays to a kernel. It

1. checks the parameters against the registry (ValueError naming the range);
2. converts inputs to C-contiguous float64, refusing what is not a real
   number, inputs of different shapes, and anything but 1-D or 2-D;
3. skips leading NaNs the way TA-Lib's Python wrapper does: the kernel sees
   the series from the first index where every input is defined, and the
   outputs are NaN up to that index plus the lookback;
4. for 2-D input (rows = series) runs the across-series kernel when the
   indicator has one (time-major layout, series in the SIMD lanes), else the
   single-series kernel row by row.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .. import ext
from .registry import Indicator

Outputs = tuple[np.ndarray, ...]

_backend: str | None = None


def backend() -> str:
    """The kernel backend default calls use: ``compiled`` or ``interpreted``."""
    global _backend
    if _backend is None:
        _backend = ext.default_backend()
    return _backend


def as_series(indicator: Indicator, arrays: Sequence[object]) -> list[np.ndarray]:
    """Inputs as C-contiguous float64 arrays of one shape, 1-D or 2-D."""
    if len(arrays) != len(indicator.inputs):
        raise ValueError(
            f"{indicator.name} takes {len(indicator.inputs)} input(s) "
            f"({', '.join(indicator.inputs)}), got {len(arrays)}"
        )
    converted = []
    for name, array in zip(indicator.inputs, arrays):
        values = np.asarray(array)
        if values.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {values.dtype}")
        if values.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D (one series) or 2-D (rows = series), got {values.ndim}-D")
        converted.append(np.ascontiguousarray(values, dtype=np.float64))
    shape = converted[0].shape
    for name, values in zip(indicator.inputs[1:], converted[1:]):
        if values.shape != shape:
            raise ValueError(
                f"{indicator.name}: input lengths differ: {indicator.inputs[0]} has shape {shape}, "
                f"{name} has shape {values.shape}"
            )
    return converted


def first_defined(series: Sequence[np.ndarray]) -> int:
    """Index of the first position where every 1-D input is defined (len if none)."""
    defined = ~np.isnan(series[0])
    for values in series[1:]:
        defined &= ~np.isnan(values)
    index = int(np.argmax(defined))
    return index if defined[index] else len(defined)


def run_series(indicator: Indicator, series: Sequence[np.ndarray], params: Mapping[str, object],
               lookback: int, module: object, outs: Sequence[np.ndarray]) -> None:
    """One series through the single-series kernel, writing into ``outs``."""
    n = series[0].shape[0]
    start = first_defined(series) if n else 0
    if n - start <= lookback:
        for out in outs:
            out.fill(np.nan)
        return
    kernel = getattr(module, indicator.name)
    if start:
        for out in outs:
            out[:start] = np.nan
        kernel(*(values[start:] for values in series), *params.values(), *(out[start:] for out in outs))
    else:
        kernel(*series, *params.values(), *outs)


def run_batch(indicator: Indicator, series: Sequence[np.ndarray], params: Mapping[str, object],
              lookback: int, backend_name: str, outs: Sequence[np.ndarray]) -> None:
    """Rows of 2-D inputs, through the across-series kernel where one exists."""
    family = ext.load(indicator.family, backend_name)
    rows = series[0].shape[0]
    n = series[0].shape[1]
    lanes = np.arange(rows)
    if indicator.batch is not None and n > lookback:
        # Rows with a leading NaN start late and cannot share SIMD lanes with
        # the others: they take the single-series path below.
        clean = ~np.isnan(series[0][:, 0])
        for values in series[1:]:
            clean &= ~np.isnan(values[:, 0])
        lanes = np.flatnonzero(~clean)
        if clean.any():
            batch = getattr(ext.load("batch", backend_name), indicator.batch)
            chosen = slice(None) if clean.all() else clean
            time_major = [np.ascontiguousarray(values[chosen].T) for values in series]
            results = [np.empty_like(time_major[0]) for _ in outs]
            batch(*time_major, *params.values(), *results)
            for out, result in zip(outs, results):
                out[chosen] = result.T
    for row in lanes:
        run_series(indicator, [values[row] for values in series], params, lookback, family,
                   [out[row] for out in outs])


def compute(indicator: Indicator, arrays: Sequence[object], params: Mapping[str, object] | None = None,
            backend_name: str | None = None) -> Outputs:
    """Every output of ``indicator`` over ``arrays``, in TA-Lib's order."""
    checked = indicator.check_params(params or {})
    series = as_series(indicator, arrays)
    lookback = indicator.lookback(**checked)
    chosen = backend_name or backend()
    outs = tuple(np.empty(series[0].shape) for _ in indicator.outputs)
    if series[0].ndim == 1:
        run_series(indicator, series, checked, lookback, ext.load(indicator.family, chosen), outs)
    else:
        run_batch(indicator, series, checked, lookback, chosen, outs)
    return outs
