"""Preparing the multiprocess metrics directory, in fresh interpreters.

1. prepare() empties a directory a previous run left files in, sets
   PROMETHEUS_MULTIPROC_DIR, and metrics recorded afterwards land there as
   files (the mode prometheus_client chose at import).
2. prepare() refuses once prometheus_client is already imported in memory mode.
3. With no directory given, it makes one in /dev/shm (tmpfs: no disk
   writeback under the per-request writes) when /dev/shm is writable.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)


def test_1_prepare_wipes_and_selects_multiprocess(tmp_path: Path) -> None:
    (tmp_path / "counter_12345.db").write_bytes(b"stale")
    result = run(f"""
        from mojo_pool import metrics_dir
        metrics_dir.prepare({str(tmp_path)!r})
        from mojo_pool import prometheus_metrics as pm
        pm.record_error("Busy")
    """)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "counter_12345.db").exists()
    kinds = {p.name.split("_")[0] for p in tmp_path.glob("*.db")}
    assert "counter" in kinds and kinds <= {"counter", "gauge", "histogram", "summary"}


def test_2_refuses_after_prometheus_client(tmp_path: Path) -> None:
    result = run(f"""
        import prometheus_client
        from mojo_pool import metrics_dir
        metrics_dir.prepare({str(tmp_path)!r})
    """)
    assert result.returncode != 0 and "already imported" in result.stderr


def test_3_default_directory_on_tmpfs() -> None:
    result = run("""
        import shutil
        from mojo_pool import metrics_dir
        directory = metrics_dir.prepare()
        print(directory)
        shutil.rmtree(directory)
    """)
    assert result.returncode == 0, result.stderr
    made = Path(result.stdout.strip())
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        assert made.parent == Path("/dev/shm") and made.name.startswith("mojo_pool_metrics_")
    else:
        assert made.name.startswith("mojo_pool_metrics_")
