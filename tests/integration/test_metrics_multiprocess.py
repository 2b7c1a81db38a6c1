"""Metrics from several real processes, merged as one /metrics would show them.

1. Four worker processes, each with PROMETHEUS_MULTIPROC_DIR set before it
   imports prometheus_client, record the same known mix of requests,
   indicator computations, errors and connections.
2. One merge of the directory (prometheus_client's MultiProcessCollector),
   parsed with prometheus_client's parser, shows exactly four times each
   count; the connections the processes held when they died show until
   the slots are marked dead, as the supervisor does when it reaps them.
3. A process sending 10,000 random action names, indicators and error types
   adds no series: they are all recorded as "unknown".
4. A zero-byte and a truncated .db file in the directory do not break the
   scrape: they are skipped and counted, and every other value is intact.
5. Two processes run one after the other in worker slot "w0" write one set
   of files: the second continues the first's counters; marking the slot
   dead removes its live gauges.
6. Scraped through the real HTTP endpoint: a worker recording without pause
   is killed with SIGKILL mid-stream and respawned in its slot; across 20
   scrapes before, between and after, no counter ever decreases and no
   series appears twice in one scrape.
7. A worker's tally, which adds to its cells in the mmap'd files in place,
   leaves exactly what prometheus_client's own locked writes leave for the
   same requests (successes, errors, a batch, an unknown action), also
   after its files grew past their first mapping mid-run and after a second
   process continued them in the same slot; and the counts are the ones sent.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

WORKER = textwrap.dedent("""
    import sys
    from mojo_pool import prometheus_metrics as pm

    @pm.track_request("compute_sma")
    def handle(fail):
        if fail:
            raise ValueError("period out of range")

    @pm.track_indicator_compute("sma")
    def compute(prices):
        return sum(prices)

    for k in range(10):
        handle(False)
        compute([1.0] * 100)
    for k in range(3):
        try:
            handle(True)
        except ValueError:
            pass
    pm.record_error("EmptyPrices")
    with pm.track_connection():
        pass
    from mojo_pool import metrics
    metrics.ACTIVE_CONNECTIONS.inc()  # a connection still open when the process dies
    if sys.argv[1:] == ["random"]:
        import random
        for k in range(10_000):
            pm.track_request("compute_%08x" % random.getrandbits(32))(lambda: None)()
            pm.record_error("Error%08x" % random.getrandbits(32))
            pm.record_indicator_speedup("ind%08x" % random.getrandbits(32), 1.0)
""")


def run_workers(directory: Path, count: int, *args: str, slot: str | None = None) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    if slot is not None:
        env["MOJO_POOL_METRICS_ID"] = slot
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, *args], env=env) for _ in range(count)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0


def scrape(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_1_2_counts_merge_exactly(tmp_path: Path) -> None:
    run_workers(tmp_path, 4)
    samples = scrape(tmp_path)
    assert samples[("mojo_compute_requests_total", (("action", "compute_sma"), ("status", "success")))] == 40
    assert samples[("mojo_compute_requests_total", (("action", "compute_sma"), ("status", "error")))] == 12
    assert samples[("mojo_compute_errors_total", (("error_type", "ValueError"),))] == 12
    assert samples[("mojo_compute_errors_total", (("error_type", "EmptyPrices"),))] == 4
    assert samples[("mojo_compute_request_duration_seconds_count", (("action", "compute_sma"),))] == 52
    assert samples[("mojo_compute_indicator_time_seconds_count", (("indicator", "sma"),))] == 40
    assert samples[("mojo_compute_indicator_data_points_sum", (("indicator", "sma"),))] == 4000
    assert samples[("mojo_compute_active_connections", ())] == 4
    for db in tmp_path.glob("gauge_livesum_*.db"):
        mark_process_dead(db.stem.rsplit("_", 1)[1], str(tmp_path))
    assert ("mojo_compute_active_connections", ()) not in scrape(tmp_path)


def test_3_random_labels_add_no_series(tmp_path: Path) -> None:
    run_workers(tmp_path, 1)
    baseline = set(scrape(tmp_path))
    run_workers(tmp_path, 1, "random")
    after = scrape(tmp_path)
    new = {key for key in after if key not in baseline}
    assert all(("action", "unknown") in key[1] or ("error_type", "unknown") in key[1]
               or ("indicator", "unknown") in key[1] for key in new), new
    # Exactly the "unknown" series: one request counter, the duration
    # histogram's 12 buckets, count and sum, one error counter, one speed-up.
    assert len(new) == 1 + 12 + 2 + 1 + 1
    assert after[("mojo_compute_errors_total", (("error_type", "unknown"),))] == 10_000


def test_4_broken_files_are_skipped(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from mojo_pool import metrics, prometheus_metrics

    run_workers(tmp_path, 2)
    (tmp_path / "counter_999999.db").write_bytes(b"")
    real = sorted(tmp_path.glob("histogram_*.db"))[0]
    (tmp_path / "histogram_888888.db").write_bytes(real.read_bytes()[:13])
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    skipped = metrics.LOCAL_COUNTS.skipped_files
    text = prometheus_metrics.get_metrics().decode()
    assert metrics.LOCAL_COUNTS.skipped_files - skipped == 2
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("mojo_compute_requests_total", (("action", "compute_sma"), ("status", "success")))] == 20


def test_5_worker_slots_continue_counters(tmp_path: Path) -> None:
    run_workers(tmp_path, 1, slot="w0")
    run_workers(tmp_path, 1, slot="w0")
    assert {p.name.rsplit("_", 1)[1] for p in tmp_path.glob("*.db")} == {"w0.db"}
    samples = scrape(tmp_path)
    assert samples[("mojo_compute_requests_total", (("action", "compute_sma"), ("status", "success")))] == 20
    # Both runs left one connection open: the slot's live gauge shows them
    # until the supervisor marks the slot dead.
    assert samples[("mojo_compute_active_connections", ())] == 2
    mark_process_dead("w0", str(tmp_path))
    assert ("mojo_compute_active_connections", ()) not in scrape(tmp_path)


LOOPER = textwrap.dedent("""
    from mojo_pool import prometheus_metrics as pm
    handle = pm.track_request("compute_ema")(lambda: None)
    while True:
        handle()
        pm.record_error("TimeoutError")
