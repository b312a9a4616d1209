"""Containment: what a variant ships stays inside the kernel directory, and kernel directories
with any characters in their path build (issue 12, items 2 and 3).

- Symbolic links in torch-ext/<module>/: a link leaving the kernel directory, a broken link or
  a loop is refused up front (check-config, build: exit 2, the link named); a link inside the
  kernel is shipped as a regular file. One function decides (standalone/package.py), for the
  Python-only assembly and for the CMake install (`kbtools copy-package`).
- Kernel directory paths: CMake, Ninja and ld see a plain path (toolpaths.py); a real CPU build
  in a folder named with every character measured to break them succeeds and loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kbtest_util import REPO, assert_bad_input, assert_ok, invoke
from kernel_builder.backends import toolpaths
from kernel_builder.config import load_config
from kernel_builder.layout.assemble import copy_python_package
from kernel_builder.standalone.package import PackageError, package_files

EXAMPLES = REPO / "examples"


def copy_example(name: str, dest: Path, folder: str | None = None) -> Path:
    target = dest / (folder or name)
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("build", "__pycache__", ".kernel-builder-generated.json"))
    return target


def kb(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real CLI; `build` builds for this interpreter's torch (--host), not the whole matrix."""
    if args and args[0] == "build":
        args = ("build", "--host", *args[1:])
    full_env = {**os.environ, **(env or {})}
    full_env.pop("KERNEL_BUILDER_CUDA_ARCHS", None)
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=full_env, timeout=900)


