"""Variant names (builder/standalone/naming.py), which variants a kernel gets
(builder/variants) and the `list-variants` command.

Names follow reference §2.1; applicability §2.4. Names are also checked against the `kernels`
loader's own parser, the consumer that has to understand them.
"""

from __future__ import annotations

import json
import re

import pytest
from packaging.version import Version

from kbtest_util import REPO, VALID_TOML, assert_ok, copy_kernel, corpus_dir, corpus_params, edit, invoke, run_subprocess
from kernel_builder.config import load_config, parse_document
from kernel_builder.config.parse import tomllib
from kernel_builder.standalone import naming
from kernel_builder.variants import BuildSet, applicable_variants, exclusion_reason, load_matrix

JSON_KEYS = {"name", "kind", "backend", "system", "torch", "backend_version", "abi", "stable_abi", "tvm_ffi", "required", "compute"}

# ---------------------------------------------------------------------------------------------
# naming.py


@pytest.mark.parametrize(
    "backend, version, tag",
    [
        ("cuda", "12.6", "cu126"),
        ("cuda", "13.0", "cu130"),
        ("cuda", "13", "cu130"),
        ("cuda", "12.8.1", "cu128"),
        ("rocm", "7.1", "rocm71"),
        ("rocm", "7", "rocm70"),
        ("xpu", "2025.3", "xpu20253"),
        ("xpu", "2025.3.2", "xpu20253"),
        ("xpu", "2026.0", "xpu20260"),
        ("cpu", None, "cpu"),
        ("metal", None, "metal"),
    ],
)
def test_compute_tag(backend, version, tag):
    assert naming.compute_tag(backend, version) == tag


@pytest.mark.parametrize("version, flat", [("2.13", "213"), ("13", "130"), ("2", "20"), ("0.1", "01"), ("2.6", "26"), ("2.12.1", "212")])
def test_flat_version_pads_single_component(version, flat):
    assert naming.flat_version(version) == flat


def test_arch_variant_linux_has_cxx11():
    assert naming.arch_variant("2.13", "cu130", "x86_64-linux") == "torch213-cxx11-cu130-x86_64-linux"
    assert naming.arch_variant("2.12", "rocm71", "x86_64-linux") == "torch212-cxx11-rocm71-x86_64-linux"
    assert naming.arch_variant("2.12", "xpu20253", "x86_64-linux") == "torch212-cxx11-xpu20253-x86_64-linux"
    assert naming.arch_variant("2.13", "cpu", "aarch64-linux") == "torch213-cxx11-cpu-aarch64-linux"


def test_arch_variant_seed_era_cxx98():
    assert naming.arch_variant("2.6", "cu124", "x86_64-linux", "cxx98") == "torch26-cxx98-cu124-x86_64-linux"


def test_arch_variant_darwin_and_windows_have_no_abi_tag():
    assert naming.arch_variant("2.12", "metal", "aarch64-darwin") == "torch212-metal-aarch64-darwin"
    assert naming.arch_variant("2.13", "cpu", "aarch64-darwin", "cxx11") == "torch213-cpu-aarch64-darwin"
    assert naming.arch_variant("2.7", "cu124", "x86_64-windows") == "torch27-cu124-x86_64-windows"


def test_system_spellings_are_normalised():
    assert naming.arch_variant("2.13", "cpu", "amd64-linux") == "torch213-cxx11-cpu-x86_64-linux"
    assert naming.arch_variant("2.13", "metal", "arm64-darwin") == "torch213-metal-aarch64-darwin"
    assert naming.host_system("AMD64", "Windows") == "x86_64-windows"
    assert naming.host_system("arm64", "Darwin") == "aarch64-darwin"
    assert naming.host_system("x86_64", "Linux") == "x86_64-linux"


