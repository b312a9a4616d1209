"""Toolchain resolution, the lock, the artifact store and environments (builder/toolchains).

Resolution runs the real uv against the real package index (PyPI, which CI reaches) and against
local PEP 503 indexes made by the tests; downloads go through a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from kbtest_util import VALID_TOML, assert_bad_input, invoke, make_kernel
from kernel_builder.errors import UsageError
from kernel_builder.toolchains import Artifact, IndexSettings, LockedToolchain, LockFile, ToolchainSpec
from kernel_builder.toolchains.indexes import PYPI
from kernel_builder.toolchains.lock import LOCK_NAME
from kernel_builder.toolchains.store import ArtifactStore, FetchError, link_wheels

CPU213 = ToolchainSpec("2.13", "cpu", None, "3.11", "x86_64-linux")
CU130 = ToolchainSpec("2.13", "cuda", "13.0", "3.11", "x86_64-linux")


# ---------------------------------------------------------------------------------------------
# Index settings: pip's and uv's conventions


def test_index_settings_default_to_pypi():
    settings = IndexSettings.from_environment(environ={})
    assert settings.index_url == PYPI and settings.extra_index_urls == () and settings.find_links == () and settings.torch_index is None


def test_index_settings_command_line_beats_uv_beats_pip():
    env = {"PIP_INDEX_URL": "https://pip.example/simple", "UV_INDEX_URL": "https://uv.example/simple", "PIP_EXTRA_INDEX_URL": "https://a/simple https://b/simple",
           "PIP_FIND_LINKS": "/wheels", "KERNEL_BUILDER_TORCH_INDEX": "https://download.pytorch.org/whl"}
    settings = IndexSettings.from_environment(environ=env)
    assert settings.index_url == "https://uv.example/simple"
    assert settings.extra_index_urls == ("https://a/simple", "https://b/simple")
    assert settings.find_links == ("/wheels",)
    assert settings.torch_index_for("cu126") == "https://download.pytorch.org/whl/cu126"
    given = IndexSettings.from_environment(index_url="https://cli.example/simple", extra_index_urls=("https://c/simple",), environ=env)
    assert given.index_url == "https://cli.example/simple" and given.extra_index_urls == ("https://c/simple",)
    assert given.sources["index-url"] == "command line" and settings.sources["index-url"] == "UV_INDEX_URL"


def test_torch_index_comes_first_for_its_compute_backend():
    settings = IndexSettings.from_environment(extra_index_urls=("https://extra/simple",), torch_index="https://torch.example/whl/", environ={})
    args = settings.uv_arguments("cu130")
    assert args[:2] == ["--index-url", PYPI]
    assert args[2:6] == ["--extra-index-url", "https://torch.example/whl/cu130", "--extra-index-url", "https://extra/simple"]


def test_fingerprint_changes_with_the_places_looked_in():
    a = IndexSettings.from_environment(environ={})
    b = IndexSettings.from_environment(extra_index_urls=("https://x/simple",), environ={})
    assert a.fingerprint == IndexSettings.from_environment(environ={}).fingerprint != b.fingerprint


# ---------------------------------------------------------------------------------------------
# Specs and the lock file


def test_spec_keys_name_torch_compute_python_and_system():
    assert CPU213.key == "torch2.13-cpu-py3.11-x86_64-linux"
    assert CU130.key == "torch2.13-cu130-py3.11-x86_64-linux"
    assert ToolchainSpec("2.12", "cuda", "12.6", "3.12", "aarch64-linux", ("einops",)).key == "torch2.12-cu126-py3.12-aarch64-linux+einops"
    assert ToolchainSpec.from_json(CU130.to_json()) == CU130


def _toolchain(spec=CPU213, sha="a" * 64) -> LockedToolchain:
    artifact = Artifact("torch", "2.13.0+cpu", "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "https://example/torch.whl", sha, 10, "torch")
    return LockedToolchain(spec=spec, torch_version="2.13.0+cpu", artifacts=(artifact,))


def test_lock_round_trip_and_atomic_write(tmp_path):
    lock = LockFile.load(tmp_path)
    assert not lock.path.exists() and lock.variants == {}
    lock.record_toolchain("torch213-cxx11-cpu-x86_64-linux", True, "cpu", _toolchain())
    lock.record_unreachable("torch213-cxx11-cu126-x86_64-linux", True, "cuda", "3.11", "no torch for CUDA 12.6", "fp1")
    assert lock.save() and not lock.save(), "an unchanged lock is not written again"
    again = LockFile.load(tmp_path)
    assert again.toolchain_for("torch213-cxx11-cpu-x86_64-linux", "3.11") == _toolchain()
    assert again.toolchain_for("torch213-cxx11-cpu-x86_64-linux", "3.12") is None
    assert again.unreachable_reason("torch213-cxx11-cu126-x86_64-linux", "3.11", "fp1") == "no torch for CUDA 12.6"
    assert again.unreachable_reason("torch213-cxx11-cu126-x86_64-linux", "3.11", "other indexes") is None, "other indexes: resolve again"
    assert not again.changed
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_NAME], "no temporary files are left"


def test_toolchain_hash_covers_spec_and_artifacts():
    assert _toolchain().hash == _toolchain().hash
    assert _toolchain(sha="b" * 64).hash != _toolchain().hash
    assert _toolchain(spec=ToolchainSpec("2.13", "cpu", None, "3.12", "x86_64-linux")).hash != _toolchain().hash


@pytest.mark.parametrize("text, fragment", [
    ("{", "not a valid kernel-builder lock"),
    ('{"lock-version": 9}', "lock-version 9"),
    ('{"lock-version": 1, "toolchains": {"x": {}}}', "not a valid kernel-builder lock"),
])
def test_broken_lock_is_a_clear_error(tmp_path, text, fragment):
    (tmp_path / LOCK_NAME).write_text(text)
    with pytest.raises(UsageError, match=fragment) as info:
        LockFile.load(tmp_path)
    assert str(tmp_path / LOCK_NAME) in str(info.value)


def test_hand_edited_toolchain_key_is_refused(tmp_path):
    lock = LockFile.load(tmp_path)
    lock.record_toolchain("v", True, "cpu", _toolchain())
    lock.save()
    data = json.loads(lock.path.read_text())
    data["toolchains"]["renamed"] = data["toolchains"].pop(CPU213.key)
    lock.path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="edited by hand"):
        LockFile.load(tmp_path)


# ---------------------------------------------------------------------------------------------
# The artifact store: verified downloads over real HTTP


class _Server:
    """A static file server on 127.0.0.1 that can fail the first N requests with 503."""

    def __init__(self, root: Path, failures: int = 0):
        self.failures = failures
        self.requests = 0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.failures > 0:
                    outer.failures -= 1
                    self.send_error(503)
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    payload = os.urandom(300_000)
    (root / "tool-1.0-py3-none-any.whl").write_bytes(payload)
    server = _Server(root)
    artifact = Artifact("tool", "1.0", "tool-1.0-py3-none-any.whl", f"{server.url}/tool-1.0-py3-none-any.whl", hashlib.sha256(payload).hexdigest(), len(payload), "tool")
    yield server, artifact
    server.close()


def test_store_downloads_verifies_and_reuses(tmp_path, served):
    server, artifact = served
    store = ArtifactStore(tmp_path / "store")
    path = store.fetch(artifact)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256 and path.name == artifact.filename
    assert store.stats.downloaded == 1 and store.stats.bytes == artifact.size
    store.fetch(artifact)
    assert store.stats.downloaded == 1 and server.requests == 1, "a stored file is never fetched again"


def test_store_retries_server_errors(tmp_path, served):
    server, artifact = served
    server.failures = 2
    path = ArtifactStore(tmp_path / "store").fetch(artifact)
    assert path.is_file() and server.requests == 3


def test_store_refuses_a_changed_file_and_keeps_nothing(tmp_path, served):
    server, artifact = served
    wrong = Artifact(**{**artifact.__dict__, "sha256": "0" * 64})
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(FetchError, match="does not match the lock"):
        store.fetch(wrong)
    assert not store.has(wrong) and not [p for p in (tmp_path / "store").rglob("*") if p.is_file() and not p.name.startswith(".")]
    with pytest.raises(FetchError, match="bytes, the lock says"):
        store.fetch(Artifact(**{**artifact.__dict__, "size": 1}))


def test_store_names_a_missing_local_file(tmp_path):
    missing = Artifact("torch", "2.13.0+cpu", "torch.whl", (tmp_path / "nowhere" / "torch.whl").as_uri(), "a" * 64, None, "torch")
    with pytest.raises(FetchError, match="does not exist on this machine"):
        ArtifactStore(tmp_path / "store").fetch(missing)


def test_link_wheels_accepts_nix_store_names(tmp_path):
    toolchain = _toolchain()
    store_path = tmp_path / ("0123abcd-" + toolchain.artifacts[0].filename)
    store_path.write_bytes(b"x")
    (linked,) = link_wheels(toolchain, [store_path], tmp_path / "links")
    assert linked.name == toolchain.artifacts[0].filename and linked.resolve() == store_path.resolve()
    with pytest.raises(FetchError, match="were not given"):
        link_wheels(toolchain, [], tmp_path / "other")


# ---------------------------------------------------------------------------------------------
# Resolution with the real uv


def fake_wheel(directory: Path, name: str, version: str, tag: str, requires: list[str] = (), files: dict[str, str] | None = None) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD and `files`)."""
    dist = f"{name}-{version}.dist-info"
    contents = dict(files or {})
    contents[f"{dist}/METADATA"] = "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents[f"{dist}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: kernel-builder-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
    record = ""
    for key, value in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()
        record += f"{key},sha256={digest},{len(value)}\n"
    contents[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in contents.items():
            archive.writestr(key, value)
    return path


def simple_index(root: Path, wheels: list[Path]) -> str:
    """A PEP 503 index over `wheels` at `root` (file:// URL)."""
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        by_project.setdefault(wheel.name.split("-")[0], []).append(wheel)
    for project, files in by_project.items():
        folder = root / project
        folder.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../{w.name.replace("+", "%2B")}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">{w.name}</a>' for w in files)
        (folder / "index.html").write_text(f"<html><body>{links}</body></html>")
    return root.as_uri()


@pytest.fixture(scope="module")
def torch_index(tmp_path_factory) -> str:
    """A PyTorch-style index (base URL) holding a torch 2.13.0+cu126 build (metadata only)."""
    base = tmp_path_factory.mktemp("torch-index")
    cu126 = base / "cu126"
    cu126.mkdir()
    wheel = fake_wheel(cu126, "torch", "2.13.0+cu126", "cp311-cp311-manylinux_2_28_x86_64",
                       requires=['nvidia-cuda-runtime-cu12==12.6.77; platform_system == "Linux"'], files={"torch/__init__.py": ""})
    simple_index(cu126, [wheel])
    return base.as_uri()


def test_resolve_cpu_torch_prefers_a_cpu_build(monkeypatch):
    from kernel_builder.toolchains.resolve import Resolver

    settings = IndexSettings.from_environment()
    toolchain = Resolver(settings).resolve(CPU213)
    torch = toolchain.artifact("torch")
    names = {a.name for a in toolchain.artifacts}
    assert {"cmake", "ninja", "kernels", "numpy"} <= names
    assert all(len(a.sha256) == 64 and a.url and a.filename.endswith(".whl") for a in toolchain.artifacts)
    has_cpu_wheel = any(Path(d, "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").is_file() for d in settings.find_links)
    if has_cpu_wheel:  # this machine's local wheel folder (PIP_FIND_LINKS) holds the CPU build
        assert toolchain.torch_version == "2.13.0+cpu" and not toolchain.notes and toolchain.torch_backend is None
        assert not any(a.name.startswith("nvidia-") for a in toolchain.artifacts)
    else:  # PyPI alone: the CUDA wheel of the same release, said in a note
        assert toolchain.torch_backend == "cuda" and "no CPU build of torch 2.13" in toolchain.notes[0]
    assert torch.version == toolchain.torch_version


def test_resolve_cuda_torch_pins_the_matching_toolkit():
    from kernel_builder.toolchains.resolve import Resolver

    toolchain = Resolver(IndexSettings.from_environment()).resolve(CU130)
    by_name = {a.name: a for a in toolchain.artifacts}
    assert toolchain.torch_version.startswith("2.13.") and "+cpu" not in toolchain.torch_version
    assert toolchain.cuda_toolkit and toolchain.cuda_toolkit.startswith("13.0")
    assert by_name["nvidia-cuda-nvcc"].version.startswith("13.0") and by_name["nvidia-cuda-nvcc"].role == "cuda"
    assert {"nvidia-cuda-runtime", "nvidia-cuda-cccl", "nvidia-cublas"} <= set(by_name)
    assert by_name["torch"].url.startswith("https://") and by_name["torch"].size > 100_000_000


def test_unreachable_cuda_version_says_what_is_missing_and_where_it_is():
    from kernel_builder.toolchains.resolve import Resolver, Unreachable

    with pytest.raises(Unreachable) as info:
        Resolver(IndexSettings.from_environment()).resolve(ToolchainSpec("2.13", "cuda", "12.6", "3.11", "x86_64-linux"))
    message = str(info.value)
    assert "torch 2.13 for CUDA 12.6" in message and "built for CUDA 13.0" in message
    assert "--extra-index-url https://download.pytorch.org/whl/cu126" in message and "KERNEL_BUILDER_TORCH_INDEX" in message


def test_torch_index_provides_other_cuda_builds(torch_index):
    from kernel_builder.toolchains.resolve import Resolver

    toolchain = Resolver(IndexSettings.from_environment(torch_index=torch_index)).resolve(ToolchainSpec("2.13", "cuda", "12.6", "3.11", "x86_64-linux"))
    by_name = {a.name: a for a in toolchain.artifacts}
    assert toolchain.torch_version == "2.13.0+cu126"
    assert by_name["torch"].url.startswith(torch_index + "/cu126/")
    assert by_name["nvidia-cuda-nvcc-cu12"].version.startswith("12.6") and toolchain.cuda_toolkit.startswith("12.6")


def test_lock_command_records_toolchains_and_unreachable_variants(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML.replace('cuda-capabilities = ["8.0", "9.0"]\n', ""))
    result = invoke("lock", kernel, "--torch", "2.13", "--backend-type", "cuda")
    assert result.exit_code == 0, result.stderr
    lock = LockFile.load(kernel)
    assert lock.toolchain_for("torch213-cxx11-cu130-x86_64-linux", f"{os.sys.version_info.major}.{os.sys.version_info.minor}") is not None
    entry = lock.variants["torch213-cxx11-cu126-x86_64-linux"]
    assert "download.pytorch.org/whl/cu126" in next(iter(entry.unreachable.values()))
    assert "unreachable torch213-cxx11-cu130-aarch64-linux: must be built on an aarch64-linux machine" in result.stdout
    second = invoke("lock", kernel, "--torch", "2.13", "--backend-type", "cuda")
    assert "unchanged (0 toolchain(s) resolved)" in second.stdout, second.stdout


def test_lock_command_on_bad_input_is_exit_2(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML)
    assert_bad_input(invoke("lock", kernel, "--torch", "two"), "--torch 'two'")
    assert_bad_input(invoke("lock", kernel, "--variant", "torch999-foo"), "not a variant name")
