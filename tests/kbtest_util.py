"""Shared helpers for the build.toml / variant / CLI tests (not a conftest: plain imports).

- Locating the build.toml corpus that CI checks out beside the repository (../shared).
- Running the real `kernel-builder` CLI in-process (click's CliRunner) or as a subprocess.
- Creating small kernel directories from TOML text, with their source files.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

from kernel_builder.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "build-toml"
CORPUS_MISSING = f"build.toml corpus not found at {CORPUS} (CI checks out ../shared beside the repository)"
GROUPS = ("kernels-community", "upstream-examples", "kernel-builder-legacy")


def corpus_dirs(group: str) -> list[Path]:
    """Every kernel directory of one corpus group that holds a build.toml (empty if absent)."""
    base = CORPUS / group
    if not base.is_dir():
        return []
    return sorted(p.parent for p in base.glob("*/build.toml"))


def corpus_params(*groups: str) -> list:
    """pytest params (one per corpus kernel dir, id `group/name`), or one skipped param."""
    params = [pytest.param(d, id=f"{g}/{d.name}") for g in groups for d in corpus_dirs(g)]
    if not params:
        params = [pytest.param(None, id="corpus-missing", marks=pytest.mark.skip(reason=CORPUS_MISSING))]
    return params


def corpus_dir(group: str, name: str) -> Path:
    """One named corpus kernel directory; skips the test if the corpus is absent."""
    path = CORPUS / group / name
    if not (path / "build.toml").is_file():
        pytest.skip(CORPUS_MISSING if not CORPUS.is_dir() else f"{path}/build.toml is not in the corpus")
    return path


def load_toml(path: Path) -> dict:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def copy_kernel(src_dir: Path, dest_parent: Path, name: str | None = None) -> Path:
    """Copy a corpus kernel's build.toml into a fresh directory under `dest_parent`."""
    dest = dest_parent / (name or src_dir.name)
    dest.mkdir(parents=True)
    shutil.copyfile(src_dir / "build.toml", dest / "build.toml")
    return dest


# ---------------------------------------------------------------------------------------------
# Running the CLI


def invoke(*args: object) -> Result:
    """Run `kernel-builder ARGS` in-process; a crash (anything but SystemExit) fails the test."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else repr(result.exception)
        pytest.fail(f"kernel-builder {' '.join(map(str, args))} crashed:\n{tb}\nstderr:\n{result.stderr}")
    return result


def run_subprocess(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m kernel_builder ARGS` in a fresh interpreter (real stderr, real exit code)."""
    full_env = dict(os.environ)
    full_env.pop("KERNEL_BUILDER_DEBUG", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kernel_builder", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def assert_bad_input(result: Result, *fragments: str) -> str:
    """Exit code 2, no traceback, and every fragment in stderr; returns stderr."""
    err = result.stderr
    assert result.exit_code == 2, f"expected exit 2, got {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{err}"
    assert "Traceback" not in result.output and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"
    return err


@contextmanager
def kernel_builder_log() -> Iterator[list[logging.LogRecord]]:
    """Collect records of the `kernel_builder` logger (the CLI turns off propagation)."""
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("kernel_builder")
    handler = _Collect(level=logging.DEBUG)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# ---------------------------------------------------------------------------------------------
# A small valid edition-5 kernel, and ways to break it

VALID_TOML = """\
[general]
name = "relu"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu", "cuda"]

[torch]
src = ["torch-ext/torch_binding.cpp"]

[kernel.relu]
backend = "cuda"
depends = ["torch"]
src = ["relu_cuda/relu.cu"]
cuda-capabilities = ["8.0", "9.0"]

[kernel.relu_cpu]
backend = "cpu"
depends = ["torch"]
src = ["relu_cpu/relu.cpp"]
"""

VALID_FILES = ("torch-ext/torch_binding.cpp", "relu_cuda/relu.cu", "relu_cpu/relu.cpp", "torch-ext/relu/__init__.py")


def edit(text: str, old: str, new: str) -> str:
    """Replace `old` (which must occur exactly once) by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the template"
    return text.replace(old, new)


def make_kernel(parent: Path, toml: str | None = VALID_TOML, *, files: tuple[str, ...] = VALID_FILES, name: str = "kernel") -> Path:
    """A kernel directory with `toml` as build.toml (None: no build.toml) and empty `files`."""
    root = parent / name
    root.mkdir(parents=True)
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("// test\n")
    if toml is not None:
        (root / "build.toml").write_text(toml)
    return root


def with_default_sigint() -> None:
    """preexec_fn for a child that is to be interrupted: a shell's background job (nohup, `&`)
    starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
