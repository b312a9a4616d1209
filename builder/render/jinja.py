"""The Jinja environment for kernel-builder templates, with quoting filters per target language."""

from __future__ import annotations

from functools import cache
from importlib import resources

import jinja2
import tomli_w


def toml_value(value: object) -> str:
    """A TOML value (string, array...) as tomli-w writes it: valid TOML whatever it holds."""
    line = tomli_w.dumps({"v": value})
    return line[len("v = "):].rstrip("\n")


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
    # Values reach generated files only through these: a Python literal, a TOML value. CMake
    # files get their values from render/description.py (bracket arguments), never from Jinja.
    env.filters["pyrepr"] = repr
    env.filters["tomlstr"] = toml_value
    env.filters["tomlarray"] = lambda values: toml_value(list(values))
    return env
