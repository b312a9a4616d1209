"""metadata.json of a build variant, and its digest.

The digest matches the `kernels` loader's: every file of the variant folder (symbolic links
followed), except the top-level metadata.json / metadata.json.sigstore, `__pycache__` folders
and `*.pyc` files; SHA-256 of the content, standard base64 with padding, keyed by the
`/`-separated relative path, sorted.

Standard library only: this file is copied into generated build trees.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

DIGEST_SKIP_TOP = ("metadata.json", "metadata.json.sigstore")
# `kernels-minver` must have three parts: the loader fails to parse "0.17" (and refuses the kernel).
MINVER_RE = re.compile(r"^\d+\.\d+\.\d+$")


def version_tuple(version: str) -> tuple[int, ...]:
    """(0, 17, 0) for "0.17.0"."""
    return tuple(int(part) for part in version.split("."))


def _digest_files(variant: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(variant, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel_dir = Path(dirpath).relative_to(variant)
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if rel in DIGEST_SKIP_TOP or name.endswith(".pyc"):
                continue
            with open(Path(dirpath) / name, "rb") as handle:
                digest = hashlib.file_digest(handle, "sha256") if hasattr(hashlib, "file_digest") else hashlib.sha256(handle.read())
            files[rel] = base64.b64encode(digest.digest()).decode("ascii")
    return dict(sorted(files.items()))


def compute_digest(variant: Path | str) -> dict:
    """The `digest` field of metadata.json for a variant folder."""
    return {"algorithm": "sha256", "files": _digest_files(Path(variant))}


def write_metadata(variant: Path | str, metadata: dict, *, archs: list[str] | None = None) -> dict:
    """Write `<variant>/metadata.json` from `metadata`, adding compiled archs and the digest.

    The digest is computed last, over the final contents of the folder. A `kernels-minver`
    that is not X.Y.Z is refused (ValueError).
    """
    variant = Path(variant)
    data = dict(metadata)
    minver = data.get("kernels-minver")
    if minver is not None and not (isinstance(minver, str) and MINVER_RE.match(minver)):
        raise ValueError(f"kernels-minver {minver!r} is not a three-part version (X.Y.Z): the kernels loader would refuse it")
    if archs is not None:
        backend = dict(data.get("backend", {}))
        backend["archs"] = sorted(set(archs))
        data["backend"] = backend
    data["digest"] = compute_digest(variant)
    (variant / "metadata.json").write_text(json.dumps(data, indent=2) + "\n")
    return data
