"""The Nix engine building for real (offline, tests/nix/host-nixpkgs as nixpkgs; docs/nix.md).

One copy of examples/relu gets the kernel flake of docs/nix.md and is built with
`kernel-builder build --backend nix`: torch 2.13 CPU and torch 2.12 CUDA 13.0 (CUDA code for
capability 9.0 only, to keep nvcc's time down), each toolchain from the kernel's lock. The rest
reuses what that build put in the Nix store: the bundle, build-and-copy, equality with the local
engine, the dev and test shells, a variant failing the portability gate, and a build on a remote
builder (sshd on 127.0.0.1). At the end the store paths these tests made are deleted again
(KB_TEST_KEEP_NIX_STORE=1 keeps them for the next run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbtest_util import REPO, with_default_sigint
from test_nix_matrix import (NIX_MISSING, SYSTEM, builder_provenance, kb_cli, kernel_builder_source, nix_environment, override_args, run_nix,
                             write_kernel_flake)

pytestmark = [pytest.mark.nix, pytest.mark.slow, pytest.mark.skipif(shutil.which("nix") is None, reason=NIX_MISSING)]

CPU = "torch213-cxx11-cpu-x86_64-linux"
CUDA = "torch212-cxx11-cu130-x86_64-linux"
UNIQUE_ID = "nixtest"


def copy_relu(dest: Path) -> Path:
    shutil.copytree(REPO / "examples" / "relu", dest, ignore=shutil.ignore_patterns("build", "__pycache__", ".venv"))
    write_kernel_flake(dest)
    return dest


class Engine:
    """The shared state: Nix settings, the kernel-builder source, the built kernel."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {**nix_environment(root / "home"), **builder_provenance()}
        self.source = kernel_builder_source(root / "kernel-builder")
        self.overrides = override_args(self.source)
        self.kernel = copy_relu(root / "relu")
        self.made: list[str] = []  # .drv files whose closures the teardown deletes

    def kb(self, *args: object, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return kb_cli(*args, env={**self.env, **(env or {})}, cwd=cwd)

    def flake_env(self, unique_id: str = UNIQUE_ID) -> dict[str, str]:
        """What `kernel-builder build --backend nix` tells the flake (so plain nix commands get the same derivations)."""
        return {**self.env, "KERNEL_BUILDER_UNIQUE_ID": unique_id, "KERNEL_BUILDER_CUDA_ARCHS": "9.0"}

    def paths(self, kernel: Path, unique_id: str = UNIQUE_ID) -> dict[str, dict[str, str]]:
        result = run_nix(["eval", "--json", "--impure", *self.overrides, f"path:{kernel}#kernelBuilder.systems.{SYSTEM}.paths"], self.flake_env(unique_id))
        assert result.returncode == 0, result.stderr
        paths = json.loads(result.stdout)
        self.made += [p["drv"] for p in paths.values()]
        return paths


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("nix-engine"))
    start = time.monotonic()
    result = eng.kb("build", eng.kernel, "--backend", "nix", "--variant", CPU, "--variant", CUDA, "--cuda-archs", "9.0", "--unique-id", UNIQUE_ID,
                    "--json", *eng.overrides)
    eng.build_seconds = time.monotonic() - start
    eng.build_result = result
    eng.paths(eng.kernel)
    yield eng
    if os.environ.get("KB_TEST_KEEP_NIX_STORE"):
        return
    delete_closures(eng.made, eng.env)


def delete_closures(drvs: list[str], env: dict[str, str]) -> None:
    """Delete what the tests built (variants, toolchains, kernel-builder, fetched wheels) from the
    shared store, except what something else still uses (Nix refuses those; they are left)."""
    drvs = [d for d in dict.fromkeys(drvs) if Path(d).exists()]
    if not drvs:
        return
    closure = subprocess.run(["nix-store", "-qR", "--include-outputs", *drvs], capture_output=True, text=True, env={**os.environ, **env})
    paths = [p for p in closure.stdout.split() if Path(p).exists()]
    # ... and what refers to those (the dev shells' environments, the bundle), unless alive.
    referrers = subprocess.run(["nix-store", "-q", "--referrers-closure", *paths], capture_output=True, text=True, env={**os.environ, **env})
    paths = list(dict.fromkeys([*paths, *referrers.stdout.split()]))
    for _ in range(50):  # Nix deletes nothing when one path is alive: drop it (and retry) until the rest goes
        result = subprocess.run(["nix-store", "--delete", *paths], capture_output=True, text=True, env={**os.environ, **env})
        alive = re.search(r"Cannot delete path '([^']+)'", result.stderr, re.IGNORECASE)
        if result.returncode == 0 or alive is None:
            return
        kept = subprocess.run(["nix-store", "-qR", alive.group(1)], capture_output=True, text=True, env={**os.environ, **env}).stdout.split()
        paths = [p for p in paths if p not in {alive.group(1), *kept} and Path(p).exists()]
        if not paths:
            return


