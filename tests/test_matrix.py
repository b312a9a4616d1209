"""The matrix build: selection, reachability, resources, up-to-date stamps, and (slow) a real
matrix build of examples/relu from resolved toolchains, with no CUDA toolkit on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbtest_util import REPO, VALID_TOML, assert_bad_input, invoke, make_kernel
from kernel_builder.backends.matrix import machine_reason
from kernel_builder.config import load_config
from kernel_builder.errors import UsageError
from kernel_builder.layout import stamp
from kernel_builder.resources import plan_resources
from kernel_builder.variants import Selection, load_matrix, select_variants

RELU = REPO / "examples" / "relu"
RMS = REPO / "examples" / "rms-norm-py"


def names(selection: Selection, kernel: Path = RELU) -> list[str]:
    return [v.name for v in select_variants(load_config(kernel), load_matrix(), selection).variants]


# ---------------------------------------------------------------------------------------------
# Selection


def test_default_selection_is_every_required_variant_that_applies():
    chosen = names(Selection())
    matrix = load_matrix()
    required_torch = {s.torch for s in matrix if s.required and s.backend in ("cpu", "cuda")}
    assert "torch213-cxx11-cpu-x86_64-linux" in chosen and "torch212-cxx11-cu130-x86_64-linux" in chosen
    assert all(n.startswith(tuple(f"torch{t.replace('.', '')}" for t in required_torch)) for n in chosen)
    assert "torch211-cxx11-cu130-x86_64-linux" not in chosen, "optional sets need --all or --variant"
    assert "torch211-cxx11-cu130-x86_64-linux" in names(Selection(include_optional=True))


def test_filters_and_latest():
    assert names(Selection(torch=("2.12",), backend_types=("cpu",))) == ["torch212-cpu-aarch64-darwin", "torch212-cxx11-cpu-aarch64-linux", "torch212-cxx11-cpu-x86_64-linux"]
    latest = names(Selection(latest=True, backend_types=("cuda",)))
    assert latest and all(n.startswith("torch213-") for n in latest)
    assert names(Selection(names=("torch211-cxx11-cu130-x86_64-linux",))) == ["torch211-cxx11-cu130-x86_64-linux"]


def test_noarch_kernels_get_their_python_only_variants():
    assert names(Selection(), RMS) == sorted(f"torch-{b}" for b in load_config(RMS).general.backends)


@pytest.mark.parametrize("name, fragment", [
    ("torch999-foo", "not a variant name"),
    ("torch299-cxx11-cpu-x86_64-linux", "torch 2.99 is not in the variant matrix"),
    ("torch213-cxx11-cu999-x86_64-linux", "the matrix has no cu999 build set"),
    ("torch213-cxx11-rocm71-x86_64-linux", "backend rocm is not in general.backends"),
    ("torch-cpu", "gets arch variants, not torch-cpu"),
    ("torch-stable-abi213-cpu-x86_64-linux", "does not use the torch stable ABI"),
])
def test_unknown_variant_names_get_the_real_reason(name, fragment):
    with pytest.raises(UsageError, match=fragment):
        names(Selection(names=(name,)))


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UsageError, match="Did you mean torch213-cxx11-cpu-x86_64-linux"):
        names(Selection(names=("torch213-cxx11-cpu-x86_64-linu",)))


def test_bounds_exclusion_is_explained(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML.replace('[torch]\n', '[torch]\nmaxver = "2.12"\n'))
    with pytest.raises(UsageError, match=r"torch 2.13 is newer than torch.maxver 2.12"):
        names(Selection(names=("torch213-cxx11-cpu-x86_64-linux",)), kernel)


def test_cpu_only_kernel_names_the_missing_backend(tmp_path):
    toml = VALID_TOML.replace('backends = ["cpu", "cuda"]', 'backends = ["cpu"]')
    toml = toml[: toml.index("[kernel.relu]")] + toml[toml.index("[kernel.relu_cpu]"):]
    kernel = make_kernel(tmp_path, toml)
    with pytest.raises(UsageError, match="backend cuda is not in general.backends"):
        names(Selection(names=("torch213-cxx11-cu130-x86_64-linux",)), kernel)


def test_machine_reasons():
    config = load_config(RELU)
    variants = {v.name: v for v in select_variants(config, load_matrix(), Selection(include_optional=True)).variants}
    assert machine_reason(config, variants["torch213-cxx11-cpu-x86_64-linux"], "x86_64-linux") is None
    assert "aarch64-linux machine" in machine_reason(config, variants["torch213-cxx11-cu130-aarch64-linux"], "x86_64-linux")
    assert "torch 2.6" in machine_reason(config, variants["torch26-cxx98-cu124-x86_64-linux"], "x86_64-linux")


def test_build_rejects_bad_selection_before_doing_anything(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML)
    (kernel / "torch-ext" / "relu" / "__init__.py").write_text("from ._ops import ops\n")
    assert_bad_input(invoke("build", kernel, "--variant", "torch999-foo"), "not a variant name")
    assert not (kernel / "build").exists() and not (kernel / "kernel-builder.lock.json").exists()
    assert_bad_input(invoke("build", kernel, "--host", "--variant", "a", "--variant", "b"), "at most one --variant")


def test_empty_capability_intersection_is_found_before_anything_is_fetched(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML.replace('["8.0", "9.0"]', '["99.0"]'))
    (kernel / "torch-ext" / "relu" / "__init__.py").write_text("from ._ops import ops\n")
    assert_bad_input(invoke("build", kernel, "--backend-type", "cuda"), "empty set of capabilities after intersection")
    assert not (kernel / "kernel-builder.lock.json").exists()


# ---------------------------------------------------------------------------------------------
# Resources


GIB = 1 << 30


def test_resources_split_cpus_between_variants():
    plan = plan_resources(4, has_cuda=False, cpus=8, memory=64 * GIB, environ={})
    assert (plan.max_jobs, plan.cores) == (4, 2)
    plan = plan_resources(1, has_cuda=False, cpus=8, memory=64 * GIB, environ={})
    assert (plan.max_jobs, plan.cores) == (1, 8)
    plan = plan_resources(4, has_cuda=False, max_jobs=1, cpus=2, memory=None, environ={})
    assert (plan.max_jobs, plan.cores) == (1, 2)
    plan = plan_resources(4, has_cuda=False, cpus=16, memory=None, environ={"MAX_JOBS": "4"})
    assert (plan.max_jobs, plan.cores) == (4, 1)


def test_resources_budget_memory_per_nvcc_thread():
    plan = plan_resources(2, has_cuda=True, cpus=16, memory=12 * GIB, environ={})
    assert (plan.max_jobs, plan.cores) == (2, 8)
    assert plan.cuda_jobs == 2, "12 GiB / 3 GiB per nvcc thread / 2 variants"
    assert plan.nvcc_for(4) == (1, 2) and plan.nvcc_for(1) == (2, 1)
    assert plan_resources(1, has_cuda=True, cpus=16, memory=64 * GIB, environ={"NVCC_THREADS": "4"}).nvcc_for(11) == (4, 4)


@pytest.mark.parametrize("variable", ["MAX_JOBS", "NVCC_THREADS"])
@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_job_variables_are_clear_errors(variable, value):
    with pytest.raises(UsageError, match=rf"{variable}={value!r}: expected a positive whole number"):
        plan_resources(1, has_cuda=True, cpus=2, memory=GIB, environ={variable: value})


# ---------------------------------------------------------------------------------------------
# Up-to-date stamps


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True, capture_output=True)


def test_fingerprint_follows_content_not_mtime(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML)
    config = load_config(kernel)
    first = stamp.fingerprint(config, toolchain="t", options={})
    source = kernel / "relu_cpu" / "relu.cpp"
    os.utime(source, (time.time() + 100, time.time() + 100))
    assert stamp.fingerprint(config, toolchain="t", options={}) == first, "touching a file changes nothing"
    source.write_text("// edited\n")
    assert stamp.fingerprint(config, toolchain="t", options={}) != first
    assert stamp.fingerprint(config, toolchain="other", options={}) != stamp.fingerprint(config, toolchain="t", options={})
    assert stamp.fingerprint(config, toolchain="t", options={"cuda-archs": ["9.0"]}) != stamp.fingerprint(config, toolchain="t", options={})


def test_fingerprint_follows_git_head_without_running_git(tmp_path, monkeypatch):
    kernel = make_kernel(tmp_path, VALID_TOML)
    _git(kernel, "init", "-q")
    _git(kernel, "add", ".")
    _git(kernel, "commit", "-q", "-m", "one")
    head = stamp.git_fingerprint(kernel)
    (kernel / "notes.txt").write_text("x")
    _git(kernel, "add", "notes.txt")
    _git(kernel, "commit", "-q", "-m", "two")
    assert stamp.git_fingerprint(kernel) != head
    _git(kernel, "pack-refs", "--all")
    packed = stamp.git_fingerprint(kernel)
    assert packed.split("|")[0] == subprocess.run(["git", "rev-parse", "HEAD"], cwd=kernel, capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("the stamp must not run a process"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("the stamp must not run a process"))
    stamp.fingerprint(load_config(kernel), toolchain="t", options={})


def test_stamp_notices_a_changed_installed_variant(tmp_path):
    state, variant = tmp_path / "state", tmp_path / "torch213-cxx11-cpu-x86_64-linux"
    variant.mkdir()
    (variant / "__init__.py").write_text("x = 1\n")
    stamp.write_stamp(state, variant, "fp")
    assert stamp.is_up_to_date(state, variant, "fp") and not stamp.is_up_to_date(state, variant, "other")
    (variant / "__init__.py").write_text("x = 2\n")
    assert not stamp.is_up_to_date(state, variant, "fp"), "a hand-edited variant is rebuilt"
    shutil.rmtree(variant)
    assert not stamp.is_up_to_date(state, variant, "fp")


# ---------------------------------------------------------------------------------------------
# A real matrix build (slow): examples/relu from resolved toolchains, without a host CUDA toolkit


def _no_cuda_env(extra: dict | None = None) -> dict:
    """This environment without CUDA_HOME/CUDA_PATH and without any CUDA toolkit on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "KERNEL_BUILDER_CUDA_ARCHS", "CUDACXX")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "nvcc").exists())
    env.update(extra or {})
    return env


