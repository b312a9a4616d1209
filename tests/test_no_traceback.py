"""Every input of issue 12, item 4 that used to end in a Python traceback: now a clear error
naming the file, the key or line and the rule, with exit code 2 for bad input and 1 for a
failing environment (a full disk, a read-only folder).

File-system faults are real where the machine allows it: a small tmpfs (full disk, no inodes,
read-only) in a private mount namespace (`unshare`), a file size limit (RLIMIT_FSIZE), and a
process without root rights for an unreadable folder. Tests that need what the machine cannot
give are skipped with the reason.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from kbtest_util import REPO, VALID_FILES, VALID_TOML, assert_bad_input, edit, invoke, make_kernel

EXAMPLES = REPO / "examples"
LEGACY = """\
[general]
name = "relu"

[torch]
src = ["torch-ext/torch_binding.cpp"]

[kernel.relu]
depends = ["torch"]
src = ["relu_cuda/relu.cu"]
"""


def kb(*args: object, env: dict | None = None, timeout: int = 120, **kwargs) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("KERNEL_BUILDER_CUDA_ARCHS", None)
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=full_env, timeout=timeout, **kwargs)


def assert_clean(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"


def relu(tmp_path: Path, name: str = "relu") -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / "relu", target, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return target


# ---------------------------------------------------------------------------------------------
# build.toml contents


@pytest.mark.parametrize("depth", [50, 3000])
def test_deep_nesting(tmp_path, depth):
    text = VALID_TOML + "\n[kernel.deep]\nx = " + "[" * depth + "]" * depth + "\n"
    kernel = make_kernel(tmp_path, text)
    assert_bad_input(invoke("check-config", kernel), "build.toml", "nested")
    assert_bad_input(invoke("update-build", kernel, "--dry-run"), "build.toml", "nested")


def test_integer_of_more_than_4300_digits_names_the_line(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML.replace("version = 1", "version = " + "9" * 5000))
    assert_bad_input(invoke("check-config", kernel), "build.toml", "invalid TOML (line 3)", "4300")


def test_version_string_of_5000_digits(tmp_path):
    kernel = make_kernel(tmp_path, edit(VALID_TOML, 'src = ["torch-ext/torch_binding.cpp"]', 'src = ["torch-ext/torch_binding.cpp"]\nminver = "' + "1" * 5000 + '"'))
    assert_bad_input(invoke("check-config", kernel), "torch.minver", "not a version", "9 digits")
    legacy = make_kernel(tmp_path, LEGACY.replace('name = "relu"', 'name = "relu"\nversion = "' + "1" * 5000 + '.0"'), name="legacy")
    assert_bad_input(invoke("update-build", legacy, "--dry-run"), "general.version")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (('depends = ["torch"]', "depends = 5"), "kernel.relu.depends"),
        (('depends = ["torch"]', "depends = [[1]]"), "kernel.relu.depends"),
        (('depends = ["torch"]', 'depends = [{ a = 1 }]'), "kernel.relu.depends"),
        (("[kernel.relu]\n", "[[kernel.relu.x]]\n"), "kernel.relu"),
        (('[torch]\nsrc = ["torch-ext/torch_binding.cpp"]', "torch = 1"), "torch"),
        (('[torch]\n', '[torch]\npysrc = 5\n'), "torch.pysrc"),
        (('[torch]\n', '[torch]\nname = ["relu"]\n'), "torch.name"),
        (('name = "relu"\n', 'name = "relu"\ncuda = 1\n'), "general.cuda"),
        (('name = "relu"\n', 'name = "relu"\npython-depends = [1]\n'), "general.python-depends"),
        (('depends = ["torch"]', 'language = ["cuda"]\ndepends = ["torch"]'), "kernel.relu.language"),
        (("[kernel.relu]\n", "[kernel]\nrelu = 1\n[kernel.other]\n"), "kernel.relu"),
    ],
)
def test_odd_tables_in_an_older_file(tmp_path, change, fragment):
    kernel = make_kernel(tmp_path, edit(LEGACY, *change), files=("torch-ext/torch_binding.cpp", "relu_cuda/relu.cu", "torch-ext/relu/__init__.py"))
    for command in (["check-config"], ["update-build", "--dry-run"], ["update-build"], ["list-variants"]):
        result = invoke(*command, kernel)
        assert result.exit_code == 2, (command, result.stderr)
        assert "build.toml" in result.stderr
    assert fragment in invoke("update-build", "--dry-run", kernel).stderr


def test_top_level_array_of_tables(tmp_path):
    kernel = make_kernel(tmp_path, "[[1]]\n" + LEGACY)
    for command in (["check-config"], ["update-build", "--dry-run"]):
        assert_bad_input(invoke(*command, kernel), "build.toml")


@pytest.mark.parametrize(
    "old, new, fragment",
    [
        ('src = ["relu_cpu/relu.cpp"]', f'src = ["relu_cpu/{"a" * 300}.cpp"]', "kernel.relu_cpu.src[0]"),
        ('name = "relu"', f'name = "{"r" * 300}"', "general.name"),
    ],
)
def test_path_components_over_255_characters(tmp_path, old, new, fragment):
    kernel = make_kernel(tmp_path, edit(VALID_TOML, old, new))
    assert_bad_input(invoke("check-config", kernel), "build.toml", fragment)


def test_directory_argument_over_255_characters(tmp_path):
    long_dir = tmp_path / ("d" * 300)
    for command in (["check-config"], ["update-build"], ["list-variants"], ["build"], ["create-pyproject"]):
        result = kb(*command, long_dir)
        assert_clean(result, 2, "d" * 300)


def test_embedded_nul_in_a_path(tmp_path):
    kernel = make_kernel(tmp_path, edit(VALID_TOML, 'src = ["relu_cpu/relu.cpp"]', 'src = ["a\\u0000b"]'))
    assert_bad_input(invoke("check-config", kernel), "kernel.relu_cpu.src[0]", "\\u0000")


def test_nul_byte_in_the_file_names_the_line(tmp_path):
    kernel = make_kernel(tmp_path, None)
    (kernel / "build.toml").write_bytes(VALID_TOML.encode().replace(b'license = "Apache-2.0"', b'license = "Apache\x002.0"'))
    assert_bad_input(invoke("check-config", kernel), "build.toml", "line 5")


def test_invalid_utf8_names_the_line(tmp_path):
    kernel = make_kernel(tmp_path, None)
    (kernel / "build.toml").write_bytes(VALID_TOML.encode().replace(b'license = "Apache-2.0"', b'license = "Apache\xff2.0"'))
    assert_bad_input(invoke("check-config", kernel), "build.toml", "line 5, column 18", "invalid UTF-8", "0xff")


def test_build_toml_that_is_dev_zero(tmp_path):
    kernel = make_kernel(tmp_path, None)
    (kernel / "build.toml").symlink_to("/dev/zero")
    for command in (["check-config"], ["update-build"], ["list-variants"]):
        assert_bad_input(invoke(*command, kernel), "build.toml", "is a device", "regular file")


def test_build_toml_that_is_a_fifo_does_not_block(tmp_path):
    kernel = make_kernel(tmp_path, None)
    os.mkfifo(kernel / "build.toml")
    for command in ("check-config", "update-build", "list-variants", "build"):
        assert_clean(kb(command, kernel, timeout=60), 2, "build.toml", "is a FIFO")


def test_huge_build_toml_is_refused_without_reading_it_all(tmp_path):
    kernel = make_kernel(tmp_path, VALID_TOML + "# " + "x" * (5 * 1024 * 1024) + "\n")
    assert_bad_input(invoke("check-config", kernel), "build.toml", "larger than 4 MiB")


def test_build_toml_that_is_a_directory(tmp_path):
    kernel = make_kernel(tmp_path, None)
    (kernel / "build.toml").mkdir()
    assert_bad_input(invoke("check-config", kernel), "build.toml", "is a directory")
    assert_bad_input(invoke("update-build", kernel), "build.toml", "is a directory")


def test_50000_kernel_sections_evaluate_type_hints_once_per_class(tmp_path, monkeypatch):
    """get_type_hints per table made 50,000 sections take 32 s; it now runs once per class."""
    from kernel_builder.config import parse

    calls = []
    real = parse.get_type_hints
    monkeypatch.setattr(parse, "get_type_hints", lambda cls: calls.append(cls) or real(cls))
    parse._table_schema.cache_clear()
    sections = "".join(f'\n[kernel.k{i}]\nbackend = "cpu"\ndepends = ["torch"]\nsrc = ["relu_cpu/relu.cpp"]\n' for i in range(2000))
    kernel = make_kernel(tmp_path, VALID_TOML + sections)
    result = invoke("check-config", "--schema-only", kernel)
    assert result.exit_code == 0, result.stderr
    assert len(calls) == len(set(calls)) <= 6


# ---------------------------------------------------------------------------------------------
# The environment of a build


@pytest.mark.parametrize(
    "name, value, fragment",
    [("MAX_JOBS", "abc", "MAX_JOBS='abc'"), ("MAX_JOBS", "0", "positive"), ("NVCC_THREADS", "x", "NVCC_THREADS='x'"),
     ("CMAKE_ARGS", '-DFOO="x', "No closing quotation")],
)
def test_bad_build_environment_variables(tmp_path, name, value, fragment):
    kernel = relu(tmp_path)
    assert_clean(kb("build", kernel, env={name: value}), 2, fragment)
    assert not (kernel / "build").exists()


@pytest.mark.parametrize("program", ["/bin/true", "/bin/false", "/bin/echo"])
def test_python_that_is_not_a_python(tmp_path, program):
    assert_clean(kb("build", relu(tmp_path), "--python", program), 2, program)


def test_python_that_does_not_exist(tmp_path):
    assert_clean(kb("build", relu(tmp_path), "--python", tmp_path / "nope"), 2, "cannot run Python")


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda k: (k / "build").write_text(""), "/build is not a folder"),
        (lambda k: (k / "build" / ".kernel-builder" / "lock").mkdir(parents=True), "/lock is a folder"),
        (lambda k: ((k / "build").mkdir(), (k / "build" / ".kernel-builder").write_text("")), "/.kernel-builder is not a folder"),
    ],
)
def test_odd_build_folder_layout(tmp_path, setup, fragment):
    kernel = relu(tmp_path)
    setup(kernel)
    assert_clean(kb("build", kernel), 2, fragment)


def _as_nobody(argv: list[str]) -> list[str]:
    """`argv` run as user nobody: root reads any folder, so an unreadable one needs another user.

    Folders above the Python that nobody cannot search (a Python under /root) are made
    searchable in a private mount namespace: each becomes a 0755 tmpfs holding a bind mount of
    the one entry on the way to the Python.
    """
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare is None or setpriv is None:
        pytest.skip("running a command as another user needs unshare and setpriv")
    steps = []
    python = Path(os.path.realpath(sys.executable))
    for i, folder in enumerate(python.parents):
        if folder == Path("/") or folder.stat().st_mode & stat.S_IXOTH:
            continue
        child = python.relative_to(folder).parts[0]
        keep = f"/tmp/.kb-keep-{os.getpid()}-{i}"
        steps += [f"mkdir -p {keep}", f"mount --bind '{folder}' {keep}", f"mount -t tmpfs -o mode=755 tmpfs '{folder}'",
                  f"mkdir '{folder}/{child}'", f"mount --bind '{keep}/{child}' '{folder}/{child}'"]
    command = " ".join(f"'{a}'" for a in argv)
    script = " && ".join([*steps, f"{setpriv} --reuid=65534 --regid=65534 --clear-groups {command}"])
    return [unshare, "--mount", "sh", "-c", script]


def test_source_under_an_unreadable_folder(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="kb-unreadable-"))
    try:
        base.chmod(0o755)
        kernel = relu(base)
        (kernel / "relu_cpu").chmod(0)
        argv = [sys.executable, "-m", "kernel_builder", "check-config", str(kernel)]
        if os.geteuid() == 0:
            argv = _as_nobody(argv)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if os.geteuid() == 0 and "kernel_builder" not in result.stderr + result.stdout and result.returncode != 2:
            pytest.skip(f"cannot run the check as another user here: {result.stderr.strip()}")
        assert_clean(result, 2, "kernel.relu_cpu.src[0]", "Permission denied")
    finally:
        (base / "relu" / "relu_cpu").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def _in_private_mount(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script` (sh) in a private mount namespace; skip when the machine does not allow it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run([unshare, "--map-root-user", "--mount", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {probe.stderr.strip()}")
    return subprocess.run([unshare, "--map-root-user", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=300)


def _build_on_tmpfs(tmp_path: Path, options: str, after_copy: str = "") -> subprocess.CompletedProcess:
    mount = tmp_path / "fs"
    mount.mkdir()
    script = textwrap.dedent(f"""\
        set -e
        mount -t tmpfs -o {options} tmpfs '{mount}'
        cp -r '{EXAMPLES / "relu"}' '{mount}/relu'
        rm -rf '{mount}/relu/build'
        {after_copy}
        set +e
        '{sys.executable}' -m kernel_builder build --host '{mount}/relu'
        echo "exit=$?"
        """)
    return _in_private_mount(script, tmp_path)


def _exit_and_stderr(result: subprocess.CompletedProcess) -> tuple[int, str]:
    assert "exit=" in result.stdout, result.stdout + result.stderr
    return int(result.stdout.rsplit("exit=", 1)[1].split()[0]), result.stderr


def test_read_only_kernel_directory(tmp_path):
    code, err = _exit_and_stderr(_build_on_tmpfs(tmp_path, "size=8m", f"mount -o remount,ro '{tmp_path / 'fs'}'"))
    assert code == 1 and "Traceback" not in err, err
    assert "Read-only file system" in err and "relu/build" in err and "must be writable" in err


@pytest.mark.parametrize("options", ["size=200k", "size=50m,nr_inodes=40"], ids=["full-disk", "no-inodes"])
def test_full_disk_or_no_inodes(tmp_path, options):
    code, err = _exit_and_stderr(_build_on_tmpfs(tmp_path, options))
    assert code == 1 and "Traceback" not in err, err
    assert "No space left on device" in err and "/relu/build/.kernel-builder/" in err


def test_file_size_limit(tmp_path):
    """RLIMIT_FSIZE (works without privileges): writes beyond it fail with EFBIG."""
    kernel = relu(tmp_path)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    result = kb("build", "--host", kernel, preexec_fn=limit)
    assert_clean(result, 1, "File too large", str(kernel / "build" / ".kernel-builder"), "ulimit -f")
