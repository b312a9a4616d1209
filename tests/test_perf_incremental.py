"""Edits rebuild what they change: only the sources that see the unique ops namespace recompile
when the id changes, the extension target has a stable name, and the build folder keeps one
set of objects (issue 13).

The kernel has six translation units: the binding (it registers the ops, so it sees the id)
and five kernel sources. part5.cpp does not name TORCH_EXTENSION_NAME itself but includes a
header that does, so it must see the id too; the import check proves it saw the right one.
What ran is read from ninja's lines in the build log ("Building CXX object ...").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BUILD_TOML = """\
[general]
name = "multi"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu"]

[torch]
src = ["torch-ext/torch_binding.cpp"]

[kernel.multi_cpu]
backend = "cpu"
depends = ["torch"]
src = [
    "multi_cpu/parts.h",
    "multi_cpu/namespace.h",
    "multi_cpu/part1.cpp",
    "multi_cpu/part2.cpp",
    "multi_cpu/part3.cpp",
    "multi_cpu/part4.cpp",
    "multi_cpu/part5.cpp",
]
"""

BINDING = """\
#include <cstring>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "registration.h"
#include "../multi_cpu/parts.h"

at::Tensor scale(const at::Tensor &x, int64_t which) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous(), "scale: a contiguous float tensor");
  static constexpr PartFn parts[] = {part1, part2, part3, part4, part5};
  TORCH_CHECK(which >= 1 && which <= 5, "scale: which is 1..5");
  at::Tensor out = at::empty_like(x);
  parts[which - 1](out.data_ptr<float>(), x.const_data_ptr<float>(), x.numel());
  return out;
}

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) {
  // part5.cpp knows the namespace only through namespace.h: it must be this build's.
  TORCH_CHECK(std::strcmp(part5_namespace(), KB_STR(TORCH_EXTENSION_NAME)) == 0,
              "part5.cpp was compiled for namespace ", part5_namespace());
  m.def("scale(Tensor x, int which) -> Tensor");
  m.impl("scale", c10::DispatchKey::CPU, &scale);
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
"""

PARTS_H = """\
#pragma once
#include <cstdint>

using PartFn = void (*)(float *, const float *, int64_t);
void part1(float *out, const float *in, int64_t n);
void part2(float *out, const float *in, int64_t n);
void part3(float *out, const float *in, int64_t n);
void part4(float *out, const float *in, int64_t n);
void part5(float *out, const float *in, int64_t n);
const char *part5_namespace();
"""

NAMESPACE_H = """\
#pragma once
// The ops namespace as a string, for messages.
#define MULTI_STR_(x) #x
#define MULTI_STR(x) MULTI_STR_(x)
#define MULTI_NAMESPACE MULTI_STR(TORCH_EXTENSION_NAME)
"""

PART = """\
#include "parts.h"
{extra_include}
void part{k}(float *out, const float *in, int64_t n) {{
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] * {factor}.0f;
}}
{extra}"""

INIT = """\
import torch

from ._ops import ops


def scale(x: torch.Tensor, which: int) -> torch.Tensor:
    return ops.scale(x, which)


__all__ = ["scale"]
"""


def part_source(k: int, factor: int | None = None, *, plain: bool = False) -> str:
    """part<k>.cpp; part5 names the namespace (through namespace.h) unless `plain`."""
    uses_id = k == 5 and not plain
    extra_include = '#include "namespace.h"' if uses_id else ""
    extra = "const char *part5_namespace() { return MULTI_NAMESPACE; }\n" if uses_id else ""
    if k == 5 and plain:
        extra = 'const char *part5_namespace() { return ""; }\n'
    return PART.format(k=k, factor=factor if factor is not None else k, extra_include=extra_include, extra=extra)


# The common binding: TORCH_EXTENSION_NAME only as the registration macros' first argument.
PLAIN_BINDING = BINDING.replace("""  // part5.cpp knows the namespace only through namespace.h: it must be this build's.
  TORCH_CHECK(std::strcmp(part5_namespace(), KB_STR(TORCH_EXTENSION_NAME)) == 0,
              "part5.cpp was compiled for namespace ", part5_namespace());
""", "")


def write_kernel(root: Path, *, plain: bool = False) -> Path:
    """The six-TU kernel. `plain`: no source but the registration names the namespace, so the
    bindings take it at link time (registration.h) and no kernel source needs it."""
    files = {
        "build.toml": BUILD_TOML,
        "torch-ext/torch_binding.cpp": PLAIN_BINDING if plain else BINDING,
        "torch-ext/multi/__init__.py": INIT,
        "multi_cpu/parts.h": PARTS_H,
        "multi_cpu/namespace.h": NAMESPACE_H,
        **{f"multi_cpu/part{k}.cpp": part_source(k, plain=plain) for k in range(1, 6)},
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def host_variant() -> str:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    return f"torch{major}{minor}-cxx11-cpu-x86_64-linux"


def build(kernel: Path, *extra: str) -> list[str]:
    """Build for this interpreter's torch; return the sources ninja compiled (file names)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERNEL_BUILDER_CUDA_ARCHS", "KERNEL_BUILDER_DEBUG")}
    result = subprocess.run([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), *extra],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    log = (kernel / "build" / ".kernel-builder" / "logs" / f"{host_variant()}.log").read_text()
    return sorted(Path(m).name.removesuffix(".o") for m in re.findall(r"Building (?:C|CXX|CUDA) object (\S+)", log))


