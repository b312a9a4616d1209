"""kernel-builder: build PyTorch compute kernels from build.toml into Hub-ready variants."""

__version__ = "0.1.0"
