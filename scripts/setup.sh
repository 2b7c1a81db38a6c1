#!/usr/bin/env bash
# Set up a development environment from nothing: a virtual environment in
# .venv, the exact build tools pyproject.toml pins, and mojo_pool installed
# editable with its Pythran kernels compiled (-Dcpu_target, default x86-64-v3).
#
#   bash scripts/setup.sh                 # x86-64-v3 kernels
#   CPU_TARGET=native bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CPU_TARGET=${CPU_TARGET:-x86-64-v3}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip

# Editable installs need the build tools in the environment itself
# (--no-build-isolation); take them, pinned, from pyproject.toml so the pins
# live in one place.
mapfile -t build_requires < <(.venv/bin/python - <<'PY'
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["build-system"]["requires"]))
PY
)
.venv/bin/python -m pip install --quiet "${build_requires[@]}"

# meson-python looks for meson and ninja on PATH.
export PATH="$PWD/.venv/bin:$PATH"
start=$(date +%s)
.venv/bin/python -m pip install --quiet --no-build-isolation \
    --config-settings=setup-args="-Dcpu_target=${CPU_TARGET}" \
    --config-settings=editable-verbose=false \
    -e ".[test,bench]"
echo "mojo_pool installed (kernels built for -march=${CPU_TARGET}) in $(( $(date +%s) - start ))s"
.venv/bin/python -c "from mojo_pool import indicators; print('kernel backend:', indicators.BACKEND)"
