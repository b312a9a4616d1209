"""`update-build`: every older build.toml becomes an edition-5 file that means the same.

Expectations are derived here from the raw legacy TOML dict, following the documented meaning
of the old formats (reference §1.7), without calling the migrator's helpers:
- `language = "cuda-hipify"` kernel X -> cuda kernel X + rocm kernel X_rocm (cuda-only keys on
  the first, rocm-only keys on the second); no language/backend or `language = "cuda"` -> cuda;
  `language = "metal"` -> metal; `capabilities` is the old spelling of `cuda-capabilities`;
- `universal = true` (in [general] or the seed-era [torch]) -> [torch-noarch], no kernels,
  all five backends; no framework table at all -> [torch-noarch];
- backends: explicit `general.backends`, else those of the kernels;
- `general.cuda-minver/maxver` -> [general.cuda] minver/maxver; [torch] minver/maxver kept;
- names use dashes, the Python module name is unchanged; a missing license comes from
  --license (default Apache-2.0); a missing version is 1, "0.0.1"-style strings keep the major.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

import pytest
from packaging.version import Version

from kbtest_util import (
    assert_bad_input,
    assert_ok,
    copy_kernel,
    corpus_dir,
    corpus_dirs,
    corpus_params,
    invoke,
    load_toml,
    make_kernel,
)
from kernel_builder.config import load_config, parse_document
from kernel_builder.config.parse import tomllib

ALL_BACKENDS = frozenset({"cpu", "cuda", "metal", "rocm", "xpu"})
LANGUAGE_BACKEND = {None: "cuda", "cuda": "cuda", "cuda-hipify": "cuda", "metal": "metal"}
# `cutlass_sycl` (kernel-builder 2025) is the dependency now called `sycl_tla`.
RENAMED_DEPENDS = {"cutlass_sycl": "sycl_tla"}
# Python dependencies that edition 5 keeps in [general.<backend>] instead of [general].
BACKEND_PYTHON_DEPENDS = {"nvidia-cutlass-dsl": "cuda", "onednn": "xpu", "nki": "neuron"}
FRAMEWORKS = ("torch", "torch-noarch", "tvm-ffi")


@dataclass(frozen=True)
class KernelView:
    backend: str
    src: tuple
    include: tuple = ()
    depends: tuple = ()
    cxx_flags: tuple = ()
    cuda_capabilities: tuple | None = None
    cuda_flags: tuple = ()
    cuda_minver: Version | None = None
    rocm_archs: tuple | None = None
    hip_flags: tuple = ()
    sycl_flags: tuple = ()


def _opt_tuple(value):
    return None if value is None else tuple(value)


def _opt_version(value):
    return None if value is None else Version(value)


def expected_from_legacy(raw: dict, license: str | None = None) -> dict:
    """What an edition-5 file equivalent to legacy document `raw` must say."""
    general = raw.get("general", {})
    torch = raw.get("torch") if isinstance(raw.get("torch"), dict) else {}
    raw_name = general.get("name", torch.get("name"))
    universal = general.get("universal") is True or torch.get("universal") is True

    kernels: dict[str, KernelView] = {}
    if not universal:
        for kname, spec in raw.get("kernel", {}).items():
            language = spec.get("language")
            common = dict(
                src=tuple(spec["src"]),
                include=tuple(spec.get("include", ())),
                depends=tuple(RENAMED_DEPENDS.get(d, d) for d in spec["depends"]),
                cxx_flags=tuple(spec.get("cxx-flags", ())),
            )
            cuda_only = dict(
                cuda_capabilities=_opt_tuple(spec.get("cuda-capabilities", spec.get("capabilities"))),
                cuda_flags=tuple(spec.get("cuda-flags", ())),
                cuda_minver=_opt_version(spec.get("cuda-minver")),
            )
            rocm_only = dict(rocm_archs=_opt_tuple(spec.get("rocm-archs")), hip_flags=tuple(spec.get("hip-flags", ())))
            if language == "cuda-hipify":
                kernels[kname] = KernelView(backend="cuda", **common, **cuda_only)
                kernels[f"{kname}_rocm"] = KernelView(backend="rocm", **common, **rocm_only)
            else:
                backend = spec.get("backend", LANGUAGE_BACKEND[language])
                kernels[kname] = KernelView(backend=backend, **common, **cuda_only, **rocm_only, sycl_flags=tuple(spec.get("sycl-flags", ())))

    if "backends" in general:
        backends = set(general["backends"])
    elif universal:
        backends = set(ALL_BACKENDS)
    else:
        backends = {k.backend for k in kernels.values()}

    if universal or not any(f in raw for f in FRAMEWORKS):
        framework = "torch-noarch"
    else:
        (framework,) = [f for f in FRAMEWORKS if f in raw]

    version = general.get("version")
    if version is None:
        version = 1
    elif isinstance(version, str):
        version = int(version.split(".")[0])

    cuda_table = general.get("cuda", {})
    python_depends = list(general.get("python-depends", ()))
    scoped_python: dict[str, list[str]] = {}
    for scope in ("cuda", "xpu", "neuron"):
        scoped_python[scope] = list(general.get(scope, {}).get("python-depends", ()))
    for dep in list(python_depends):
        if dep in BACKEND_PYTHON_DEPENDS:
            python_depends.remove(dep)
            scoped_python[BACKEND_PYTHON_DEPENDS[dep]].append(dep)

    expected = {
        "name": raw_name.replace("_", "-"),
        "python_name": raw_name.replace("-", "_"),
        "version": version,
        "license": general.get("license", license or "Apache-2.0"),
        "backends": backends,
        "framework": framework,
        "framework_src": tuple(raw.get(framework, {}).get("src", ())) if framework != "torch-noarch" else (),
        "pyext": tuple(torch.get("pyext", ("py", "pyi"))),
        "torch_minver": _opt_version(torch.get("minver")) if framework == "torch" else None,
        "torch_maxver": _opt_version(torch.get("maxver")) if framework == "torch" else None,
        "cuda_minver": _opt_version(general.get("cuda-minver", cuda_table.get("minver"))),
        "cuda_maxver": _opt_version(general.get("cuda-maxver", cuda_table.get("maxver"))),
        "python_depends": tuple(python_depends),
        "cuda_python_depends": tuple(scoped_python["cuda"]),
        "hub_repo_id": general.get("hub", {}).get("repo-id"),
        "upstream": general.get("upstream"),
        "kernels": kernels,
    }
    return expected


def actual_view(config) -> dict:
    g, fw = config.general, config.framework
    return {
        "name": g.name,
        "python_name": g.python_name,
        "version": g.version,
        "license": g.license,
        "backends": set(g.backends),
        "framework": fw.kind,
        "framework_src": tuple(fw.src),
        "pyext": fw.pyext,
        "torch_minver": fw.minver,
        "torch_maxver": fw.maxver,
        "cuda_minver": g.cuda.minver if g.cuda else None,
        "cuda_maxver": g.cuda.maxver if g.cuda else None,
        "python_depends": g.python_depends,
        "cuda_python_depends": g.cuda.python_depends if g.cuda else (),
        "hub_repo_id": g.hub.repo_id if g.hub else None,
        "upstream": g.upstream,
        "kernels": {
            k.name: KernelView(
                backend=k.backend,
                src=k.src,
                include=k.include,
                depends=k.depends,
                cxx_flags=k.cxx_flags,
                cuda_capabilities=k.cuda_capabilities,
                cuda_flags=k.cuda_flags,
                cuda_minver=k.cuda_minver,
                rocm_archs=k.rocm_archs,
                hip_flags=k.hip_flags,
                sycl_flags=k.sycl_flags,
            )
            for k in config.kernels
        },
    }


def _convert_and_check(kernel_dir, *extra_args, license=None):
    raw = load_toml(kernel_dir / "build.toml")
    result = invoke("update-build", *extra_args, kernel_dir)
    assert_ok(result)
    assert "converted" in result.stdout
    converted = load_toml(kernel_dir / "build.toml")
    assert converted["general"]["edition"] == 5
    check = invoke("check-config", "--schema-only", kernel_dir)
    assert_ok(check)
    assert "update-build" not in check.stderr  # it is edition 5 now: no upgrade warning
    config = load_config(kernel_dir, check_files=False)
    assert config.source_edition == 5
    assert actual_view(config) == expected_from_legacy(raw, license)
    return result, config


# ---------------------------------------------------------------------------------------------
# The legacy corpus


@pytest.mark.parametrize("legacy_dir", corpus_params("kernel-builder-legacy"))
def test_update_build_converts_legacy_corpus(legacy_dir, tmp_path):
    kernel_dir = copy_kernel(legacy_dir, tmp_path)
    result, config = _convert_and_check(kernel_dir)
    # None of the legacy files has a license: the default is used and the user is warned.
    assert config.general.license == "Apache-2.0"
    assert "license" in result.stderr and "Apache-2.0" in result.stderr
    # Running it again is a no-op.
    before = (kernel_dir / "build.toml").read_bytes()
    again = invoke("update-build", kernel_dir)
    assert_ok(again)
    assert "nothing to do" in again.stdout
    assert (kernel_dir / "build.toml").read_bytes() == before


def test_expectations_cover_the_interesting_legacy_shapes():
    """The corpus exercises hipify, universal, seed-era and cutlass_sycl files (else the
    parametrised test above would prove less than it claims)."""
    dirs = corpus_dirs("kernel-builder-legacy")
    if not dirs:
        pytest.skip("legacy corpus absent")
    raws = [load_toml(d / "build.toml") for d in dirs]
    languages = {s.get("language") for r in raws for s in r.get("kernel", {}).values()}
    assert "cuda-hipify" in languages
    assert any(r["general"].get("universal") is True or r.get("torch", {}).get("universal") is True for r in raws)
    assert any("name" in r.get("torch", {}) for r in raws)
    assert any("cutlass_sycl" in s.get("depends", ()) for r in raws for s in r.get("kernel", {}).values())
    assert any("minver" in r.get("torch", {}) for r in raws)


def test_hipify_kernel_splits_into_cuda_and_rocm(tmp_path):
    legacy = corpus_dir("kernel-builder-legacy", "2025-04-18-examples_relu-69a5e19")
    kernel_dir = copy_kernel(legacy, tmp_path)
    _, config = _convert_and_check(kernel_dir)
    kernels = {k.name: k for k in config.kernels}
    assert set(kernels) == {"activation", "activation_rocm"}
    assert kernels["activation"].backend == "cuda" and kernels["activation"].rocm_archs is None
    assert kernels["activation_rocm"].backend == "rocm"
    assert "gfx942" in kernels["activation_rocm"].rocm_archs
    assert set(config.general.backends) == {"cuda", "rocm"}


def test_universal_becomes_noarch_for_all_backends(tmp_path):
    legacy = corpus_dir("kernel-builder-legacy", "2025-04-23-examples_silu-and-mul-universal-b70bc22")
    kernel_dir = copy_kernel(legacy, tmp_path)
    _, config = _convert_and_check(kernel_dir)
    assert config.framework.kind == "torch-noarch"
    assert config.kernels == ()
    assert set(config.general.backends) == set(ALL_BACKENDS)
    assert config.general.name == "silu-and-mul-universal"
    assert config.general.python_name == "silu_and_mul_universal"


def test_seed_era_name_in_torch_table(tmp_path):
    legacy = corpus_dir("kernel-builder-legacy", "2025-01-16-examples_cutlass-gemm-f30807e")
    kernel_dir = copy_kernel(legacy, tmp_path)
    _, config = _convert_and_check(kernel_dir)
    assert config.general.name == "cutlass-gemm"
    assert config.general.version == 0  # "0.0.1": major version 0
    (gemm,) = config.kernels
    assert gemm.cuda_capabilities == ("7.0", "7.2", "7.5", "8.0", "8.6", "8.7", "8.9", "9.0")
    assert gemm.depends == ("torch", "cutlass_3_6")


def test_license_option_is_used_when_missing(tmp_path):
    legacy = corpus_dir("kernel-builder-legacy", "2025-12-10-examples_relu-3627027")
    kernel_dir = copy_kernel(legacy, tmp_path)
    result, config = _convert_and_check(kernel_dir, "--license", "MIT", license="MIT")
    assert config.general.license == "MIT"
    assert load_toml(kernel_dir / "build.toml")["general"]["license"] == "MIT"
    assert "Apache-2.0" not in result.stderr


def test_dry_run_does_not_write(tmp_path):
    legacy = corpus_dir("kernel-builder-legacy", "2025-12-10-examples_cutlass-gemm-cd2c806")
    kernel_dir = copy_kernel(legacy, tmp_path)
    before = (kernel_dir / "build.toml").read_bytes()
    result = invoke("update-build", "--dry-run", kernel_dir)
    assert_ok(result)
    assert (kernel_dir / "build.toml").read_bytes() == before
    printed = tomllib.loads(result.stdout)
    assert printed["general"]["edition"] == 5
    assert printed["kernel"]["gemm_xpu"]["depends"] == ["torch", "sycl_tla"]
    # What --dry-run prints is exactly what a real run writes.
    assert_ok(invoke("update-build", kernel_dir))
    assert (kernel_dir / "build.toml").read_text() == result.stdout


# ---------------------------------------------------------------------------------------------
# Synthetic legacy files: shapes the corpus lacks (general.cuda-minver/maxver, python-depends,
# hub, flags on hipify kernels, metal language, string versions, explicit license)

SYNTHETIC = {
    "v2-cuda-bounds-and-pydeps": """
