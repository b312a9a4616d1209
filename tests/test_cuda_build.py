"""CUDA variants compile and link on a machine without a GPU.

They build against the CUDA 13.0 torch 2.11 wheel from PyPI (installed without its runtime
libraries, so it cannot be imported) in KB_TEST_CUDA_PYTHON, with the CUDA toolkit from
CUDA_HOME. scripts/test.sh provides both where a CUDA 13.0 toolkit exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from test_build_rules import make_kernel
from test_local_build import copy_example, kb

CUDA_PYTHON = os.environ.get("KB_TEST_CUDA_PYTHON")
CUDA_HOME = os.environ.get("CUDA_HOME") or (str(Path(shutil.which("nvcc")).parent.parent) if shutil.which("nvcc") else None)
CUOBJDUMP = os.environ.get("KB_CUOBJDUMP") or next(
    (str(p) for p in [Path(CUDA_HOME or "/nonexistent") / "bin" / "cuobjdump", Path(shutil.which("cuobjdump") or "/nonexistent")] if p.is_file()), None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CUDA_PYTHON or not CUDA_HOME or not CUOBJDUMP,
                       reason="needs KB_TEST_CUDA_PYTHON (a CUDA torch), a CUDA toolkit and cuobjdump; scripts/test.sh sets them up"),
]
VARIANT = "torch211-cxx11-cu130-x86_64-linux"


def cuda_kb(*args, env: dict | None = None):
    return kb(*args, "--python", CUDA_PYTHON, env={"CUDA_HOME": CUDA_HOME, **(env or {})})


def elf_archs(binary: Path) -> list[str]:
    out = subprocess.run([CUOBJDUMP, "--list-elf", str(binary)], capture_output=True, text=True, check=True).stdout
    # Lines look like "ELF file    1: _relu_cuda_abc.abi3.1.sm_90.cubin".
    return sorted(set(re.findall(r"\.(sm_\d+[af]?)\.cubin", out)))


def needed(binary: Path) -> list[str]:
    from kernel_builder.checks.portability import read_elf

    return list(read_elf(binary).needed)


@pytest.fixture(scope="module")
def relu_cuda(tmp_path_factory) -> Path:
    kernel = copy_example("relu", tmp_path_factory.mktemp("cuda"))
    result = cuda_kb("build", kernel, "--cuda-archs", "9.0", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [v["variant"] for v in report["variants"]] == [VARIANT]
    assert report["variants"][0]["cuda_archs"] == {"relu_cuda": ["9.0"]}
    return kernel


def test_relu_cuda_variant(relu_cuda):
    variant = relu_cuda / "build" / VARIANT
    (binary,) = variant.glob("_relu_cuda_*.abi3.so")
    metadata = json.loads((variant / "metadata.json").read_text())
    assert metadata["backend"] == {"type": "cuda", "archs": ["9.0"]}
    assert elf_archs(binary) == ["sm_90"]
    libraries = needed(binary)
    assert "libcudart.so.13" in libraries and not any(lib.startswith("libstdc++") for lib in libraries)


def test_relu_cuda_passes_check_abi(relu_cuda):
    result = kb("check-abi", relu_cuda)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stable_abi_cuda_variant(tmp_path):
    kernel = copy_example("silu-mul-stable", tmp_path)
    result = cuda_kb("build", kernel, "--cuda-archs", "9.0", "--quiet")
    assert result.returncode == 0, result.stderr
    (variant,) = (p for p in (kernel / "build").iterdir() if not p.name.startswith("."))
    assert variant.name == "torch-stable-abi210-cu130-x86_64-linux"
    (binary,) = variant.glob("*.abi3.so")
    assert elf_archs(binary) == ["sm_90"]
    # The stable ABI goes through torch's C shim (libtorch_cpu), never through C++ symbols.
    from elftools.elf.elffile import ELFFile

    with open(binary, "rb") as handle:
        dynsym = ELFFile(handle).get_section_by_name(".dynsym")
        undefined = [s.name for s in dynsym.iter_symbols() if s["st_shndx"] == "SHN_UNDEF"]
    assert any(name.startswith("aoti_torch_") for name in undefined)
    assert not [name for name in undefined if name.startswith(("_ZN3c10", "_ZN2at", "_ZN5torch"))]


CUDA_FLAGS_TOML = """\
[general]
name = "cuda-flags"
version = 1
edition = 5
license = "MIT"
backends = ["cuda"]

