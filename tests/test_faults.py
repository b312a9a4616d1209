"""Faults during a build (issue: reliability): killed builds leave no tools running, the swap into
build/ is atomic, a failed configure does not poison the next build, the build folder does not
grow with every unique id, and builds in different folders are byte-identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from kernel_builder.layout.install import BuildDir
from test_local_build import copy_example, host_variant, kb


def processes_mentioning(path: Path) -> list[str]:
    """Command lines of living processes that name `path` or work inside it (zombies excluded).

    The working folder counts too: under a compiler cache with a base folder (CCACHE_BASEDIR)
    the compiler gets paths relative to the build folder and its command line names no
    absolute path."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        inside = cwd == str(path) or cwd.startswith(str(path) + os.sep)
        if (str(path) in cmdline or inside) and state != "Z":
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def wait_for_compiler(kernel: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("cc1plus" in line for line in processes_mentioning(kernel)):
            return
        time.sleep(0.1)
    pytest.fail("no compiler started")


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["process group", "kernel-builder alone"])
def test_killed_build_leaves_no_tool_running(tmp_path, kill):
    kernel = copy_example("relu", tmp_path)
    # A warm compiler cache would finish before the kill: the compilers must really run.
    process = subprocess.Popen([sys.executable, "-m", "kernel_builder", "build", "--host", str(kernel), "--quiet"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, "KERNEL_BUILDER_COMPILER_CACHE": "off"})
    wait_for_compiler(kernel)
    if kill == "process group":
        os.killpg(process.pid, signal.SIGKILL)
    else:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 3
    while processes_mentioning(kernel) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_mentioning(kernel) == [], "tools outlived the killed build"
    # The next build neither races leftovers nor trips over what the killed one left.
    result = kb("build", kernel, "--quiet")
    assert result.returncode == 0, result.stderr
    assert (kernel / "build" / host_variant() / "metadata.json").is_file()


# ---------------------------------------------------------------------------------------------
# The swap


def staged(build: BuildDir, name: str, content: str):
    context = build.staging(name)
    folder = context.__enter__()
    variant = folder / name
    variant.mkdir()
    (variant / "metadata.json").write_text(content)
    return context, variant


def test_swap_never_leaves_the_variant_missing(tmp_path):
    build = BuildDir(tmp_path)
    build.state.mkdir(parents=True)
    context, variant = staged(build, "v", "0")
    build.install(variant)
    context.__exit__(None, None, None)
    missing = []
    stop = threading.Event()

    def reader():
        target = build.root / "v" / "metadata.json"
        while not stop.is_set():
            if not target.exists():
                missing.append(time.monotonic())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 300):
            context, variant = staged(build, "v", str(i))
            build.install(variant)
            context.__exit__(None, None, None)
    finally:
        stop.set()
        thread.join()
    assert missing == [], f"build/v was missing {len(missing)} times while being replaced"
    assert (build.root / "v" / "metadata.json").read_text() == "299"


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import kernel_builder.layout.install as install
    build = install.BuildDir(Path(sys.argv[1]))
    final = build.root / "v"
    step = int(sys.argv[2])
    calls = 0
    def killing(real):
        def wrapper(*args, **kwargs):
            global calls
            result = real(*args, **kwargs)
            calls += 1
            if calls == step:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper
    install.exchange = killing(install.exchange)
    os.rename = killing(os.rename)
    context = build.staging("v")
    folder = context.__enter__()
    (folder / "v").mkdir()
    (folder / "v" / "metadata.json").write_text("new")
    build.install(folder / "v")
    print("finished")
""")


@pytest.mark.parametrize("step", [1, 2])
def test_kill_at_each_step_of_the_swap_keeps_a_whole_variant(tmp_path, step):
    build = BuildDir(tmp_path)
    (build.root / "v").mkdir(parents=True)
    (build.root / "v" / "metadata.json").write_text("old")
    build.state.mkdir()
    result = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), str(step)], capture_output=True, text=True, timeout=60)
    if "finished" not in result.stdout:
        assert result.returncode == -signal.SIGKILL, result.stderr
    # Right after the kill, a loader finds a whole variant, old or new, never none.
    assert (build.root / "v" / "metadata.json").read_text() in ("old", "new")
    build.recover()
    assert (build.root / "v" / "metadata.json").read_text() in ("old", "new")
    assert not [p for p in build.state.iterdir() if p.name.startswith(("staging-", "replaced-"))]


# ---------------------------------------------------------------------------------------------
# The build folder


@pytest.mark.slow
def test_failed_configure_does_not_poison_the_next_build(tmp_path):
    kernel = copy_example("relu", tmp_path)
    bad = kb("build", kernel, "--quiet", env={"CMAKE_ARGS": "-DCMAKE_CXX_COMPILER=/nonexistent/c++"})
    assert bad.returncode == 1, bad.stderr
    good = kb("build", kernel, "--quiet")
    assert good.returncode == 0, good.stderr


@pytest.mark.slow
def test_build_folder_keeps_only_the_current_objects(tmp_path):
    kernel = copy_example("relu", tmp_path)
    for uid in ("first", "second", "third"):
        result = kb("build", kernel, "--quiet", "--unique-id", uid)
        assert result.returncode == 0, result.stderr
    binary = kernel / "build" / ".kernel-builder" / "work" / host_variant() / "cmake-build"
    assert sorted(p.name for p in (binary / "CMakeFiles").glob("*.dir") if any(p.rglob("*.o"))) == ["kb_extension.dir"]
    assert sorted(p.name for p in binary.iterdir() if p.suffix in (".so", ".map")) == ["_relu_cpu_third.abi3.so", "kb_extension.map"]


# ---------------------------------------------------------------------------------------------
# Reproducible


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_builds_in_different_folders_at_different_times_are_byte_identical(tmp_path):
    first = copy_example("relu", tmp_path / "one")
    second = copy_example("relu", tmp_path / "a" / "much" / "longer path with spaces")
    result = kb("build", first, "--quiet")
    assert result.returncode == 0, result.stderr
    time.sleep(1.5)
    result = kb("build", second, "--quiet")
    assert result.returncode == 0, result.stderr
    a, b = tree_bytes(first / "build" / host_variant()), tree_bytes(second / "build" / host_variant())
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []
    for content in a.values():
        assert str(tmp_path).encode() not in content, "no build path in the variant"