def test_stable_abi_tvm_ffi_and_noarch_patterns():
    assert naming.stable_abi_variant("2.11", "cu126", "x86_64-linux") == "torch-stable-abi211-cu126-x86_64-linux"
    assert naming.stable_abi_variant("2.10", "metal", "aarch64-darwin") == "torch-stable-abi210-metal-aarch64-darwin"
    assert naming.tvm_ffi_variant("0.1", "cu126", "x86_64-linux") == "tvm-ffi01-cu126-x86_64-linux"
    assert naming.tvm_ffi_variant("0.1", "cpu", "aarch64-linux") == "tvm-ffi01-cpu-aarch64-linux"
    for backend in ("cpu", "cuda", "metal", "rocm", "xpu", "tpu"):
        assert naming.noarch_variant(backend) == f"torch-{backend}"


@pytest.mark.parametrize("system", ["riscv64-linux", "x86_64-freebsd", "x86_64", "", "linux-x86_64", "ppc64le-linux"])
def test_bad_system_raises(system):
    with pytest.raises(ValueError, match="unsupported system"):
        naming.arch_variant("2.13", "cpu", system)
    with pytest.raises(ValueError):
        naming.stable_abi_variant("2.11", "cpu", system)
    with pytest.raises(ValueError):
        naming.tvm_ffi_variant("0.1", "cpu", system)


def test_bad_host_raises():
    with pytest.raises(ValueError):
        naming.host_system("riscv64", "Linux")
    with pytest.raises(ValueError):
        naming.host_system("x86_64", "SunOS")


# ---------------------------------------------------------------------------------------------
# list-variants on corpus kernels


def _list(tmp_path, group, name, *flags):
    kernel_dir = copy_kernel(corpus_dir(group, name), tmp_path)  # no sources: not needed
    result = invoke("list-variants", *flags, kernel_dir)
    assert_ok(result)
    return result.stdout


def _names(tmp_path, group, name, *flags):
    return [line.split()[0] for line in _list(tmp_path, group, name, *flags).splitlines() if line.strip()]


def _required_names_from_matrix(backends: set[str]) -> set[str]:
    """Every name an all-arch [torch] kernel gets from the required sets, built here from the
    raw matrix JSON with the naming rules of the reference."""
    matrix = json.loads((REPO / "nix" / "build-matrix.json").read_text())
    names = set()
    for entry in matrix["buildSets"]:
        if not entry.get("required") or entry["backend"] not in backends:
            continue
        torch = "torch" + entry["torch"].replace(".", "")
        prefix = {"cuda": "cu", "rocm": "rocm", "xpu": "xpu"}.get(entry["backend"])
        compute = prefix + "".join(entry["version"].split(".")[:2]) if prefix else entry["backend"]
        for system in entry["systems"]:
            if system.endswith("-linux"):
                for abi in entry.get("abis", ["cxx11"]):
                    names.add(f"{torch}-{abi}-{compute}-{system}")
            else:
                names.add(f"{torch}-{compute}-{system}")
    return names


def test_relu_default_list(tmp_path):
    names = _names(tmp_path, "upstream-examples", "relu")
    for expected in ("torch213-cxx11-cu130-x86_64-linux", "torch212-metal-aarch64-darwin", "torch213-cpu-aarch64-darwin"):
        assert expected in names
    assert set(names) == _required_names_from_matrix({"cpu", "cuda", "metal", "rocm", "xpu"})
    assert names == sorted(names) and len(set(names)) == len(names)
    assert not any(n.startswith(("torch211", "torch26")) for n in names)
    assert not any("cxx11" in n for n in names if n.endswith("-darwin"))


def test_relu_all_adds_optional_sets(tmp_path):
    default = set(_names(tmp_path / "a", "upstream-examples", "relu"))
    text = _list(tmp_path / "b", "upstream-examples", "relu", "--all")
    names = [line.split()[0] for line in text.splitlines()]
    added = set(names) - default
    assert {"torch211-cxx11-cu130-x86_64-linux", "torch26-cxx98-cu124-x86_64-linux", "torch26-cxx11-cu124-x86_64-linux"} <= added
    assert default <= set(names)
    # Optional ones are marked in the text output, required ones are not.
    assert "torch26-cxx98-cu124-x86_64-linux  (optional)" in text.splitlines()
    assert "torch213-cxx11-cu130-x86_64-linux" in text.splitlines()
    # tpu / neuron are not in relu's backends.
    assert not any("tpu" in n or "neuron" in n for n in names)


