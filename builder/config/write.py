"""Serialise an edition-5 document back to TOML text."""

from __future__ import annotations

from typing import Any

import tomli_w


def dumps(document: dict[str, Any]) -> str:
    """TOML text for a build.toml document; arrays are written one item per line."""
    return tomli_w.dumps(document, indent=4)
