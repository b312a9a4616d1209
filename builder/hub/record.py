"""What this kernel folder last published, per Hub repository and branch.

Upstream's rule on an existing branch keeps every variant the upload does not carry, since
another machine may have uploaded it (CI uploading one variant per runner). That also keeps a
variant the author removed from build/ on purpose. The record tells the two apart: a variant
that *this folder* uploaded to that branch before and no longer holds was withdrawn, and the
next upload deletes its files; a variant it never uploaded is someone else's and stays.

The record is `build/.kernel-builder/uploads.json` (beside the build state, never published),
keyed by endpoint, repository type, repository and branch. Losing it (a fresh clone) only
means nothing is withdrawn; `upload --prune` deletes every variant not uploaded.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RECORD_NAME = "uploads.json"
RECORD_VERSION = 1


def record_path(base: Path) -> Path:
    """The record beside the variants folder BASE (build/.kernel-builder/uploads.json)."""
    return base / ".kernel-builder" / RECORD_NAME


def record_key(endpoint: str, repo_type: str, repo_id: str, branch: str) -> str:
    return f"{endpoint.rstrip('/')} {repo_type} {repo_id}@{branch}"


def _read(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # no record, or one that cannot be read: nothing counts as withdrawn
    if not isinstance(data, dict) or data.get("record-version") != RECORD_VERSION or not isinstance(data.get("uploads"), dict):
        return {}
    return {k: [v for v in vs if isinstance(v, str)] for k, vs in data["uploads"].items() if isinstance(vs, list)}


def uploaded_before(base: Path, key: str) -> set[str]:
    """The variants this folder last left on that branch."""
    return set(_read(record_path(base)).get(key, []))


def withdrawn_variants(base: Path, key: str, present: set[str]) -> tuple[str, ...]:
    """Variants this folder uploaded to that branch before and no longer holds."""
    return tuple(sorted(uploaded_before(base, key) - present))


def remember_upload(base: Path, key: str, uploaded: set[str], withdrawn: tuple[str, ...]) -> None:
    """Record what the branch holds from this folder after an upload (written atomically)."""
    path = record_path(base)
    uploads = _read(path)
    uploads[key] = sorted((set(uploads.get(key, [])) - set(withdrawn)) | uploaded)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{RECORD_NAME}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump({"record-version": RECORD_VERSION, "uploads": uploads}, handle, indent=2)
            handle.write("\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