def test_activation_stable_abi_for_cuda(tmp_path):
    names = _names(tmp_path, "kernels-community", "activation")
    assert "torch-stable-abi210-cu130-x86_64-linux" in names
    assert not any(re.match(r"^torch21\d-cxx11-cu", n) for n in names)
    # Backends without a stable-ABI entry keep the regular names.
    assert "torch213-cxx11-cpu-x86_64-linux" in names and "torch212-metal-aarch64-darwin" in names


def test_stable_abi_variant_is_built_with_newest_torch(tmp_path):
    kernel_dir = copy_kernel(corpus_dir("kernels-community", "activation"), tmp_path)
    data = json.loads(invoke("list-variants", "--json", "--all", kernel_dir).stdout)
    stable = [v for v in data if v["kind"] == "torch-stable-abi"]
    assert stable and all(v["torch"] == "2.13" and v["stable_abi"] == "2.10" and v["abi"] is None for v in stable)
    # The torch 2.11 cu130 set (optional) collapses into the required 2.13 one.
    (cu130,) = [v for v in stable if v["name"] == "torch-stable-abi210-cu130-x86_64-linux"]
    assert cu130["required"] is True


def test_torch_bounds_keep_only_torch212(tmp_path):
    names = _names(tmp_path, "upstream-examples", "relu-torch-bounds", "--all")
    assert names and all(n.startswith("torch212-") for n in names)
    assert "torch212-cxx11-cu126-x86_64-linux" in names and "torch212-cxx11-rocm71-x86_64-linux" in names


def test_noarch_kernel_gets_one_variant_per_backend(tmp_path):
    assert _names(tmp_path / "a", "upstream-examples", "silu-and-mul") == ["torch-cpu", "torch-cuda", "torch-metal", "torch-rocm", "torch-xpu"]
    assert _names(tmp_path / "b", "upstream-examples", "silu-and-mul", "--all") == ["torch-cpu", "torch-cuda", "torch-metal", "torch-rocm", "torch-xpu"]


def test_backends_without_kernels_become_noarch(tmp_path):
    names = _names(tmp_path, "upstream-examples", "relu-invalid-capability")
    assert {"torch-cpu", "torch-metal", "torch-xpu"} <= set(names)
    assert "torch213-cxx11-cu130-x86_64-linux" in names and "torch213-cxx11-rocm71-x86_64-linux" in names
    assert not any(re.match(r"^torch21\d.*-(cpu|metal|xpu)", n) for n in names)


def test_tvm_ffi_names(tmp_path):
    names = _names(tmp_path, "upstream-examples", "relu-tvm-ffi")
    assert names and all(n.startswith("tvm-ffi01-") for n in names)
    assert {"tvm-ffi01-cu126-x86_64-linux", "tvm-ffi01-cpu-x86_64-linux", "tvm-ffi01-xpu20253-x86_64-linux"} <= set(names)
    # Only build sets paired with a TVM-FFI version: the torch 2.13 xpu set has none.
    assert not any("xpu20260" in n for n in names)


def test_cuda_maxver_keeps_only_cu126(tmp_path):
    names = _names(tmp_path, "kernels-community", "quantization-eetq")
    cuda = [n for n in names if "-cu" in n]
    assert cuda and all("-cu126-" in n for n in cuda)
    assert "torch213-cxx11-cu126-x86_64-linux" in names


