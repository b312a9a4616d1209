import os
from pathlib import Path

import pytest
import torch

REPO_ID = "kernel-builder-examples/relu"
KERNEL_DIR = Path(__file__).resolve().parents[1]


def pytest_generate_tests(metafunc):
    # A CUDA torch loads the CUDA variant (GPU tests); a CPU torch loads the CPU variant.
    if "device" in metafunc.fixturenames:
        device = pytest.param("cuda", marks=pytest.mark.gpu) if torch.version.cuda else "cpu"
        metafunc.parametrize("device", [device])


@pytest.fixture(scope="session")
def relu():
    """The built kernel, loaded through `kernels` with a LOCAL_KERNELS override."""
    import kernels

    if REPO_ID not in os.environ.get("LOCAL_KERNELS", ""):
        os.environ["LOCAL_KERNELS"] = f"{REPO_ID}={KERNEL_DIR}"
    return kernels.get_kernel(REPO_ID, version=1)
