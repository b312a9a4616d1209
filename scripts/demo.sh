#!/usr/bin/env bash
# The main job on a fresh machine: install, build examples/relu as a matrix (every required
# variant this machine can reach, each in its own toolchain made from PyPI packages), load the
# CPU variant through the `kernels` package and run the example's own tests.
#
# CUDA code is compiled for sm_90 only (KERNEL_BUILDER_CUDA_ARCHS, a development build: the
# full list of 11 architectures takes about 7 minutes per CUDA variant on 2 cores). Set
# KERNEL_BUILDER_CUDA_ARCHS= (empty) for the release list.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
export PATH="$PWD/.venv/bin:$PATH"
export KERNEL_BUILDER_CUDA_ARCHS="${KERNEL_BUILDER_CUDA_ARCHS-9.0}"

kernel-builder build examples/relu
python - <<'PY'
from pathlib import Path

import kernels
import torch

relu = kernels.get_local_kernel(Path("examples/relu"))
x = torch.randn(8)
print(f"loaded {relu.__name__} from {Path(relu.__file__).parent}")
print("relu(x) == torch.relu(x):", torch.equal(relu.relu(x), torch.relu(x)))
PY
python -m pytest -q examples/relu/tests

# What to try next (kernel-builder lives in .venv/bin, which is not on PATH outside this script).
cat <<'NEXT'

The demo worked. kernel-builder is installed in .venv/bin; put it on your PATH and try it:

  source .venv/bin/activate
  kernel-builder build examples/relu --host -v  # for this Python's torch, with each command and stage time
  kernel-builder list-variants examples/relu    # the variants this kernel gets from the matrix
  kernel-builder check-builds examples/relu     # check the built variants again

Then write your own kernel: docs/writing-kernels.md.
NEXT
