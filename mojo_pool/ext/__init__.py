"""Indicator kernels: Pythran sources that also run as plain Python.

Each family module here (``overlap``, ``momentum``, ...) is compiled ahead of
time by meson into ``<family>_pythran``; the source module stays importable so
tests can compare the two. :func:`load` picks the compiled module and says so
loudly when it has to fall back: an interpreted kernel is ~100x slower, and a
service that silently ran on it would look healthy while missing every target.

``MOJO_POOL_KERNELS`` chooses: ``auto`` (default: compiled, else interpreted
with a RuntimeWarning and a log line), ``compiled`` (missing build is an
ImportError), ``interpreted`` (forced, for tests and debugging).
"""
from __future__ import annotations

import importlib
import logging
import os
import warnings
from types import ModuleType

FAMILIES: tuple[str, ...] = ("overlap", "momentum", "oscillators", "trend", "volume", "statistic", "lanes")
BACKENDS: tuple[str, ...] = ("compiled", "interpreted")

log = logging.getLogger("mojo_pool.kernels")

_cache: dict[tuple[str, str], ModuleType] = {}


class CompiledKernelsMissing(ImportError):
    """The Pythran build of a kernel family is not importable."""


def load(family: str, backend: str) -> ModuleType:
    """The module holding ``family``'s kernels for ``backend`` (cached)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(FAMILIES)}")
    key = (family, backend)
    module = _cache.get(key)
    if module is None:
        if backend == "compiled":
            try:
                module = importlib.import_module(f"{__name__}.{family}_pythran")
            except ImportError as exc:
                raise CompiledKernelsMissing(
                    f"compiled kernels for {family!r} are missing ({exc}); "
                    "build them with `pip install --no-build-isolation -e .` (see README)"
                ) from exc
        elif backend == "interpreted":
            module = importlib.import_module(f"{__name__}.{family}")
        else:
            raise ValueError(f"unknown kernel backend {backend!r}; known: {', '.join(BACKENDS)}")
        _cache[key] = module
    return module


def default_backend() -> str:
    """Resolve ``MOJO_POOL_KERNELS`` to the backend every default call uses."""
    choice = os.environ.get("MOJO_POOL_KERNELS", "auto").strip().lower()
    if choice in BACKENDS:
        if choice == "compiled":
            for family in FAMILIES:
                load(family, "compiled")
        return choice
    if choice != "auto":
        raise ValueError(f"MOJO_POOL_KERNELS={choice!r}: expected auto, compiled or interpreted")
    try:
        for family in FAMILIES:
            load(family, "compiled")
    except CompiledKernelsMissing as exc:
        message = f"RUNNING INTERPRETED KERNELS, ~100x SLOWER: {exc}"
        log.error(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return "interpreted"
    return "compiled"