def cmake_build_folder(kernel: Path) -> Path:
    return kernel / "build" / ".kernel-builder" / "work" / host_variant() / "cmake-build"


def git(kernel: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
                   cwd=kernel, check=True, capture_output=True)


ID_SOURCES = ["part5.cpp", "torch_binding.cpp"]  # the binding, and part5 through namespace.h
STUB = "kb-ops-name.cpp"  # the id's only user when the bindings take it at link time


def load_and_scale(kernel: Path) -> str:
    """multi.scale(x, k)[1] for k = 1, 2, 3, 5, through the real `kernels`, and the ops module."""
    check = subprocess.run([sys.executable, "-c", f"""
from pathlib import Path
import torch, kernels
multi = kernels.get_local_kernel(Path({str(kernel)!r}))
x = torch.arange(4, dtype=torch.float32)
print([multi.scale(x, k).tolist()[1] for k in (1, 2, 3, 5)], multi.ops.__name__)
"""], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    return check.stdout.strip()


def test_registration_only_bindings_take_the_id_at_link_time_so_an_edit_recompiles_one_tu(tmp_path):
    kernel = write_kernel(tmp_path / "multi", plain=True)
    first = build(kernel, "--no-import-check")
    assert first == sorted(["glibc_shim.c", STUB, *[f"part{k}.cpp" for k in range(1, 6)], "torch_binding.cpp"])

    # Outside git every edit is a new id: the edited source recompiles, and the 20-line stub that
    # holds the id; not the binding (it includes torch's library.h: seconds of compiling).
    (kernel / "multi_cpu" / "part2.cpp").write_text(part_source(2, factor=20, plain=True))
    assert build(kernel) == sorted(["part2.cpp", STUB])
    (kernel / "torch-ext" / "multi" / "__init__.py").write_text(INIT + "\n# edited\n")
    assert build(kernel) == [STUB]
    scaled, namespace = load_and_scale(kernel).rsplit(" ", 1)
    assert scaled == "[1.0, 20.0, 3.0, 5.0]"
    assert namespace == "torch.ops." + json.loads(next((kernel / "build").glob("*/metadata.json")).read_text())["id"]

    # In git, the first edit after a commit (the id gains `_dirty`) is one source and the stub too.
    git(kernel, "init", "-q")
    git(kernel, "add", ".")
    git(kernel, "commit", "-q", "-m", "multi")
    assert build(kernel) == [STUB]
    (kernel / "multi_cpu" / "part3.cpp").write_text(part_source(3, factor=30, plain=True))
    assert build(kernel) == sorted(["part3.cpp", STUB])
    (kernel / "multi_cpu" / "part3.cpp").write_text(part_source(3, factor=31, plain=True))
    assert build(kernel) == ["part3.cpp"]
    assert load_and_scale(kernel).startswith("[1.0, 20.0, 31.0, 5.0]")


def test_edit_outside_git_recompiles_the_edited_source_and_those_that_see_the_id(tmp_path):
    kernel = write_kernel(tmp_path / "multi")
    first = build(kernel, "--no-import-check")
    assert first == ["glibc_shim.c", *[f"part{k}.cpp" for k in range(1, 6)], "torch_binding.cpp"]

    # Outside git the id is a hash of the content: it changes, so the id's users recompile too.
    (kernel / "multi_cpu" / "part2.cpp").write_text(part_source(2, factor=20))
    assert build(kernel) == sorted(["part2.cpp", *ID_SOURCES])

    # An edit to the Python package changes the id only.
    (kernel / "torch-ext" / "multi" / "__init__.py").write_text(INIT + "\n# edited\n")
    assert build(kernel, "--no-import-check") == ID_SOURCES

    # One extension's objects, module and link map: nothing piles up per id.
    binary = cmake_build_folder(kernel)
    object_dirs = [p.name for p in (binary / "CMakeFiles").glob("*.dir") if any(p.rglob("*.o"))]
    assert len(object_dirs) == 1, object_dirs
    assert len(list(binary.glob("*.so"))) == 1 and len(list(binary.glob("*.map"))) == 1


def test_edit_in_git_recompiles_one_source(tmp_path):
    kernel = write_kernel(tmp_path / "multi")
    git(kernel, "init", "-q")
    git(kernel, "add", ".")
    git(kernel, "commit", "-q", "-m", "multi")
    build(kernel, "--no-import-check")

    # The first edit after a commit adds `_dirty` to the id...
    (kernel / "multi_cpu" / "part3.cpp").write_text(part_source(3, factor=30))
    assert build(kernel, "--no-import-check") == sorted(["part3.cpp", *ID_SOURCES])
    # ...every later one keeps it: exactly the edited translation unit recompiles.
    (kernel / "multi_cpu" / "part3.cpp").write_text(part_source(3, factor=31))
    assert build(kernel) == ["part3.cpp"]
    (kernel / "multi_cpu" / "part1.cpp").write_text(part_source(1, factor=11))
    assert build(kernel, "--no-import-check") == ["part1.cpp"]

    # The variant holds every edit (loaded through the real `kernels`).
    assert load_and_scale(kernel).startswith("[11.0, 2.0, 31.0, 5.0]")