@pytest.fixture
def noarch(tmp_path) -> Path:
    kernel = copy_example("rms-norm-py", tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.py").write_text("SECRET = 1\n")
    return kernel


def package(kernel: Path) -> Path:
    return kernel / "torch-ext" / kernel.name.replace("-", "_")


# ---------------------------------------------------------------------------------------------
# Symbolic links in the Python package


@pytest.mark.parametrize(
    "link, target, fragment",
    [
        ("leak_file.py", "{outside}/secret.py", "leak_file.py is a symbolic link to {outside}/secret.py, outside the kernel directory"),
        ("leakdir", "{outside}", "leakdir is a symbolic link to {outside}, outside the kernel directory"),
        ("etc", "/etc", "etc is a symbolic link to /etc, outside the kernel directory"),
        ("relative.py", "../../../outside/secret.py", "relative.py is a symbolic link to {outside}/secret.py"),
        ("broken.py", "{kernel}/nowhere.py", "broken.py is a broken symbolic link"),
        ("loop", ".", "loop is a symbolic link to {package}, one of its own parent folders"),
    ],
)
def test_links_that_cannot_be_shipped_are_refused_up_front(noarch, link, target, fragment):
    outside = noarch.parent / "outside"
    values = {"outside": str(outside.resolve()), "kernel": str(noarch), "package": str(package(noarch).resolve())}
    (package(noarch) / link).symlink_to(target.format(**values))
    err = assert_bad_input(invoke("check-config", noarch), "torch-ext/rms_norm_py/" + fragment.format(**values), "never links")
    assert "Traceback" not in err
    result = kb("build", noarch)
    assert result.returncode == 2 and fragment.format(**values) in result.stderr and "Traceback" not in result.stderr
    assert not (noarch / "build").exists()


def _tree_with_in_tree_links(kernel: Path) -> None:
    (kernel / "shared").mkdir()
    (kernel / "shared" / "helpers.py").write_text("HELP = 2\n")
    (kernel / "shared" / "sub").mkdir()
    (kernel / "shared" / "sub" / "more.py").write_text("MORE = 3\n")
    (kernel / "shared" / "sub" / "data.txt").write_text("not shipped\n")
    (package(kernel) / "helpers.py").symlink_to("../../shared/helpers.py")
    (package(kernel) / "linked_dir").symlink_to(kernel / "shared" / "sub")


def _shipped(variant: Path) -> dict[str, str]:
    files = {}
    for path in sorted(variant.rglob("*")):
        assert not path.is_symlink(), f"{path} is a link"
        if path.is_file():
            files[str(path.relative_to(variant))] = path.read_text()
    return files


def test_in_tree_links_are_shipped_as_files(noarch, tmp_path):
    _tree_with_in_tree_links(noarch)
    assert_ok(invoke("check-config", noarch))
    destination = tmp_path / "copy"
    copy_python_package(load_config(noarch), destination)
    shipped = _shipped(destination)
    assert shipped["helpers.py"] == "HELP = 2\n" and shipped["linked_dir/more.py"] == "MORE = 3\n"
    assert "linked_dir/data.txt" not in shipped


def test_kbtools_copy_package_makes_the_same_decisions(noarch, tmp_path):
    """The CMake install runs `kbtools copy-package`: same files as the Python-only assembly,
    same refusal of a link leaving the kernel (exit 1 and the message, which fails the install)."""
    _tree_with_in_tree_links(noarch)
    tools = REPO / "builder" / "standalone"
    for_cmake, for_noarch = tmp_path / "cmake", tmp_path / "noarch"
    extensions = [arg for ext in load_config(noarch).framework.pyext for arg in ("--ext", ext)]
    args = [sys.executable, str(tools), "copy-package", "--source", str(package(noarch)), "--root", str(noarch), "--prefix", str(for_cmake), "--variant", "v",
            *extensions]
    subprocess.run(args, check=True, timeout=60)
    copy_python_package(load_config(noarch), for_noarch)
    assert _shipped(for_cmake / "v") == _shipped(for_noarch)
    (package(noarch) / "leak.py").symlink_to(noarch.parent / "outside" / "secret.py")
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "leak.py is a symbolic link to" in result.stderr and "outside the kernel directory" in result.stderr


def test_noarch_variant_ships_linked_files_as_files(noarch):
    _tree_with_in_tree_links(noarch)
    result = kb("build", noarch, "--variant", "torch-cpu", "--quiet")
    assert result.returncode == 0, result.stderr
    shipped = _shipped(noarch / "build" / "torch-cpu")
    assert shipped["helpers.py"] == "HELP = 2\n" and shipped["linked_dir/more.py"] == "MORE = 3\n"
    digest = json.loads((noarch / "build" / "torch-cpu" / "metadata.json").read_text())["digest"]["files"]
    assert "helpers.py" in digest and "linked_dir/more.py" in digest


def test_package_files_never_walks_outside(tmp_path):
    """A link to / inside the package: refused at the link, before anything under it is read."""
    kernel = tmp_path / "k"
    (kernel / "pkg").mkdir(parents=True)
    (kernel / "pkg" / "root").symlink_to("/")
    with pytest.raises(PackageError, match="pkg/root is a symbolic link to /, outside"):
        package_files(kernel / "pkg", kernel, ("py",))


@pytest.mark.slow
def test_compiled_variant_ships_linked_files_as_files(tmp_path):
    kernel = copy_example("relu", tmp_path)
    (kernel / "shared").mkdir()
    (kernel / "shared" / "helpers.py").write_text("HELP = 2\n")
    (package(kernel) / "helpers.py").symlink_to("../../shared/helpers.py")
    result = kb("build", kernel, "--quiet", "--json")
    assert result.returncode == 0, result.stderr
    (variant,) = [Path(v["path"]) for v in json.loads(result.stdout)["variants"]]
    assert not (variant / "helpers.py").is_symlink() and (variant / "helpers.py").read_text() == "HELP = 2\n"


# ---------------------------------------------------------------------------------------------
# Kernel directory paths


def test_plain_paths_are_used_as_they_are(tmp_path):
    plain = tmp_path / "my-kernels" / "relu-1.0+x@y=z~w:v"
    plain.mkdir(parents=True)
    assert toolpaths.tool_root(plain) == plain


def test_a_space_in_the_path_goes_through_the_alias(tmp_path):
    # nvcc splits -Xcompiler values at spaces, so a space is not plain even though CMake copes.
    spaced = tmp_path / "my kernels" / "relu"
    spaced.mkdir(parents=True)
    alias = toolpaths.tool_root(spaced)
    assert alias != spaced and " " not in str(alias) and alias.resolve() == spaced.resolve()


def test_other_paths_get_a_private_plain_alias(tmp_path):
    odd = tmp_path / 'k "q" $HOME ;#%,|'
    odd.mkdir()
    alias = toolpaths.tool_root(odd)
    assert alias != odd and all(c in toolpaths.PLAIN for c in str(alias))
    assert alias.is_symlink() and alias.resolve() == odd.resolve()
    assert toolpaths.tool_root(odd) == alias  # stable: incremental builds keep their cache
    assert (os.stat(alias.parent).st_mode & 0o777) == 0o700
    assert toolpaths.seen_by_tools(odd / "build" / "x", odd, alias) == alias / "build" / "x"


def test_an_alias_that_cannot_be_made_is_a_clear_refusal(tmp_path, monkeypatch):
    odd = tmp_path / "k;x"
    odd.mkdir()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(not_a_folder))
    with pytest.raises(Exception) as info:
        toolpaths.tool_root(odd)
    message = str(info.value)
    assert type(info.value).__name__ == "UsageError" and "';'" in message and str(odd) in message and "move the kernel" in message


