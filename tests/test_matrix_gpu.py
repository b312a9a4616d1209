"""On a GPU machine: the matrix's variant for that machine's torch passes the example's tests.

The variant is built by the matrix (`kernel-builder build --variant torch<XY>-cxx11-cu<ZW>-...`,
its toolchain resolved from the package index), not with the GPU machine's own torch. A GPU
machine without network access gets the kernel folder built elsewhere through
KB_MATRIX_PREBUILT (a copy of examples/relu whose build/ holds the variant); the test then
checks that it came from a toolchain (the lock names it) before running the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def gpu_variant() -> str:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    cuda = torch.version.cuda.replace(".", "")[:3]
    return f"torch{major}{minor}-cxx11-cu{cuda}-x86_64-linux"


def test_matrix_variant_for_this_gpu_machine_passes_the_example_tests(tmp_path):
    variant = gpu_variant()
    kernel = tmp_path / "relu"
    prebuilt = os.environ.get("KB_MATRIX_PREBUILT")
    if prebuilt:
        shutil.copytree(prebuilt, kernel)
    else:
        shutil.copytree(REPO / "examples" / "relu", kernel, ignore=shutil.ignore_patterns("build", "__pycache__", "kernel-builder.lock.json"))
        archs = os.environ.get("KERNEL_BUILDER_CUDA_ARCHS", "")
        result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", kernel, "--variant", variant, "--cuda-archs", archs or "9.0", "--json"],
                                capture_output=True, text=True, timeout=3000)
        assert result.returncode == 0, result.stderr
    lock = json.loads((kernel / "kernel-builder.lock.json").read_text())
    toolchain_keys = lock["variants"][variant]["toolchains"].values()
    assert toolchain_keys and all(k in lock["toolchains"] for k in toolchain_keys), "the variant was built from a locked toolchain"
    metadata = json.loads((kernel / "build" / variant / "metadata.json").read_text())
    assert metadata["backend"]["type"] == "cuda"
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu or not gpu", str(kernel / "tests")],
                           capture_output=True, text=True, env={**os.environ, "LOCAL_KERNELS": f"kernel-builder-examples/relu={kernel}"}, timeout=900)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and " skipped" not in tests.stdout, tests.stdout
    # The loader picked exactly this variant.
    loaded = subprocess.run([sys.executable, "-c", "import kernels, sys; from pathlib import Path; "
                             "m = kernels.get_local_kernel(Path(sys.argv[1])); print(Path(m.__file__).parent.name)", str(kernel)],
                            capture_output=True, text=True, timeout=300)
    assert loaded.stdout.strip() == variant, loaded.stdout + loaded.stderr