def kb(*args, env=None, timeout=3000) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=env or _no_cuda_env(), timeout=timeout)


EXPECTED = {"torch213-cxx11-cpu-x86_64-linux", "torch213-cxx11-cu130-x86_64-linux", "torch212-cxx11-cpu-x86_64-linux", "torch212-cxx11-cu130-x86_64-linux"}


@pytest.fixture(scope="module")
def matrix_relu(tmp_path_factory):
    """examples/relu built as a matrix: (kernel dir, first report, first wall time)."""
    kernel = tmp_path_factory.mktemp("matrix") / "relu"
    shutil.copytree(RELU, kernel, ignore=shutil.ignore_patterns("build", "__pycache__", "kernel-builder.lock.json"))
    assert shutil.which("nvcc", path=_no_cuda_env()["PATH"]) is None
    start = time.monotonic()
    result = kb("build", kernel, "--cuda-archs", "9.0", "--json")
    took = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-6000:]
    return kernel, json.loads(result.stdout), took


@pytest.mark.slow
def test_matrix_builds_every_reachable_required_variant(matrix_relu):
    kernel, report, took = matrix_relu
    built = {v["variant"]: v for v in report["variants"]}
    assert EXPECTED <= set(built), sorted(built)
    assert all(v["status"] == "built" for v in built.values())
    for name in EXPECTED:
        variant = kernel / "build" / name
        assert (variant / "metadata.json").is_file() and list(variant.glob("_relu_*.abi3.so"))
        assert built[name]["toolchain"].startswith(f"torch2.{name[6:8]}-"), "each variant names its toolchain"
        # The import check ran in the variant's own environment, CUDA torch included (no warning about it).
        assert not [w for w in built[name]["warnings"] if "import check" in w], built[name]["warnings"]
    cuda = json.loads((kernel / "build" / "torch213-cxx11-cu130-x86_64-linux" / "metadata.json").read_text())
    assert cuda["backend"] == {"type": "cuda", "archs": ["9.0"]}
    # What this machine cannot build is listed with the reason, not silently dropped.
    assert "download.pytorch.org/whl/cu126" in report["unreachable"]["torch213-cxx11-cu126-x86_64-linux"]
    assert "aarch64-linux machine" in report["unreachable"]["torch213-cxx11-cu130-aarch64-linux"]
    assert report["skipped"]["torch211-cxx11-cu130-x86_64-linux"].startswith("optional")
    print(f"\nmatrix build of {len(built)} variants: {took:.0f} s, {report['downloaded']} files fetched ({report['downloaded_bytes'] / 1e6:.0f} MB)")


