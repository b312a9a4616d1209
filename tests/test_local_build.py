"""End-to-end tests of `kernel-builder build` with the local backend (real CMake, g++, torch).

The examples are copied to a temporary folder and built there; variants are loaded through
the real `kernels` package. CPU builds use this interpreter's torch (2.13 CPU in CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kbtest_util import REPO, with_default_sigint

EXAMPLES = REPO / "examples"
pytestmark = pytest.mark.slow


def kb(*args: object, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh interpreter; `build` builds for this interpreter's torch (--host)."""
    if args and args[0] == "build":
        args = ("build", "--host", *args[1:])
    full_env = {**os.environ, **(env or {})}
    full_env.pop("KERNEL_BUILDER_CUDA_ARCHS", None)
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=full_env, timeout=timeout)


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("build", "__pycache__", ".kernel-builder-generated.json"))
    return target


def run_in_python(code: str, *, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def host_variant() -> str:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    return f"torch{major}{minor}-cxx11-cpu-x86_64-linux"


@pytest.fixture(scope="module")
def built_relu(tmp_path_factory) -> Path:
    kernel = copy_example("relu", tmp_path_factory.mktemp("relu"))
    result = kb("build", kernel, "--json", "--unique-id", "first")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and [v["variant"] for v in report["variants"]] == [host_variant()]
    assert "cuda" in report["skipped"], "a CPU torch cannot build the CUDA variant, and says so"
    return kernel


def test_relu_cpu_variant_layout(built_relu):
    variant = built_relu / "build" / host_variant()
    names = sorted(p.name for p in variant.iterdir())
    assert names == ["__init__.py", "_ops.py", "_relu_cpu_first.abi3.so", "metadata.json"]
    metadata = json.loads((variant / "metadata.json").read_text())
    assert metadata["id"] == "_relu_cpu_first"
    assert metadata["backend"] == {"type": "cpu"}
    assert metadata["provenance"]["kernel-builder"]["version"]
    # The digest is exactly what the kernels loader computes.
    from kernels._rust import Digest, DigestAlgorithm

    assert Digest.hash_variant(DigestAlgorithm.SHA256, variant).files == metadata["digest"]["files"]


def test_relu_loads_through_kernels(built_relu):
    result = run_in_python(
        f"""
        import os
        from pathlib import Path
        import torch, kernels
        local = kernels.get_local_kernel(Path({str(built_relu)!r}))
        os.environ["LOCAL_KERNELS"] = "kernel-builder-examples/relu={built_relu}"
        hub = kernels.get_kernel("kernel-builder-examples/relu", version=1)
        x = torch.randn(64)
        assert torch.equal(local.relu(x), torch.relu(x))
        assert torch.equal(hub.relu(x), torch.relu(x))
        print(local.__name__, hub.__name__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["_relu_cpu_first", "_relu_cpu_first"]


def test_relu_example_tests_pass(built_relu):
    env = {"LOCAL_KERNELS": f"kernel-builder-examples/relu={built_relu}"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(built_relu / "tests")], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_two_builds_with_different_ids_load_side_by_side(built_relu, tmp_path):
    second = copy_example("relu", tmp_path)
    result = kb("build", second, "--unique-id", "second", "--quiet")
    assert result.returncode == 0, result.stderr
    check = run_in_python(
        f"""
        from pathlib import Path
        import torch, kernels
        a = kernels.get_local_kernel(Path({str(built_relu)!r}))
        b = kernels.get_local_kernel(Path({str(second)!r}))
        assert a is not b and a.__name__ != b.__name__
        x = torch.randn(32)
        assert torch.equal(a.relu(x), b.relu(x))
        assert hasattr(torch.ops, "_relu_cpu_first") and hasattr(torch.ops, "_relu_cpu_second")
        print(sorted(k.metadata.id for k in kernels.get_loaded_kernels()))
        """
    )
    assert check.returncode == 0, check.stderr
    assert "_relu_cpu_first" in check.stdout and "_relu_cpu_second" in check.stdout


def test_unchanged_kernel_is_up_to_date_without_reinstalling(built_relu):
    variant = built_relu / "build" / host_variant()
    before = (variant / "_relu_cpu_first.abi3.so").stat().st_ino
    result = kb("build", built_relu, "--unique-id", "first", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)["variants"]
    assert record["status"] == "up-to-date" and record["log"] is None, "nothing changed: no step may run"
    assert (variant / "_relu_cpu_first.abi3.so").stat().st_ino == before, "an up-to-date variant is not reinstalled"


def test_rebuild_after_an_edit_is_incremental_and_reinstalls(built_relu):
    kernel = built_relu  # in place: a copy elsewhere starts its CMake build folder afresh
    source = kernel / "relu_cpu" / "relu_cpu.cpp"
    source.write_text(source.read_text() + "\n// an edit\n")
    result = kb("build", kernel, "--unique-id", "first", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)["variants"]
    assert record["status"] == "built"
    log = Path(record["log"]).read_text()
    assert "relu_cpu.cpp.o" in log and "torch_binding.cpp.o" not in log, "only the edited translation unit recompiles"


def test_failed_build_keeps_the_previous_variant(built_relu, tmp_path):
    kernel = tmp_path / "relu"
    shutil.copytree(built_relu, kernel)
    good = (kernel / "build" / host_variant() / "metadata.json").read_text()
    source = kernel / "relu_cpu" / "relu_cpu.cpp"
    source.write_text(source.read_text() + "\nthis is not C++;\n")
    result = kb("build", kernel, "--unique-id", "first")
    assert result.returncode == 1
    assert "relu_cpu.cpp" in result.stderr and "full log:" in result.stderr
    assert (kernel / "build" / host_variant() / "metadata.json").read_text() == good
    state = kernel / "build" / ".kernel-builder"
    assert not [p for p in state.iterdir() if p.name.startswith(("staging-", "replaced-"))]
    assert sorted(p.name for p in (kernel / "build").iterdir()) == [".kernel-builder", host_variant()]


def _ps_of(kernel: Path) -> str:
    """`compile` once a compiler for this kernel runs."""
    listing = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    return "compile" if any("cc1plus" in line and str(kernel) in line for line in listing.splitlines()) else ""


def test_interrupted_build_leaves_no_partial_variant(built_relu, tmp_path):
    kernel = tmp_path / "relu"
    shutil.copytree(built_relu, kernel)
    shutil.rmtree(kernel / "build" / host_variant())
    # Force a full recompile so the build is still running when we interrupt it.
    shutil.rmtree(kernel / "build" / ".kernel-builder" / "work")
    # A warm compiler cache would finish before the interrupt: the compilers must really run.
    process = subprocess.Popen([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), "--unique-id", "first"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "KERNEL_BUILDER_COMPILER_CACHE": "off"},
                               preexec_fn=with_default_sigint)
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "compile" not in _ps_of(kernel):
        time.sleep(0.2)
    process.send_signal(2)  # SIGINT, as Ctrl-C
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    # The variant's stage is `interrupted`, not `failed` (nothing failed), and so is the result.
    assert f"{host_variant()}: interrupted" in err.splitlines() and err.splitlines()[-1] == "interrupted", err
    assert "failed" not in err, err
    assert not (kernel / "build" / host_variant()).exists()
    state = kernel / "build" / ".kernel-builder"
    assert not [p for p in state.iterdir() if p.name.startswith(("staging-", "replaced-"))]
    # Nothing the build started may outlive it (Ninja runs compilers in process groups of their own).
    survivors = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(kernel) not in survivors, survivors


def test_noarch_and_stable_examples(tmp_path):
    noarch = copy_example("rms-norm-py", tmp_path)
    stable = copy_example("silu-mul-stable", tmp_path)
    for kernel in (noarch, stable):
        result = kb("build", kernel, "--quiet")
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (noarch / "build").iterdir() if not p.name.startswith(".")) == ["torch-cpu", "torch-cuda"]
    assert [p.name for p in (stable / "build").iterdir() if not p.name.startswith(".")] == ["torch-stable-abi210-cpu-x86_64-linux"]
    for kernel, repo in ((noarch, "rms-norm-py"), (stable, "silu-mul-stable")):
        env = {"LOCAL_KERNELS": f"kernel-builder-examples/{repo}={kernel}"}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(kernel / "tests")], capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr


def test_missing_source_fails_before_anything_is_created(tmp_path):
    kernel = copy_example("relu", tmp_path)
    (kernel / "relu_cpu" / "relu_cpu.cpp").unlink()
    result = kb("build", kernel)
    assert result.returncode == 2
    assert "kernel.relu_cpu.src[0]" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (kernel / "build").exists()


def test_torch_bounds_refused_before_anything_is_created(tmp_path):
    kernel = copy_example("relu", tmp_path)
    text = (kernel / "build.toml").read_text().replace("[torch]\n", '[torch]\nminver = "2.99"\n')
    (kernel / "build.toml").write_text(text)
    result = kb("build", kernel)
    assert result.returncode == 2
    assert "older than torch.minver 2.99" in result.stderr
    assert not (kernel / "build").exists()


def test_unknown_variant_is_refused(tmp_path):
    kernel = copy_example("relu", tmp_path)
    result = kb("build", kernel, "--variant", "torch299-cxx11-cpu-x86_64-linux")
    assert result.returncode == 2
    assert "cannot be built here" in result.stderr


def test_content_id_is_deterministic(tmp_path):
    from kernel_builder.config import load_config
    from kernel_builder.provenance import unique_id

    a = copy_example("relu", tmp_path / "a")
    b = copy_example("relu", tmp_path / "b")
    assert unique_id(load_config(a)) == unique_id(load_config(b))
    (b / "relu_cpu" / "relu_cpu.cpp").write_text("// changed\n")
    assert unique_id(load_config(a)) != unique_id(load_config(b))


def test_git_tree_id_and_dirty(tmp_path):
    from kernel_builder.config import load_config
    from kernel_builder.provenance import unique_id

    kernel = copy_example("relu", tmp_path)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=kernel, check=True)
    subprocess.run([*git, "add", "."], cwd=kernel, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=kernel, check=True)
    tree = subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=kernel, capture_output=True, text=True).stdout.strip()
    assert unique_id(load_config(kernel)) == tree[:7]
    (kernel / "relu_cpu" / "relu_cpu.cpp").write_text("// changed\n")
    assert unique_id(load_config(kernel)) == tree[:7] + "_dirty"


def test_installed_variant_has_no_bytecode(built_relu):
    """The import check loads the variant before it is installed; it must not leave __pycache__ in it."""
    variant = built_relu / "build" / host_variant()
    assert not list(variant.rglob("__pycache__")) and not list(variant.rglob("*.pyc"))
