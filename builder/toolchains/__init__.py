"""Toolchains: what a variant is built with, pinned by hash and shared by both engines.

A toolchain is the torch wheel of one release and compute backend, the CUDA toolkit wheels that
match torch's CUDA version, CMake and Ninja (and what the import check needs: `kernels`). It is
resolved once with uv (`resolve`), recorded with URL, size and sha256 in the kernel's lock file
(`lock`), its files are fetched into a content-addressed store (`store`), and the local engine
installs them into a cached environment (`environment`) while the Nix engine turns the same lock
entries into fixed-output fetches.
"""

from .indexes import IndexSettings
from .lock import LOCK_NAME, Artifact, LockedToolchain, LockFile
from .spec import ToolchainSpec

__all__ = ["LOCK_NAME", "Artifact", "IndexSettings", "LockFile", "LockedToolchain", "ToolchainSpec"]
