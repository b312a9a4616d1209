"""Value rules for build.toml: small pure checks that append a Problem when a value is wrong.

Each check has the signature `check(value, problems, path)`, where `path` is the key path
used in the message (e.g. `kernel.activation.cuda-capabilities[1]`).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from urllib.parse import urlparse

from ..errors import Problem
from ..standalone.cmakedata import list_item_problem

NAME_RE = re.compile(r"^[a-z][-a-z0-9]{0,94}[a-z0-9]$")
# [kernel.<name>]: the name reaches CMake (as data), messages and file names; real kernels use
# names such as relu_cpu, moe-marlin and _qattn_sm90.
SECTION_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Bounded: a version is compared as integers, and Python refuses numbers of over 4300 digits.
VERSION_RE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$")
CAPABILITY_RE = re.compile(r"^([0-9]{1,9})\.([0-9]{1,9})([af]?)(\+PTX)?$")
ROCM_ARCH_RE = re.compile(r"^gfx[0-9a-z]+(:[a-z0-9-]+[+-])*$")
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]*/[A-Za-z0-9][-A-Za-z0-9_.]*$")
GIT_SCHEMES = ("https", "http", "git", "ssh", "git+ssh", "git+https", "git+http")
SCP_GIT_RE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[^\s]+$")

NAME_RULE = (
    "a name starts with a lowercase letter, ends with a letter or digit, has 2 to 96 "
    "characters and uses only lowercase letters, digits and dashes (no underscores)"
)
SECTION_NAME_RULE = (
    "a section name starts with a letter or an underscore and has only letters, digits, "
    "underscores and dashes, at most 64 characters, e.g. relu_cpu"
)
# Characters a src/include entry may not hold: measured to break CMake or Ninja in a source
# path (`|` ends a Ninja path, `\\` becomes `/`, `;`, `[`, `]` split CMake lists, `$<` is a
# generator expression), see docs/reliability.md.
PATH_FORBIDDEN = frozenset("\\;|$[]")
PATH_RULE = "paths use printable characters other than \\ ; | $ [ ] (CMake and Ninja cannot use them in a source path)"
FLAG_RULE = "one compiler argument of printable characters, without ';' and with as many '[' as ']'"
CAPABILITY_RULE = "MAJOR.MINOR with an optional a/f suffix or +PTX, e.g. 9.0, 9.0a, 10.0f, 8.0+PTX"


@cache
def _data(name: str) -> dict:
    return json.loads(resources.files("kernel_builder.data").joinpath(name).read_text())


def kernel_dependencies() -> dict[str, dict]:
    """The allow-list of `depends` values (data/dependencies.json)."""
    return _data("dependencies.json")


def python_dependencies() -> dict[str, dict[str, dict]]:
    """The allow-list of python-depends names, per scope (data/python-depends.json)."""
    return _data("python-depends.json")


def check_kernel_name(value: str, problems: list[Problem], path: str) -> None:
    if not NAME_RE.fullmatch(value):
        problems.append(Problem(path, f"invalid kernel name {value!r}", NAME_RULE))


def toml_key(name: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (so that a key holding a
    newline or an escape sequence is shown, not acted on, in a message)."""
    return name if BARE_KEY_RE.fullmatch(name) else json.dumps(name)


def check_section_name(name: str, problems: list[Problem], path: str) -> bool:
    """A [kernel.<name>] section name; True when it is allowed."""
    if SECTION_NAME_RE.fullmatch(name):
        return True
    problems.append(Problem(path, f"invalid kernel section name {json.dumps(name)}", SECTION_NAME_RULE))
    return False


def check_path_entries(value: tuple[str, ...], problems: list[Problem], path: str) -> None:
    """src/include entries: characters the build tools can use (containment is checked later)."""
    for i, entry in enumerate(value):
        bad = next((c for c in entry if c in PATH_FORBIDDEN or not c.isprintable()), None)
        if bad is not None:
            problems.append(Problem(f"{path}[{i}]", f"{json.dumps(entry)} holds the character {json.dumps(bad)}", PATH_RULE))