def test_json_output_shape(tmp_path):
    kernel_dir = copy_kernel(corpus_dir("upstream-examples", "relu"), tmp_path)
    result = invoke("list-variants", "--json", "--all", kernel_dir)
    assert_ok(result)
    data = json.loads(result.stdout)
    assert isinstance(data, list) and data
    assert all(isinstance(v, dict) and set(v) == JSON_KEYS for v in data)
    names = [v["name"] for v in data]
    assert names == sorted(names) and len(set(names)) == len(names)
    by_name = {v["name"]: v for v in data}
    cu = by_name["torch213-cxx11-cu130-x86_64-linux"]
    assert cu == {
        "name": "torch213-cxx11-cu130-x86_64-linux",
        "kind": "torch",
        "backend": "cuda",
        "system": "x86_64-linux",
        "torch": "2.13",
        "backend_version": "13.0",
        "abi": "cxx11",
        "stable_abi": None,
        "tvm_ffi": None,
        "required": True,
        "compute": "cu130",
    }
    assert by_name["torch211-cxx11-cu130-x86_64-linux"]["required"] is False
    assert by_name["torch213-metal-aarch64-darwin"]["abi"] is None
    # The text output lists the same names.
    text = invoke("list-variants", "--all", kernel_dir).stdout
    assert [line.split()[0] for line in text.splitlines()] == names


def test_json_noarch_has_no_compute(tmp_path):
    kernel_dir = copy_kernel(corpus_dir("upstream-examples", "silu-and-mul"), tmp_path)
    data = json.loads(invoke("list-variants", "--json", kernel_dir).stdout)
    assert all(v["kind"] == "noarch" and v["compute"] is None and v["system"] is None for v in data)


