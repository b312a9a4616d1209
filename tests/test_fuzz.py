"""Fuzzing the commands that read build.toml: whatever the file holds, a clear error or success,
never a traceback (issue 12, item 5).

Each generated build.toml goes through the real CLI, in-process: check-config (with and without
--schema-only), update-build --dry-run, list-variants and create-pyproject into a fresh folder.
Every run must end with exit code 0, 1 or 2, without an exception escaping the command and
without a traceback in the output; exit 2 must name build.toml.

Two generators (hypothesis):
- structure-aware: valid-ish documents (edition 5, edition 4, an older format, Python-only)
  mutated at the TOML level: values replaced by hostile values of any TOML type, keys deleted
  or added, sections renamed, tables nested deeply;
- byte-level: the text of those documents mutated byte by byte (insertions of TOML syntax,
  invalid UTF-8, NUL, huge numbers, deep brackets; deletions; replacements), and random bytes.

Profiles: by default (CI) KB_FUZZ_EXAMPLES=150 cases per generator, derandomized (the same
cases every run, a few seconds). The long profile is documented in docs/reliability.md:

    KB_FUZZ_EXAMPLES=5000 KB_FUZZ_RANDOM=1 pytest tests/test_fuzz.py

Inputs that once crashed a command are kept in tests/data/fuzz-regressions/ and replayed by
test_regression_corpus.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import traceback
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbtest_util import VALID_FILES, VALID_TOML
from kernel_builder.cli import main
from kernel_builder.config.parse import tomllib

EXAMPLES = int(os.environ.get("KB_FUZZ_EXAMPLES", "150"))
RANDOM = bool(os.environ.get("KB_FUZZ_RANDOM"))
REGRESSIONS = Path(__file__).parent / "data" / "fuzz-regressions"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

NOARCH_TOML = """\
[general]
name = "relu"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu", "cuda"]
python-depends = ["einops"]

[general.hub]
repo-id = "org/relu"

[torch-noarch]
cuda-capabilities = ["9.0"]
"""
EDITION4_TOML = VALID_TOML.replace("edition = 5\n", "")
LEGACY_TOML = """\
[general]
name = "relu_kernel"
universal = false
cuda-minver = "12.4"

[torch]
src = ["torch-ext/torch_binding.cpp"]
pysrc = ["torch-ext/relu"]

[kernel.relu]
language = "cuda-hipify"
depends = ["torch", "cutlass_sycl"]
src = ["relu_cuda/relu.cu"]
capabilities = ["8.0", "9.0"]
"""
BASES = [VALID_TOML, NOARCH_TOML, EDITION4_TOML, LEGACY_TOML]
FILES = (*VALID_FILES, "torch-ext/relu_kernel/__init__.py")

COMMANDS = (
    ("check-config",),
    ("check-config", "--schema-only"),
    ("update-build", "--dry-run"),
    ("list-variants", "--json", "--all"),
    ("create-pyproject",),
)

# Values that broke something once, or are meant to.
INTERESTING_STRINGS = [
    "", " ", "\n", "\r\n", "\x00", "\x7f", "\u2028", "é日😀", "\\", '"', "'", "$", "${HOME}", "$<1:x>", "$(id)", "`id`", ";", "|", "#",
    "[", "]", "]]", "]=]", "{", "}", "..", "../..", "/etc/passwd", "/", ".", "a" * 300, "9" * 5000, "1." * 50, "relu", "cuda", "cpu",
    "torch", "9.0", "8.0+PTX", "10.0a", "gfx942", "2.12", "x\nfile(WRITE /tmp/p \"x\")\n#", "einops", "cutlass_3_6", "org/relu",
    "https://github.com/org/relu", "git@github.com:org/relu.git", "relu_cpu/relu.cpp", "torch-ext/relu", "@KB_OPS_NAME@",
]
KEYS = st.one_of(
    st.sampled_from(["name", "version", "edition", "license", "backends", "src", "include", "depends", "backend", "cxx-flags", "cuda-flags",
                     "cuda-capabilities", "rocm-archs", "minver", "maxver", "pyext", "stable-abi", "python-depends", "kernel-depends", "hub",
                     "repo-id", "cuda", "xpu", "universal", "language", "capabilities", "pysrc", "pyroot", "kernel", "torch", "general",
                     "torch-noarch", "tvm-ffi", "1", ""]),
    st.text(max_size=8),
)
SCALARS = st.one_of(
    st.sampled_from(INTERESTING_STRINGS),
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)


def _tables(document: dict, path: tuple = ()) -> list[tuple]:
    """Paths of every table in the document (the root included)."""
    found = [path]
    for key, value in document.items():
        if isinstance(value, dict):
            found += _tables(value, path + (key,))
    return found


def _get(document: dict, path: tuple) -> dict:
    for key in path:
        document = document[key]
    return document


@st.composite
def mutated_documents(draw) -> bytes:
    """A valid-ish document with a few TOML-level mutations, as TOML bytes."""
    document = copy.deepcopy(tomllib.loads(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        tables = _tables(document)
        table = _get(document, draw(st.sampled_from(tables)))
        operation = draw(st.sampled_from(["set", "set", "set", "delete", "rename", "nest", "section"]))
        keys = list(table)
        if operation == "set" or not keys:
            key = draw(st.sampled_from(keys)) if keys and draw(st.booleans()) else draw(KEYS)
            table[key] = draw(VALUES)
        elif operation == "delete":
            del table[draw(st.sampled_from(keys))]
        elif operation == "rename":
            old = draw(st.sampled_from(keys))
            table[draw(KEYS)] = table.pop(old)
        elif operation == "nest":
            depth = draw(st.sampled_from([5, 30, 200]))
            value: object = draw(SCALARS)
            for _level in range(depth):
                value = [value] if draw(st.booleans()) else {"x": value}
            table[draw(st.sampled_from(keys))] = value
        else:
            kernels = document.setdefault("kernel", {})
            if isinstance(kernels, dict):
                kernels[draw(KEYS)] = {"backend": draw(st.sampled_from(["cpu", "cuda", draw(st.text(max_size=5))])), "depends": ["torch"],
                                       "src": draw(st.lists(st.sampled_from(INTERESTING_STRINGS), max_size=3))}
    try:
        return tomli_w.dumps(document).encode()
    except (TypeError, ValueError):  # a value tomli-w cannot write: fall back to the base text
        return draw(st.sampled_from(BASES)).encode()


FRAGMENTS = [b"[", b"]", b"[[", b"]]", b"{", b"}", b'"', b"'", b"=", b"\n", b"\\", b"\x00", b"\xff", b"\xc3", b"\r", b"#", b".",
             b"\n[kernel.x]\n", b"\n[general]\n", b'\nedition = 5\n', b"\nx = " + b"[" * 3000, b"9" * 5000, b"\xef\xbb\xbf", b"inf", b"nan",
             b"1979-05-27T07:32:00Z", b'"""', b"'''", b"\\u0000", b"\\UFFFFFFFF"]


