"""The speed-up gauge is measured against baselines that compute the same thing.

1. Each pure-Python baseline (the original service's loops) gives the same
   values as mojo_pool's indicator on the fixed sample (None in the lookback
   where mojo_pool has NaN), so the ratio compares like with like.
2. record_all() measures every baseline and sets
   mojo_compute_indicator_speedup{indicator=...} to the measured ratios.
"""
from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY

from mojo_pool import indicators, speedup


@pytest.mark.parametrize("name", sorted(speedup.BASELINES))
def test_1_baselines_compute_the_same(name: str) -> None:
    baseline, period = speedup.BASELINES[name]
    prices = speedup.sample()
    ours = getattr(indicators, name)(prices, timeperiod=period)
    theirs = np.array([np.nan if v is None else v for v in baseline(prices.tolist(), period)])
    np.testing.assert_allclose(theirs, ours, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_2_record_all_sets_the_gauge() -> None:
    ratios = speedup.record_all()
    assert set(ratios) == set(speedup.BASELINES)
    for name, ratio in ratios.items():
        assert ratio > 0
        assert REGISTRY.get_sample_value("mojo_compute_indicator_speedup", {"indicator": name}) == ratio