def test_a_shared_alias_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    parent = tmp_path / f"kernel-builder-{os.getuid()}"
    parent.mkdir(mode=0o777)
    parent.chmod(0o777)
    odd = tmp_path / "k$x"
    odd.mkdir()
    with pytest.raises(Exception, match="not a private folder"):
        toolpaths.tool_root(odd)


def test_a_python_in_a_breaking_path_is_refused_up_front(tmp_path):
    kernel = copy_example("relu", tmp_path)
    odd = tmp_path / "py;thon"
    odd.mkdir()
    (odd / "venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    result = kb("build", kernel, "--python", odd / "venv" / "bin" / "python")
    assert result.returncode == 2, result.stderr
    assert "the Python" in result.stderr and "';'" in result.stderr and "Traceback" not in result.stderr


# Every character measured to break CMake, Ninja or ld in a build path, and spaces and quotes.
HOSTILE_FOLDER = 'k sp "dq" \'sq\' $HOME ${HOME} $(id) $<1:x> ;#%,|<>\\ ]=] é'


@pytest.mark.slow
def test_build_in_a_folder_with_every_breaking_character(tmp_path):
    kernel = copy_example("relu", tmp_path, HOSTILE_FOLDER)
    result = kb("build", kernel, "--quiet", "--json", "--unique-id", "odd")
    assert result.returncode == 0, result.stderr
    (variant,) = [Path(v["path"]) for v in json.loads(result.stdout)["variants"]]
    assert variant.parent == kernel / "build"
    check = subprocess.run(
        [sys.executable, "-c", "import sys, torch, kernels; from pathlib import Path; k = kernels.get_local_kernel(Path(sys.argv[1])); "
         "x = torch.randn(8); assert torch.equal(k.relu(x), torch.relu(x)); print(k.__name__)", str(kernel)],
        capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["_relu_cpu_odd"]
    # A second build finds the variant up to date (the alias is stable).
    again = kb("build", kernel, "--quiet", "--json", "--unique-id", "odd")
    assert again.returncode == 0, again.stderr
    assert [v["status"] for v in json.loads(again.stdout)["variants"]] == ["up-to-date"]
    # After an edit, CMake keeps its cache: only the edited file is compiled again.
    source = kernel / "relu_cpu" / "relu_cpu.cpp"
    source.write_text(source.read_text() + "\n// edited\n")
    third = kb("build", kernel, "--quiet", "--json", "--unique-id", "odd")
    assert third.returncode == 0, third.stderr
    log = (kernel / "build" / ".kernel-builder" / "logs" / f"{variant.name}.log").read_text()
    assert "relu_cpu.cpp.o" in log and "torch_binding.cpp.o" not in log and "glibc_shim" not in log


def test_create_pyproject_refuses_a_path_cmake_cannot_use(tmp_path):
    """A generated tree is built by CMake directly, without the alias: refused, naming the character."""
    kernel = copy_example("relu", tmp_path, "k$x")
    assert_bad_input(invoke("create-pyproject", kernel), "the kernel directory", "'$'", "kernel-builder build")
    plain = copy_example("relu", tmp_path)
    assert_bad_input(invoke("create-pyproject", plain, tmp_path / "out;put"), "the target folder", "';'")
    assert not (tmp_path / "out;put").exists() and not (kernel / "CMakeLists.txt").exists()
