"""`check-config --schema-only` on every real build.toml of the corpus (../shared/corpus).

kernels-community/ and upstream-examples/ hold edition-5 and edition-4 files that must all be
accepted (edition 4 with a warning pointing at update-build); kernel-builder-legacy/ holds the
formats older than edition 4, which check-config refuses with a pointer to update-build.
"""

from __future__ import annotations

import pytest

from kbtest_util import (
    CORPUS,
    CORPUS_MISSING,
    assert_bad_input,
    assert_ok,
    corpus_dir,
    corpus_dirs,
    corpus_params,
    invoke,
    load_toml,
    run_subprocess,
)
from kernel_builder.config import load_config

CURRENT = corpus_params("kernels-community", "upstream-examples")
FRAMEWORK_TABLES = ("torch", "torch-noarch", "tvm-ffi")


def test_corpus_is_there_and_complete():
    if not CORPUS.is_dir():
        pytest.skip(CORPUS_MISSING)
    # Guard against the parametrisation silently shrinking (a moved folder, a bad glob).
    assert len(corpus_dirs("kernels-community")) >= 50
    assert len(corpus_dirs("upstream-examples")) >= 20
    assert len(corpus_dirs("kernel-builder-legacy")) >= 40


@pytest.mark.parametrize("kernel_dir", CURRENT)
def test_check_config_schema_only_accepts(kernel_dir):
    raw = load_toml(kernel_dir / "build.toml")
    result = invoke("check-config", "--schema-only", kernel_dir)
    assert_ok(result)
    assert ": OK" in result.stdout
    edition = raw["general"].get("edition")
    if edition is None:
        # Edition 4: accepted, upgraded in memory, and the user is told to convert the file.
        assert "no edition" in result.stderr and "update-build" in result.stderr, result.stderr
        assert "edition 4," in result.stdout
    else:
        assert edition == 5
        assert "update-build" not in result.stderr, result.stderr
        assert "edition 5," in result.stdout


@pytest.mark.parametrize("kernel_dir", CURRENT)
def test_parsed_model_matches_raw_toml(kernel_dir):
    """The model keeps what the file says: name, backends, framework, kernels and their keys."""
    raw = load_toml(kernel_dir / "build.toml")
    config = load_config(kernel_dir, check_files=False)
    general = raw["general"]
    assert config.general.name == general["name"]
    assert config.general.python_name == general["name"].replace("-", "_")
    assert config.general.version == general["version"]
    assert config.general.license == general["license"]
    assert config.general.backends == tuple(general["backends"])
    assert config.source_edition == general.get("edition", 4)
    assert config.general.edition == 5

    (framework,) = [t for t in FRAMEWORK_TABLES if t in raw]
    assert config.framework.kind == framework
    table = raw[framework]
    if framework != "torch-noarch":
        assert config.framework.src == tuple(table.get("src", ()))
        assert config.framework.include == tuple(table.get("include", ()))
    assert config.framework.pyext == tuple(table.get("pyext", ("py", "pyi")))

    raw_kernels = raw.get("kernel", {})
    assert [k.name for k in config.kernels] == list(raw_kernels)
    for kernel in config.kernels:
        spec = raw_kernels[kernel.name]
        assert kernel.backend == spec["backend"]
        assert kernel.src == tuple(spec["src"])
        assert kernel.depends == tuple(spec["depends"])
        assert kernel.include == tuple(spec.get("include", ()))
        caps = spec.get("cuda-capabilities")
        assert kernel.cuda_capabilities == (tuple(caps) if caps is not None else None)
        archs = spec.get("rocm-archs")
        assert kernel.rocm_archs == (tuple(archs) if archs is not None else None)
        for toml_key in ("cxx-flags", "cuda-flags", "hip-flags", "sycl-flags"):
            assert getattr(kernel, toml_key.replace("-", "_")) == tuple(spec.get(toml_key, ()))


@pytest.mark.parametrize("kernel_dir", corpus_params("kernel-builder-legacy"))
def test_check_config_refuses_pre_edition4_formats(kernel_dir):
    result = invoke("check-config", "--schema-only", kernel_dir)
    assert_bad_input(result, str(kernel_dir / "build.toml"), "older than edition 4", "update-build")


def test_edition4_warning_through_real_process():
    """The upgrade warning reaches the real stderr of the installed entry point."""
    kernel_dir = corpus_dir("upstream-examples", "relu-archs-subset")
    assert "edition" not in load_toml(kernel_dir / "build.toml")["general"]
    proc = run_subprocess("check-config", "--schema-only", kernel_dir)
    assert proc.returncode == 0, proc.stderr
    assert "update-build" in proc.stderr and "Traceback" not in proc.stderr
    assert ": OK" in proc.stdout


def test_edition5_file_has_no_warning_through_real_process():
    kernel_dir = corpus_dir("upstream-examples", "relu")
    proc = run_subprocess("check-config", "--schema-only", kernel_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""