def check_flags(value: tuple[str, ...], problems: list[Problem], path: str) -> None:
    """Compiler flags: each reaches the compiler as one argument, through CMake lists."""
    for i, flag in enumerate(value):
        if not flag:
            problems.append(Problem(f"{path}[{i}]", "empty flag", FLAG_RULE))
        elif not flag.isprintable():
            bad = next(c for c in flag if not c.isprintable())
            problems.append(Problem(f"{path}[{i}]", f"{json.dumps(flag)} holds the control character {json.dumps(bad)}", FLAG_RULE))
        elif list_item_problem(flag):
            problems.append(Problem(f"{path}[{i}]", f"{json.dumps(flag)}: {list_item_problem(flag)}", FLAG_RULE))


def check_kernel_version(value: int, problems: list[Problem], path: str) -> None:
    if value < 0:
        problems.append(Problem(path, f"version must not be negative, got {value}", "the kernel's major API version, e.g. 1"))


def check_backends(value: tuple[str, ...], problems: list[Problem], path: str) -> None:
    from .model import GENERAL_BACKENDS

    for i, backend in enumerate(value):
        if backend not in GENERAL_BACKENDS:
            problems.append(Problem(f"{path}[{i}]", f"unknown backend {backend!r}", "allowed: " + ", ".join(GENERAL_BACKENDS)))
    for backend in sorted({b for b in value if value.count(b) > 1}):
        problems.append(Problem(path, f"backend {backend!r} is listed more than once"))
    if not value:
        problems.append(Problem(path, "no backends listed", "list at least one backend"))


def check_git_url(value: str, problems: list[Problem], path: str) -> None:
    if SCP_GIT_RE.fullmatch(value):
        return
    parsed = urlparse(value)
    if parsed.scheme not in GIT_SCHEMES or not parsed.netloc:
        problems.append(
            Problem(path, f"{value!r} is not a git URL", "use https://, http://, git://, ssh://, git+ssh://, git+https://, git+http:// or git@host:org/repo.git")
        )


def check_repo_id(value: str, problems: list[Problem], path: str) -> None:
    if not REPO_ID_RE.fullmatch(value):
        problems.append(Problem(path, f"{value!r} is not a Hub repository id", "use <owner>/<name>, e.g. kernels-community/relu"))


def check_version_string(value: str, problems: list[Problem], path: str) -> bool:
    if not VERSION_RE.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        problems.append(Problem(path, f"{shown!r} is not a version", "dot-separated numbers, e.g. 2.12 or 12.8 (at most 8 numbers of 9 digits)"))
        return False
    return True


def check_capability(value: str, problems: list[Problem], path: str) -> None:
    if not CAPABILITY_RE.fullmatch(value):
        problems.append(Problem(path, f"{value!r} is not a CUDA capability", CAPABILITY_RULE))


def check_rocm_arch(value: str, problems: list[Problem], path: str) -> None:
    if not ROCM_ARCH_RE.fullmatch(value):
        problems.append(Problem(path, f"{value!r} is not a ROCm architecture", "a gfx target, e.g. gfx90a, gfx942 or gfx90a:xnack+"))


def check_depends(value: tuple[str, ...], problems: list[Problem], path: str) -> None:
    allowed = kernel_dependencies()
    for i, dep in enumerate(value):
        if dep not in allowed:
            problems.append(Problem(f"{path}[{i}]", f"unknown dependency {dep!r}", "allowed: " + ", ".join(allowed)))


def check_python_depends(value: tuple[str, ...], problems: list[Problem], path: str, scope: str) -> None:
    allowed = python_dependencies().get(scope, {})
    for i, dep in enumerate(value):
        if dep not in allowed:
            rule = ("allowed here: " + ", ".join(allowed)) if allowed else f"no python-depends are allowed for {scope}"
            others = [s for s, deps in python_dependencies().items() if dep in deps and s != scope]
            if others:
                rule += f"; {dep!r} belongs in [general.{others[0]}]" if others[0] != "general" else f"; {dep!r} belongs in [general]"
            problems.append(Problem(f"{path}[{i}]", f"unknown Python dependency {dep!r}", rule))