def report_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_build_backend_nix_makes_two_torch_versions(engine):
    assert engine.build_result.returncode == 0, engine.build_result.stderr
    report = report_of(engine.build_result)
    assert report["backend"] == "nix" and report["ok"]
    assert {v["variant"]: v["status"] for v in report["variants"]} == {CPU: "built", CUDA: "built"}
    build = engine.kernel / "build"
    for name, torch, backend in ((CPU, "2.13", "cpu"), (CUDA, "2.12", "cuda")):
        metadata = json.loads((build / name / "metadata.json").read_text())
        assert metadata["provenance"]["kernel-builder"]["engine"] == "nix"
        assert metadata["backend"]["type"] == backend
        assert (build / name / f"_relu_{backend}_{UNIQUE_ID}.abi3.so").is_file()
    assert json.loads((build / CUDA / "metadata.json").read_text())["backend"]["archs"] == ["9.0"]
    # The toolchains came from the lock: torch 2.13 CPU and torch 2.12 for CUDA 13.0.
    lock = json.loads((engine.kernel / "kernel-builder.lock.json").read_text())
    assert lock["variants"][CPU]["toolchains"]["3.11"].startswith("torch2.13-cpu-")
    assert lock["variants"][CUDA]["toolchains"]["3.11"].startswith("torch2.12-cu130-")
    # The gate's verdict on what landed in build/, as a user would ask for it.
    for command in ("check-builds", "check-abi"):
        checked = engine.kb(command, engine.kernel)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    print(f"nix build of {CPU} and {CUDA}, from an empty store: {engine.build_seconds:.0f} s")


def test_bundle_is_the_two_variants_and_reuses_the_build(engine):
    result = run_nix(["build", "--json", "--no-link", "--impure", *engine.overrides, f"path:{engine.kernel}#bundle"], engine.flake_env())
    assert result.returncode == 0, result.stderr
    out = Path(json.loads(result.stdout)[0]["outputs"]["out"])
    # The variants, and the card upload publishes as README.md, filled from the built variants.
    assert sorted(p.name for p in out.iterdir()) == ["CARD.md", CUDA, CPU]
    card = (out / "CARD.md").read_text()
    assert CPU in card and CUDA in card and "{{" not in card, card
    assert f"{CPU}.drv" not in result.stderr and f"{CUDA}.drv" not in result.stderr, "the variants built by the CLI must be the bundle's"
    for name in (CPU, CUDA):
        assert (out / name / "metadata.json").read_bytes() == (engine.kernel / "build" / name / "metadata.json").read_bytes()


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_build_and_copy_fills_build(engine):
    build = engine.kernel / "build"
    before = {name: tree(build / name) for name in (CPU, CUDA)}
    shutil.rmtree(build)
    result = engine.kb("build-and-copy", engine.kernel, "--unique-id", UNIQUE_ID, "--cuda-archs", "9.0", *engine.overrides)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in build.iterdir() if not p.name.startswith(".")) == ["CARD.md", CUDA, CPU]
    assert os.access(build / "CARD.md", os.W_OK)
    for name in (CPU, CUDA):
        assert tree(build / name) == before[name]
        assert all(os.access(p, os.W_OK) for p in (build / name).rglob("*")), "copies from the store are made writable"


