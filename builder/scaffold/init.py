"""Create a kernel repository from templates/scaffold/ (see the package docstring)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import rules
from ..errors import UsageError
from ..render.jinja import environment

# The flake that kernel flakes take their library (`lib.genKernelFlakeOutputs`) from. One
# constant, so that moving the repository means changing one line.
FLAKE_URL = "github:huggingface/kernel-builder"

# Backends init can scaffold: those with a source template here that the local backend builds.
SUPPORTED_BACKENDS = ("cpu", "cuda")
DEFAULT_BACKENDS = ("cpu", "cuda")
LICENSE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
OWNER_RE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class ScaffoldFile:
    """One template and where it goes; `{module}` in `dest` is the Python module name."""

    template: str
    dest: str
    backend: str | None = None  # only for kernels with this backend
    render: bool = True  # False: copied as is (CARD.md is itself a template, for fill-card)


FILES = (
    ScaffoldFile("build.toml.j2", "build.toml"),
    ScaffoldFile("flake.nix.j2", "flake.nix"),
    ScaffoldFile("gitignore", ".gitignore", render=False),
    ScaffoldFile("gitattributes", ".gitattributes", render=False),
    ScaffoldFile("CARD.md", "CARD.md", render=False),
    ScaffoldFile("torch_binding.cpp.j2", "torch-ext/torch_binding.cpp"),
    ScaffoldFile("torch_binding.h.j2", "torch-ext/torch_binding.h"),
    ScaffoldFile("__init__.py.j2", "torch-ext/{module}/__init__.py"),
    ScaffoldFile("scale_cpu.cpp.j2", "{module}_cpu/scale_cpu.cpp", backend="cpu"),
    ScaffoldFile("scale_cuda.cu.j2", "{module}_cuda/scale_cuda.cu", backend="cuda"),
    ScaffoldFile("conftest.py.j2", "tests/conftest.py"),
    ScaffoldFile("test_kernel.py.j2", "tests/test_{module}.py"),
    ScaffoldFile("example.py.j2", "example.py"),
    ScaffoldFile("benchmark.py.j2", "benchmarks/benchmark.py"),
)


@dataclass(frozen=True)
class KernelName:
    """The Hub owner (user or organization; None until known) and the kernel name."""

    owner: str | None
    name: str

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")

    @property
    def repo_id(self) -> str:
        if self.owner is None:
            raise ValueError("the owner is not known yet")
        return f"{self.owner}/{self.name}"


@dataclass
class InitResult:
    root: Path
    repo_id: str
    backends: tuple[str, ...]
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_name(text: str) -> KernelName:
    """`OWNER/NAME` or `NAME`; a UsageError names the rule that is broken."""
    owner, _, name = text.rpartition("/")
    if "/" in owner:
        raise UsageError(f"--name {text!r}: use OWNER/NAME (one slash), e.g. my-org/{name or 'my-kernel'}")
    if owner and not OWNER_RE.fullmatch(owner):
        raise UsageError(f"--name {text!r}: {owner!r} is not a Hub user or organization name (letters, digits, '-', '_', '.')")
    if not rules.NAME_RE.fullmatch(name):
        raise UsageError(f"--name {text!r}: invalid kernel name {name!r}: {rules.NAME_RULE}")
    return KernelName(owner or None, name)


def parse_backends(text: str) -> tuple[str, ...]:
    """A comma-separated backend list (or `all`), checked against what init can scaffold."""
    if text.strip() == "all":
        return SUPPORTED_BACKENDS
    backends = tuple(dict.fromkeys(b.strip() for b in text.split(",") if b.strip()))
    if not backends:
        raise UsageError("--backends: list at least one backend, e.g. cpu,cuda")
    for backend in backends:
        if backend not in SUPPORTED_BACKENDS:
            raise UsageError(
                f"--backends: init cannot scaffold the {backend!r} backend (it can scaffold: {', '.join(SUPPORTED_BACKENDS)}); "
                "add other backends to build.toml by hand"
            )
    return tuple(b for b in SUPPORTED_BACKENDS if b in backends)


def check_license(value: str) -> str:
    if not LICENSE_RE.fullmatch(value):
        raise UsageError(f"--license {value!r}: use a license identifier such as apache-2.0 or mit (letters, digits, '.', '-', '+')")
    return value


def plan_scaffold(kernel: KernelName, backends: tuple[str, ...], license: str) -> dict[str, str]:
    """Every file of the scaffold: relative path → content (no file system, no network)."""
    variables = {
        "name": kernel.name,
        "module": kernel.module,
        "repo_id": kernel.repo_id,
        "license": license,
        "backends": list(backends),
        "flake_url": FLAKE_URL,
    }
    env = environment()
    files: dict[str, str] = {}
    for spec in FILES:
        if spec.backend is not None and spec.backend not in backends:
            continue
        name = f"scaffold/{spec.template}"
        text = env.get_template(name).render(**variables) if spec.render else env.loader.get_source(env, name)[0]
        files[spec.dest.format(module=kernel.module)] = text
    return files


def _stage_in_git(root: Path, paths: list[str]) -> str | None:
    """`git init` (unless ROOT is already in a work tree) and `git add` the files; a note on failure."""
    if shutil.which("git") is None:
        return "git is not installed: the files were not put under version control"
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True)
    if inside.returncode != 0:
        done = subprocess.run(["git", "init", "-q"], cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            return f"git init failed: {done.stderr.strip()}"
    added = subprocess.run(["git", "add", "--", *paths], cwd=root, capture_output=True, text=True)
    if added.returncode != 0:
        return f"git add failed: {added.stderr.strip()}"
    return None


def init_kernel(path: Path | None, name: str | None, backends: tuple[str, ...], license: str, *, overwrite: bool = False,
                whoami: Callable[[], str] | None = None) -> InitResult:
    """Write the scaffold into PATH (default: ./NAME, or the current folder without --name).

    The owner comes from `--name OWNER/NAME`; without one, `whoami()` asks the Hub who the user
    is (only then is the network used). Existing scaffold files are kept unless `overwrite`.
    """
    license = check_license(license)
    if name is not None:
        kernel = parse_name(name)
        root = Path(path) if path is not None else Path(kernel.name)
    else:
        root = Path(path) if path is not None else Path(".")
        folder = root.resolve().name.lower().replace("_", "-")
        if not rules.NAME_RE.fullmatch(folder):
            raise UsageError(f"{root}: the folder name {folder!r} is not a valid kernel name ({rules.NAME_RULE}); pass --name OWNER/NAME")
        kernel = KernelName(None, folder)
    if kernel.owner is None:
        if whoami is None:
            raise UsageError("no owner: pass --name OWNER/NAME")
        kernel = KernelName(whoami(), kernel.name)
        parse_name(kernel.repo_id)  # the account name must make a valid repo id too

    files = plan_scaffold(kernel, backends, license)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder")
    existing = sorted(rel for rel in files if (root / rel).exists())
    if existing and not overwrite:
        what = "a kernel" if "build.toml" in existing else "files"
        raise UsageError(f"{root} already holds {what} that init would replace: {', '.join(existing)}; pass --overwrite to replace them")

    result = InitResult(root=root, repo_id=kernel.repo_id, backends=backends)
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        result.written.append(target)
    note = _stage_in_git(root, list(files))
    if note:
        result.notes.append(note)
    return result
