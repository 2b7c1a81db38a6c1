"""The mojo-compute metrics API in one process (no PROMETHEUS_MULTIPROC_DIR).

1. A tracked sync and a tracked async request count success and error by
   action, time every call, and count the exception's type.
2. A tracked indicator computation is timed and records its data points.
3. track_time observes into the named histogram; an unknown name is refused.
4. track_connection counts open connections and gives them back.
5. Unknown actions, indicators, error types, rejection and restart reasons
   are recorded as "unknown".
6. Speed-up and service info appear in get_metrics() with the seed's names
   (mojo_compute_info{...} 1, not mojo_compute_info_info).
"""
from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from mojo_pool import prometheus_metrics as pm


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_1_requests_sync_and_async() -> None:
    before = {s: value("mojo_compute_requests_total", action="compute_sma", status=s) for s in ("success", "error")}
    errors_before = value("mojo_compute_errors_total", error_type="ValueError")
    count_before = value("mojo_compute_request_duration_seconds_count", action="compute_sma")

    @pm.track_request("compute_sma")
    def handle(fail: bool) -> str:
        if fail:
            raise ValueError("bad period")
        return "ok"

    @pm.track_request("compute_sma")
    async def handle_async(fail: bool) -> str:
        return handle(fail)

    assert handle(False) == "ok"
    assert asyncio.run(handle_async(False)) == "ok"
    with pytest.raises(ValueError):
        handle(True)
    # The async wrapper counts its own call too: the inner failure is one
    # error, the outer one another.
    with pytest.raises(ValueError):
        asyncio.run(handle_async(True))
    assert value("mojo_compute_requests_total", action="compute_sma", status="success") - before["success"] == 3
    assert value("mojo_compute_requests_total", action="compute_sma", status="error") - before["error"] == 3
    assert value("mojo_compute_errors_total", error_type="ValueError") - errors_before == 3
    assert value("mojo_compute_request_duration_seconds_count", action="compute_sma") - count_before == 6


def test_2_indicator_compute() -> None:
    count = value("mojo_compute_indicator_time_seconds_count", indicator="rsi")
    points = value("mojo_compute_indicator_data_points_sum", indicator="rsi")

    @pm.track_indicator_compute("rsi")
    def compute(prices: list[float], period: int) -> int:
        return len(prices) - period

    assert compute([1.0] * 250, 14) == 236
    assert value("mojo_compute_indicator_time_seconds_count", indicator="rsi") - count == 1
    assert value("mojo_compute_indicator_data_points_sum", indicator="rsi") - points == 250


def test_3_track_time() -> None:
    count = value("mojo_compute_request_duration_seconds_count", action="ping")
    with pm.track_time("request_duration", {"action": "ping"}):
        pass
    with pm.track_time("mojo_compute_request_duration_seconds", {"action": "ping"}):
        pass
    assert value("mojo_compute_request_duration_seconds_count", action="ping") - count == 2
    with pytest.raises(ValueError, match="unknown metric"):
        with pm.track_time("latency"):
            pass


def test_4_connections() -> None:
    base = value("mojo_compute_active_connections")
    with pm.track_connection():
        with pm.track_connection():
            assert value("mojo_compute_active_connections") - base == 2
    assert value("mojo_compute_active_connections") == base


def test_5_closed_label_sets() -> None:
    unknown = value("mojo_compute_requests_total", action="unknown", status="success")
    errors = value("mojo_compute_errors_total", error_type="unknown")
    for k in range(50):
        pm.track_request(f"compute_random_{k}")(lambda: None)()
        pm.record_error(f"Weird{k}Error")
    rejected = value("mojo_compute_requests_rejected_total", reason="busy")
    pm.record_rejection("busy")
    pm.record_rejection("because")
    pm.record_worker_restart("cosmic rays")
    assert value("mojo_compute_requests_rejected_total", reason="busy") - rejected == 1
    assert value("mojo_compute_requests_rejected_total", reason="unknown") >= 1
    assert value("mojo_compute_worker_restarts_total", reason="unknown") >= 1
    assert value("mojo_compute_requests_total", action="unknown", status="success") - unknown == 50
    assert value("mojo_compute_errors_total", error_type="unknown") - errors == 50
    text = pm.get_metrics().decode()
    assert "compute_random_" not in text and "Weird" not in text


def test_6_speedup_and_info() -> None:
    pm.record_indicator_speedup("sma", 512.5)
    pm.set_service_info(version="0.1.0", kernels="compiled")
    families = {f.name: f for f in text_string_to_metric_families(pm.get_metrics().decode())}
    speedup = {s.labels["indicator"]: s.value for s in families["mojo_compute_indicator_speedup"].samples}
    assert speedup["sma"] == 512.5
    info = families["mojo_compute_info"].samples[0]
    assert info.name == "mojo_compute_info" and info.value == 1.0
    assert info.labels == {"version": "0.1.0", "kernels": "compiled"}
