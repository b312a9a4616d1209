import os
from pathlib import Path

import pytest
import torch

REPO_ID = "kernel-builder-examples/rms-norm-py"
KERNEL_DIR = Path(__file__).resolve().parents[1]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        devices = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.gpu)] if torch.version.cuda else [])
        metafunc.parametrize("device", devices)


@pytest.fixture(scope="session")
def kernel():
    import kernels

    if REPO_ID not in os.environ.get("LOCAL_KERNELS", ""):
        os.environ["LOCAL_KERNELS"] = f"{REPO_ID}={KERNEL_DIR}"
    return kernels.get_kernel(REPO_ID, version=1)
