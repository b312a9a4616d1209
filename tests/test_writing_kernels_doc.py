"""docs/writing-kernels.md, followed literally: its marked code blocks are turned into one shell
script, in document order, and run from an empty directory.

- `<!-- file: PATH -->` before a fenced block: the block is written to PATH;
- `<!-- run -->` before a ```sh block: the block is run;
- `<!-- cuda-file: PATH -->` / `<!-- cuda-run -->`: the same for the CUDA section, run when a
  CUDA build of torch (KB_TEST_CUDA_PYTHON, as the doc's $CUDA_PYTHON) and a CUDA toolkit are
  here (scripts/test.sh sets both up where the toolkit exists).

`kernel-builder` and `python` are this environment's, first on PATH, as the doc asks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO

pytestmark = pytest.mark.slow

DOC = REPO / "docs" / "writing-kernels.md"
BLOCK = re.compile(r"<!-- (?P<kind>file|cuda-file|run|cuda-run)(?:: (?P<path>\S+))? -->\n```(?P<lang>[\w+]*)\n(?P<body>.*?)^```$", re.S | re.M)
HEREDOC_END = "KB_WRITING_KERNELS_DOC_EOF"


def doc_script(cuda: bool) -> str:
    """The shell script for the CPU part (cuda=False) or the CUDA part of the walkthrough."""
    lines = ["set -euo pipefail"]
    for block in BLOCK.finditer(DOC.read_text()):
        kind, path, body = block["kind"], block["path"], block["body"]
        if kind.startswith("cuda-") != cuda:
            continue
        if kind.endswith("file"):
            assert HEREDOC_END not in body and not path.startswith("/") and ".." not in path
            lines += [f"mkdir -p \"$(dirname '{path}')\"", f"cat > '{path}' <<'{HEREDOC_END}'", body.rstrip("\n"), HEREDOC_END]
        else:
            assert block["lang"] == "sh", "run blocks are shell"
            lines.append(body.rstrip("\n"))
    return "\n".join(lines) + "\n"


def run_script(script: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("LOCAL_KERNELS", "KERNEL_BUILDER_DEBUG", "KERNEL_BUILDER_CUDA_ARCHS")}
    full["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full.get('PATH', '')}"
    full.update(env or {})
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, env=full, timeout=1500)


def test_the_doc_has_what_the_test_follows():
    kinds = [m["kind"] for m in BLOCK.finditer(DOC.read_text())]
    assert kinds.count("file") >= 5 and kinds.count("run") >= 4 and "cuda-run" in kinds
    script = doc_script(cuda=False)
    assert script.index("mkdir scale-add") < script.index("cat > 'build.toml'") < script.index("kernel-builder build .")


@pytest.fixture(scope="module")
def walked(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The CPU walkthrough, run from an empty directory."""
    start = tmp_path_factory.mktemp("empty")
    assert list(start.iterdir()) == []
    return start / "scale-add", run_script(doc_script(cuda=False), start)


def host_variant() -> str:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    return f"torch{major}{minor}-cxx11-cpu-x86_64-linux"


def test_the_cpu_walkthrough_works_as_written(walked):
    kernel, result = walked
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    variant = kernel / "build" / host_variant()
    assert (variant / "metadata.json").is_file()
    assert sorted(p.name for p in kernel.iterdir() if p.name != "build" and not p.name.startswith(".")) == ["build.toml", "scale_add_cpu", "tests", "torch-ext"]
    out = result.stdout
    assert "4 passed" in out and "6 passed" in out, out  # the tests, then with the half-precision ones after the edit
    assert "tensor([3., 3., 3.])" in out and "tensor([2., 2.])" in out, out
    # The rebuild after the edit ran (-v showed its commands and stage times) and compiled the edited file.
    assert "debug: $ cmake --build " in result.stderr and f"debug: {host_variant()}: compile took " in result.stderr
    assert "scale_add.cpp.o" in (kernel / "build" / ".kernel-builder" / "logs" / f"{host_variant()}.log").read_text()


def _cuda_toolkit() -> bool:
    home = os.environ.get("CUDA_HOME")
    return bool(home and (Path(home) / "bin" / "nvcc").is_file()) or shutil.which("nvcc") is not None


@pytest.mark.skipif(not os.environ.get("KB_TEST_CUDA_PYTHON") or not _cuda_toolkit(),
                    reason="needs KB_TEST_CUDA_PYTHON (a CUDA build of torch) and a CUDA toolkit, as scripts/test.sh sets up")
def test_the_cuda_section_works_as_written(walked):
    kernel, result = walked
    assert result.returncode == 0, result.stderr
    cuda = run_script(doc_script(cuda=True), kernel, {"CUDA_PYTHON": os.environ["KB_TEST_CUDA_PYTHON"]})
    assert cuda.returncode == 0, f"stdout:\n{cuda.stdout}\nstderr:\n{cuda.stderr}"
    built = [p.name for p in (kernel / "build").iterdir() if "-cu" in p.name]
    assert len(built) == 1 and (kernel / "build" / built[0] / "metadata.json").is_file(), built
    assert (kernel / "build" / host_variant()).is_dir(), "the CPU variant stays"
