"""The wheel carries everything kernel-builder needs at run time (templates, matrix, data)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kbtest_util import REPO


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)], check=True, capture_output=True)
    (wheel,) = out.glob("kernel_builder-*.whl")
    target = out / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def test_wheel_contents(wheel_dir):
    package = wheel_dir / "kernel_builder"
    for rel in ("templates/CMakeLists.txt.j2", "templates/cmake/portable.cmake", "templates/compat/glibc_shim.c", "templates/noarch/_ops.py.j2",
                "nix/build-matrix.json", "data/glibc-2.27-x86_64.abilist", "data/portability-policy.json", "standalone/probe.py"):
        assert (package / rel).is_file(), rel
    entry_points = next(wheel_dir.glob("kernel_builder-*.dist-info")) / "entry_points.txt"
    assert "kernel-builder = kernel_builder.cli:main" in entry_points.read_text()


def test_installed_package_renders_a_tree(wheel_dir, tmp_path):
    code = (
        "import sys, kernel_builder; from kernel_builder.cli import main;"
        f"assert kernel_builder.__file__.startswith({str(wheel_dir)!r}), kernel_builder.__file__;"
        "sys.argv = ['kernel-builder', 'create-pyproject', sys.argv[1], sys.argv[2]]; main()"
    )
    env = {**os.environ, "PYTHONPATH": str(wheel_dir)}
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "examples" / "relu"), str(tmp_path / "tree")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tree" / "CMakeLists.txt").is_file() and (tmp_path / "tree" / "compat" / "exports.map").is_file()
