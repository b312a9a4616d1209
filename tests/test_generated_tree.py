"""create-pyproject: the generated tree builds with plain CMake + Ninja and with pip, without
kernel-builder; clean-pyproject removes exactly what was generated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import assert_ok, invoke
from test_local_build import copy_example, host_variant, run_in_python

pytestmark = pytest.mark.slow

def _without_kernel_builder(scratch: Path) -> dict:
    """An environment in which `import kernel_builder` fails: a generated tree never needs it."""
    blocker = scratch / "block" / "kernel_builder"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text("raise ImportError('kernel-builder must not be needed by a generated tree')\n")
    return {**os.environ, "PYTHONPATH": str(blocker.parent)}


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    kernel = copy_example("relu", tmp_path_factory.mktemp("gen"))
    assert_ok(invoke("create-pyproject", kernel, "--unique-id", "plain"))
    return kernel


def test_generated_files_and_manifest(generated):
    manifest = json.loads((generated / ".kernel-builder-generated.json").read_text())
    files = set(manifest["files"])
    assert {"CMakeLists.txt", "setup.py", "pyproject.toml", "torch-ext/registration.h", "cmake/kernel-builder.cmake",
            "cmake/portable.cmake", "cmake/kbtools/archs.py", "compat/glibc_shim.c", "cmake/metadata-cpu.json", "cmake/metadata-cuda.json"} <= files
    for rel in files:
        assert (generated / rel).is_file(), rel


def test_plain_cmake_and_ninja(generated, tmp_path):
    env = _without_kernel_builder(tmp_path)
    build = tmp_path / "cmake-build"
    run(["cmake", "-S", str(generated), "-B", str(build), "-G", "Ninja", f"-DPython3_EXECUTABLE={sys.executable}"], generated, env)
    run(["cmake", "--build", str(build)], generated, env)
    run(["cmake", "--install", str(build)], generated, env)
    variant = generated / "build" / host_variant()
    assert (variant / "_relu_cpu_plain.abi3.so").is_file()
    # The same checks kernel-builder applies to its own builds.
    assert_ok(invoke("check-builds", generated))
    assert_ok(invoke("check-abi", generated))
    check = run_in_python(
        f"""
        from pathlib import Path
        import torch, kernels
        relu = kernels.get_local_kernel(Path({str(generated)!r}))
        x = torch.randn(100)
        assert torch.equal(relu.relu(x), torch.relu(x))
        print(relu.__name__)
        """
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "_relu_cpu_plain"


def test_pip_wheel(generated, tmp_path):
    env = _without_kernel_builder(tmp_path)
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", str(wheels), str(generated)], generated, env)
    (wheel,) = wheels.glob("relu-1.0.0-*.whl")
    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)], generated, env)
    assert (target / "relu" / "_relu_cpu_plain.abi3.so").is_file()
    check = run_in_python(
        """
        import torch, relu
        x = torch.randn(50)
        assert torch.equal(relu.relu(x), torch.relu(x))
        """,
        env={"PYTHONPATH": str(target)},
    )
    assert check.returncode == 0, check.stderr


def test_regenerating_replaces_own_files_but_not_foreign_ones(generated, tmp_path):
    kernel = copy_example("relu", tmp_path)
    assert_ok(invoke("create-pyproject", kernel))
    assert_ok(invoke("create-pyproject", kernel))  # its own unmodified files: fine
    (kernel / "setup.py").write_text("# mine\n")
    result = invoke("create-pyproject", kernel)
    assert result.exit_code == 2 and "setup.py" in result.stderr and "--force" in result.stderr
    assert (kernel / "setup.py").read_text() == "# mine\n"
    assert_ok(invoke("create-pyproject", kernel, "-f"))


def test_clean_removes_exactly_the_generated_files(tmp_path):
    kernel = copy_example("relu", tmp_path)
    before = sorted(p.relative_to(kernel) for p in kernel.rglob("*"))
    assert_ok(invoke("create-pyproject", kernel))
    edited = kernel / "cmake" / "kernel-builder.cmake"
    edited.write_text(edited.read_text() + "# edited\n")
    result = invoke("clean-pyproject", kernel)
    assert_ok(result)
    assert "edited since it was generated" in result.stderr
    assert edited.exists()
    assert_ok(invoke("clean-pyproject", kernel, "--force"))
    assert sorted(p.relative_to(kernel) for p in kernel.rglob("*")) == before


def test_clean_without_manifest_is_refused(tmp_path):
    kernel = copy_example("relu", tmp_path)
    result = invoke("clean-pyproject", kernel)
    assert result.exit_code == 2 and "nothing was generated" in result.stderr


def test_noarch_tree(tmp_path):
    kernel = copy_example("rms-norm-py", tmp_path)
    assert_ok(invoke("create-pyproject", kernel, "--unique-id", "src"))
    ops = (kernel / "torch-ext" / "rms_norm_py" / "_ops.py").read_text()
    assert "'rms_norm_py'" in ops and "'src'" in ops  # module name and id, as Python literals
    assert '"" = "torch-ext"' in (kernel / "pyproject.toml").read_text()