@pytest.mark.slow
def test_cpu_variant_of_the_matrix_passes_the_example_tests_through_kernels(matrix_relu):
    kernel, _, _ = matrix_relu
    env = {**os.environ, "LOCAL_KERNELS": f"kernel-builder-examples/relu={kernel}"}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(kernel / "tests")], capture_output=True, text=True, env=env, timeout=600)
    assert tests.returncode == 0 and " passed" in tests.stdout, tests.stdout + tests.stderr
    loaded = subprocess.run([sys.executable, "-c", "import kernels, torch; from pathlib import Path; import sys; "
                             "m = kernels.get_local_kernel(Path(sys.argv[1])); print(Path(m.__file__).parent.name)", str(kernel)],
                            capture_output=True, text=True, timeout=300)
    assert loaded.stdout.strip() == "torch213-cxx11-cpu-x86_64-linux", loaded.stderr


@pytest.mark.slow
def test_second_build_resolves_downloads_and_rebuilds_nothing(matrix_relu):
    kernel, first, first_took = matrix_relu
    lock_before = (kernel / "kernel-builder.lock.json").read_bytes()
    inodes = {p: p.stat().st_ino for p in (kernel / "build").glob("torch*/*.so")}
    start = time.monotonic()
    result = kb("build", kernel, "--cuda-archs", "9.0", "--json")
    took = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resolved"] == 0 and report["downloaded"] == 0
    assert {v["variant"]: v["status"] for v in report["variants"]} == {v["variant"]: "up-to-date" for v in first["variants"]}
    assert (kernel / "kernel-builder.lock.json").read_bytes() == lock_before
    assert {p: p.stat().st_ino for p in inodes} == inodes, "nothing was reinstalled"
    print(f"\nsecond build: {took:.2f} s (first: {first_took:.0f} s)")


