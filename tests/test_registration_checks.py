"""Op registrations outside a build's unique namespace: the scan of the C++ sources before
compiling, and the import check's comparison of torch's registrations before and after loading
(here with Python-only kernels; tests/test_kernel_mistakes.py builds C++ ones)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kbtest_util import REPO
from kernel_builder.checks.importcheck import import_check_many
from kernel_builder.checks.registration_source import blank_comments_and_literals, scan_sources

RELU = REPO / "examples" / "relu"


def scan(tmp_path: Path, code: str, defined: frozenset[str] = frozenset()):
    path = tmp_path / "binding.cpp"
    path.write_text(textwrap.dedent(code))
    return scan_sources([path], defined)


@pytest.mark.parametrize(
    "code, macro, namespace, line, use",
    [
        ("TORCH_LIBRARY(mykernel, m) {\n}\n", "TORCH_LIBRARY", "mykernel", 1, "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)"),
        ("#include <x>\n\nTORCH_LIBRARY (TORCH_EXTENSION_NAME, ops) {}\n", "TORCH_LIBRARY", "TORCH_EXTENSION_NAME", 3, "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)"),
        ("TORCH_LIBRARY_IMPL(mykernel, CUDA, m) {}\n", "TORCH_LIBRARY_IMPL", "mykernel", 1, "TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, CUDA, m)"),
        ("TORCH_LIBRARY_FRAGMENT(aten, m) {}\n", "TORCH_LIBRARY_FRAGMENT", "aten", 1, "one TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) block"),
        ("STABLE_TORCH_LIBRARY(mykernel, m) {}\n", "STABLE_TORCH_LIBRARY", "mykernel", 1, "STABLE_TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)"),
        ("STABLE_TORCH_LIBRARY_IMPL(mykernel, CPU, m) {}\n", "STABLE_TORCH_LIBRARY_IMPL", "mykernel", 1, "STABLE_TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, CPU, m)"),
        ("TORCH_LIBRARY_EXPAND(mykernel, m) {}\n", "TORCH_LIBRARY_EXPAND", "mykernel", 1, "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)"),
        ("TORCH_LIBRARY_IMPL_EXPAND(mykernel, c10::DispatchKey::CPU, m) {}\n", "TORCH_LIBRARY_IMPL_EXPAND", "mykernel", 1,
         "TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, c10::DispatchKey::CPU, m)"),
    ],
)
def test_literal_namespaces_are_found(tmp_path, code, macro, namespace, line, use):
    (finding,) = scan(tmp_path, code)
    assert (finding.macro, finding.namespace, finding.line) == (macro, namespace, line)
    assert f"use {use}" in finding.message and "registration.h" in finding.message
    assert finding.render(tmp_path).startswith(f"binding.cpp:{line}: {macro}({namespace}, …)")


def test_what_is_not_a_registration(tmp_path):
    code = """\
        // TORCH_LIBRARY(in_a_comment, m)
        /* TORCH_LIBRARY(in_a_block
           comment, m) */
        const char* doc = "TORCH_LIBRARY(in_a_string, m)";
        const char* raw = R"x(TORCH_LIBRARY(in_a_raw_string, m))x";
        int big = 1'000'000;  // a digit separator is not a character literal
        #define MY_LIBRARY(NAME, MODULE) TORCH_LIBRARY(NAME, MODULE)
        #define MY_IMPL(NAME, MODULE) \\
          TORCH_LIBRARY_IMPL(NAME, CPU, MODULE)
        TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) { m.def("f(Tensor x) -> Tensor"); }
        TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, CPU, m) {}
        TORCH_LIBRARY_EXPAND(KERNEL_NAMESPACE, m) {}
        """
    assert scan(tmp_path, code, frozenset({"KERNEL_NAMESPACE"})) == []


def test_blanking_keeps_line_numbers(tmp_path):
    text = 'a /* one\ntwo */ b "x\\"y" c // d\nTORCH_LIBRARY(z, m)\n'
    blanked = blank_comments_and_literals(text)
    assert blanked.count("\n") == text.count("\n") and len(blanked) == len(text)
    assert "one" not in blanked and "x" not in blanked and blanked.splitlines()[2] == "TORCH_LIBRARY(z, m)"


def test_the_examples_and_registration_h_pass(tmp_path):
    from kernel_builder.checks.registration_source import check_registration_sources
    from kernel_builder.config import load_config

    for kernel in ("relu", "silu-mul-stable"):
        assert check_registration_sources(load_config(REPO / "examples" / kernel)) == []
    header = REPO / "templates" / "registration.h"
    assert scan_sources([header]) == []


def test_build_refuses_a_literal_torch_library_before_compiling(tmp_path):
    kernel = tmp_path / "relu"
    shutil.copytree(RELU, kernel, ignore=shutil.ignore_patterns("build", "__pycache__"))
    binding = kernel / "torch-ext" / "torch_binding.cpp"
    binding.write_text(binding.read_text().replace("TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)", "TORCH_LIBRARY(relu, m)"))
    result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "torch-ext/torch_binding.cpp:8: TORCH_LIBRARY(relu, …) registers ops in the literal namespace 'relu'" in result.stderr
    assert "use TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) from registration.h" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (kernel / "build").exists(), "nothing is compiled"


# ---- the import check, on Python-only kernels ------------------------------------------------

NOARCH_TOML = """\
[general]
name = "{name}"
version = 1
edition = 5
license = "MIT"
backends = ["cpu"]

