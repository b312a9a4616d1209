#!/usr/bin/env python3
"""Pin the Python packages kernel-builder's Nix package is made from: nix/python-packages.lock.json.

The flake's `packages.<system>.kernel-builder` is kernel-builder installed, with its runtime
dependencies, into a virtual environment of nixpkgs' python3. Each dependency is a wheel
fetched by `fetchurl` with the sha256 recorded here (a fixed-output derivation), so the package
builds without an index and without network once the wheels are in the Nix store. (With real
nixpkgs one would take these from python3Packages; see docs/nix.md for why they are pinned
here instead.) Test shells get pytest the same way.

Groups, resolved with `uv pip compile --format pylock.toml` for every Python version and
system listed below (one wheel per package, chosen for that interpreter and platform):
- `kernel-builder`: [project].dependencies and [build-system].requires of pyproject.toml;
- `pytest`: what test shells add to run a kernel's tests.

Run from the repository root after changing pyproject.toml's dependencies:

    .venv/bin/python nix/update-python-lock.py [--python 3.11 --python 3.12 ...]

Commit the result. Only the package index (PyPI by default, --index-url) is consulted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOCK = HERE / "python-packages.lock.json"
PYTHONS = ("3.11", "3.12", "3.13")
SYSTEMS = {"x86_64-linux": "x86_64-manylinux_2_28", "aarch64-linux": "aarch64-manylinux_2_28"}
TEST_REQUIREMENTS = ["pytest>=8"]


def uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def requirements() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)
    runtime = list(project["project"]["dependencies"]) + list(project["build-system"]["requires"])
    return {"kernel-builder": runtime, "pytest": TEST_REQUIREMENTS}


def resolve(reqs: list[str], python: str, platform: str, index_url: str) -> list[dict]:
    """One wheel per package of the resolution, with its URL and hashes."""
    with tempfile.TemporaryDirectory(prefix="kb-pylock-") as tmp:
        source, output = Path(tmp) / "requirements.in", Path(tmp) / "pylock.toml"
        source.write_text("\n".join(reqs) + "\n")
        cmd = [uv_binary(), "pip", "compile", str(source), "-o", str(output), "--no-header", "--quiet", "--python-version", python,
               "--python-platform", platform, "--index-url", index_url, "--no-config"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_")) and k != "VIRTUAL_ENV"}  # only --index-url counts
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
        if result.returncode != 0:
            raise SystemExit(f"uv pip compile failed for Python {python} on {platform}:\n{result.stderr}")
        with open(output, "rb") as handle:
            packages = tomllib.load(handle).get("packages", [])
    pinned = []
    for package in sorted(packages, key=lambda p: p["name"]):
        wheels = package.get("wheels") or []
        if not wheels:
            raise SystemExit(f"{package['name']} {package.get('version')} has no wheel for Python {python} on {platform}; "
                             "kernel-builder's Nix package installs wheels only")
        wheel = wheels[0]
        url = wheel["url"]
        filename = wheel.get("name") or urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
        pinned.append({"name": package["name"], "version": str(package["version"]), "filename": filename, "url": url,
                       "sha256": wheel["hashes"]["sha256"], "size": wheel.get("size")})
    return pinned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help=f"Python X.Y to pin for (repeatable; default {' '.join(PYTHONS)})")
    parser.add_argument("--index-url", default="https://pypi.org/simple")
    args = parser.parse_args()
    pythons = tuple(args.python or PYTHONS)
    reqs = requirements()
    sets: dict = {}
    for group, group_reqs in reqs.items():
        for python in pythons:
            for system, platform in SYSTEMS.items():
                sets.setdefault(group, {}).setdefault(python, {})[system] = resolve(group_reqs, python, platform, args.index_url)
                print(f"{group}: Python {python}, {system}: {len(sets[group][python][system])} wheels", file=sys.stderr)
    version = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    data = {
        "lock-version": 1,
        "generated-by": f"nix/update-python-lock.py ({version})",
        "index-url": args.index_url,
        "requirements": reqs,
        "sets": sets,
    }
    LOCK.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
