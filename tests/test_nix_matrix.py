"""The Nix side, evaluated with real `nix` offline: the matrix, the lock reader, the kernel flake's
outputs against golden data, Python and Nix agreeing on variant names, `nix flake show`/`check`,
and the CLI's messages when Nix cannot be used. Nothing here builds; tests/test_nix_build.py does.

Also the harness the Nix tests share: a Nix configuration independent of the machine's nix.conf,
a copy of this repository's files as the `kernel-builder` flake input (a `path:` of the checkout
itself would copy .venv into the store), and tests/nix/host-nixpkgs as nixpkgs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO
from kernel_builder.variants import load_matrix

SHIM = REPO / "tests" / "nix" / "host-nixpkgs"
GOLDEN = REPO / "tests" / "nix" / "golden"
SYSTEM = "x86_64-linux"
NIX_MISSING = "nix is not installed (scripts/test.sh installs Debian's nix-bin as root)"

pytestmark = [pytest.mark.nix, pytest.mark.skipif(shutil.which("nix") is None, reason=NIX_MISSING)]

# The kernel flake of docs/nix.md (its kernel-builder input is replaced in the tests).
KERNEL_FLAKE = """\
{
  description = "A kernel built by kernel-builder";
  inputs.kernel-builder.url = "github:OWNER/kernel-builder";
  inputs.nixpkgs.follows = "kernel-builder/nixpkgs";
  outputs = { self, kernel-builder, ... }:
    kernel-builder.lib.genKernelFlakeOutputs {
      inherit self;
      path = ./.;%s
    };
}
"""


# -- harness -----------------------------------------------------------------------------------

def nix_environment(home: Path) -> dict[str, str]:
    """Variables for every Nix process of the tests: single-user, no substituters, no registry,
    the sandbox on with the host folders the shim's builds use; /etc/nix is never read."""
    conf = home / "nix-conf"
    conf.mkdir(parents=True, exist_ok=True)
    registry = conf / "registry.json"
    registry.write_text('{"flakes": [], "version": 2}\n')
    config = "\n".join([
        "experimental-features = nix-command flakes",
        "build-users-group =",
        "sandbox = true",
        "sandbox-paths = /bin /usr /lib /lib64 /etc/debian_version /etc/alternatives",
        "substituters =",
        f"flake-registry = {registry}",
        "warn-dirty = false",
        "max-jobs = 2",
        "connect-timeout = 5",
    ])
    return {"NIX_CONF_DIR": str(conf), "NIX_USER_CONF_FILES": str(conf / "none.conf"), "NIX_CONFIG": config}


def kernel_builder_source(dest: Path) -> Path:
    """This checkout's tracked and untracked-but-not-ignored files (what a commit would hold)."""
    dest.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True)
    if listed.returncode == 0:
        for rel in filter(None, listed.stdout.decode().split("\0")):
            if rel.split("/", 1)[0].startswith(".venv"):  # scripts/test.sh's .venv-cu130 is not ignored
                continue
            source = REPO / rel
            if source.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / rel)
    else:  # not a git checkout
        shutil.copytree(REPO, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "__pycache__", "*.egg-info", ".pytest_cache"))
    return dest


def builder_provenance() -> dict[str, str]:
    """kernel-builder's own commit, as the local engine records it, for the Nix builds too (the
    copy above has no .git): both engines then write the same provenance."""
    from kernel_builder.provenance import builder_git

    state = builder_git()
    return {"KERNEL_BUILDER_SOURCE_COMMIT": state.commit, "KERNEL_BUILDER_SOURCE_DIRTY": "1" if state.dirty else ""} if state else {}


def override_args(source: Path) -> list[str]:
    """For a kernel flake: our flake library from `source`, with the host shim as its nixpkgs."""
    return ["--override-input", "kernel-builder", f"path:{source}", "--override-input", "kernel-builder/nixpkgs", f"path:{SHIM}"]


def write_kernel_flake(kernel: Path, extra: str = "") -> None:
    (kernel / "flake.nix").write_text(KERNEL_FLAKE % extra)


def run_nix(args: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["nix", *args], capture_output=True, text=True, env={**os.environ, **env}, cwd=cwd, timeout=timeout)