[general]
name = "foo_bar"
universal = false
cuda-minver = "12.0"
cuda-maxver = "12.8"
python-depends = ["einops", "nvidia-cutlass-dsl"]
upstream = "https://github.com/example/foo"

[general.hub]
repo-id = "kernels-community/foo-bar"

[torch]
src = ["torch-ext/torch_binding.cpp"]
minver = "2.5"
maxver = "2.9"

[kernel.k]
backend = "cuda"
depends = ["torch"]
src = ["k.cu"]
cuda-capabilities = ["8.0", "9.0a"]
cuda-minver = "12.4"
""",
    "v1-hipify-with-flags-and-metal": """
[general]
name = "foo"
version = "2.1.0"

[torch]
src = ["torch-ext/torch_binding.cpp"]
include = ["include"]

[kernel.k]
language = "cuda-hipify"
capabilities = ["8.0", "9.0"]
rocm-archs = ["gfx942", "gfx90a"]
cuda-flags = ["-DCUDA_ONLY"]
hip-flags = ["-DHIP_ONLY"]
cxx-flags = ["-DBOTH"]
include = ["k/include"]
depends = ["torch"]
src = ["k/k.cu", "k/k.h"]

[kernel.m]
language = "metal"
depends = ["torch"]
src = ["m/m.mm", "m/m.metal"]

