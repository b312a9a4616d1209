"""`kernel-builder init`: the scaffold's files, git staging, name resolution and refusals (no compiler).

Building the scaffold and running its own tests is in test_hub_e2e.py (slow).
"""

from __future__ import annotations

import ast
import subprocess

import pytest

from hubtest_util import ALICE_TOKEN, hub_server, use_hub
from kbtest_util import assert_bad_input, assert_ok, invoke, load_toml
from kernel_builder.config import load_config
from kernel_builder.scaffold import FLAKE_URL

EXPECTED = {
    "build.toml", "flake.nix", ".gitignore", ".gitattributes", "CARD.md", "example.py", "benchmarks/benchmark.py",
    "torch-ext/torch_binding.cpp", "torch-ext/torch_binding.h", "torch-ext/my_scale/__init__.py",
    "my_scale_cpu/scale_cpu.cpp", "my_scale_cuda/scale_cuda.cu", "tests/conftest.py", "tests/test_my_scale.py",
}


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """A Hub that counts requests: init with --name must send none."""
    with hub_server() as hub:
        use_hub(monkeypatch, hub, tmp_path / "hf-home")
        yield hub


def files_under(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_init_writes_a_valid_kernel_and_stages_it(tmp_path, offline_hub):
    root = tmp_path / "my-scale"
    result = invoke("init", root, "--name", "kb-test/my-scale")
    assert_ok(result)
    assert offline_hub.requests == [], "--name OWNER/NAME needs no network"
    assert files_under(root) == EXPECTED

    config = load_config(root)  # every listed file exists
    assert config.source_edition == 5 and config.general.name == "my-scale" and config.general.version == 1
    assert config.general.backends == ("cpu", "cuda") and config.general.hub.repo_id == "kb-test/my-scale"
    assert sorted(k.backend for k in config.kernels) == ["cpu", "cuda"]

    flake = (root / "flake.nix").read_text()
    assert f'kernel-builder.url = "{FLAKE_URL}";' in flake
    assert "kernel-builder.lib.genKernelFlakeOutputs {" in flake and "inherit self;" in flake and "path = ./.;" in flake

    binding = (root / "torch-ext" / "torch_binding.cpp").read_text()
    assert "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops)" in binding and "REGISTER_EXTENSION(TORCH_EXTENSION_NAME)" in binding
    assert '#include "registration.h"' in binding

    package = ast.parse((root / "torch-ext" / "my_scale" / "__init__.py").read_text())
    assert ast.get_docstring(package)
    functions = {n.name: n for n in package.body if isinstance(n, ast.FunctionDef)}
    assert ast.get_docstring(functions["scale"])
    assert any(isinstance(n, ast.Assign) and n.targets[0].id == "__all__" and ast.literal_eval(n.value) == ["scale"] for n in package.body if isinstance(n, ast.Assign))

    assert "/build/" in (root / ".gitignore").read_text().splitlines()
    assert "*.so filter=lfs diff=lfs merge=lfs -text" in (root / ".gitattributes").read_text()

    staged = subprocess.run(["git", "ls-files", "--cached"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    assert set(staged) == EXPECTED
    head = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=root, capture_output=True, text=True)
    assert head.returncode != 0, "init stages but does not commit"


def test_path_defaults_to_the_name(tmp_path, offline_hub, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_ok(invoke("init", "--name", "kb-test/relu2"))
    assert (tmp_path / "relu2" / "build.toml").is_file()


def test_cpu_only(tmp_path, offline_hub):
    root = tmp_path / "k"
    assert_ok(invoke("init", root, "--name", "kb-test/cpu-only", "--backends", "cpu", "--license", "MIT"))
    toml = load_toml(root / "build.toml")
    assert toml["general"]["backends"] == ["cpu"] and toml["general"]["license"] == "MIT"
    assert list(toml["kernel"]) == ["cpu_only_cpu"]
    assert not (root / "cpu_only_cuda").exists()
    assert 'device = "cpu"' in (root / "tests" / "conftest.py").read_text()
    load_config(root)


def test_refuses_to_overwrite_an_existing_kernel(tmp_path, offline_hub):
    root = tmp_path / "k"
    assert_ok(invoke("init", root, "--name", "kb-test/my-scale"))
    (root / "build.toml").write_text("# mine\n")
    (root / "notes.txt").write_text("keep me\n")
    assert_bad_input(invoke("init", root, "--name", "kb-test/my-scale"), "already holds a kernel", "build.toml", "--overwrite")
    assert (root / "build.toml").read_text() == "# mine\n"
    assert_ok(invoke("init", root, "--name", "kb-test/my-scale", "--overwrite"))
    assert "[general]" in (root / "build.toml").read_text()
    assert (root / "notes.txt").read_text() == "keep me\n"


def test_owner_from_the_hub_without_a_name_owner(tmp_path, offline_hub):
    root = tmp_path / "fast-gelu"
    assert_ok(invoke("init", root))
    assert offline_hub.count("whoami") == 1
    assert load_toml(root / "build.toml")["general"]["hub"]["repo-id"] == "alice/fast-gelu"
    assert ALICE_TOKEN in offline_hub.tokens_seen

    other = tmp_path / "elsewhere"
    assert_ok(invoke("init", other, "--name", "gelu-two"))
    assert load_toml(other / "build.toml")["general"]["hub"]["repo-id"] == "alice/gelu-two"


def test_owner_from_the_hub_needs_a_token(tmp_path, monkeypatch):
    with hub_server() as hub:
        use_hub(monkeypatch, hub, tmp_path / "hf-home", token=None)
        assert_bad_input(invoke("init", tmp_path / "gelu"), "no Hub token", "HF_TOKEN", "--name OWNER/NAME")
        assert not (tmp_path / "gelu").exists()


@pytest.mark.parametrize("args,fragments", [
    (["--name", "kb-test/My_Kernel"], ["invalid kernel name 'My_Kernel'", "lowercase"]),
    (["--name", "a/b/c"], ["use OWNER/NAME"]),
    (["--name", "bad owner/relu"], ["not a Hub user or organization name"]),
    (["--name", "kb-test/relu", "--backends", "rocm"], ["cannot scaffold the 'rocm' backend", "cpu, cuda"]),
    (["--name", "kb-test/relu", "--backends", ""], ["list at least one backend"]),
    (["--name", "kb-test/relu", "--license", "a b"], ["--license", "license identifier"]),
])
def test_bad_input(tmp_path, offline_hub, args, fragments):
    assert_bad_input(invoke("init", tmp_path / "k", *args), *fragments)
    assert not (tmp_path / "k").exists()
