"""On a GPU machine: build every example for the running (CUDA) torch and run its own tests.

Marked `gpu`: skipped without a CUDA device. Set KERNEL_BUILDER_CUDA_ARCHS (e.g. 9.0) to
build only for the GPU at hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_local_build import copy_example, kb

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

EXAMPLES = {
    "relu": ("kernel-builder-examples/relu", "torch211-cxx11-cu130-x86_64-linux"),
    "silu-mul-stable": ("kernel-builder-examples/silu-mul-stable", "torch-stable-abi210-cu130-x86_64-linux"),
    "rms-norm-py": ("kernel-builder-examples/rms-norm-py", "torch-cuda"),
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_on_gpu(example, tmp_path):
    import torch

    repo_id, expected = EXAMPLES[example]
    kernel = copy_example(example, tmp_path)
    env = {"KERNEL_BUILDER_CUDA_ARCHS": os.environ.get("KERNEL_BUILDER_CUDA_ARCHS", "")}
    result = kb("build", kernel, "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    built = {v["variant"] for v in report["variants"]}
    major, minor = torch.__version__.split(".")[:2]
    assert expected.replace("torch211", f"torch{major}{minor}") in built, built
    # The import check ran for real here (torch imports on a GPU machine): no warning about it.
    assert not any("import check skipped" in w for v in report["variants"] for w in v["warnings"])
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu or not gpu", str(kernel / "tests")],
        capture_output=True, text=True, env={**os.environ, "LOCAL_KERNELS": f"{repo_id}={kernel}"}, timeout=900,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and " skipped" not in tests.stdout, tests.stdout