def nix_json(args: list[str], env: dict[str, str]) -> object:
    result = run_nix(["eval", "--json", *args], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kb_cli(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter."""
    full = {**os.environ, **(env or {})}
    full.pop("KERNEL_BUILDER_CUDA_ARCHS", None)
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=full, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def nix_env(tmp_path_factory) -> dict[str, str]:
    return nix_environment(tmp_path_factory.mktemp("nix-home"))


@pytest.fixture(scope="module")
def kb_source(tmp_path_factory) -> Path:
    return kernel_builder_source(tmp_path_factory.mktemp("kernel-builder") / "src")


# -- the matrix (pure, no inputs) ----------------------------------------------------------------

def test_nix_reads_the_same_build_sets_as_python(nix_env):
    sets = nix_json(["--file", str(REPO / "nix" / "lib.nix"), "buildSets"], nix_env)
    python = load_matrix()
    assert len(sets) == len(python)
    for raw, parsed in zip(sets, python):
        assert raw["torch"] == parsed.torch and raw["backend"] == parsed.backend
        assert raw.get("version") == parsed.version
        assert tuple(raw["systems"]) == parsed.systems and raw["required"] == parsed.required
        assert tuple(raw.get("abis", ["cxx11"])) == parsed.abis


def test_required_sets_and_systems(nix_env):
    required = nix_json(["--file", str(REPO / "nix" / "lib.nix"), "requiredBuildSets"], nix_env)
    assert len(required) == sum(s.required for s in load_matrix())
    systems = nix_json(["--file", str(REPO / "nix" / "lib.nix"), "systems"], nix_env)
    assert set(systems) == {system for s in load_matrix() for system in s.systems}


def test_flake_library_evaluates_without_fetching_nixpkgs(nix_env, kb_source):
    # The flake's nixpkgs input pins GitHub, which this machine cannot reach: `lib` must not need it.
    systems = nix_json(["--offline", f"path:{kb_source}#lib.systems"], nix_env)
    assert "x86_64-linux" in systems
    torch_versions = nix_json(["--offline", f"path:{kb_source}#lib.torchVersions"], nix_env)
    assert {"2.12", "2.13"} <= set(torch_versions)


def test_the_committed_flake_lock_pins_nixpkgs_and_stays_untouched(nix_env, kb_source):
    lock = json.loads((REPO / "flake.lock").read_text())
    node = lock["nodes"][lock["nodes"]["root"]["inputs"]["nixpkgs"]]
    assert node["locked"]["type"] == "github" and len(node["locked"]["rev"]) == 40 and node["locked"]["narHash"].startswith("sha256-")
    assert node["original"] == {"owner": "NixOS", "ref": "nixos-unstable", "repo": "nixpkgs", "type": "github"}
    before = (kb_source / "flake.lock").read_bytes()
    result = run_nix(["flake", "show", "--offline", "--no-write-lock-file", "--override-input", "nixpkgs", f"path:{SHIM}", f"path:{kb_source}"], nix_env)
    assert result.returncode == 0, result.stderr
    assert "kernel-builder" in result.stdout and "genKernelFlakeOutputs" not in result.stdout
    assert (kb_source / "flake.lock").read_bytes() == before


# -- the kernel flake: golden evaluation -------------------------------------------------------------

def golden_kernel(tmp_path: Path, extra: str = "") -> Path:
    kernel = tmp_path / "golden"
    shutil.copytree(GOLDEN / "kernel", kernel)
    write_kernel_flake(kernel, extra)
    return kernel


def flake_view(kernel: Path, nix_env, kb_source, system: str = SYSTEM) -> dict:
    args = ["--offline", "--no-write-lock-file", *override_args(kb_source)]
    view = nix_json([*args, f"path:{kernel}#kernelBuilder.systems.{system}"], nix_env)
    return {key: view[key] for key in ("python", "available", "bundle", "default", "unlocked")}


def test_kernel_flake_outputs_match_golden(tmp_path, nix_env, kb_source):
    kernel = golden_kernel(tmp_path)
    args = ["--offline", "--no-write-lock-file", *override_args(kb_source)]
    got = {
        "variants": nix_json([*args, f"path:{kernel}#variants"], nix_env),
        "x86_64-linux": flake_view(kernel, nix_env, kb_source),
        "aarch64-linux": flake_view(kernel, nix_env, kb_source, "aarch64-linux"),
        "devShells": sorted(nix_json([*args, f"path:{kernel}#devShells.{SYSTEM}", "--apply", "builtins.attrNames"], nix_env)),
        "packages": sorted(nix_json([*args, f"path:{kernel}#packages.{SYSTEM}", "--apply", "builtins.attrNames"], nix_env)),
        "redistributable": sorted(nix_json([*args, f"path:{kernel}#packages.{SYSTEM}.redistributable",
                                            "--apply", "d: builtins.filter (n: builtins.substring 0 5 n == \"torch\") (builtins.attrNames d)"], nix_env)),
    }
    expected_file = GOLDEN / "kernel-outputs.json"
    if os.environ.get("KB_UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(expected_file.read_text())


def test_torch_versions_argument_filters_the_variants(tmp_path, nix_env, kb_source):
    kernel = golden_kernel(tmp_path, '\n      torchVersions = versions: builtins.filter (v: v != "2.11") versions;')
    view = flake_view(kernel, nix_env, kb_source)
    assert view["available"] == ["torch213-cxx11-cpu-x86_64-linux", "torch213-cxx11-cu130-x86_64-linux"]


def test_fixed_output_fetches_are_named_and_hashed_like_the_lock(tmp_path, nix_env, kb_source):
    kernel = golden_kernel(tmp_path)
    args = ["--offline", "--no-write-lock-file", *override_args(kb_source)]
    fetches = nix_json([*args, f"path:{kernel}#kernelBuilder.systems.{SYSTEM}.fetches.torch213-cxx11-cpu-x86_64-linux"], nix_env)
    lock = json.loads((kernel / "kernel-builder.lock.json").read_text())
    artifacts = lock["toolchains"]["torch2.13-cpu-py3.11-x86_64-linux"]["artifacts"]
    assert [(f["filename"], f["sha256"]) for f in fetches] == [(a["filename"], a["sha256"]) for a in artifacts]
    # The golden lock's fake wheels hold "<filename>\n": adding such a file must give exactly
    # the store path the fetchurl derivation expects (what the CLI relies on to skip downloads).
    added = []
    for fetch in fetches:
        wheel = tmp_path / "wheels" / fetch["filename"]
        wheel.parent.mkdir(exist_ok=True)
        wheel.write_text(fetch["filename"] + "\n")
        result = subprocess.run(["nix-store", "--add-fixed", "sha256", str(wheel)], capture_output=True, text=True, env={**os.environ, **nix_env})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == fetch["path"]
        added.append(fetch["path"])
    subprocess.run(["nix-store", "--delete", *added], capture_output=True, env={**os.environ, **nix_env})


def test_a_missing_or_stale_lock_fails_evaluation_saying_what_to_do(tmp_path, nix_env, kb_source):
    kernel = golden_kernel(tmp_path)
    args = ["eval", "--json", "--offline", "--no-write-lock-file", *override_args(kb_source), f"path:{kernel}#variants"]
    (kernel / "build.toml").write_text((kernel / "build.toml").read_text() + "\n# edited\n")
    stale = run_nix(args, nix_env)
    assert stale.returncode != 0
    assert "was made for another build.toml" in stale.stderr and "run `kernel-builder lock`" in stale.stderr
    (kernel / "kernel-builder.lock.json").unlink()
    missing = run_nix(args, nix_env)
    assert missing.returncode != 0
    assert "kernel-builder.lock.json is missing" in missing.stderr and "run `kernel-builder lock`" in missing.stderr


# -- Python and Nix agree on every variant name ------------------------------------------------------

EVERY_BACKEND_TOML = """\
[general]
name = "every"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu", "cuda", "rocm", "xpu", "metal", "neuron"]

[torch]
src = ["torch-ext/torch_binding.cpp"]
%s"""


def every_backend_kernel(parent: Path) -> Path:
    kernel = parent / "every"
    sections = ""
    files = ["torch-ext/torch_binding.cpp", "torch-ext/every/__init__.py"]
    for backend, src in {"cpu": "k.cpp", "cuda": "k.cu", "rocm": "k_rocm.cu", "xpu": "k_xpu.cpp", "metal": "k.metal"}.items():
        sections += f'\n[kernel.k_{backend}]\nbackend = "{backend}"\ndepends = ["torch"]\nsrc = ["k/{src}"]\n'
        files.append(f"k/{src}")
    for rel in files:
        (kernel / rel).parent.mkdir(parents=True, exist_ok=True)
        (kernel / rel).write_text("// test\n")
    (kernel / "build.toml").write_text(EVERY_BACKEND_TOML % sections)
    write_kernel_flake(kernel)
    return kernel


def test_python_and_nix_agree_on_every_variant_name(tmp_path, nix_env, kb_source):
    kernel = every_backend_kernel(tmp_path)
    empty = tmp_path / "empty-index"
    empty.mkdir()
    # Lock without any index (nothing resolves): the lock still lists every variant, with why.
    locked = kb_cli("lock", kernel, "--all", "--index-url", empty.as_uri(), "--find-links", str(empty))
    assert locked.returncode == 0, locked.stderr
    python = kb_cli("list-variants", kernel, "--all", "--json")
    assert python.returncode == 0, python.stderr
    python_names = sorted(v["name"] for v in json.loads(python.stdout))
    args = ["--offline", "--no-write-lock-file", *override_args(kb_source)]
    nix_names = nix_json([*args, f"path:{kernel}#variants"], nix_env)
    assert nix_names == python_names
    assert len(python_names) > 20 and {"torch213-cxx11-cu130-x86_64-linux", "torch213-cpu-aarch64-darwin"} <= set(python_names)
    # Every variant of this system that the lock has no toolchain for says why.
    view = flake_view(kernel, nix_env, kb_source)
    assert view["available"] == []
    ours = {n for n in python_names if n.endswith(f"-{SYSTEM}") or n.count("-") == 1}  # and the Python-only torch-<backend>
    assert set(view["unlocked"]) == ours
    assert view["unlocked"]["torch213-cxx11-rocm71-x86_64-linux"].startswith("no toolchain in kernel-builder.lock.json")
    assert "on the configured indexes" in view["unlocked"]["torch213-cxx11-cu130-x86_64-linux"]  # the resolver's reason


# -- nix flake show / check -------------------------------------------------------------------------

def test_nix_flake_show_and_check(tmp_path, nix_env, kb_source):
    kernel = golden_kernel(tmp_path)
    args = ["--offline", "--no-write-lock-file", *override_args(kb_source)]
    show = run_nix(["flake", "show", "--json", *args, f"path:{kernel}"], nix_env)
    assert show.returncode == 0, show.stderr
    outputs = json.loads(show.stdout)
    packages = outputs["packages"][SYSTEM]
    assert {"bundle", "default", "redistributable", "build-and-copy", "kernel-builder"} <= set(packages)
    assert {"default", "test", "torch213-cxx11-cpu-x86_64-linux", "test-torch213-cxx11-cpu-x86_64-linux"} <= set(outputs["devShells"][SYSTEM])
    check = run_nix(["flake", "check", "--no-build", *args, f"path:{kernel}"], nix_env)
    assert check.returncode == 0, check.stderr
    repo = run_nix(["flake", "check", "--no-build", "--offline", "--no-write-lock-file", "--override-input", "nixpkgs", f"path:{SHIM}", f"path:{kb_source}"], nix_env)
    assert repo.returncode == 0, repo.stderr


# -- the CLI when Nix cannot be used -------------------------------------------------------------

def fake_nix(folder: Path, version: str) -> dict[str, str]:
    """A PATH whose `nix` reports `version` (and nothing else works)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nix"
    script.write_text(f"#!/bin/sh\necho 'nix (Nix) {version}'\n")
    script.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def flake_kernel(tmp_path: Path) -> Path:
    kernel = golden_kernel(tmp_path)
    return kernel


def test_backend_nix_without_nix_says_how_to_get_it(tmp_path):
    kernel = flake_kernel(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python_dir = Path(sys.executable).parent
    result = kb_cli("build", kernel, "--backend", "nix", env={"PATH": f"{python_dir}:/nonexistent"})
    assert result.returncode == 2, result.stderr
    assert "nix is not installed" in result.stderr and "--backend local" in result.stderr and "Traceback" not in result.stderr


def test_backend_nix_with_an_old_nix_names_the_version(tmp_path):
    kernel = flake_kernel(tmp_path)
    result = kb_cli("build", kernel, "--backend", "nix", env=fake_nix(tmp_path / "old", "2.3.16"))
    assert result.returncode == 2
    assert "nix 2.3.16 is too old" in result.stderr and "2.8" in result.stderr


def test_backend_nix_with_flakes_disabled_says_how_to_enable_them(tmp_path, nix_env):
    kernel = flake_kernel(tmp_path)
    env = {**nix_env, "NIX_CONFIG": "build-users-group =\nexperimental-features ="}
    result = kb_cli("build", kernel, "--backend", "nix", env=env)
    assert result.returncode == 2
    assert "disabled" in result.stderr and "experimental-features = nix-command flakes" in result.stderr


def test_auto_stays_local_without_a_flake_and_says_why(tmp_path):
    from kbtest_util import make_kernel

    kernel = make_kernel(tmp_path)  # no flake.nix; its sources are empty files, so the build is refused later
    result = kb_cli("build", kernel, "--variant", "torch213-cxx11-cpu-x86_64-linux", "--frozen")
    assert "engine: local (no flake.nix in" in result.stderr


def test_auto_with_a_flake_but_no_usable_nix_builds_locally_and_says_why(tmp_path):
    kernel = flake_kernel(tmp_path)
    # (a variant the lock says cannot be had: the local build stops right after choosing the engine)
    result = kb_cli("build", kernel, "--frozen", "--variant", "torch213-cxx11-cu126-x86_64-linux", env=fake_nix(tmp_path / "old", "2.3.16"))
    assert result.returncode == 2
    assert "engine: local (" in result.stderr and "has a flake.nix, but nix 2.3.16 is too old" in result.stderr


def test_max_jobs_zero_is_for_remote_builders_only(tmp_path):
    kernel = flake_kernel(tmp_path)
    result = kb_cli("build", kernel, "--backend", "local", "--max-jobs", "0")
    assert result.returncode == 2 and "only the Nix engine" in result.stderr


def test_list_variants_adds_what_the_flake_does(tmp_path, nix_env, kb_source):
    kernel = golden_kernel(tmp_path)
    result = kb_cli("list-variants", kernel, "--all", *override_args(kb_source), env=nix_env)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["torch213-cxx11-cpu-x86_64-linux"].endswith("[nix: bundle]")
    assert lines["torch211-cxx11-cpu-x86_64-linux"].endswith("(optional)  [nix: redistributable]")
    assert "[nix: not built: " in lines["torch213-cxx11-cu126-x86_64-linux"]
    as_json = kb_cli("list-variants", kernel, "--json", *override_args(kb_source), env=nix_env)
    rows = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert rows["torch213-cxx11-cu130-x86_64-linux"]["nix"] == "bundle"
    # Without Nix the Python answer stands, with a warning.
    plain = kb_cli("list-variants", kernel, env={"PATH": f"{Path(sys.executable).parent}:/nonexistent"})
    assert plain.returncode == 0 and "[nix:" not in plain.stdout and "nix is not installed" in plain.stderr


def test_flake_references_are_absolute_and_refuse_unsafe_folders(tmp_path, monkeypatch):
    from kernel_builder.backends.nix import absolute_ref, flake_ref
    from kernel_builder.errors import UsageError

    monkeypatch.chdir(tmp_path)
    assert flake_ref(Path(".")) == f"path:{tmp_path}"
    assert absolute_ref("path:shim") == f"path:{tmp_path}/shim"
    assert absolute_ref("git+file:../kb?ref=main") == f"git+file:{tmp_path.parent}/kb?ref=main"
    assert absolute_ref("./shim") == f"path:{tmp_path}/shim"
    assert absolute_ref("github:NixOS/nixpkgs/nixos-unstable") == "github:NixOS/nixpkgs/nixos-unstable"
    for bad in ("with space", "hash#tag", "what?"):
        folder = tmp_path / bad
        folder.mkdir()
        with pytest.raises(UsageError, match="Nix cannot take this folder as a flake"):
            flake_ref(folder)


def test_an_input_nix_cannot_fetch_gets_a_hint(tmp_path, nix_env):
    kernel = golden_kernel(tmp_path)  # its kernel-builder input is github:OWNER/kernel-builder
    result = kb_cli("build", kernel, "--backend", "nix", env=nix_env)
    assert result.returncode == 1, result.stderr
    assert "unable to download" in result.stderr and "--override-input INPUT REF" in result.stderr and "Traceback" not in result.stderr
