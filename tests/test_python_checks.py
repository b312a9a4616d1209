"""The check on a kernel's Python code: imports outside the standard library, torch and the
declared python-depends, guarded imports, and the `--allow-import` escape.

The scans are pure AST; the builds are of Python-only kernels (nothing is compiled), through
the real CLI, with the import check loading each variant through the real `kernels`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kernel_builder.checks.python_code import scan_package

NOARCH_TOML = """\
[general]
name = "np-kernel"
version = 1
edition = 5
license = "MIT"
backends = ["cpu"]

[torch-noarch]
"""

MODULE_LEVEL_NUMPY = """\
import numpy as np
import torch


def table(n: int) -> torch.Tensor:
    return torch.from_numpy(np.arange(n))
"""

GUARDED_NUMPY = """\
import torch

try:
    import numpy as np
except ImportError:  # numpy is optional: only `table_np` needs it
    np = None


def table(n: int) -> torch.Tensor:
    return torch.arange(n)
"""


def write_package(root: Path, init: str) -> Path:
    package = root / "torch-ext" / "np_kernel"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    (root / "build.toml").write_text(NOARCH_TOML)
    return package


def kb(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KERNEL_BUILDER_DEBUG"}
    if args and args[0] == "build":  # for this interpreter's torch, not the whole matrix
        args = ("build", "--host", *args[1:])
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


# ---- the scan ---------------------------------------------------------------------------------


def test_module_level_import_is_an_error_that_names_the_escape(tmp_path):
    package = write_package(tmp_path, MODULE_LEVEL_NUMPY)
    (finding,) = scan_package(package, "np_kernel")
    assert (finding.rule, finding.line, finding.warning) == ("import", 1, False)
    assert "imports 'numpy'" in finding.message and "--allow-import numpy" in finding.message


def test_allowed_import_is_no_finding(tmp_path):
    package = write_package(tmp_path, MODULE_LEVEL_NUMPY)
    assert scan_package(package, "np_kernel", frozenset({"numpy"})) == []


def test_import_guarded_by_try_except_importerror_is_a_warning(tmp_path):
    package = write_package(tmp_path, GUARDED_NUMPY)
    findings = scan_package(package, "np_kernel")
    assert [(f.rule, f.line, f.warning) for f in findings] == [("import", 4, True)]


@pytest.mark.parametrize(
    "code, line",
    [
        ("try:\n    import numpy\nexcept ModuleNotFoundError:\n    pass\n", 2),
        ("try:\n    from numpy import linalg\nexcept (ImportError, OSError):\n    linalg = None\n", 2),
        ("def f():\n    import numpy\n    return numpy\n", 2),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import numpy\n", 3),
        ("try:\n    if True:\n        import numpy.linalg as la\nexcept ImportError:\n    la = None\n", 3),
    ],
)
def test_every_optional_form_is_a_warning(tmp_path, code, line):
    package = write_package(tmp_path, code)
    assert [(f.line, f.warning) for f in scan_package(package, "np_kernel")] == [(line, True)]


def test_try_without_importerror_handler_is_not_optional(tmp_path):
    package = write_package(tmp_path, "try:\n    import numpy\nexcept KeyError:\n    pass\n")
    assert [(f.line, f.warning) for f in scan_package(package, "np_kernel")] == [(2, False)]


# ---- through `kernel-builder build` -----------------------------------------------------------


def test_build_refuses_a_module_level_numpy_import(tmp_path):
    write_package(tmp_path, MODULE_LEVEL_NUMPY)
    result = kb("build", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "torch-ext/np_kernel/__init__.py:1: imports 'numpy'" in result.stderr
    assert "--allow-import numpy" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "build").exists()


def test_allow_import_builds_logs_and_loads(tmp_path):
    write_package(tmp_path, MODULE_LEVEL_NUMPY)
    result = kb("build", tmp_path, "--allow-import", "numpy", "--json")
    assert result.returncode == 0, result.stderr
    assert "allowing the kernel's Python code to import numpy (--allow-import)" in result.stderr
    report = json.loads(result.stdout)
    assert [v["variant"] for v in report["variants"]] == ["torch-cpu"] and report["ok"]
    # The built variant loads through the real loader (numpy is installed here) and works.
    check = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            from pathlib import Path
            import kernels
            print(kernels.get_local_kernel(Path({str(tmp_path)!r})).table(4).tolist())
            """)],
        capture_output=True, text=True, timeout=300,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "[0, 1, 2, 3]"
    # check-builds applies the same rule, with the same escape.
    assert kb("check-builds", tmp_path).returncode == 1
    assert kb("check-builds", tmp_path, "--allow-import", "numpy").returncode == 0


def test_guarded_import_builds_with_one_warning(tmp_path):
    write_package(tmp_path, GUARDED_NUMPY)
    result = kb("build", tmp_path, "--no-import-check")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "imports 'numpy'" in line]
    assert len(warnings) == 1 and "warning:" in warnings[0] and "__init__.py:4" in warnings[0], result.stderr


def test_allow_import_needs_a_module_name(tmp_path):
    write_package(tmp_path, MODULE_LEVEL_NUMPY)
    result = kb("build", tmp_path, "--allow-import", "numpy>=2")
    assert result.returncode == 2
    assert "--allow-import 'numpy>=2'" in result.stderr
