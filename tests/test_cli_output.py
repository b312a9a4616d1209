"""What the command line prints: debug messages with -v (before or after the command) or
KERNEL_BUILDER_DEBUG, and messages that are never re-wrapped or re-styled on their way to a
pipe or a CI log. Builds here are of a Python-only kernel (nothing is compiled)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO
from kernel_builder.progress import Reporter

RMS_NORM = REPO / "examples" / "rms-norm-py"


def kb(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "KERNEL_BUILDER_DEBUG"}
    full.update(env or {})
    if args and args[0] == "build":  # for this interpreter's torch, not the whole matrix
        args = ("build", "--host", *args[1:])
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=full, timeout=300)


@pytest.fixture
def noarch_kernel(tmp_path) -> Path:
    import shutil

    target = tmp_path / "rms-norm-py"
    shutil.copytree(RMS_NORM, target, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return target


def debug_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("debug: ")]


@pytest.mark.parametrize("where", ["after", "before", "env"])
def test_verbose_shows_stage_times_and_checks(noarch_kernel, where):
    # (The import check takes seconds: only one of the three builds runs it.)
    args: list[object] = {"after": ["build", noarch_kernel, "-v"], "before": ["-v", "build", "--host", noarch_kernel, "--no-import-check"],
                          "env": ["build", noarch_kernel, "--no-import-check"]}[where]
    result = kb(*args, env={"KERNEL_BUILDER_DEBUG": "1"} if where == "env" else None)
    assert result.returncode == 0, result.stderr
    lines = debug_lines(result.stderr)
    assert any(line.startswith("debug: torch-cpu: assemble took ") and line.endswith(" s") for line in lines), result.stderr
    assert any(line.startswith("debug: torch-cpu: checks took ") for line in lines), result.stderr
    assert any(line.startswith("debug: planned the build: ") for line in lines), result.stderr
    if where == "after":
        assert any(line.startswith("debug: import check of 2 variant(s) in ") for line in lines), result.stderr


def test_verbose_after_any_command(noarch_kernel):
    result = kb("check-config", noarch_kernel, "--verbose")
    assert result.returncode == 0, result.stderr
    assert "No such option" not in result.stderr


def test_debug_zero_means_off(noarch_kernel):
    result = kb("build", noarch_kernel, "--no-import-check", env={"KERNEL_BUILDER_DEBUG": "0"})
    assert result.returncode == 0, result.stderr
    assert debug_lines(result.stderr) == []


def test_notes_are_printed_as_given():
    stream = io.StringIO()  # not a terminal, as a pipe or a CI log
    reporter = Reporter(stream=stream)
    long_path = "/some/where/" + "deep/" * 30 + "python"
    reporter.note(f"skipping cuda: needs a CUDA build of torch and the matching CUDA toolkit; {long_path} has torch 2.13.0+cpu")
    reporter.note("warning: build.toml: [general.cuda] has no effect without cuda in [general] backends")
    assert stream.getvalue().splitlines() == [
        f"skipping cuda: needs a CUDA build of torch and the matching CUDA toolkit; {long_path} has torch 2.13.0+cpu",
        "warning: build.toml: [general.cuda] has no effect without cuda in [general] backends",
    ]


def test_stage_lines_and_warnings_reach_a_pipe_unwrapped(noarch_kernel):
    init = noarch_kernel / "torch-ext" / "rms_norm_py" / "__init__.py"
    init.write_text("try:\n    import numpy  # an optional import: a warning, on one line however long\nexcept ImportError:\n    numpy = None\n" + init.read_text())
    result = kb("build", noarch_kernel, "--no-import-check")
    assert result.returncode == 0, result.stderr
    assert debug_lines(result.stderr) == [], "no debug messages without -v"
    (warning,) = [line for line in result.stderr.splitlines() if "imports 'numpy'" in line]
    assert warning.startswith("warning: torch-ext/rms_norm_py/__init__.py:2: ") and warning.endswith("`--allow-import numpy`"), result.stderr
    assert len(warning) > 120
