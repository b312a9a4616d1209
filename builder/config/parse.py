"""Turn build.toml text into a `BuildConfig`, collecting every problem in one pass.

Edition 5 is read as is. A file without an edition that has the edition-4 shape is upgraded in
memory with a warning. Anything older is refused here with a pointer to `update-build`
(see `migrate.py`), which is the only command that reads those formats.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import stat
import sys
import types
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from packaging.version import Version

from ..errors import ConfigError, Problem
from . import rules
from .model import (
    CURRENT_EDITION,
    FRAMEWORKS,
    BuildConfig,
    General,
    Kernel,
    NoarchFramework,
    TorchFramework,
    TvmFfiFramework,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

log = logging.getLogger("kernel_builder")

FRAMEWORK_CLASSES = {"torch": TorchFramework, "torch-noarch": NoarchFramework, "tvm-ffi": TvmFfiFramework}
# [torch-noarch] historically used snake_case keys; both spellings are accepted.
NOARCH_ALIASES = {"cuda_capabilities": "cuda-capabilities", "rocm_archs": "rocm-archs"}

_BAD = object()  # marks a value that failed conversion (a problem was already recorded)


def join(path: str, key: str) -> str:
    """The key path of `key` inside the table at `path`, e.g. kernel.relu.src."""
    key = rules.toml_key(key)
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    """A short human description of a TOML value's type, for type errors."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _convert_value(hint: Any, raw: Any, path: str, problems: list[Problem]) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _convert_value(options[0], raw, path, problems)
    if hint is str:
        if isinstance(raw, str):
            return raw
        problems.append(Problem(path, f"expected a string, got {describe(raw)}"))
        return _BAD
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        problems.append(Problem(path, f"expected an integer, got {describe(raw)}"))
        return _BAD
    if hint is Version:
        if not isinstance(raw, str):
            problems.append(Problem(path, f"expected a version string such as \"2.12\", got {describe(raw)}"))
            return _BAD
        return Version(raw) if rules.check_version_string(raw, problems, path) else _BAD
    if origin is tuple:
        (item_hint, _ellipsis) = get_args(hint)
        if not isinstance(raw, list):
            problems.append(Problem(path, f"expected an array, got {describe(raw)}"))
            return _BAD
        items = [_convert_value(item_hint, item, f"{path}[{i}]", problems) for i, item in enumerate(raw)]
        return _BAD if any(i is _BAD for i in items) else tuple(items)
    if is_dataclass(hint):
        if not isinstance(raw, dict):
            problems.append(Problem(path, f"expected a table, got {describe(raw)}"))
            return _BAD
        result = convert_table(hint, raw, path, problems)
        return _BAD if result is None else result
    raise TypeError(f"no converter for {hint!r}")  # a bug in the model, not user input


def unknown_key(table_path: str, name: str, allowed: list[str]) -> Problem:
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return Problem(join(table_path, name), "unknown key", hint + "allowed keys: " + ", ".join(allowed))


