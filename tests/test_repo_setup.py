"""The repository's own setup: what the scripts say they install, what git ignores, and that
installing and importing what we ship is free of warnings that are ours to fix."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import pytest

from kbtest_util import REPO


def test_the_cuda_test_environment_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", ".venv-cu130/bin/python"], cwd=REPO)
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0, ".venv-cu130/ (made by scripts/test.sh) must be in .gitignore"


def test_test_script_announces_every_install():
    """Each install in scripts/test.sh is preceded by a `say` line naming what it installs."""
    lines = (REPO / "scripts" / "test.sh").read_text().splitlines()
    installs = [i for i, line in enumerate(lines) if re.search(r"\b(pip install|apt-get install)\b", line) and not line.lstrip().startswith("#")]
    assert installs, "test.sh installs things; this test must see them"
    for index in installs:
        announced = [line for line in lines[max(0, index - 3):index + 1] if line.lstrip().startswith("say ")]
        assert announced, f"scripts/test.sh line {index + 1} installs without saying so: {lines[index].strip()}"
    nix = next(lines[i] for i in installs if "nix_packages" in lines[i])
    assert nix
    assert any("nix-bin" in line for line in lines if "nix_packages+=" in line), "nix-bin is among the Nix tests' packages"
    assert any("nix_packages[*]" in line for line in lines if line.lstrip().startswith("say ")), "the Nix packages' install names them"


def test_project_metadata_has_no_setuptools_deprecation():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert [str(w.message) for w in caught if "license" in str(w.message)] == []


def test_importing_torch_warns_about_nothing_of_ours():
    """torch prints `Failed to initialize NumPy` when numpy is missing: the test extras install it."""
    result = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Failed to initialize NumPy" not in result.stderr


def test_readme_says_how_to_get_kernel_builder_on_path():
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "source .venv/bin/activate" in quick_start and ".venv/bin/kernel-builder" in quick_start
    assert "docs/writing-kernels.md" in quick_start


def test_demo_prints_next_commands_that_work():
    from click.testing import CliRunner

    from kernel_builder.cli import main

    script = (REPO / "scripts" / "demo.sh").read_text()
    match = re.search(r"<<'NEXT'\n(.*?)\nNEXT\n", script, re.S)
    assert match, "demo.sh ends by printing what to try next"
    text = match.group(1)
    assert "source .venv/bin/activate" in text and "docs/writing-kernels.md" in text
    commands = [line.split("#")[0].split()[1:] for line in text.splitlines() if line.strip().startswith("kernel-builder ")]
    assert len(commands) >= 2
    for args in commands:
        # Every command and option it shows exists (options before --help are parsed), on paths that exist.
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0, f"kernel-builder {' '.join(args)}: {result.output}"
        assert all((REPO / arg).exists() for arg in args if "/" in arg)
