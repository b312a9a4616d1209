#!/usr/bin/env bash
# Create .venv: torch 2.13 (the CPU build) and kernel-builder with its test dependencies.
# Idempotent; used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0        # first, so nothing else picks another torch
.venv/bin/python -m pip install -q -e '.[test]'
# Builds need CMake >= 3.25 and Ninja; take them from PyPI when the system has none.
if ! command -v ninja >/dev/null || ! command -v cmake >/dev/null; then
    .venv/bin/python -m pip install -q 'cmake>=3.25' ninja
fi
