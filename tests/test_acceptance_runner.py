"""The acceptance runner's pure parts (scripts/acceptance.py): no builds, no network, no GPU."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_runner():
    spec = importlib.util.spec_from_file_location("acceptance_runner", REPO / "scripts" / "acceptance.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


acc = _load_runner()


def make_kernel(root: Path, name: str, repo_id: str | None, *, tests: str = "", variants: tuple[str, ...] = (), module: str | None = None) -> Path:
    """A kernel copy with build.toml, optional tests and fake variant folders."""
    kernel = root / name
    kernel.mkdir(parents=True)
    hub = f'\n[general.hub]\nrepo-id = "{repo_id}"\n' if repo_id else ""
    (kernel / "build.toml").write_text(f'[general]\nname = "{name}"\nversion = 1\nbackends = ["cpu"]\n{hub}')
    if tests:
        (kernel / "tests").mkdir()
        (kernel / "tests" / "test_it.py").write_text(tests)
    for variant in variants:
        (kernel / "build" / variant).mkdir(parents=True)
        (kernel / "build" / variant / "metadata.json").write_text("{}")
    if module:
        (kernel / "torch-ext" / module).mkdir(parents=True)
        (kernel / "torch-ext" / module / "__init__.py").write_text("")
    return kernel


# ---- pytest summary ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("..s\n2 passed, 1 skipped in 0.52s", {"passed": 2, "skipped": 1, "failed": 0, "errors": 0}),
        ("x\n===== 3 failed, 10 passed, 2 warnings in 12.01s =====", {"passed": 10, "failed": 3, "skipped": 0}),
        ("E ImportError\n1 error in 0.30s", {"errors": 1, "passed": 0}),
        ("5 passed, 1 xfailed, 4 deselected in 1.0s", {"passed": 5, "xfailed": 1}),
        ("no tests ran in 0.01s", {"passed": 0, "failed": 0}),
    ],
)
def test_parse_pytest_summary(output: str, expected: dict) -> None:
    counts = acc.parse_pytest_summary(output)
    assert {k: counts[k] for k in expected} == expected


def test_parse_pytest_summary_without_summary_line() -> None:
    assert acc.parse_pytest_summary("Segmentation fault (core dumped)") == {}


def test_parse_pytest_summary_ignores_earlier_lines() -> None:
    text = "test_x.py::test_a 1 passed in the first line? no\n4 passed, 2 failed in 3.2s"
    assert acc.parse_pytest_summary(text)["failed"] == 2


# ---- LOCAL_KERNELS / PYTHONPATH ----------------------------------------------------------------


def test_requested_repo_ids_and_imports() -> None:
    source = 'import kernels\nfrom tinygrad_rms import x\nk = kernels.get_kernel("org/a", version=1)\nget_kernel(\n  "org/b", version=1)\n'
    assert acc.requested_repo_ids(source) == ["org/a", "org/b"]
    assert {"kernels", "tinygrad_rms"} <= acc.imported_modules(source)


def test_local_kernels_value_maps_repo_ids_to_copies(tmp_path: Path) -> None:
    a = make_kernel(tmp_path / "examples", "symbol-conflicts", "kernels-test/symbol-conflicts")
    b = make_kernel(tmp_path / "examples", "symbol-conflicts2", "kernels-test/symbol-conflicts2")
    index = acc.repo_index(acc.kernel_dirs(tmp_path))
    value, missing = acc.local_kernels_value(["kernels-test/symbol-conflicts", "kernels-test/symbol-conflicts2", "other/x"], index)
    assert value == f"kernels-test/symbol-conflicts={a}:kernels-test/symbol-conflicts2={b}"
    assert missing == ["other/x"]


def test_local_kernels_value_rejects_colon_paths(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="LOCAL_KERNELS"):
        acc.local_kernels_value(["o/k"], {"o/k": tmp_path / "a:b"})


def test_same_name_in_two_groups_keeps_both_repo_ids(tmp_path: Path) -> None:
    community = make_kernel(tmp_path / "community", "relu", "kernels-community/relu")
    example = make_kernel(tmp_path / "examples", "relu", "kernels-test/relu")
    index = acc.repo_index(acc.kernel_dirs(tmp_path))
    assert index == {"kernels-community/relu": community, "kernels-test/relu": example}
    assert [acc.kernel_key(k) for k in acc.kernel_dirs(tmp_path)] == ["community/relu", "examples/relu"]


def test_pythonpath_dir_links_module_to_variant(tmp_path: Path) -> None:
    kernel = make_kernel(tmp_path / "work" / "community", "tinygrad-rms", None, variants=("torch211-cxx11-cu130-x86_64-linux",), module="tinygrad_rms")
    variant = kernel / "build" / "torch211-cxx11-cu130-x86_64-linux"
    folder = acc.pythonpath_dir(tmp_path / "work", kernel, acc.module_name(kernel), variant)
    assert (folder / "tinygrad_rms").resolve() == variant.resolve()
    again = acc.pythonpath_dir(tmp_path / "work", kernel, "tinygrad_rms", variant)  # idempotent
    assert again == folder


def test_module_name_falls_back_to_general_name(tmp_path: Path) -> None:
    kernel = make_kernel(tmp_path, "causal-conv1d", None)
    assert acc.module_name(kernel) == "causal_conv1d"


def test_test_environment_puts_our_folder_first(tmp_path: Path) -> None:
    env = acc.test_environment({"PYTHONPATH": "/tmp/site", "X": "1"}, tmp_path, "o/k=/p")
    assert env["PYTHONPATH"] == f"{tmp_path}{os.pathsep}/tmp/site"
    assert env["LOCAL_KERNELS"] == "o/k=/p" and env["HF_HUB_OFFLINE"] == "1" and env["X"] == "1"


def test_pytest_command_isolates_from_outer_config(tmp_path: Path) -> None:
    command = acc.pytest_command("python3", tmp_path, ["-k", "fast"])
    assert command[:4] == ["python3", "-m", "pytest", "tests"]
    assert command[command.index("--confcutdir") + 1] == str(tmp_path)
    assert command[command.index("-c") + 1] == os.devnull and command[-2:] == ["-k", "fast"]


# ---- variant choice ----------------------------------------------------------------------------

CPU213 = {"torch": "2.13.0+cpu", "cuda": None, "machine": "x86_64", "system": "linux", "gpu": False}
CU211 = {"torch": "2.11.0+cu130", "cuda": "13.0", "machine": "x86_64", "system": "linux", "gpu": True}


@pytest.mark.parametrize(
    ("names", "facts", "expected"),
    [
        (["torch211-cxx11-cu130-x86_64-linux", "torch213-cxx11-cpu-x86_64-linux"], CPU213, "torch213-cxx11-cpu-x86_64-linux"),
        (["torch211-cxx11-cu130-x86_64-linux", "torch213-cxx11-cpu-x86_64-linux"], CU211, "torch211-cxx11-cu130-x86_64-linux"),
        (["torch-stable-abi210-cu130-x86_64-linux", "torch-stable-abi211-cu130-x86_64-linux", "torch211-cxx11-cu130-x86_64-linux"], CU211, "torch-stable-abi211-cu130-x86_64-linux"),
        (["torch-stable-abi212-cu130-x86_64-linux"], CU211, None),
        (["torch-stable-abi211-cpu-x86_64-linux"], CPU213, "torch-stable-abi211-cpu-x86_64-linux"),
        (["torch-cpu", "torch-universal"], CPU213, "torch-cpu"),
    ],
)
def test_fallback_variant(names: list[str], facts: dict, expected: str | None) -> None:
    assert acc.fallback_variant(names, facts) == expected


def test_environment_label() -> None:
    assert acc.environment_label(CU211) == "torch211-cu130-gpu"
    assert acc.environment_label(CPU213) == "torch213-cpu"


# ---- build records -----------------------------------------------------------------------------


def test_gate_status() -> None:
    assert acc.gate_status({"status": "built"}) == "pass"
    gate_error = "v failed its checks; it was not installed:\n  v: _x.abi3.so: GLIBC_2.34 reference pthread_once (x.o)"
    assert acc.gate_status({"status": "failed", "error": gate_error}) == "FAIL"
    assert acc.gate_findings(gate_error) == ["v: _x.abi3.so: GLIBC_2.34 reference pthread_once (x.o)"]
    other = "v failed its checks; it was not installed:\n  v: import check failed: the kernel does not load"
    assert acc.gate_status({"status": "failed", "error": other}).startswith("n/a")
    assert acc.gate_status({"status": "failed", "error": "`cmake --build` failed"}) == "n/a (not compiled)"


def test_parse_list_elf_and_arch_check() -> None:
    text = "ELF file    1: _relu.abi3.1.sm_75.cubin\nELF file    2: _relu.abi3.2.sm_80.cubin\nELF file    3: _relu.abi3.3.sm_90.cubin"
    found = acc.parse_list_elf(text)
    assert found == ["sm_75", "sm_80", "sm_90"]
    assert acc.arch_check(found, ["sm_75", "sm_80", "sm_90"]) == "ok"
    assert acc.arch_check(found + ["sm_50"], ["sm_75", "sm_80", "sm_90"]).startswith("FAIL")
    assert acc.parse_list_elf("ELF file 1: a.sm_100a.cubin ELF file 2: a.sm_90.cubin") == ["sm_90", "sm_100a"]


def test_read_kernel_list(tmp_path: Path) -> None:
    assert acc.read_kernel_list("relu, rotary  activation") == ["relu", "rotary", "activation"]
    listing = tmp_path / "list.txt"
    listing.write_text("# acceptance\nrelu\n\ncausal-conv1d  # slow\n")
    assert acc.read_kernel_list(str(listing)) == ["relu", "causal-conv1d"]


def test_copy_kernel_keeps_existing_build(tmp_path: Path) -> None:
    src = make_kernel(tmp_path / "src", "relu", "o/relu", tests="def test_a():\n    pass\n", variants=("torch213-cxx11-cpu-x86_64-linux",))
    dst = tmp_path / "work" / "community" / "relu"
    (dst / "build" / "torch211-cxx11-cu130-x86_64-linux").mkdir(parents=True)
    acc.copy_kernel(src, dst)
    assert (dst / "tests" / "test_it.py").is_file()
    assert (dst / "build" / "torch211-cxx11-cu130-x86_64-linux").is_dir()
    assert not (dst / "build" / "torch213-cxx11-cpu-x86_64-linux").exists()  # the source's build/ is never copied


# ---- negative cases ----------------------------------------------------------------------------

CASE = acc.NegativeCase("x", "examples/relu", "cuda", (r"empty set of capabilities", r"kernel relu\b"))


def test_judge_negative_accepts_early_clear_refusal() -> None:
    message = "error: cannot build relu:\n  CUDA kernel relu: empty set of capabilities after intersection"
    assert acc.judge_negative(CASE, 2, message, []) == []


def test_judge_negative_reports_every_problem() -> None:
    problems = acc.judge_negative(CASE, 0, "relu.cu:1: fatal error: cutlass/cutlass.h: No such file or directory", ["build/torch211-cxx11-cu130-x86_64-linux/"])
    text = "\n".join(problems)
    assert "succeeded" in text and "empty set" in text and "too late" in text and "left behind" in text


def test_compiled_leftovers(tmp_path: Path) -> None:
    kernel = make_kernel(tmp_path, "relu", None)
    assert acc.compiled_leftovers(kernel) == []
    (kernel / "build" / ".kernel-builder" / "work" / "v").mkdir(parents=True)
    (kernel / "build" / ".kernel-builder" / "work" / "v" / "relu.cu.o").write_bytes(b"")
    (kernel / "build" / "torch213-cxx11-cpu-x86_64-linux").mkdir()
    (kernel / "build" / "torch213-cxx11-cpu-x86_64-linux" / "metadata.json").write_text("{}")
    left = acc.compiled_leftovers(kernel)
    assert left[0] == "build/torch213-cxx11-cpu-x86_64-linux/" and left[1].endswith("relu.cu.o")


def test_apply_edits_requires_one_occurrence(tmp_path: Path) -> None:
    toml = tmp_path / "build.toml"
    toml.write_text(acc.RELU_CUDA + "\n")
    case = next(c for c in acc.NEGATIVE_CASES if c.name == "relu-missing-cutlass")
    acc.apply_edits(toml, case.edits)
    assert 'depends = ["torch", "cutlass_3_8"]' in toml.read_text()
    with pytest.raises(SystemExit, match="one occurrence"):
        acc.apply_edits(toml, case.edits)


def test_every_negative_case_has_expectations() -> None:
    names = [c.name for c in acc.NEGATIVE_CASES]
    assert len(names) == len(set(names)) == 8
    assert all(c.expect and c.torch in ("cuda", "cpu") for c in acc.NEGATIVE_CASES)


# ---- table -------------------------------------------------------------------------------------


def _results() -> dict:
    ok = {"check_builds": {"rc": 0}, "check_abi": {"rc": 0}}
    cuda = {"variant": "torch211-cxx11-cu130-x86_64-linux", "status": "built", "gate": "pass", "so_bytes": 3 * 2**20,
            "elf_archs": ["sm_90"], **ok}
    cpu = {"variant": "torch213-cxx11-cpu-x86_64-linux", "status": "built", "gate": "pass", "so_bytes": 2**19, **ok}
    cpu_test = {"variant": cpu["variant"], "status": "passed", "passed": 2, "failed": 0, "skipped": 0, "errors": 0}
    return {
        "kernels": {
            "community/relu": {
                "builds": {"venv-cu130@9.0": {"seconds": 150.4, "variants": [cuda]},
                           "venv": {"seconds": 31.0, "variants": [cpu]}},
                "tests": {"torch213-cpu": cpu_test},
            },
            "examples/relu-archs-subset": {
                "has_tests": False,
                "builds": {"venv-cu130": {"seconds": 400, "variants": [dict(cuda, elf_archs=["sm_75", "sm_80", "sm_90"], archs_check="ok")]}},
                "tests": {},
            },
            "examples/broken": {
                "builds": {"venv": {"seconds": 12, "variants": [{"variant": cpu["variant"], "status": "failed", "gate": "FAIL"}]},
                           "venv-old": {"seconds": 12, "variants": [dict(cpu, check_abi={"rc": 1}, check_builds={"rc": 1})]}},
            },
        },
        "negative": {"relu-caps-7.0": {"ok": True, "rc": 2, "seconds": 0.4, "problems": [], "expect": [r"empty set of capabilities"],
                                      "message": "warning: no edition\nerror: cannot build relu:\n  CUDA kernel relu: empty set of capabilities"}},
    }


def _row(table: str, start: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(start))


def test_render_table() -> None:
    table = acc.render_table(_results())
    assert table.splitlines()[0].startswith("| kernel | build with | variants | build s")
    assert _row(table, "| community/relu | venv |") == (
        "| community/relu | venv | torch213-cxx11-cpu-x86_64-linux | 31 | 0.5 MiB | pass | ok | torch213-cpu: 2/0/0 |")
    assert _row(table, "| community/relu | venv-cu130@9.0 |").endswith("| 3.0 MiB | pass | ok | pending GPU run |")
    subset = _row(table, "| examples/relu-archs-subset ")
    assert "pass; SASS sm_75 sm_80 sm_90: ok" in subset and "no tests/" in subset
    broken = _row(table, "| examples/broken | venv |")
    assert "(FAILED)" in broken and "| FAIL | – |" in broken
    assert "| pass (check-abi FAIL) | FAIL |" in _row(table, "| examples/broken | venv-old |")
    assert "| relu-caps-7.0 | yes | 2 | 0.4 | CUDA kernel relu: empty set of capabilities |" in table.splitlines()


def test_gpu_results_replace_pending() -> None:
    record = {"variant": "torch211-cxx11-cu130-x86_64-linux", "status": "failed", "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    gpu = {"kernels": {"community/relu": {"tests": {"torch211-cu130-gpu": record}}}}
    table = acc.render_table(acc.merge_results([_results(), gpu]))
    assert _row(table, "| community/relu | venv-cu130@9.0 |").endswith("| torch211-cu130-gpu: 1/1/0 (failed) |")


def test_results_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with acc.results_file(path) as data:
        data["kernels"]["a/b"] = {"builds": {}, "tests": {}}
    with acc.results_file(path) as data:
        assert "a/b" in data["kernels"] and data["negative"] == {}


def test_bundle_includes_kernels_that_tests_load(tmp_path: Path) -> None:
    loader = 'get_kernel("kernels-test/symbol-conflicts", version=1)\nget_kernel("kernels-test/symbol-conflicts2", version=1)\n'
    plain = make_kernel(tmp_path / "examples", "symbol-conflicts", "kernels-test/symbol-conflicts")
    tested = make_kernel(tmp_path / "examples", "symbol-conflicts2", "kernels-test/symbol-conflicts2", tests=loader)
    other = make_kernel(tmp_path / "fullarch", "relu", "kernels-test/relu", tests="def test_x():\n    pass\n")
    kernels = acc.kernel_dirs(tmp_path)
    assert acc.kernels_to_bundle(kernels, {"examples"}) == [plain, tested]
    assert other in acc.kernels_to_bundle(kernels, None)


def test_key_line_prefers_the_expected_line() -> None:
    message = "warning: build.toml has no edition\nerror: nothing of x can be built:\n  cuda: CUDA 13.0 is newer than general.cuda.maxver 12.9"
    assert acc.key_line(message, [r"13\.0.*newer"]) == "cuda: CUDA 13.0 is newer than general.cuda.maxver 12.9"
    assert acc.key_line(message, [r"no match"]) == "error: nothing of x can be built:"
    assert acc.key_line("", []) == ""
