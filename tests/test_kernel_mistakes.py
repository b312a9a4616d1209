"""Real C++ kernels built with the mistakes new authors make: each is refused before it replaces
the previous good variant, with a message that names the mistake and the fix.

- a source file left out of `src` (an undefined symbol, shown demangled, with the object that
  references it) and a binding without REGISTER_EXTENSION (no PyInit_<id>);
- ops registered outside the build's unique namespace, through a macro the source scan cannot
  see through (the import check compares torch's registrations before and after loading);
- several variants checked in one process, in any order, one of them killing it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from test_local_build import copy_example, host_variant, kb

pytestmark = pytest.mark.slow

CHECK_HEADER = """\
#pragma once
#include <ATen/core/Tensor.h>

// Shared argument checks (defined in relu_cpu/checks.cpp).
void check_relu_args(const at::Tensor &out, const at::Tensor &input);
"""

CHECK_SOURCE = """\
#include "checks.h"

#include <c10/util/Exception.h>

void check_relu_args(const at::Tensor &out, const at::Tensor &input) {
  TORCH_CHECK(out.sizes() == input.sizes(), "relu: out and input differ in shape");
}
"""


@pytest.fixture(scope="module")
def good_relu(tmp_path_factory) -> Path:
    """examples/relu, built once (unique id `good`)."""
    kernel = copy_example("relu", tmp_path_factory.mktemp("good"))
    result = kb("build", kernel, "--unique-id", "good", "--quiet")
    assert result.returncode == 0, result.stderr
    return kernel


def kernel_with_good_build(good_relu: Path, dest: Path) -> Path:
    kernel = dest / "relu"
    shutil.copytree(good_relu, kernel, ignore=shutil.ignore_patterns("work", "__pycache__"))
    return kernel


def test_missing_source_and_missing_register_extension(good_relu, tmp_path):
    kernel = kernel_with_good_build(good_relu, tmp_path)
    previous = (kernel / "build" / host_variant() / "metadata.json").read_text()
    # The mistakes: checks.cpp exists but is not listed in `src`; the binding lost REGISTER_EXTENSION.
    (kernel / "relu_cpu" / "checks.h").write_text(CHECK_HEADER)
    (kernel / "relu_cpu" / "checks.cpp").write_text(CHECK_SOURCE)
    source = kernel / "relu_cpu" / "relu_cpu.cpp"
    text = source.read_text().replace('#include "../torch-ext/torch_binding.h"', '#include "../torch-ext/torch_binding.h"\n#include "checks.h"')
    source.write_text(text.replace('  TORCH_CHECK(input.device().is_cpu()', '  check_relu_args(out, input);\n  TORCH_CHECK(input.device().is_cpu()'))
    toml = kernel / "build.toml"
    toml.write_text(toml.read_text().replace('src = ["relu_cpu/relu_cpu.cpp"]', 'src = ["relu_cpu/relu_cpu.cpp", "relu_cpu/checks.h"]'))
    binding = kernel / "torch-ext" / "torch_binding.cpp"
    binding.write_text(binding.read_text().replace("REGISTER_EXTENSION(TORCH_EXTENSION_NAME)", ""))

    result = kb("build", kernel, "--unique-id", "second")
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "failed its checks; it was not installed" in err
    assert ("undefined symbol check_relu_args(at::Tensor const&, at::Tensor const&) (_Z15check_relu_argsRKN2at6TensorES2_) "
            "is defined neither in the module nor in a library it loads") in err, err
    assert "missing from `src` in build.toml" in err and "referenced by: relu_cpu.cpp.o" in err, err
    assert "defines no PyInit__relu_cpu_second" in err and "REGISTER_EXTENSION(TORCH_EXTENSION_NAME)" in err, err
    assert "import check" not in err, "refused before anything is loaded"
    assert (kernel / "build" / host_variant() / "metadata.json").read_text() == previous, "the previous good variant stays"


@pytest.fixture(scope="module")
def foreign_relu(good_relu, tmp_path_factory) -> Path:
    """relu with its good build, whose binding now registers in `relu_ops` through a macro
    (the source scan accepts TORCH_LIBRARY_EXPAND of a #defined name). Built as `foreign`."""
    kernel = kernel_with_good_build(good_relu, tmp_path_factory.mktemp("foreign"))
    binding = kernel / "torch-ext" / "torch_binding.cpp"
    binding.write_text(binding.read_text().replace("TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)", "#define RELU_NAMESPACE relu_ops\nTORCH_LIBRARY_EXPAND(RELU_NAMESPACE, m)"))
    return kernel


def test_ops_outside_the_unique_namespace_are_refused(foreign_relu):
    kernel = foreign_relu
    previous = (kernel / "build" / host_variant() / "metadata.json").read_text()
    result = kb("build", kernel, "--unique-id", "foreign", "-v")
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "import check: loading the kernel registers ops outside its namespace _relu_cpu_foreign: relu_ops::relu (C++, registered at " in err, err
    assert "torch_binding.cpp:9)" in err
    assert "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)" in err
    assert (kernel / "build" / host_variant() / "metadata.json").read_text() == previous, "the previous good variant stays"
    # -v shows the commands run and the time of each stage.
    assert any(line.startswith("debug: $ cmake -S ") for line in err.splitlines()), err
    assert any(line.startswith(f"debug: {host_variant()}: compile took ") for line in err.splitlines()), err


def test_a_hidden_foreign_registration_does_not_compile_when_the_namespace_is_given_at_link(good_relu, tmp_path):
    # Through an alias the source scan cannot see through, the binding looks registration-only and
    # takes the namespace at link time; registration.h then refuses another namespace at compile
    # time rather than moving the ops into this build's.
    kernel = kernel_with_good_build(good_relu, tmp_path)
    binding = kernel / "torch-ext" / "torch_binding.cpp"
    binding.write_text(binding.read_text().replace("TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)",
                                                   "#define RELU_REGISTER TORCH_LIBRARY_EXPAND\nRELU_REGISTER(relu_ops, m)"))
    previous = (kernel / "build" / host_variant() / "metadata.json").read_text()
    result = kb("build", kernel, "--unique-id", "hidden")
    assert result.returncode == 1, result.stderr
    assert "relu_ops__ops_namespace_must_be_TORCH_EXTENSION_NAME" in result.stderr and "was not declared" in result.stderr, result.stderr
    assert (kernel / "build" / host_variant() / "metadata.json").read_text() == previous, "the previous good variant stays"


def _clash_of(variant: Path, dest: Path) -> Path:
    """A copy of `variant` under another id, whose library still registers the original's
    namespace: outside its own, and fatal after the original (torch aborts the process when a
    namespace is registered twice)."""
    clash = dest / variant.name
    shutil.copytree(variant, clash)
    metadata = json.loads((clash / "metadata.json").read_text())
    metadata["id"] = "_relu_cpu_clash"
    (clash / "metadata.json").write_text(json.dumps(metadata))
    return clash


def test_one_process_checks_many_variants_in_any_order(good_relu, foreign_relu, tmp_path):
    from kernel_builder.checks.importcheck import import_check_many

    good = good_relu / "build" / host_variant()
    # Installed without the import check (no recompile when the test above built it already).
    assert kb("build", foreign_relu, "--unique-id", "foreign", "--no-import-check", "--quiet").returncode == 0
    foreign = foreign_relu / "build" / host_variant()
    clash = _clash_of(good, tmp_path / "clash")

    for order in ([good, clash, foreign], [clash, good, foreign]):
        results = import_check_many(Path(sys.executable), order)
        assert set(results) == set(order)
        assert results[good] is None, results[good]
        assert results[foreign] is not None and "outside its namespace _relu_cpu_foreign: relu_ops::relu" in results[foreign].message
        assert results[clash] is not None
        if order.index(clash) == order.index(good) + 1:
            # Registering _relu_cpu_good again kills the process: blamed on the variant that did it, with
            # torch's words, and the variants after it are still checked (in a new process).
            assert "killed the Python process (SIGABRT)" in results[clash].message
            assert "Only a single TORCH_LIBRARY can be used to register the namespace _relu_cpu_good" in results[clash].message
        else:
            assert "outside its namespace _relu_cpu_clash: _relu_cpu_good::relu" in results[clash].message
