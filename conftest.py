"""Repository-wide pytest setup: tests marked `gpu` need a CUDA device and are skipped without one."""

import pytest


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    try:
        import torch

        available = torch.cuda.is_available()
    except Exception:  # a CUDA torch without its runtime libraries, or no torch
        available = False
    if not available:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_items:
            item.add_marker(skip)
