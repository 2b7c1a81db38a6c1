"""What "agrees with the reference" means in the kernel tests.

Identical NaN positions and, elsewhere,
|ours - reference| <= 1e-9 * |reference| + 1e-12 * scale, where scale is the
largest of 1, the price level and the largest |reference| in the series:
"near zero" is judged against the size of what the output is computed from
(MACD or ADOSC near a zero crossing is a difference of two large numbers and
cannot be exact to better than their rounding). PPO and ROC are 100 * (a / b
- 1): near zero they are computed from numbers of size 100 whatever the price
level, so their level counts as at least 100 (``level_for``).
"""
from __future__ import annotations

import numpy as np


# Outputs of the form 100 * (a / b - 1).
PERCENT_OF_RATIO = frozenset({"ppo", "roc"})


def level_for(name: str, level: float) -> float:
    """The price level to judge ``name``'s outputs against (see the module docstring)."""
    return max(level, 100.0) if name in PERCENT_OF_RATIO else level


def assert_agrees(ours: np.ndarray, ref: np.ndarray, level: float, what: str) -> None:
    ours_nan = np.isnan(ours)
    ref_nan = np.isnan(ref)
    if not np.array_equal(ours_nan, ref_nan):
        where = np.flatnonzero(ours_nan != ref_nan)[:5]
        raise AssertionError(f"{what}: NaN positions differ at {where.tolist()} "
                             f"(ours {ours[where].tolist()}, reference {ref[where].tolist()})")
    ok = ~ref_nan
    if not ok.any():
        return
    error = np.abs(ours[ok] - ref[ok])
    scale = max(1.0, level, float(np.max(np.abs(ref[ok]))))
    bound = 1e-9 * np.abs(ref[ok]) + 1e-12 * scale
    if np.any(error > bound):
        worst = int(np.argmax(error - bound))
        index = np.flatnonzero(ok)[worst]
        raise AssertionError(f"{what}: at {index} ours {ours[index]!r} reference {ref[index]!r} "
                             f"(relative error {error[worst] / max(abs(ref[index]), 1e-300):.3g})")