def test_nix_variants_equal_the_local_engines(engine, tmp_path):
    local = copy_relu(tmp_path / "relu")
    shutil.copy2(engine.kernel / "kernel-builder.lock.json", local / "kernel-builder.lock.json")
    result = engine.kb("build", local, "--backend", "local", "--variant", CPU, "--variant", CUDA, "--cuda-archs", "9.0", "--unique-id", UNIQUE_ID,
                       "--frozen", "--json")
    assert result.returncode == 0, result.stderr
    for name in (CPU, CUDA):
        ours, theirs = tree(engine.kernel / "build" / name), tree(local / "build" / name)
        assert sorted(ours) == sorted(theirs)
        meta_nix, meta_local = (json.loads(t.pop("metadata.json")) for t in (ours, theirs))
        assert meta_nix["provenance"]["kernel-builder"].pop("engine") == "nix"
        assert meta_local["provenance"]["kernel-builder"].pop("engine") == "local"
        assert ours == theirs, "the binaries (CPU and CUDA) and every other file are byte-identical"
        assert meta_nix == meta_local
    # The gate says the same about both.
    reports = [engine.kb("check-abi", kernel).stdout.replace(str(kernel), "K") for kernel in (engine.kernel, local)]
    assert reports[0] == reports[1] and "portable" in reports[0]


def test_dev_shell_runs_the_example_tests(engine):
    command = "python -m pytest -q -p no:cacheprovider tests && python -c 'import torch; print(torch.__version__)' && echo LOCAL_KERNELS=$LOCAL_KERNELS"
    result = engine.kb("devshell", engine.kernel, "--variant", CPU, "-c", command, *engine.overrides, env={"KERNEL_BUILDER_CUDA_ARCHS": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "2.13.0+cpu" in result.stdout
    assert f"LOCAL_KERNELS=kernel-builder-examples/relu={engine.kernel}" in result.stdout
    assert (engine.kernel / ".venv" / "bin" / "python").exists(), "the shell makes ./.venv to pip into"


def test_test_shell_loads_the_nix_built_variant(engine, tmp_path):
    # Without build/, the example's tests still load relu: from the store, through LOCAL_KERNELS.
    aside = tmp_path / "build"
    shutil.move(engine.kernel / "build", aside)
    try:
        result = run_nix(["develop", "--impure", *engine.overrides, f"path:{engine.kernel}#devShells.{SYSTEM}.test-{CPU}",
                          "--command", "bash", "-c", "python -m pytest -q -p no:cacheprovider tests && echo LOCAL_KERNELS=$LOCAL_KERNELS"],
                         engine.flake_env(), cwd=engine.kernel)
    finally:
        shutil.move(aside, engine.kernel / "build")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert re.search(rf"LOCAL_KERNELS=kernel-builder-examples/relu=/nix/store/[a-z0-9]+-{CPU}\b", result.stdout), result.stdout


LEAKY = """
extern "C" {
#include <sys/pidfd.h>  // (glibc 2.36's header lacks its own extern "C")
}
// Never called with a negative size; there only to reference pidfd_open (GLIBC_2.36).
int kb_leaky_probe(long n) { return n < 0 ? pidfd_open(0, 0) : 0; }
"""


def test_a_variant_failing_the_gate_fails_the_nix_build(engine, tmp_path):
    kernel = copy_relu(tmp_path / "relu")
    shutil.copy2(engine.kernel / "kernel-builder.lock.json", kernel / "kernel-builder.lock.json")
    source = kernel / "relu_cpu" / "relu_cpu.cpp"
    source.write_text(source.read_text() + LEAKY)
    result = engine.kb("build", kernel, "--backend", "nix", "--variant", CPU, "--unique-id", "gate", "--frozen", *engine.overrides)
    engine.paths(kernel, "gate")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "newer than glibc 2.27" in result.stderr and "pidfd_open" in result.stderr, result.stderr
    assert not (kernel / "build" / CPU).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path, engine):
    """sshd on 127.0.0.1 with throw-away keys, logging every command it runs: a Nix remote builder."""
    if os.geteuid() != 0:
        pytest.skip("the remote-builder test runs sshd as root (CI does)")
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(binary).exists(), "sshd is missing: scripts/test.sh installs openssh-server"
    d = tmp_path / "ssh"
    d.mkdir()
    for key in ("host_key", "id_builder"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "id_builder.pub").read_text())
    # The builder has a store of its own (a chroot store under remote-root): a remote builder
    # sharing the client's store would wait forever for the lock the client holds on the output.
    remote_conf = d / "remote-conf"
    remote_conf.mkdir()
    (remote_conf / "nix.conf").write_text(engine.env["NIX_CONFIG"] + f"\nstore = local?root={d}/remote-root\n")
    serve = d / "serve.sh"
    serve.write_text(f'#!/bin/sh\necho "$SSH_ORIGINAL_COMMAND" >> {d}/commands.log\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n')
    serve.chmod(0o755)
    port = free_port()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d}/host_key", f"PidFile {d}/sshd.pid", f"AuthorizedKeysFile {d}/authorized_keys",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        f"ForceCommand {serve}", f"SetEnv NIX_CONF_DIR={remote_conf} NIX_USER_CONF_FILES={remote_conf}/none.conf", "LogLevel VERBOSE", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder (no systemd to make it)
    log = open(d / "sshd.log", "w")
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, (d / "sshd.log").read_text()
            time.sleep(0.1)
        yield {"port": port, "key": d / "id_builder", "dir": d, "store": d / "remote-root" / "nix" / "store"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.rmtree(d / "remote-root", ignore_errors=True)


def test_a_variant_builds_on_a_remote_builder(engine, sshd, tmp_path):
    kernel = copy_relu(tmp_path / "relu")
    shutil.copy2(engine.kernel / "kernel-builder.lock.json", kernel / "kernel-builder.lock.json")
    builders = f"ssh://root@127.0.0.1 {SYSTEM} {sshd['key']} 1 1"
    ssh_options = f"-p {sshd['port']} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    # A new unique id makes a new variant derivation; its toolchain is already in the store.
    result = engine.kb("build", kernel, "--backend", "nix", "--variant", CPU, "--unique-id", "remote", "--frozen", "--max-jobs", "0",
                       "--builders", builders, *engine.overrides, env={"NIX_SSHOPTS": ssh_options})
    engine.paths(kernel, "remote")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"building '/nix/store/[a-z0-9]+-{CPU}\.drv' on 'ssh://root@127\.0\.0\.1'", result.stderr), result.stderr
    assert "Accepted publickey for root from 127.0.0.1" in (sshd["dir"] / "sshd.log").read_text()
    assert "nix-store --serve --write" in (sshd["dir"] / "commands.log").read_text()
    # The variant was built in the builder's store and copied back.
    built = [p.name for p in sshd["store"].iterdir() if p.name.endswith(f"-{CPU}")]
    assert built and (Path("/nix/store") / built[0] / CPU / "metadata.json").is_file()
    metadata = json.loads((kernel / "build" / CPU / "metadata.json").read_text())
    assert metadata["id"] == "_relu_cpu_remote" and metadata["provenance"]["kernel-builder"]["engine"] == "nix"


