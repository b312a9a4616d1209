"""From a blank folder to `kernels.get_kernel` through the local Hub (slow: compiles the scaffold).

init → build → the scaffold's own tests → fill-card → upload --dry-run (no connection) →
upload → a fresh process with an empty cache loads the kernel from the Hub with
`kernels.get_kernel("<owner>/<name>", version=1)` and the op gives the right answer. The
server's stored tree equals the plan. The GPU variant of this test (marker `gpu`) builds and
tests the CUDA scaffold.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from hubtest_util import hub_environment, hub_server, kb_subprocess, published

pytestmark = pytest.mark.slow
REPO_ID = "kb-test/scale-kernel"


def run_scaffold_tests(root, *markers: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_KERNELS"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *markers, str(root / "tests")]
    return subprocess.run(args, cwd=root, capture_output=True, text=True, env=env, timeout=600)


def test_from_init_to_get_kernel(tmp_path):
    import torch

    with hub_server() as hub:
        env = hub_environment(hub, tmp_path / "hf-home")
        root = tmp_path / "scale-kernel"

        result = kb_subprocess("init", root, "--name", REPO_ID, env=env)
        assert result.returncode == 0, result.stderr
        major, minor = torch.__version__.split(".")[:2]
        variant = f"torch{major}{minor}-cxx11-cpu-x86_64-linux"
        result = kb_subprocess("build", root, "--variant", variant, "--json", timeout=900)  # from the matrix, in its toolchain
        assert result.returncode == 0, result.stderr
        assert [v["variant"] for v in json.loads(result.stdout)["variants"]] == [variant]

        tests = run_scaffold_tests(root)
        assert tests.returncode == 0 and " passed" in tests.stdout and "failed" not in tests.stdout, tests.stdout + tests.stderr

        assert kb_subprocess("fill-card", root).returncode == 0
        plan_file = tmp_path / "plan.json"
        result = kb_subprocess("upload", root, "--dry-run", "--output-json", plan_file, env=env)
        assert result.returncode == 0, result.stderr
        assert hub.requests == [], "init --name and the dry run make no connection"
        plan = json.loads(plan_file.read_text())
        assert plan["branch"] == "v1" and plan["variants"] == [variant]

        result = kb_subprocess("upload", root, env=env)
        assert result.returncode == 0, result.stderr
        stored = published(hub, REPO_ID, "v1")
        assert {p: hashlib.sha256(d).hexdigest() for p, d in stored.items()} == {a["path"]: a["sha256"] for a in plan["adds"]}
        assert hashlib.sha256(hub.files(REPO_ID, "main")["README.md"].data).hexdigest() == plan["main"][0]["sha256"]
        metadata = json.loads(stored[f"build/{variant}/metadata.json"])
        for rel, digest in metadata["digest"]["files"].items():  # what `kernels verify` would check
            assert base64.b64encode(hashlib.sha256(stored[f"build/{variant}/{rel}"]).digest()).decode() == digest

        fresh = tmp_path / "fresh-cache"
        code = textwrap.dedent(f"""
            import torch, kernels
            kernel = kernels.get_kernel({REPO_ID!r}, version=1)
            x = torch.randn(1000)
            torch.testing.assert_close(kernel.scale(x, 2.5), x * 2.5)
            print(kernel.__file__)
        """)
        load_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "LOCAL_KERNELS", "KERNELS_"))}
        load_env.update(hub_environment(hub, fresh, token=None))  # a public kernel: no token needed
        loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=load_env, timeout=300)
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip().startswith(str(fresh / "hub")) and f"/build/{variant}/" in loaded.stdout
        downloads = {r.path.split("/resolve/")[1].split("/", 1)[1] for r in hub.requests if r.endpoint == "resolve" and r.method == "GET"}
        assert {f"build/{variant}/{name}" for name in ("__init__.py", "_ops.py", "metadata.json")} <= downloads
        assert any(p.endswith(".abi3.so") for p in downloads)


@pytest.mark.gpu
def test_cuda_scaffold_builds_and_passes_its_tests_on_a_gpu(tmp_path):
    root = tmp_path / "scale-gpu"
    assert kb_subprocess("init", root, "--name", "kb-test/scale-gpu", "--backends", "cuda").returncode == 0
    archs = {"KERNEL_BUILDER_CUDA_ARCHS": os.environ.get("KERNEL_BUILDER_CUDA_ARCHS", "")}
    result = kb_subprocess("build", root, "--host", "--json", env=archs, timeout=1800)  # the GPU machine's own torch
    assert result.returncode == 0, result.stderr
    built = [v["variant"] for v in json.loads(result.stdout)["variants"]]
    assert len(built) == 1 and "-cu" in built[0], built
    tests = run_scaffold_tests(root, "-m", "gpu or not gpu")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and " skipped" not in tests.stdout, tests.stdout


CUDA_PYTHON = os.environ.get("KB_TEST_CUDA_PYTHON")
CUDA_HOME = os.environ.get("CUDA_HOME")


@pytest.mark.skipif(not CUDA_PYTHON or not CUDA_HOME, reason="needs KB_TEST_CUDA_PYTHON (a CUDA torch) and CUDA_HOME; scripts/test.sh sets them up")
def test_cuda_scaffold_compiles_and_passes_the_gate_without_a_gpu(tmp_path):
    """The CUDA source of the scaffold compiles (one architecture) and is fit for upload."""
    root = tmp_path / "scale-cu"
    assert kb_subprocess("init", root, "--name", "kb-test/scale-cu", "--backends", "cuda").returncode == 0
    result = kb_subprocess("build", root, "--python", CUDA_PYTHON, "--cuda-archs", "9.0", "--json", env={"CUDA_HOME": CUDA_HOME}, timeout=1800)
    assert result.returncode == 0, result.stderr
    (built,) = json.loads(result.stdout)["variants"]
    assert built["status"] == "built" and "-cu" in built["variant"] and built["cuda_archs"] == {"scale_cu_cuda": ["9.0"]}
    assert kb_subprocess("fill-card", root).returncode == 0
    plan_file = tmp_path / "plan.json"
    result = kb_subprocess("upload", root, "--dry-run", "--output-json", plan_file)
    assert result.returncode == 0, result.stderr  # check-builds and the portability gate pass
    adds = [a["path"] for a in json.loads(plan_file.read_text())["adds"]]
    assert any(p.startswith(f"build/{built['variant']}/_scale_cu_cuda_") and p.endswith(".abi3.so") for p in adds), adds