[kernel.plain]
depends = ["torch", "cutlass_3_6"]
src = ["plain.cu"]
""",
    "v3-backends-general-cuda-license": """
[general]
name = "baz"
license = "BSD-3-Clause"
backends = ["cuda", "xpu", "cpu"]

[general.cuda]
minver = "12.4"

[torch]
src = []

[kernel.k]
backend = "cuda"
depends = ["torch"]
src = ["k.cu"]

[kernel.k_xpu]
backend = "xpu"
depends = ["torch", "cutlass_sycl"]
src = ["k.cpp"]
sycl-flags = ["-DX"]
""",
    "v1-universal-in-torch-with-pyext": """
[general]
name = "py_only"

[torch]
universal = true
pyext = ["py", "json"]
""",
    "v3-no-framework": """
[general]
name = "noarch-thing"
backends = ["cuda", "rocm"]
""",
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_update_build_converts_synthetic_legacy(name, tmp_path):
    kernel_dir = make_kernel(tmp_path, SYNTHETIC[name], files=())
    _convert_and_check(kernel_dir)


def test_synthetic_bounds_and_backend_python_depends_moved(tmp_path):
    kernel_dir = make_kernel(tmp_path, SYNTHETIC["v2-cuda-bounds-and-pydeps"], files=())
    _, config = _convert_and_check(kernel_dir)
    assert config.general.cuda.minver == Version("12.0") and config.general.cuda.maxver == Version("12.8")
    assert config.general.python_depends == ("einops",)
    assert config.general.python_depends_for("cuda") == ("einops", "nvidia-cutlass-dsl")
    written = load_toml(kernel_dir / "build.toml")["general"]
    assert "cuda-minver" not in written and "universal" not in written
    assert written["cuda"] == {"minver": "12.0", "maxver": "12.8", "python-depends": ["nvidia-cutlass-dsl"]}


def test_synthetic_hipify_keys_go_to_the_right_twin(tmp_path):
    kernel_dir = make_kernel(tmp_path, SYNTHETIC["v1-hipify-with-flags-and-metal"], files=())
    _, config = _convert_and_check(kernel_dir)
    kernels = {k.name: k for k in config.kernels}
    assert set(kernels) == {"k", "k_rocm", "m", "plain"}
    assert (kernels["k"].cuda_flags, kernels["k"].hip_flags) == (("-DCUDA_ONLY",), ())
    assert (kernels["k_rocm"].cuda_flags, kernels["k_rocm"].hip_flags) == ((), ("-DHIP_ONLY",))
    assert kernels["k_rocm"].cuda_capabilities is None and kernels["k_rocm"].rocm_archs == ("gfx942", "gfx90a")
    assert kernels["m"].backend == "metal" and kernels["plain"].backend == "cuda"
    assert set(config.general.backends) == {"cuda", "rocm", "metal"}
    assert config.general.version == 2


# ---------------------------------------------------------------------------------------------
# Edition 5 and edition 4 inputs


EDITION5 = [p for p in corpus_params("kernels-community", "upstream-examples") if p.values[0] is None or "edition" in load_toml(p.values[0] / "build.toml")["general"]]
EDITION4 = [p for p in corpus_params("kernels-community", "upstream-examples") if p.values[0] is None or "edition" not in load_toml(p.values[0] / "build.toml")["general"]]


@pytest.mark.parametrize("source_dir", EDITION5)
def test_update_build_is_noop_on_edition5(source_dir, tmp_path):
    kernel_dir = copy_kernel(source_dir, tmp_path)
    before = (kernel_dir / "build.toml").read_bytes()
    mtime = (kernel_dir / "build.toml").stat().st_mtime_ns
    result = invoke("update-build", kernel_dir)
    assert_ok(result)
    assert "nothing to do" in result.stdout
    assert (kernel_dir / "build.toml").read_bytes() == before
    assert (kernel_dir / "build.toml").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("source_dir", EDITION4)
def test_update_build_on_edition4_only_adds_edition(source_dir, tmp_path):
    kernel_dir = copy_kernel(source_dir, tmp_path)
    raw = load_toml(kernel_dir / "build.toml")
    in_memory = parse_document(raw, kernel_dir / "build.toml")
    assert in_memory.source_edition == 4

    result = invoke("update-build", kernel_dir)
    assert_ok(result)
    assert "edition 4" in result.stdout
    converted = load_toml(kernel_dir / "build.toml")
    assert converted == {**raw, "general": {**raw["general"], "edition": 5}}

    config = load_config(kernel_dir, check_files=False)
    assert config.source_edition == 5
    assert config == in_memory


def test_edition4_set_is_not_empty():
    if not corpus_dirs("kernels-community"):
        pytest.skip("corpus absent")
    assert len(EDITION4) >= 10 and len(EDITION5) >= 10


def test_update_build_keeps_file_mode(tmp_path):
    legacy = corpus_dir("kernel-builder-legacy", "2025-12-10-examples_relu-3627027")
    kernel_dir = copy_kernel(legacy, tmp_path)
    (kernel_dir / "build.toml").chmod(0o640)
    assert_ok(invoke("update-build", kernel_dir))
    assert stat.S_IMODE((kernel_dir / "build.toml").stat().st_mode) == 0o640


# ---------------------------------------------------------------------------------------------
# Failures: exit 2, the file named, nothing written


def _assert_refused(kernel_dir, *fragments):
    before = (kernel_dir / "build.toml").read_bytes() if (kernel_dir / "build.toml").exists() else None
    result = invoke("update-build", kernel_dir)
    assert_bad_input(result, str(kernel_dir / "build.toml"), *fragments)
    if before is not None:
        assert (kernel_dir / "build.toml").read_bytes() == before
    assert [p.name for p in kernel_dir.iterdir() if p.name.startswith(".build.toml")] == []


def test_update_build_refuses_unknown_edition(tmp_path):
    kernel_dir = make_kernel(tmp_path, '[general]\nname = "foo"\nedition = 6\n', files=())
    _assert_refused(kernel_dir, "general.edition", "6")


def test_update_build_refuses_hipify_twin_collision(tmp_path):
    toml = """
[general]
name = "foo"
[torch]
src = []
[kernel.k]
language = "cuda-hipify"
depends = ["torch"]
src = ["k.cu"]
[kernel.k_rocm]
backend = "rocm"
depends = ["torch"]
src = ["k.cu"]
"""
    kernel_dir = make_kernel(tmp_path, toml, files=())
    _assert_refused(kernel_dir, "kernel.k.language", "k_rocm")


def test_update_build_refuses_result_that_is_not_valid(tmp_path):
    kernel_dir = make_kernel(tmp_path, '[general]\nname = "Foo Bar"\n\n[torch]\nsrc = []\n', files=())
    _assert_refused(kernel_dir, "general.name")


def test_update_build_refuses_bad_toml(tmp_path):
    kernel_dir = make_kernel(tmp_path, "[general\nname = 'x'\n", files=())
    _assert_refused(kernel_dir, "invalid TOML")


def test_update_build_missing_build_toml(tmp_path):
    kernel_dir = make_kernel(tmp_path, None, files=())
    _assert_refused(kernel_dir, "no such file")