def test_an_interrupted_nix_build_leaves_no_process_and_no_variant(engine, tmp_path):
    kernel = copy_relu(tmp_path / "relu")
    shutil.copy2(engine.kernel / "kernel-builder.lock.json", kernel / "kernel-builder.lock.json")
    command = [sys.executable, "-m", "kernel_builder", "build", str(kernel), "--backend", "nix", "--variant", CPU, "--unique-id", "interrupted",
               "--frozen", *engine.overrides]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, **engine.env}, preexec_fn=with_default_sigint)
    seen = []
    for line in process.stderr:  # Nix's messages come through; interrupt once the variant compiles
        seen.append(line)
        if f"-{CPU}.drv'" in line and line.startswith("building"):
            time.sleep(3)
            process.send_signal(signal.SIGINT)
            break
    rest, _ = process.communicate(timeout=120)
    engine.paths(kernel, "interrupted")
    assert process.returncode == 130, "".join(seen) + (rest or "")
    others = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(kernel) not in others, "nix and its builds stopped with kernel-builder"
    assert not (kernel / "build" / CPU).exists()


def test_auto_picks_nix_for_a_kernel_with_a_flake(engine):
    result = engine.kb("build", engine.kernel, "--variant", CPU, "--unique-id", UNIQUE_ID, "--cuda-archs", "9.0", "--json", *engine.overrides)
    report = report_of(result)
    assert result.returncode == 0 and report["backend"] == "nix"
    assert [v["status"] for v in report["variants"]] == ["up-to-date"], "nothing to build or copy"
