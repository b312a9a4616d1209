"""Commands the generated CMake project runs (`python <tree>/cmake/kbtools <command> ...`).

Each prints its result on stdout (CMake lists are `;`-separated) or a message on stderr with
exit code 1, which CMake turns into a configure error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import archs, deps, metadata, naming, package, probe
from .cmakedata import set_command


def _split(value: str | None) -> list[str] | None:
    """A CMake list (or space-separated string) as a Python list; None when empty."""
    if value is None:
        return None
    items = [item for part in value.split(";") for item in part.split()]
    return items or None


def cmd_probe(args: argparse.Namespace) -> int:
    """Describe Python + torch, as JSON or as CMake `set()` commands."""
    info = probe.describe()
    if args.cmake_out is None:
        json.dump(info, sys.stdout, indent=2)
        return 0
    torch = info["torch"]

    def text(value: object) -> str:
        return "" if value is None else str(value)

    lines = [
        set_command("KB_PYTHON_VERSION", text(info["python"]["version"])),
        set_command("KB_HOST_SYSTEM", naming.host_system(info["platform"]["machine"], info["platform"]["system"])),
        set_command("KB_NVIDIA_INCLUDE_DIRS", info["nvidia"]["include_dirs"]),
        set_command("KB_NVIDIA_LIB_DIRS", info["nvidia"]["lib_dirs"]),
        set_command("KB_TORCH_FOUND", "TRUE" if torch else "FALSE"),
    ]
    if torch:
        backend, version = probe.torch_backends(torch)[0]
        lines += [
            set_command("KB_TORCH_VERSION", text(torch["version"])),
            set_command("KB_TORCH_VERSION_SHORT", text(torch["short"])),
            set_command("KB_TORCH_DIR", text(torch["dir"])),
            set_command("KB_TORCH_INCLUDE_DIRS", torch["include_dirs"]),
            set_command("KB_TORCH_LIB_DIR", text(torch["lib_dir"])),
            set_command("KB_TORCH_CUDA", text(torch["cuda"])),
            set_command("KB_TORCH_HIP", text(torch["hip"])),
            set_command("KB_TORCH_CXX11_ABI", "1" if torch["cxx11_abi"] else "0"),
            set_command("KB_TORCH_BACKEND", text(backend)),
            set_command("KB_TORCH_BACKEND_VERSION", text(version)),
        ]
    Path(args.cmake_out).write_text("\n".join(lines) + "\n")
    return 0


def cmd_cuda_archs(args: argparse.Namespace) -> int:
    known = archs.parse_nvcc_arch_list(args.known) if args.known else None
    selected = archs.select_cuda_archs(args.section, args.toolkit, _split(args.requested), known or None, _split(args.targets))
    print(";".join(selected))
    return 0


def cmd_gencode(args: argparse.Namespace) -> int:
    print(";".join(archs.cuda_gencode_flags(_split(args.archs) or [])))
    return 0


def cmd_rocm_archs(args: argparse.Namespace) -> int:
    print(";".join(archs.select_rocm_archs(args.section, _split(args.requested))))
    return 0


def cmd_variant(args: argparse.Namespace) -> int:
    compute = naming.compute_tag(args.backend, args.backend_version or None)
    if args.tvm_ffi:
        print(naming.tvm_ffi_variant(args.tvm_ffi, compute, args.system))
    elif args.stable_abi:
        print(naming.stable_abi_variant(args.stable_abi, compute, args.system))
    else:
        print(naming.arch_variant(args.torch, compute, args.system, "cxx11" if args.cxx11_abi == "1" else "cxx98"))
    return 0


def cmd_write_metadata(args: argparse.Namespace) -> int:
    template = json.loads(Path(args.template).read_text())
    template["id"] = args.id
    variant = Path(args.prefix) / args.variant if args.prefix else Path(args.variant)
    metadata.write_metadata(variant, template, archs=_split(args.archs))
    return 0


def cmd_copy_package(args: argparse.Namespace) -> int:
    """Install the kernel's Python package into <prefix>/<variant> (links resolved, see package.py)."""
    destination = Path(args.prefix) / args.variant
    package.copy_package(args.source, args.root, tuple(args.ext), destination)
    return 0


def cmd_find_dependency(args: argparse.Namespace) -> int:
    """Print the include folders of a header dependency, or fail naming what is missing."""
    if args.name not in deps.CUTLASS_VERSIONS:
        print(f"{args.name}: nothing to locate", file=sys.stderr)
        return 0
    found = deps.find_cutlass(args.name)
    if not found["found"]:
        print(f"kernel.{args.section} depends on {found['problem']}", file=sys.stderr)
        return 1
    if found["problem"]:
        print(f"warning: kernel.{args.section} depends on {found['problem']}", file=sys.stderr)
    print(";".join(found["include_dirs"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kbtools", description="kernel-builder helpers for generated CMake projects")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("probe", help="describe the Python and torch installation")
    p.add_argument("--cmake-out", help="write CMake set() commands to this file instead of JSON")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("cuda-archs", help="select the CUDA capabilities of a kernel section")
    p.add_argument("--section", required=True)
    p.add_argument("--toolkit", required=True)
    p.add_argument("--requested", help="the section's cuda-capabilities (default: toolkit defaults)")
    p.add_argument("--known", help="output of `nvcc --list-gpu-arch`")
    p.add_argument("--targets", help="restrict the targets (development builds)")
    p.set_defaults(func=cmd_cuda_archs)

    p = sub.add_parser("gencode", help="nvcc -gencode flags for a list of capabilities")
    p.add_argument("--archs", required=True)
    p.set_defaults(func=cmd_gencode)

    p = sub.add_parser("rocm-archs", help="select the ROCm targets of a kernel section")
    p.add_argument("--section", required=True)
    p.add_argument("--requested")
    p.set_defaults(func=cmd_rocm_archs)

    p = sub.add_parser("variant", help="the build variant name")
    p.add_argument("--torch", required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--backend-version", default="")
    p.add_argument("--system", required=True)
    p.add_argument("--cxx11-abi", default="1")
    p.add_argument("--stable-abi", default="")
    p.add_argument("--tvm-ffi", default="")
    p.set_defaults(func=cmd_variant)

    p = sub.add_parser("write-metadata", help="write <variant>/metadata.json with archs and digest")
    p.add_argument("--variant", required=True, help="the variant folder (relative to --prefix when given)")
    p.add_argument("--prefix", help="the install prefix holding the variant folder")
    p.add_argument("--template", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--archs")
    p.set_defaults(func=cmd_write_metadata)

    p = sub.add_parser("copy-package", help="install the kernel's Python package into a variant")
    p.add_argument("--source", required=True, help="the package folder, torch-ext/<module>")
    p.add_argument("--root", required=True, help="the kernel directory (links must stay inside it)")
    p.add_argument("--prefix", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--ext", action="append", default=[], help="a pyext extension without the dot (repeat)")
    p.set_defaults(func=cmd_copy_package)

    p = sub.add_parser("find-dependency", help="include folders of a `depends` entry (CUTLASS)")
    p.add_argument("--name", required=True)
    p.add_argument("--section", default="?")
    p.set_defaults(func=cmd_find_dependency)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (archs.ArchError, ValueError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
