"""The Nix side reads the same variant matrix as Python (real `nix`, offline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from kbtest_util import REPO
from kernel_builder.variants import load_matrix

pytestmark = [pytest.mark.nix, pytest.mark.skipif(shutil.which("nix") is None, reason="nix is not installed (scripts/test.sh installs Debian's nix-bin when it can)")]

# Single-user, offline configuration, independent of the machine's nix.conf.
NIX_CONFIG = "\n".join([
    "experimental-features = nix-command flakes",
    "build-users-group =",
    "sandbox = false",
    "substituters =",
    "flake-registry = /dev/null",
    "warn-dirty = false",
])


def nix_eval(*args: str) -> object:
    env = {**os.environ, "NIX_CONFIG": NIX_CONFIG}
    result = subprocess.run(["nix", "eval", "--json", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_nix_reads_the_same_build_sets_as_python():
    sets = nix_eval("--file", "nix/lib.nix", "buildSets")
    python = load_matrix()
    assert len(sets) == len(python)
    for raw, parsed in zip(sets, python):
        assert raw["torch"] == parsed.torch and raw["backend"] == parsed.backend
        assert raw.get("version") == parsed.version
        assert tuple(raw["systems"]) == parsed.systems and raw["required"] == parsed.required
        assert tuple(raw.get("abis", ["cxx11"])) == parsed.abis


def test_required_sets_and_systems():
    required = nix_eval("--file", "nix/lib.nix", "requiredBuildSets")
    assert len(required) == sum(s.required for s in load_matrix())
    systems = nix_eval("--file", "nix/lib.nix", "systems")
    assert set(systems) == {system for s in load_matrix() for system in s.systems}


def test_flake_exposes_the_library():
    systems = nix_eval(f"path:{REPO}#lib.systems")
    assert "x86_64-linux" in systems
    torch_versions = nix_eval(f"path:{REPO}#lib.torchVersions")
    assert {"2.12", "2.13"} <= set(torch_versions)