@functools.cache
def _table_schema(cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """(type hints, fields by TOML key) of a model class: computed once per class, since
    get_type_hints evaluates every annotation again on each call (50,000 sections took 32 s)."""
    return get_type_hints(cls), {f.metadata["key"]: f for f in fields(cls) if "key" in f.metadata}


def convert_table(cls: type, table: dict, path: str, problems: list[Problem], **extra: Any) -> Any:
    """Build dataclass `cls` from a TOML table; return None if anything was wrong."""
    hints, by_key = _table_schema(cls)
    before = len(problems)
    for name in table:
        if name not in by_key:
            problems.append(unknown_key(path, name, list(by_key)))
    values: dict[str, Any] = dict(extra)
    for toml_key, f in by_key.items():
        sub = join(path, toml_key)
        if toml_key not in table:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append(Problem(sub, "missing required key"))
            continue
        if f.name == "stable_abi":
            value = _convert_stable_abi(table[toml_key], sub, problems)
        else:
            value = _convert_value(hints[f.name], table[toml_key], sub, problems)
        if value is _BAD:
            continue
        check = f.metadata.get("check")
        if check is not None:
            check(value, problems, sub)
        values[f.name] = value
    if len(problems) > before:
        return None
    return cls(**values)


def _convert_stable_abi(raw: Any, path: str, problems: list[Problem]) -> Any:
    """`stable-abi` is one version for every backend or a table of backend = version."""
    from .model import GENERAL_BACKENDS

    if isinstance(raw, str):
        return _convert_value(Version, raw, path, problems)
    if isinstance(raw, dict):
        result = {}
        for backend, version in raw.items():
            if backend not in GENERAL_BACKENDS:
                problems.append(Problem(join(path, backend), f"unknown backend {backend!r}", "allowed: " + ", ".join(GENERAL_BACKENDS)))
                continue
            value = _convert_value(Version, version, join(path, backend), problems)
            if value is not _BAD:
                result[backend] = value
        return result
    problems.append(Problem(path, f"expected a version string or a table of backend = version, got {describe(raw)}"))
    return _BAD


# build.toml is read with bounds: real files are a few kB and nest 4 levels deep.
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 24
_LONG_NUMBER = re.compile(r"[0-9][0-9_]{4300,}")


def read_text(path: Path) -> str:
    """The text of build.toml: a regular file of at most MAX_BYTES, valid UTF-8.

    Opened without blocking (a FIFO named build.toml is refused, not waited on) and read up to
    the bound (a link to /dev/zero is refused, not read forever). Errors are ConfigErrors; a
    UTF-8 error names the line and column.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(path, [Problem("", "no such file", "a kernel directory holds build.toml")]) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(path, [Problem("", f"cannot be opened: {getattr(exc, 'strerror', None) or exc}")]) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a plain file"
        raise ConfigError(path, [Problem("", f"is {kind}", "build.toml must be a regular file")])
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(path, [Problem("", f"cannot be read: {exc.strerror or exc}")]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(path, [Problem("", f"is larger than {MAX_BYTES // (1024 * 1024)} MiB", "a build.toml is a few kilobytes")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(path, [Problem("", f"line {line}, column {column}: invalid UTF-8 (byte 0x{data[exc.start]:02x})", "build.toml is UTF-8 text")]) from None


def parse_toml(text: str, path: Path | str) -> dict:
    """Parse TOML text; syntax errors, numbers Python cannot hold and nesting beyond MAX_DEPTH
    become ConfigErrors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [Problem("", f"invalid TOML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(path, [Problem("", "invalid TOML: arrays or inline tables nested too deeply", f"at most {MAX_DEPTH} levels")]) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        match = _LONG_NUMBER.search(text)
        where = f" (line {text.count(chr(10), 0, match.start()) + 1})" if match else ""
        raise ConfigError(path, [Problem("", f"invalid TOML{where}: {exc}", "numbers in build.toml are small")]) from None
    deep = _too_deep(data)
    if deep is not None:
        raise ConfigError(path, [Problem(deep, f"nested more than {MAX_DEPTH} levels deep", "build.toml tables and arrays nest a few levels")])
    return data


def _too_deep(data: dict) -> str | None:
    """The key path of the first value nested deeper than MAX_DEPTH, or None (no recursion)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, join(path, k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def read_toml(path: Path) -> dict:
    """Read and parse build.toml (bounded, see read_text), or raise ConfigError."""
    return parse_toml(read_text(path), path)


def parse_document(data: dict, file: Path | str = "build.toml", *, root: Path | None = None) -> BuildConfig:
    """Parse a TOML document (already decoded) into an edition-5 model, or raise ConfigError.

    With `root`, the paths the document lists are checked too. Every table is converted and
    checked on its own, so one pass reports the problems of all of them.
    """
    from . import migrate

    general = data.get("general")
    if not isinstance(general, dict):
        problem = "missing [general] table" if general is None else f"expected a table, got {describe(general)}"
        raise ConfigError(file, [Problem("general", problem)])

    edition = general.get("edition")
    if edition is None:
        reasons = migrate.legacy_reasons(data)
        if reasons:
            raise ConfigError(
                file,
                [Problem("", "uses a format older than edition 4 (" + "; ".join(reasons) + ")", "convert it with `kernel-builder update-build`")],
            )
        v5_only = migrate.edition5_only_keys(data)
        if v5_only:
            raise ConfigError(file, [Problem(k, "needs edition 5", "add `edition = 5` to [general]") for k in v5_only])
        source_edition = 4
    elif isinstance(edition, bool) or not isinstance(edition, int):
        raise ConfigError(file, [Problem("general.edition", f"expected an integer, got {describe(edition)}", "this kernel-builder reads edition 5")])
    elif edition != CURRENT_EDITION:
        raise ConfigError(file, [Problem("general.edition", f"unsupported edition {edition}", "this kernel-builder reads edition 5 (and edition-4 files, which have no edition key)")])
    else:
        source_edition = CURRENT_EDITION

    problems: list[Problem] = []
    config = build_model(data, problems, str(file), root)
    if problems:
        raise ConfigError(file, problems)
    assert config is not None
    if source_edition != CURRENT_EDITION:
        log.warning("%s has no edition (edition-4 format); read as edition 5. Run `kernel-builder update-build` to convert the file.", file)
    return BuildConfig(config.general, config.framework, config.kernels, source_edition=source_edition)


def build_model(data: dict, problems: list[Problem], file: str = "build.toml", root: Path | None = None) -> BuildConfig | None:
    """Convert and check every table; record problems and return None if any was wrong."""
    from . import validate

    before = len(problems)
    allowed_top = ["general", *FRAMEWORKS, "kernel"]
    for name in data:
        if name not in allowed_top:
            problems.append(unknown_key("", name, allowed_top))

    general = convert_table(General, data["general"], "general", problems)
    if general is not None:
        problems.extend(validate.validate_general(general, file))

    present = [name for name in FRAMEWORKS if name in data]
    framework = None
    if not present:
        problems.append(Problem("", "missing framework table", "add one of [torch], [torch-noarch] or [tvm-ffi]"))
    elif len(present) > 1:
        problems.append(Problem("", "more than one framework table: " + ", ".join(f"[{p}]" for p in present), "keep exactly one of [torch], [torch-noarch] or [tvm-ffi]"))
    else:
        name = present[0]
        table = data[name]
        if not isinstance(table, dict):
            problems.append(Problem(name, f"expected a table, got {describe(table)}"))
        else:
            if name == "torch-noarch":
                for alias, canonical in NOARCH_ALIASES.items():
                    if alias in table and canonical in table:
                        problems.append(Problem(f"{name}.{alias}", f"given twice, as {alias} and as {canonical}", "keep one spelling"))
                table = {NOARCH_ALIASES.get(k, k): v for k, v in table.items()}
            framework = convert_table(FRAMEWORK_CLASSES[name], table, name, problems)
    if framework is not None:
        problems.extend(validate.validate_framework(framework, general, bool(data.get("kernel")), file))

    kernels: list[Kernel] = []
    kernel_tables = data.get("kernel", {})
    if not isinstance(kernel_tables, dict):
        problems.append(Problem("kernel", f"expected a table, got {describe(kernel_tables)}"))
    else:
        for kname, table in kernel_tables.items():
            path = join("kernel", kname)
            if not rules.check_section_name(kname, problems, path):
                continue
            if not isinstance(table, dict):
                problems.append(Problem(path, f"expected a table, got {describe(table)}"))
                continue
            kernel = convert_table(Kernel, table, path, problems, name=kname)
            if kernel is not None:
                kernels.append(kernel)
                problems.extend(validate.validate_kernel(kernel, general, present[0] if len(present) == 1 else None, file))

    # Paths are checked from the raw tables, so that a table with a wrong key still has its
    # missing files reported in the same run.
    python_package = None
    if len(present) == 1 and isinstance(data["general"].get("name"), str) and rules.NAME_RE.fullmatch(data["general"]["name"]):
        table = data[present[0]] if isinstance(data[present[0]], dict) else {}
        pyext = _strings(table.get("pyext")) if "pyext" in table else ("py", "pyi")
        python_package = (FRAMEWORK_CLASSES[present[0]].python_root, data["general"]["name"].replace("-", "_"), pyext)
    problems.extend(validate.validate_paths(root, _raw_path_lists(data, present), python_package))

    if len(problems) > before or general is None or framework is None:
        return None
    return BuildConfig(general, framework, tuple(kernels))


def _strings(value: Any) -> tuple[str, ...]:
    """The string items of a raw TOML array (its other items are reported by the converter)."""
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _raw_path_lists(data: dict, frameworks: list[str]) -> list:
    """(key path, entries, want_dir) for every src/include list, read from the raw document."""
    lists = []
    for name in frameworks:
        table = data[name]
        if isinstance(table, dict) and name != "torch-noarch":
            lists += [(f"{name}.src", _strings(table.get("src")), False), (f"{name}.include", _strings(table.get("include")), True)]
    kernel_tables = data.get("kernel")
    if isinstance(kernel_tables, dict):
        for kname, table in kernel_tables.items():
            if isinstance(table, dict) and rules.SECTION_NAME_RE.fullmatch(kname):
                lists += [(f"kernel.{kname}.src", _strings(table.get("src")), False), (f"kernel.{kname}.include", _strings(table.get("include")), True)]
    return lists


def load_config(kernel_dir: Path | str, *, check_files: bool = True) -> BuildConfig:
    """Read `<kernel_dir>/build.toml` (edition 5 or 4) and validate it.

    With `check_files`, every source, include and Python package path must exist inside the
    kernel directory. Raises ConfigError listing every problem found.
    """
    root = Path(kernel_dir)
    path = root / "build.toml"
    try:
        if root.name == "build.toml" and not root.is_dir():
            path, root = root, root.parent
        elif not root.is_dir():
            raise ConfigError(root, [Problem("", "no such directory", "pass a kernel directory holding build.toml")])
    except OSError as exc:  # a name too long, a folder that cannot be searched
        raise ConfigError(root, [Problem("", f"cannot be read: {exc.strerror or exc}")]) from None
    config = parse_document(read_toml(path), path, root=root if check_files else None)
    return BuildConfig(config.general, config.framework, config.kernels, path=path.absolute(), source_edition=config.source_edition)
