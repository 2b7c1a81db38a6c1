"""Which kernels run, and saying so loudly when it is the slow ones.

1. With MOJO_POOL_KERNELS=auto and the compiled modules missing, the
   interpreted kernels are chosen with a RuntimeWarning and an error log line
   that say they are ~100x slower.
2. With MOJO_POOL_KERNELS=compiled and the modules missing, it is an error.
3. MOJO_POOL_KERNELS=interpreted forces the Python kernels; a bad value is refused.
4. The build records its Pythran version, target CPU and SIMD setting.
"""
from __future__ import annotations

import logging

import pytest

from mojo_pool import ext


@pytest.fixture
def compiled_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = ext.load

    def load(family: str, backend: str):  # noqa: ANN202
        if backend == "compiled":
            raise ext.CompiledKernelsMissing(f"no module named mojo_pool.ext.{family}_pythran")
        return real_load(family, backend)

    monkeypatch.setattr(ext, "load", load)


def test_1_auto_falls_back_loudly(compiled_missing: None, monkeypatch: pytest.MonkeyPatch,
                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MOJO_POOL_KERNELS", "auto")
    with caplog.at_level(logging.ERROR, logger="mojo_pool.kernels"):
        with pytest.warns(RuntimeWarning, match="INTERPRETED KERNELS, ~100x SLOWER"):
            assert ext.default_backend() == "interpreted"
    assert any("SLOWER" in record.message for record in caplog.records)


def test_2_compiled_required(compiled_missing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOJO_POOL_KERNELS", "compiled")
    with pytest.raises(ext.CompiledKernelsMissing):
        ext.default_backend()


def test_3_forced_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOJO_POOL_KERNELS", "interpreted")
    assert ext.default_backend() == "interpreted"
    monkeypatch.setenv("MOJO_POOL_KERNELS", "fast")
    with pytest.raises(ValueError, match="MOJO_POOL_KERNELS"):
        ext.default_backend()


def test_4_build_info() -> None:
    build_info = pytest.importorskip("mojo_pool._build_info", reason="written by the meson build")
    assert build_info.PYTHRAN_VERSION == "0.19.0"
    assert build_info.CPU_TARGET
    assert build_info.SIMD in (True, False)
