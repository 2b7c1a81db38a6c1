"""Shared test configuration.

``MOJO_POOL_REQUIRE_ALL=1`` (CI sets it) turns every skip into a failure: a
missing real component (TA-Lib, a compiled kernel, prometheus, supervisord)
must not let CI pass by skipping what it was meant to prove.
"""
from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201 - pytest hook
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("MOJO_POOL_REQUIRE_ALL") == "1" and not hasattr(report, "wasxfail"):
        # A skip in CI means something it should prove was not proved.
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under MOJO_POOL_REQUIRE_ALL=1: {reason}"


# CI draws the same examples every run (a failure there is reproducible, not
# luck); local runs explore new ones each time.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