@pytest.mark.slow
def test_list_variants_says_what_applies_what_this_machine_can_build_and_what_is_built(matrix_relu):
    kernel, _, _ = matrix_relu
    result = kb("list-variants", kernel, "--json", "--status")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["torch213-cxx11-cpu-x86_64-linux"]["buildable"] is True and rows["torch213-cxx11-cpu-x86_64-linux"]["built"] is True
    assert rows["torch213-cxx11-cu126-x86_64-linux"]["buildable"] is False and "cu126" in rows["torch213-cxx11-cu126-x86_64-linux"]["reason"]
    assert rows["torch213-cxx11-cu130-aarch64-linux"]["buildable"] is False
    text = kb("list-variants", kernel, "--status").stdout
    assert "torch213-cxx11-cu126-x86_64-linux" in text and "not buildable here" in text


@pytest.mark.slow
def test_cpu_variant_built_from_the_cuda_wheel_is_the_same_and_loads_with_cpu_torch(matrix_relu, tmp_path):
    """The evidence behind building CPU variants of torch releases without a CPU wheel on the
    indexes (torch 2.12 here): for torch 2.13, which has both, the CPU variant built against the
    CUDA wheel has the same code, data and dynamic symbols as the one built against the CPU
    wheel, and loads and passes the example's tests with the CPU torch."""
    from elftools.elf.elffile import ELFFile

    from kernel_builder.toolchains import LockFile
    from kernel_builder.toolchains.environment import read_ready

    kernel, _, _ = matrix_relu
    lock = LockFile.load(kernel)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    cpu_env = read_ready(lock.toolchain_for("torch213-cxx11-cpu-x86_64-linux", python))
    cuda_env = read_ready(lock.toolchain_for("torch213-cxx11-cu130-x86_64-linux", python))
    if "+cpu" not in cpu_env.probe["torch"]["version"]:
        pytest.fail("the CPU toolchain of torch 2.13 should hold the CPU wheel on this machine")
    outs = {}
    for label, env in (("cpu-wheel", cpu_env), ("cuda-wheel", cuda_env)):
        out = tmp_path / label
        result = kb("build-variant", kernel, "--variant", "torch213-cxx11-cpu-x86_64-linux", "--toolchain-dir", env.dir, "--out", out,
                    "--unique-id", "evidence", "--engine", "local")
        assert result.returncode == 0, result.stderr
        outs[label] = out / "torch213-cxx11-cpu-x86_64-linux"

    def loaded_image(path: Path) -> dict:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            sections = {s.name: s.data() for s in elf.iter_sections() if s["sh_flags"] & 0x2 and s["sh_type"] != "SHT_NOBITS"}  # SHF_ALLOC
            dynamic = sorted((s.name, s["st_shndx"] == "SHN_UNDEF") for s in elf.get_section_by_name(".dynsym").iter_symbols())
        return {"sections": sections, "dynamic": dynamic}

    (a,), (b,) = outs["cpu-wheel"].glob("*.so"), outs["cuda-wheel"].glob("*.so")
    image_a, image_b = loaded_image(a), loaded_image(b)
    assert image_a["dynamic"] == image_b["dynamic"]
    assert set(image_a["sections"]) == set(image_b["sections"])
    differing = [name for name in image_a["sections"] if image_a["sections"][name] != image_b["sections"][name]]
    assert differing in ([], [".note.gnu.build-id"]), f"loaded sections differ: {differing}"
    for name in ("__init__.py", "_ops.py"):
        assert (outs["cpu-wheel"] / name).read_bytes() == (outs["cuda-wheel"] / name).read_bytes()
    # The CUDA-wheel build, loaded by the CPU torch (this interpreter's, the same 2.13 CPU wheel) through `kernels`, passes the tests.
    shutil.copytree(kernel / "tests", tmp_path / "kernel" / "tests")
    (tmp_path / "kernel" / "build").mkdir()
    shutil.copytree(outs["cuda-wheel"], tmp_path / "kernel" / "build" / "torch213-cxx11-cpu-x86_64-linux")
    env = {**os.environ, "LOCAL_KERNELS": f"kernel-builder-examples/relu={tmp_path / 'kernel'}"}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "kernel" / "tests")],
                           capture_output=True, text=True, env=env, timeout=600)
    assert tests.returncode == 0 and " passed" in tests.stdout, tests.stdout + tests.stderr


