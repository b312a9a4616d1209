"""Helpers for the publishing tests: the local Hub with its users, the environment that points
huggingface_hub at it, and quickly built kernels (Python-only variants, no compiler needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubserver import HubServer
from kbtest_util import REPO

ALICE_TOKEN = "hf_aliceSECRETtoken0123456789"  # writes to kb-test (her organization)
BOB_TOKEN = "hf_bobSECRETtoken9876543210"  # member of nothing
ORG = "kb-test"
RMS_REPO = "kb-test/rms-norm-py"


def hub_server(**kwargs) -> HubServer:
    args = {"users": {"alice": [ORG], "bob": []}, "tokens": {ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}, "trusted": (ORG,)}
    args.update(kwargs)
    return HubServer(**args)


def hub_environment(hub: HubServer, home: Path, token: str | None = ALICE_TOKEN) -> dict[str, str]:
    """Variables that send huggingface_hub (and kernels) to the local Hub with an empty cache.

    Not HF_HUB_DISABLE_TELEMETRY: with it, kernels 0.17.2 + huggingface_hub 2.4 send a
    user-agent ending in "; ", which the HTTP client refuses as an illegal header value.
    """
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "KERNEL_BUILDER_HUB_TIMEOUT": "1",
        "KERNEL_BUILDER_HUB_RETRY_WAIT": "0.01",
        "NO_COLOR": "1",
    }
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def use_hub(monkeypatch, hub: HubServer, home: Path, token: str | None = ALICE_TOKEN) -> None:
    """In this process: huggingface_hub read HF_ENDPOINT at import, so its constant is set too."""
    from huggingface_hub import constants

    for key, value in hub_environment(hub, home, token).items():
        monkeypatch.setenv(key, value)
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)


def kb_subprocess(*args: object, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "KERNEL_BUILDER_"))}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=full, timeout=timeout)


def build_python_only(dest: Path, name: str = "rms") -> Path:
    """A copy of examples/rms-norm-py built into build/torch-cpu and build/torch-cuda (no compiler)."""
    kernel = dest / name
    shutil.copytree(REPO / "examples" / "rms-norm-py", kernel, ignore=shutil.ignore_patterns("build", "__pycache__"))
    text = (kernel / "build.toml").read_text().replace('"kernel-builder-examples/rms-norm-py"', f'"{RMS_REPO}"')
    (kernel / "build.toml").write_text(text)
    result = kb_subprocess("build", kernel, "--no-import-check", "-q")
    assert result.returncode == 0, result.stderr
    return kernel


@pytest.fixture(scope="session")
def built_rms(tmp_path_factory) -> Path:
    return build_python_only(tmp_path_factory.mktemp("rms-built"))


def fresh_copy(built: Path, dest: Path) -> Path:
    target = dest / built.name
    shutil.copytree(built, target)
    return target


def rehash(variant: Path, **metadata_changes) -> None:
    """Rewrite a variant's metadata.json (with changes) and its digest, as `kernel-builder hash` does."""
    from kernel_builder.layout.metadata import write_metadata

    data = json.loads((variant / "metadata.json").read_text())
    data.pop("digest", None)
    data.update(metadata_changes)
    write_metadata(variant, data)


def local_tree(kernel: Path) -> dict[str, bytes]:
    """What an upload of KERNEL must leave on the branch: build/… and benchmarks/benchmark*.py."""
    files = {}
    for path in sorted((kernel / "build").rglob("*")):
        rel = path.relative_to(kernel / "build")
        if path.is_file() and len(rel.parts) > 1 and not rel.parts[0].startswith(".") and "__pycache__" not in rel.parts:
            files[f"build/{rel.as_posix()}"] = path.read_bytes()
    for path in sorted((kernel / "benchmarks").glob("benchmark*.py")) if (kernel / "benchmarks").is_dir() else []:
        files[f"benchmarks/{path.name}"] = path.read_bytes()
    return files


def published(hub: HubServer, repo_id: str, revision: str) -> dict[str, bytes]:
    """The branch's build/ and benchmarks/ files as the server stores them."""
    return {p: b.data for p, b in hub.files(repo_id, revision).items() if p.startswith(("build/", "benchmarks/"))}