[torch]
src = ["torch-ext/binding.cpp"]
cxx-flags = ["-DBINDING_FLAG"]

[kernel.gpu]
backend = "cuda"
depends = ["torch"]
src = ["gpu/kernel.cu", "gpu/host.cpp", "gpu/kernel.cuh"]
cuda-flags = ["-DDEVICE_FLAG"]
cxx-flags = ["-DHOST_FLAG"]
cuda-capabilities = ["8.0", "9.0"]
"""

CUDA_FLAGS_FILES = {
    "torch-ext/binding.cpp": textwrap.dedent("""\
        #if !defined(BINDING_FLAG) || defined(DEVICE_FLAG) || defined(HOST_FLAG)
        #error "the binding gets [torch] cxx-flags only"
        #endif
        #include <torch/library.h>
        #include "registration.h"
        int64_t host_value();
        int64_t answer() { return host_value(); }
        TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) { m.def("answer", &answer); }
        REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
        """),
    "gpu/kernel.cuh": "this header is listed in src but must never be compiled\n",
    "gpu/kernel.cu": textwrap.dedent("""\
        #if !defined(DEVICE_FLAG) || defined(HOST_FLAG) || defined(BINDING_FLAG)
        #error ".cu files get cuda-flags only"
        #endif
        __global__ void touch(int *p) { *p = 1; }
        int device_value() { return 40; }
        """),
    "gpu/host.cpp": textwrap.dedent("""\
        #ifdef __CUDACC__
        #error ".cpp files in a CUDA section go to the host compiler"
        #endif
        #if !defined(HOST_FLAG) || defined(DEVICE_FLAG)
        #error ".cpp files get the section's cxx-flags, not its cuda-flags"
        #endif
        #include <cstdint>
        int device_value();
        int64_t host_value() { return device_value() + 2; }
        """),
    "torch-ext/cuda_flags/__init__.py": "from ._ops import ops\n",
}


def test_per_file_flags_in_a_cuda_section(tmp_path):
    kernel = make_kernel(tmp_path, CUDA_FLAGS_TOML, CUDA_FLAGS_FILES)
    result = cuda_kb("build", kernel, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["variants"][0]["cuda_archs"] == {"gpu": ["8.0", "9.0"]}
    (binary,) = (kernel / "build" / VARIANT).glob("*.abi3.so")
    assert elf_archs(binary) == ["sm_80", "sm_90"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('src = ["relu_cuda/relu.cu"]', 'src = ["relu_cuda/relu.cu"]\ncuda-capabilities = ["7.0"]'), "CUDA kernel relu_cuda: empty set of capabilities after intersection (kernel: 7.0"),
        (('depends = ["torch"]\nsrc = ["relu_cuda/relu.cu"]', 'depends = ["torch", "cutlass_3_8"]\nsrc = ["relu_cuda/relu.cu"]'), "kernel.relu_cuda depends on cutlass_3_8 (CUTLASS 3.8.0), which was not found"),
        (('backends = ["cpu", "cuda"]', 'backends = ["cpu", "cuda"]\n\n[general.cuda]\nmaxver = "12.9"'), "CUDA 13.0 is newer than general.cuda.maxver 12.9"),
    ],
)
def test_refused_before_compiling(tmp_path, edit, expected):
    kernel = copy_example("relu", tmp_path)
    text = (kernel / "build.toml").read_text()
    assert edit[0] in text
    (kernel / "build.toml").write_text(text.replace(edit[0], edit[1]))
    result = cuda_kb("build", kernel, "--variant", VARIANT, env={"CUTLASS_SRC_DIR": ""})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert not (kernel / "build").exists()


def test_toolkit_that_does_not_match_torch_is_refused(tmp_path):
    fake = tmp_path / "cuda-12.8" / "bin"
    fake.mkdir(parents=True)
    nvcc = fake / "nvcc"
    nvcc.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "Cuda compilation tools, release 12.8, V12.8.93"; else echo compute_90; fi\n')
    nvcc.chmod(0o755)
    kernel = copy_example("relu", tmp_path)
    result = kb("build", kernel, "--python", CUDA_PYTHON, env={"CUDA_HOME": str(fake.parent)})
    assert result.returncode == 2
    assert "is 12.8, but torch 2.11.0+cu130 was built for CUDA 13.0" in result.stderr
    assert not (kernel / "build").exists()