# Lines that keep a document valid TOML but push a limit (appended to a base document).
TAILS = [
    b"\n[kernel.deep]\nx = " + b"[" * 3000 + b"]" * 3000 + b"\n",
    b"\n[kernel.deep]\nx = " + b"[" * 300 + b"]" * 300 + b"\n",
    b"\n[kernel.deep]\nx = " + b"{ a = " * 200 + b"1" + b" }" * 200 + b"\n",
    b"\n[kernel.big]\nversion = " + b"9" * 5000 + b"\n",
    b'\n[kernel.big]\ncuda-minver = "' + b"1" * 5000 + b'"\n',
    b'\n[kernel."x\\nfile(WRITE /tmp/p \\"x\\")\\n#"]\nbackend = "cpu"\ndepends = []\nsrc = ["a.cpp"]\n',
    b'\n[kernel.k]\nbackend = "cpu"\ndepends = 5\nsrc = ["a\\u0000b"]\n',
    b"".join(b'\n[kernel.k%d]\nbackend = "cpu"\ndepends = ["torch"]\nsrc = ["relu_cpu/relu.cpp"]\n' % i for i in range(3000)),
    b'\n[[kernel.x.y]]\n[[1]]\n',
    b'\n[kernel.k]\nsrc = ["' + b"a" * 300 + b'.cpp"]\nbackend = "cpu"\ndepends = []\n',
]


@st.composite
def mutated_bytes(draw) -> bytes:
    """Document text with byte-level insertions, deletions and replacements; or random bytes."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(st.binary(max_size=400))
    data = bytearray(draw(st.sampled_from(BASES)).encode())
    if draw(st.integers(min_value=0, max_value=3)) == 0:  # a valid document with one extreme line
        data += draw(st.sampled_from(TAILS))
        return bytes(data)
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        operation = draw(st.sampled_from(["insert", "insert", "delete", "replace"]))
        chunk = draw(st.one_of(st.sampled_from(FRAGMENTS), st.binary(min_size=1, max_size=6)))
        if operation == "insert":
            data[position:position] = chunk
        elif operation == "delete":
            del data[position:position + draw(st.integers(min_value=1, max_value=20))]
        else:
            data[position:position + len(chunk)] = chunk
    return bytes(data)


def run_commands(data: bytes) -> list[str]:
    """Write `data` as build.toml of a kernel with the usual files and run every command;
    return what went wrong (empty: every command behaved)."""
    root = Path(tempfile.mkdtemp(prefix="kb-fuzz-"))
    try:
        kernel = root / "kernel"
        for rel in FILES:
            (kernel / rel).parent.mkdir(parents=True, exist_ok=True)
            (kernel / rel).write_text("// fuzz\n")
        (kernel / "build.toml").write_bytes(data)
        failures = []
        for i, command in enumerate(COMMANDS):
            args = [*command, str(kernel)] + ([str(root / f"tree-{i}")] if command[0] == "create-pyproject" else [])
            result = CliRunner().invoke(main, args)
            problem = judge(result)
            if problem:
                failures.append(f"kernel-builder {' '.join(command)}: {problem}")
        return failures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def judge(result) -> str | None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "exception escaped:\n" + "".join(traceback.format_exception(*result.exc_info))
    if result.exit_code not in (0, 1, 2):
        return f"exit code {result.exit_code}"
    if "Traceback" in result.output or "Traceback" in result.stderr:
        return "traceback in the output:\n" + result.stderr
    if result.exit_code == 2 and "build.toml" not in result.stderr:
        return "exit 2 without naming build.toml:\n" + result.stderr
    return None


@FUZZ_SETTINGS
@given(mutated_documents())
def test_structure_aware_fuzz(data):
    failures = run_commands(data)
    assert not failures, "input:\n" + data.decode(errors="replace")[:3000] + "\n\n" + "\n".join(failures)


@FUZZ_SETTINGS
@given(mutated_bytes())
def test_byte_level_fuzz(data):
    failures = run_commands(data)
    assert not failures, f"input: {data[:3000]!r}\n\n" + "\n".join(failures)


def test_regression_corpus_is_there():
    assert len(list(REGRESSIONS.glob("*.toml"))) >= 10


@pytest.mark.parametrize("case", sorted(REGRESSIONS.glob("*.toml")), ids=lambda p: p.stem)
def test_regression_corpus(case):
    """Inputs that made a command crash once (found by this fuzzer or listed in issue 12)."""
    failures = run_commands(case.read_bytes())
    assert not failures, "\n".join(failures)
