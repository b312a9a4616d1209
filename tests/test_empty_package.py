"""An empty __init__.py (the kernel exports nothing) passes every check but is worth a warning
(issue 12, item 9): from the source check before a build, and from check-builds on a variant."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO
from kernel_builder.checks.python_code import scan_package

MESSAGE = "__init__.py is empty: the kernel exports nothing"


@pytest.mark.parametrize("text", ["", "\n\n", '"""The relu kernel."""\n', "# nothing yet\npass\n"])
def test_empty_init_is_a_warning(tmp_path, text):
    (tmp_path / "__init__.py").write_text(text)
    (finding,) = scan_package(tmp_path, "relu")
    assert finding.warning and finding.rule == "exports" and MESSAGE in finding.message


@pytest.mark.parametrize("text", ["from ._ops import ops\n", "def relu(x):\n    return x\n", "__all__ = []\n", '"""Doc."""\nimport torch\n'])
def test_init_that_binds_a_name_is_fine(tmp_path, text):
    (tmp_path / "__init__.py").write_text(text)
    assert scan_package(tmp_path, "relu") == []


def test_an_empty_subpackage_init_is_fine(tmp_path):
    (tmp_path / "__init__.py").write_text("from .sub import x\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "__init__.py").write_text("")
    assert scan_package(tmp_path, "relu") == []


def test_build_and_check_builds_warn(tmp_path):
    kernel = tmp_path / "rms-norm-py"
    shutil.copytree(REPO / "examples" / "rms-norm-py", kernel, ignore=shutil.ignore_patterns("build", "__pycache__"))
    (kernel / "torch-ext" / "rms_norm_py" / "__init__.py").write_text('"""Nothing here yet."""\n')
    env = {k: v for k, v in os.environ.items() if k != "KERNEL_BUILDER_CUDA_ARCHS"}
    build = subprocess.run([sys.executable, "-m", "kernel_builder", "build", str(kernel), "--variant", "torch-cpu"], capture_output=True, text=True, env=env, timeout=300)
    assert build.returncode == 0, build.stderr
    assert MESSAGE in build.stderr and "warning" in build.stderr
    check = subprocess.run([sys.executable, "-m", "kernel_builder", "check-builds", str(kernel)], capture_output=True, text=True, env=env, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert MESSAGE in check.stdout