""")


def test_6_kill_and_respawn_never_decreases(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import signal
    import time
    import urllib.request

    from mojo_pool.exporter import Exporter, Health

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    exporter = Exporter(lambda: Health(1, 1, 0, time.time()), "127.0.0.1", 0).start()
    url = "http://%s:%d/metrics" % exporter.address
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "MOJO_POOL_METRICS_ID": "w0"}
    seen: dict[tuple, float] = {}

    def check_monotonic() -> None:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        names = [(s.name, tuple(sorted(s.labels.items())))
                 for family in text_string_to_metric_families(text) for s in family.samples]
        assert len(names) == len(set(names)), "a series appears twice"
        for family in text_string_to_metric_families(text):
            if family.type not in ("counter", "histogram", "summary"):
                continue
            for s in family.samples:
                if s.name.endswith(("_total", "_count", "_sum", "_bucket")):
                    key = (s.name, tuple(sorted(s.labels.items())))
                    assert s.value >= seen.get(key, 0.0), f"{key} went from {seen[key]} to {s.value}"
                    seen[key] = s.value

    workers: list[subprocess.Popen] = []
    try:
        for _ in range(2):  # the first worker, then its replacement in the same slot
            worker = subprocess.Popen([sys.executable, "-c", LOOPER], env=env)
            workers.append(worker)
            deadline = time.time() + 30
            while not seen.get(("mojo_compute_requests_total", (("action", "compute_ema"), ("status", "success")))):
                assert time.time() < deadline, "worker never recorded"
                time.sleep(0.2)
                check_monotonic()
            for _ in range(5):
                check_monotonic()
                time.sleep(0.1)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            mark_process_dead("w0", str(tmp_path))
            check_monotonic()
        assert seen[("mojo_compute_errors_total", (("error_type", "TimeoutError"),))] > 0
    finally:
        for worker in workers:  # the loop never ends by itself: never leave one behind
            worker.kill()
            worker.wait()
        exporter.stop()


TALLY = textwrap.dedent("""
    import sys
    from mojo_pool import metrics
    from mojo_pool.tally import Tally

    tally = Tally(direct=sys.argv[1] == "direct")
    assert tally.direct == (sys.argv[1] == "direct")

    def burst(offset):
        for k in range(50):
            t = offset + k * 1e-3
            tally.request("compute_sma", None, "sma", 1000, 1, 2e-6 * k, t, t + 1e-5 * k, t + 3e-4)
            tally.request("compute_rsi", None, "rsi", 500, 1, 1e-6, t, t, t + 0.02 * (k % 7))
        for k in range(5):
            tally.request("batch", None, "ema", 3000, 3 + k, 5e-5, offset, offset + 1e-4, offset + 2e-3)
            tally.request("compute_sma", "InvalidParameter", "sma", 0, 0, 0.0, offset, offset, offset + 1e-5)
            tally.request("compute_%d" % k, "UnknownAction", None, 0, 0, 0.0, offset, offset + 2e-5, offset)
        tally.flush()

    burst(100.0)
    # Over 64 KiB of new keys: the counter and histogram files get new,
    # larger mappings after the tally's cells were found.
    for k in range(400):
        metrics.REQUESTS.labels("grow%03d" % k, "success").inc(0)
        metrics.REQUEST_DURATION.labels("grow%03d" % k).observe(0)
    burst(200.0)
""")


def test_7_tally_direct_writes_match_locked_writes(tmp_path: Path) -> None:
    results = []
    for mode in ("direct", "locked"):
        directory = tmp_path / mode
        directory.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "MOJO_POOL_METRICS_ID": "w0"}
        for _ in range(2):  # the second process continues the slot's files
            subprocess.run([sys.executable, "-c", TALLY, mode], env=env, check=True, timeout=120)
        assert (directory / "counter_w0.db").stat().st_size > 1 << 16
        results.append(scrape(directory))
    direct, locked = results
    assert direct.keys() == locked.keys()
    for key, expected in locked.items():
        assert direct[key] == pytest.approx(expected, rel=1e-12, abs=1e-15), key
    # 2 processes x 2 bursts each
    assert direct[("mojo_compute_requests_total", (("action", "compute_sma"), ("status", "success")))] == 200
    assert direct[("mojo_compute_requests_total", (("action", "compute_sma"), ("status", "error")))] == 20
    assert direct[("mojo_compute_requests_total", (("action", "unknown"), ("status", "error")))] == 20
    assert direct[("mojo_compute_request_duration_seconds_count", (("action", "compute_rsi"),))] == 200
    assert direct[("mojo_compute_indicator_data_points_sum", (("indicator", "sma"),))] == 200 * 1000
    assert direct[("mojo_compute_indicator_data_points_sum", (("indicator", "ema"),))] == 20 * 3000
    assert direct[("mojo_compute_errors_total", (("error_type", "UnknownAction"),))] == 20
    assert direct[("mojo_compute_batch_series_sum", ())] == 4 * (3 + 4 + 5 + 6 + 7)