def test_json_is_byte_identical_across_processes(tmp_path):
    kernel_dir = copy_kernel(corpus_dir("kernels-community", "activation"), tmp_path)
    runs = [run_subprocess("list-variants", "--json", "--all", kernel_dir, env={"PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout == invoke("list-variants", "--json", "--all", kernel_dir).stdout


def test_list_variants_on_invalid_config_is_bad_input(tmp_path):
    kernel_dir = tmp_path / "k"
    kernel_dir.mkdir()
    (kernel_dir / "build.toml").write_text(edit(VALID_TOML, "edition = 5", "edition = 6"))
    result = invoke("list-variants", kernel_dir)
    assert result.exit_code == 2 and "general.edition" in result.stderr


# ---------------------------------------------------------------------------------------------
# Every name we emit is understood by the `kernels` loader


@pytest.mark.parametrize("kernel_dir", corpus_params("kernels-community", "upstream-examples"))
def test_names_round_trip_through_the_kernels_loader(kernel_dir):
    kv = pytest.importorskip("kernels.variants")
    config = load_config(kernel_dir, check_files=False)
    variants = applicable_variants(config, load_matrix(), include_optional=True)
    assert variants, "every corpus kernel gets at least one variant"
    for variant in variants:
        parsed = kv.parse_variant(variant.name)
        assert parsed.variant_str == variant.name
        if variant.is_noarch:
            assert isinstance(parsed, kv.NoarchVariant) and parsed.arch.backend_name == variant.backend
            continue
        assert isinstance(parsed, kv.ArchVariant)
        cpu, os_name = variant.system.split("-")
        assert (parsed.arch.platform, parsed.arch.os) == (cpu, os_name)
        backend_version = getattr(parsed.arch.backend, "version", None)
        if variant.backend_version is not None:
            assert backend_version == Version(variant.backend_version)
        framework = parsed.framework
        if variant.kind == "torch":
            assert isinstance(framework, kv.Torch) and framework.version == Version(variant.torch)
            assert framework.cxx11_abi == ({"cxx11": True, "cxx98": False}[variant.abi] if variant.abi else None)
        elif variant.kind == "torch-stable-abi":
            assert isinstance(framework, kv.TorchStableAbi) and framework.version == Version(variant.stable_abi)
        else:
            assert variant.kind == "tvm-ffi" and isinstance(framework, kv.TvmFfi) and framework.version == Version(variant.tvm_ffi)


# ---------------------------------------------------------------------------------------------
# Applicability on synthetic build sets


def _config(text: str):
    return parse_document(tomllib.loads(text), "build.toml")


CUDA_ONLY = edit(edit(VALID_TOML, 'backends = ["cpu", "cuda"]', 'backends = ["cuda"]'), 'backend = "cpu"', 'backend = "cuda"')


def test_stable_abi_collapses_to_newest_torch_and_ors_required():
    config = _config(edit(CUDA_ONLY, "[torch]\n", '[torch]\nstable-abi = "2.11"\n'))
    sets = [
        BuildSet("2.12", "cuda", "12.6", ("x86_64-linux",), required=True),
        BuildSet("2.13", "cuda", "12.6", ("x86_64-linux",), required=False),
        BuildSet("2.10", "cuda", "12.6", ("x86_64-linux",), required=True),  # older than the target
    ]
    (variant,) = applicable_variants(config, sets)
    assert variant.name == "torch-stable-abi211-cu126-x86_64-linux"
    assert variant.torch == "2.13" and variant.required is True
    assert "stable-ABI" in exclusion_reason(config, sets[2])


def test_cuda_bounds_exclude_sets():
    config = _config(edit(CUDA_ONLY, "[torch]\n", '[general.cuda]\nminver = "12.8"\nmaxver = "13.0"\n\n[torch]\n'))
    sets = [BuildSet("2.13", "cuda", v, required=True) for v in ("12.6", "13.0", "13.2")]
    assert [v.name for v in applicable_variants(config, sets)] == ["torch213-cxx11-cu130-x86_64-linux"]
    assert "minver" in exclusion_reason(config, sets[0])
    assert "maxver" in exclusion_reason(config, sets[2])
    assert exclusion_reason(config, sets[1]) is None


def test_torch_bounds_compare_major_minor():
    config = _config(edit(CUDA_ONLY, "[torch]\n", '[torch]\nminver = "2.12.0"\nmaxver = "2.12.9"\n'))
    sets = [BuildSet(t, "cuda", "12.6", required=True) for t in ("2.11", "2.12", "2.13")]
    assert [v.torch for v in applicable_variants(config, sets)] == ["2.12"]


def test_backend_not_listed_is_excluded():
    config = _config(CUDA_ONLY)
    build_set = BuildSet("2.13", "rocm", "7.1", required=True)
    assert applicable_variants(config, [build_set]) == []
    assert "general.backends" in exclusion_reason(config, build_set)


def test_optional_sets_need_include_optional():
    config = _config(CUDA_ONLY)
    sets = [BuildSet("2.11", "cuda", "13.0", required=False)]
    assert applicable_variants(config, sets, include_optional=False) == []
    assert [v.required for v in applicable_variants(config, sets)] == [False]


def test_tvm_ffi_uses_only_paired_sets():
    config = _config(edit(CUDA_ONLY, "[torch]\n", "[tvm-ffi]\n"))
    sets = [BuildSet("2.13", "cuda", "13.2", tvm_ffi="0.1", required=True), BuildSet("2.13", "cuda", "13.0", required=True)]
    assert [v.name for v in applicable_variants(config, sets)] == ["tvm-ffi01-cu132-x86_64-linux"]
    assert "TVM-FFI" in exclusion_reason(config, sets[1])


def test_noarch_collapses_across_sets():
    config = _config(VALID_TOML.split("[torch]")[0] + "[torch-noarch]\n")
    sets = [BuildSet("2.12", "cuda", "12.6", required=True), BuildSet("2.13", "cuda", "13.0", required=False), BuildSet("2.13", "cpu", required=True)]
    variants = applicable_variants(config, sets)
    assert [(v.name, v.torch, v.required) for v in variants] == [("torch-cpu", "2.13", True), ("torch-cuda", "2.13", True)]
