"""metadata.json against what the current loader (kernels 0.17.2) reads: `kernels-minver`
computed from the features a variant uses, and full-length provenance commits. The loader's
own parser (kernels._rust.Metadata) reads what we write."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO
from kernel_builder.config import load_config
from kernel_builder.layout.metadata import kernels_minver, metadata_template
from kernel_builder.standalone.metadata import write_metadata

BASE = """\
[general]
name = "minver"
version = 1
edition = 5
license = "MIT"
backends = {backends}
{general}
[torch]
src = ["torch-ext/binding.cpp"]
{torch}
[kernel.cpu]
backend = "cpu"
depends = ["torch"]
src = ["cpu/k.cpp"]
"""


def config_of(tmp_path: Path, backends: str = '["cpu"]', general: str = "", torch: str = ""):
    kernel = tmp_path / "minver"
    for rel in ("torch-ext/binding.cpp", "cpu/k.cpp", "cuda/k.cu", "torch-ext/minver/__init__.py"):
        (kernel / rel).parent.mkdir(parents=True, exist_ok=True)
        (kernel / rel).write_text("\n")
    text = BASE.format(backends=backends, general=general, torch=torch)
    if "cuda" in backends:
        text += '\n[kernel.cuda]\nbackend = "cuda"\ndepends = ["torch"]\nsrc = ["cuda/k.cu"]\n'
    (kernel / "build.toml").write_text(text)
    return load_config(kernel)


def test_baseline(tmp_path):
    config = config_of(tmp_path)
    assert kernels_minver(config, "cpu") == "0.14.0"
    assert metadata_template(config, "cpu", {})["kernels-minver"] == "0.14.0"


def test_kernel_depends_need_0_17_only_where_declared(tmp_path):
    config = config_of(tmp_path, '["cpu", "cuda"]', '\n[general.cuda]\nkernel-depends = [{ repo-id = "org/activation", version = 1 }]\n')
    assert kernels_minver(config, "cuda") == "0.17.0"
    assert kernels_minver(config, "cpu") == "0.14.0"


def test_stable_abi_needs_0_15_1_only_for_its_backends(tmp_path):
    config = config_of(tmp_path, '["cpu", "cuda"]', torch='\n[torch.stable-abi]\ncuda = "2.10"\n')
    assert kernels_minver(config, "cuda") == "0.15.1"
    assert kernels_minver(config, "cpu") == "0.14.0"


def test_newer_python_depends_and_backends(tmp_path):
    config = config_of(tmp_path, general='python-depends = ["helion"]\n')
    assert kernels_minver(config, "cpu") == "0.17.0"
    noarch = tmp_path / "tpu"
    (noarch / "torch-ext" / "tpu_ops").mkdir(parents=True)
    (noarch / "torch-ext" / "tpu_ops" / "__init__.py").write_text("\n")
    (noarch / "build.toml").write_text('[general]\nname = "tpu-ops"\nversion = 1\nedition = 5\nlicense = "MIT"\nbackends = ["cpu", "tpu"]\n\n[torch-noarch]\n')
    tpu = load_config(noarch)
    assert kernels_minver(tpu, "tpu") == "0.17.0" and kernels_minver(tpu, "cpu") == "0.14.0"


def test_write_metadata_refuses_a_two_part_minver(tmp_path):
    with pytest.raises(ValueError, match="three-part"):
        write_metadata(tmp_path, {"name": "x", "kernels-minver": "0.17"})


@pytest.fixture(scope="module")
def built_in_git(tmp_path_factory) -> Path:
    """examples/rms-norm-py committed to a git repository and built (Python only)."""
    kernel = tmp_path_factory.mktemp("git") / "rms-norm-py"
    shutil.copytree(REPO / "examples" / "rms-norm-py", kernel, ignore=shutil.ignore_patterns("build", "__pycache__"))
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "kernel"]):
        subprocess.run([*git, *args], cwd=kernel, check=True)
    result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), "--no-import-check", "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return kernel


def test_the_loader_reads_minver_and_full_provenance(built_in_git):
    from kernels._rust import Metadata

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=built_in_git, capture_output=True, text=True, check=True).stdout.strip()
    for variant in ("torch-cpu", "torch-cuda"):
        raw = json.loads((built_in_git / "build" / variant / "metadata.json").read_text())
        assert raw["kernels-minver"] == "0.14.0"
        assert raw["provenance"]["kernel"] == {"commit": head, "dirty": False} and len(head) == 40
        parsed = Metadata.read_from_file(built_in_git / "build" / variant / "metadata.json")
        assert str(parsed.kernels_minver) == "0.14.0"
        assert parsed.provenance.kernel.commit == head and parsed.provenance.kernel.dirty is False


def test_check_builds_refuses_what_the_loader_refuses(built_in_git, tmp_path):
    from kernels._rust import Metadata

    variant = tmp_path / "torch-cpu"
    shutil.copytree(built_in_git / "build" / "torch-cpu", variant)
    metadata = json.loads((variant / "metadata.json").read_text())
    metadata["kernels-minver"] = "0.17"
    metadata["provenance"]["kernel"]["commit"] = metadata["provenance"]["kernel"]["commit"][:7]
    (variant / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(Exception):
        Metadata.read_from_file(variant / "metadata.json")  # the loader's own verdict
    result = subprocess.run([sys.executable, "-m", "kernel_builder", "check-builds", str(variant)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "kernels-minver '0.17' is not a three-part version" in result.stdout
    assert "provenance.kernel.commit" in result.stdout and "is not a full commit id" in result.stdout
    # `hash` rewrites metadata.json: it refuses the bad version with a message, not a traceback.
    rehash = subprocess.run([sys.executable, "-m", "kernel_builder", "hash", str(variant)], capture_output=True, text=True, timeout=120)
    assert rehash.returncode == 1 and "Traceback" not in rehash.stderr
    assert "kernels-minver '0.17' is not a three-part version" in rehash.stderr
