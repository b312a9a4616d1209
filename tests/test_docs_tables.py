"""docs/build-toml.md's tables say which keys are required, and say it as the parser does."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kbtest_util import REPO
from kernel_builder.config.model import General, Kernel, TorchFramework

DOC = REPO / "docs" / "build-toml.md"


def table_after(heading: str) -> list[dict[str, str]]:
    """The first table after the heading line that starts with `heading`, as dicts by column."""
    text = DOC.read_text()
    start = next(m.end() for m in re.finditer(rf"^#+ {re.escape(heading)}.*$", text, re.M))
    rows = []
    for line in text[start:].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    header, _, *body = rows
    return [dict(zip(header, row)) for row in body]


def required_in_model(cls) -> set[str]:
    return {f.metadata["key"] for f in dataclasses.fields(cls) if "key" in f.metadata
            and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


@pytest.mark.parametrize("heading, cls", [("`[general]`", General), ("`[torch]`", TorchFramework), ("`[kernel.<name>]`", Kernel)])
def test_required_column_matches_the_parser(heading, cls):
    rows = table_after(heading)
    assert rows and all("required" in row for row in rows), f"the {heading} table has a `required` column"
    documented = {key.strip("`") for row in rows if row["required"].startswith("yes") for key in row["key"].split(", ")}
    assert documented == required_in_model(cls)


def test_kernel_sections_require_src_and_depends():
    assert {"src", "depends", "backend"} <= required_in_model(Kernel)