@pytest.mark.slow
def test_cuda_variant_built_in_two_folders_is_byte_identical(matrix_relu, tmp_path):
    """nvcc hashes the source's path into anonymous-namespace names, puts random numbers into
    symbol names and its process id into temporary file names; with kernel-builder's flags two
    builds of the same sources in different folders give the same bytes (docs/reliability.md)."""
    from kernel_builder.toolchains import LockFile
    from kernel_builder.toolchains.environment import read_ready

    kernel, _, _ = matrix_relu
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    cuda_env = read_ready(LockFile.load(kernel).toolchain_for("torch213-cxx11-cu130-x86_64-linux", python))
    trees = []
    for parent in (tmp_path / "one", tmp_path / "a much" / "longer folder"):
        copy = parent / "relu"
        shutil.copytree(kernel, copy, ignore=shutil.ignore_patterns("build", "__pycache__"))
        result = kb("build-variant", copy, "--variant", "torch213-cxx11-cu130-x86_64-linux", "--toolchain-dir", cuda_env.dir, "--out", copy / "out",
                    "--unique-id", "same", "--cuda-archs", "9.0", "--engine", "local", "--no-import-check")
        assert result.returncode == 0, result.stderr
        variant = copy / "out" / "torch213-cxx11-cu130-x86_64-linux"
        trees.append({p.relative_to(variant).as_posix(): p.read_bytes() for p in sorted(variant.rglob("*")) if p.is_file()})
    assert sorted(trees[0]) == sorted(trees[1])
    assert [name for name in trees[0] if trees[0][name] != trees[1][name]] == []
    assert not any(str(tmp_path).encode() in content for content in trees[0].values())