[torch-noarch]
"""

GOOD = '''\
import torch

from ._ops import add_op_namespace_prefix


@torch.library.custom_op(add_op_namespace_prefix("twice"), mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2
'''

# A Library made with a literal namespace (the AST check cannot see this one).
FOREIGN_PYTHON = '''\
import torch

_lib = torch.library.Library("shared_ops", "DEF")
_lib.define("twice(Tensor x) -> Tensor")
_lib.impl("twice", lambda x: x * 2, "CPU")
'''

# A kernel for torch's own operator: it changes torch for everyone.
ATEN_OVERRIDE = '''\
import torch

_lib = torch.library.Library("aten", "IMPL")
_lib.impl("relu", lambda x: x.clamp(min=0), "CPU")
'''


# custom_op called as a function (the decorator form is refused by the AST check already).
FOREIGN_CUSTOM_OP = '''\
import torch


def _twice(x: torch.Tensor) -> torch.Tensor:
    return x * 2


twice = torch.library.custom_op("shared_custom::twice", mutates_args=())(_twice)
'''

# Importing torch modules that register ops of their own (lazily, from torch's files) is fine.
TORCH_LAZY = GOOD + '''
import torch.ao.quantization.fx._decomposed  # noqa: E402,F401  (registers quantized_decomposed::*)
import torch.distributed._functional_collectives  # noqa: E402,F401  (registers _c10d_functional::*)
'''


def noarch_variant(parent: Path, name: str, code: str) -> Path:
    kernel = parent / name
    package = kernel / "torch-ext" / name.replace("-", "_")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(code)
    (kernel / "build.toml").write_text(NOARCH_TOML.format(name=name))
    result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), "--no-import-check", "--unique-id", "t"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return kernel / "build" / "torch-cpu"


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict[str, Path]:
    parent = tmp_path_factory.mktemp("noarch")
    return {
        "good": noarch_variant(parent, "good-ops", GOOD),
        "foreign": noarch_variant(parent, "foreign-ops", FOREIGN_PYTHON),
        "override": noarch_variant(parent, "override-ops", ATEN_OVERRIDE),
        "custom": noarch_variant(parent, "custom-ops", FOREIGN_CUSTOM_OP),
        "lazy": noarch_variant(parent, "lazy-ops", TORCH_LAZY),
    }


@pytest.mark.parametrize("order", [("lazy", "good", "foreign", "override", "custom"), ("custom", "override", "foreign", "good", "lazy")])
def test_registrations_are_blamed_on_the_variant_that_made_them(variants, order):
    results = import_check_many(Path(sys.executable), [variants[name] for name in order])
    assert results[variants["good"]] is None
    assert results[variants["lazy"]] is None, results[variants["lazy"]]
    custom = results[variants["custom"]]
    assert custom is not None and "shared_custom::twice (Python, registered at " in custom.message
    assert f"{variants['custom'] / '__init__.py'}:4)" in custom.message, custom.message
    foreign = results[variants["foreign"]]
    assert foreign is not None and not foreign.warning
    assert "registers ops outside its namespace _foreign_ops_cpu_t: shared_ops::twice (Python, registered at " in foreign.message
    assert "add_op_namespace_prefix" in foreign.message
    override = results[variants["override"]]
    assert override is not None and "a CPU kernel for torch's aten::relu (Python, registered at " in override.message
    assert str(variants["override"] / "__init__.py") in override.message
