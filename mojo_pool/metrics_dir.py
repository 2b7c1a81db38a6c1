"""The multiprocess metrics directory, prepared before prometheus_client loads.

prometheus_client decides at import time whether values live in memory or
in per-process files under ``PROMETHEUS_MULTIPROC_DIR``, so the supervisor
calls :func:`prepare` first thing, before anything imports prometheus_client,
and the workers it starts inherit the variable. The directory is wiped:
files left by a previous run would be merged into this run's counters.
This module must not import prometheus_client itself.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(path: str | os.PathLike[str] | None = None) -> Path:
    """Create (or empty) the metrics directory and point this process at it."""
    if "prometheus_client" in sys.modules and os.environ.get(ENV) != str(path):
        raise RuntimeError(
            "prometheus_client is already imported: the metrics directory must be prepared before it is, "
            "or this process would keep its metrics in memory where no scrape sees them"
        )
    directory = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="mojo_pool_metrics_"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[ENV] = str(directory)
    return directory
