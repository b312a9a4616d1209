"""The Jinja environment for kernel-builder templates, with quoting filters per target language."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import jinja2


def cmake_quote(value: object) -> str:
    """A CMake quoted argument."""
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmake_list(values: list) -> str:
    """Space-separated CMake quoted arguments (nothing for an empty list)."""
    return " ".join(cmake_quote(v) for v in values)


def _load_template(name: str) -> str:
    return resources.files("kernel_builder.templates").joinpath(name).read_text()


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["cmake"] = cmake_quote
    env.filters["cmake_list"] = cmake_list
    env.filters["pyrepr"] = repr
    env.filters["tomlstr"] = json.dumps  # a JSON string is a valid TOML basic string
    env.filters["tomlarray"] = lambda values: "[" + ", ".join(json.dumps(v) for v in values) + "]"
    return env
