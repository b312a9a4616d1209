"""Build rules on the CPU backend: per-file flags, headers, checks that stop an install,
refusals, the lock, and the portability gate through `kernel-builder build`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from filelock import FileLock

from kbtest_util import assert_ok, invoke
from test_local_build import copy_example, host_variant, kb, run_in_python

pytestmark = pytest.mark.slow

FLAGS_TOML = """\
[general]
name = "flags"
version = 1
edition = 5
license = "MIT"
backends = ["cpu"]

[torch]
src = ["torch-ext/binding.cpp", "torch-ext/binding.h"]
cxx-flags = ["-DBINDING_FLAG"]

[kernel.first]
backend = "cpu"
depends = ["torch"]
src = ["first/first.cpp", "first/broken.h"]
include = ["first/inc"]
cxx-flags = ["-DFIRST_FLAG"]

[kernel.second]
backend = "cpu"
depends = ["torch"]
src = ["second/second.cpp"]
cxx-flags = ["-DSECOND_FLAG"]
"""

FLAGS_FILES = {
    # Each file fails to compile unless it gets exactly its own section's flags and includes.
    "torch-ext/binding.h": "#pragma once\nint first_value();\nint second_value();\n",
    "torch-ext/binding.cpp": textwrap.dedent("""\
        #ifndef BINDING_FLAG
        #error "[torch] cxx-flags must reach the binding sources"
        #endif
        #if defined(FIRST_FLAG) || defined(SECOND_FLAG)
        #error "kernel cxx-flags must not reach the binding sources"
        #endif
        #include <torch/library.h>
        #include "registration.h"
        #include "binding.h"
        int64_t values() { return first_value() * 10 + second_value(); }
        TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) { m.def("values", &values); }
        REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
        """),
    "first/broken.h": "this header is listed in src but must never be compiled\n",
    "first/inc/first_config.h": "#define FIRST_VALUE 4\n",
    "first/first.cpp": textwrap.dedent("""\
        #if !defined(FIRST_FLAG) || defined(SECOND_FLAG) || defined(BINDING_FLAG)
        #error "kernel.first must see only its own cxx-flags"
        #endif
        #include "first_config.h"  // from kernel.first's include folder
        int first_value() { return FIRST_VALUE; }
        """),
    "second/second.cpp": textwrap.dedent("""\
        #if !defined(SECOND_FLAG) || defined(FIRST_FLAG) || defined(BINDING_FLAG)
        #error "kernel.second must see only its own cxx-flags"
        #endif
        #if __has_include("first_config.h")
        #error "kernel.first's include folder must not reach kernel.second"
        #endif
        int second_value() { return 2; }
        """),
    "torch-ext/flags/__init__.py": "from ._ops import ops\n\n\ndef values():\n    return ops.values()\n",
}


def make_kernel(parent: Path, toml: str, files: dict[str, str]) -> Path:
    kernel = parent / "kernel"
    for rel, text in {"build.toml": toml, **files}.items():
        path = kernel / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return kernel


def test_flags_includes_and_headers_reach_exactly_their_files(tmp_path):
    kernel = make_kernel(tmp_path, FLAGS_TOML, FLAGS_FILES)
    result = kb("build", kernel, "--quiet")
    assert result.returncode == 0, result.stderr
    check = run_in_python(f"from pathlib import Path\nimport kernels\nprint(kernels.get_local_kernel(Path({str(kernel)!r})).values())")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "42"


def test_legacy_subpackage(tmp_path):
    kernel = copy_example("relu", tmp_path)
    assert kb("build", kernel, "--legacy-subpackage", "--quiet").returncode == 0
    variant = kernel / "build" / host_variant()
    assert (variant / "relu" / "__init__.py").is_file()
    assert_ok(invoke("check-builds", kernel))  # the digest covers the extra file
    # An old loader imports <variant>/relu/__init__.py as the package.
    check = run_in_python(
        f"""
        import importlib.util, sys, torch
        spec = importlib.util.spec_from_file_location("relu", {str(variant / "relu" / "__init__.py")!r})
        relu = importlib.util.module_from_spec(spec)
        sys.modules["relu"] = relu
        spec.loader.exec_module(relu)
        x = torch.randn(16)
        assert torch.equal(relu.relu(x), torch.relu(x))
        """
    )
    assert check.returncode == 0, check.stderr


def test_unprefixed_registration_stops_the_install(tmp_path):
    kernel = copy_example("rms-norm-py", tmp_path)
    init = kernel / "torch-ext" / "rms_norm_py" / "__init__.py"
    init.write_text(init.read_text().replace('custom_op(add_op_namespace_prefix("rms_norm")', 'custom_op("myns::rms_norm"'))
    result = kb("build", kernel)
    assert result.returncode == 2
    # Once, before anything is built, naming the source file and line.
    assert result.stderr.count("Found Torch library registrations that do not use `add_op_namespace_prefix`:") == 1
    assert "torch-ext/rms_norm_py/__init__.py:" in result.stderr and "custom_op _rms_norm" in result.stderr
    assert not (kernel / "build").exists()
    # check-builds applies the same rule to built variants.
    from kernel_builder.checks.python_code import scan_package

    assert [f.rule for f in scan_package(kernel / "torch-ext" / "rms_norm_py", "rms_norm_py")] == ["registration"]


def test_absolute_self_import_stops_the_install(tmp_path):
    kernel = copy_example("relu", tmp_path)
    init = kernel / "torch-ext" / "relu" / "__init__.py"
    init.write_text(init.read_text().replace("from ._ops import ops", "from relu._ops import ops"))
    result = kb("build", kernel)
    assert result.returncode == 2
    assert "torch-ext/relu/__init__.py:" in result.stderr and "absolute import of the kernel's own package 'relu'" in result.stderr
    assert not (kernel / "build").exists()


def test_leaky_build_fails_the_gate_and_is_not_installed(tmp_path):
    kernel = copy_example("relu", tmp_path)
    result = kb("build", kernel, env={"CMAKE_ARGS": "-DKB_COMPAT_DISABLE=shim"})
    assert result.returncode == 1
    assert "failed its checks; it was not installed" in result.stderr
    # The gate names the symbol, its too-new version and where it comes from.
    assert "newer than glibc 2.27" in result.stderr
    assert "__libc_single_threaded@GLIBC_2.32" in result.stderr or "@GLIBC_2.34" in result.stderr
    assert "referenced by" in result.stderr
    assert not (kernel / "build" / host_variant()).exists()


def test_check_abi_and_check_builds_on_a_good_build(tmp_path):
    kernel = copy_example("relu", tmp_path)
    assert kb("build", kernel, "--quiet").returncode == 0
    abi = invoke("check-abi", kernel)
    assert_ok(abi)
    assert "all 1 binaries are portable" in abi.stdout
    assert_ok(invoke("check-builds", kernel))
    # Tampering is caught by the digest, and `hash` records the new content.
    (kernel / "build" / host_variant() / "__init__.py").write_text("# tampered\n")
    tampered = invoke("check-builds", kernel)
    assert tampered.exit_code == 1 and "digest does not match the files: __init__.py" in tampered.stdout
    assert_ok(invoke("hash", kernel))
    assert "digest" not in invoke("check-builds", kernel).stdout


def test_tvm_ffi_and_metal_only_kernels_are_refused(tmp_path):
    tvm = make_kernel(tmp_path / "tvm", FLAGS_TOML.replace('[torch]\nsrc = ["torch-ext/binding.cpp", "torch-ext/binding.h"]\ncxx-flags = ["-DBINDING_FLAG"]', '[tvm-ffi]\nsrc = ["torch-ext/binding.cpp"]'),
                      {**FLAGS_FILES, "tvm-ffi-ext/flags/__init__.py": ""})
    result = kb("build", tvm)
    assert result.returncode == 2 and "[tvm-ffi] kernels cannot be built by the local backend" in result.stderr
    metal = copy_example("relu", tmp_path / "metal")
    text = (metal / "build.toml").read_text().replace('backends = ["cpu", "cuda"]', 'backends = ["metal"]')
    text = text.replace('backend = "cpu"', 'backend = "metal"')
    (metal / "build.toml").write_text(text.split("[kernel.relu_cuda]")[0])
    result = kb("build", metal)
    assert result.returncode == 2
    assert "nothing of relu can be built on this machine" in result.stderr and "metal: needs macOS" in result.stderr
    assert not (metal / "build").exists()


def test_a_second_build_waits_for_the_lock(tmp_path):
    kernel = copy_example("rms-norm-py", tmp_path)
    state = kernel / "build" / ".kernel-builder"
    state.mkdir(parents=True)
    lock = FileLock(str(state / "lock"))
    with lock:
        process = subprocess.Popen([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        assert process.poll() is None, "the build must wait while another one holds the lock"
        assert not (kernel / "build" / "torch-cpu").exists()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "waiting for another build of this kernel" in err
    assert (kernel / "build" / "torch-cpu" / "metadata.json").is_file()


def test_json_summary(tmp_path):
    kernel = copy_example("rms-norm-py", tmp_path)
    result = kb("build", kernel, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["backend"] == "local" and report["kernel"] == "rms-norm-py"
    assert [v["variant"] for v in report["variants"]] == ["torch-cpu", "torch-cuda"]
    assert all(v["status"] == "built" and Path(v["path"]).is_dir() for v in report["variants"])
