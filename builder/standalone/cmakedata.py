"""CMake data files: values written as CMake bracket arguments, never spliced into CMake code.

A bracket argument (`[==[ ... ]==]`) is taken literally by CMake: no variable references
(`${...}`), no escape sequences, no generator-expression or quote handling inside it. The only
way out of one is its closing bracket, so `bracket()` picks a level of `=` whose closing
bracket does not occur in the value. This is the one escaping function for every value that
kernel-builder writes into a CMake file (the kernel description, the torch probe).

What a CMake file cannot carry is refused with ValueError: a NUL character (CMake strings end
at NUL) and a carriage return before a newline (CMake reads CRLF as LF, also inside brackets).
A list item must also survive CMake's list splitting, which `list_item_problem` describes.
"""

from __future__ import annotations

import re
from typing import Iterable

VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def bracket(value: str) -> str:
    """`value` as a CMake bracket argument that CMake reads back exactly."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{value!r}: CMake cannot hold a NUL character")
    if "\r\n" in value:
        raise ValueError(f"{value!r}: CMake reads a carriage return before a newline as a newline")
    level = 0
    while True:
        closing = "]" + "=" * level + "]"
        # The first closing bracket CMake finds must be ours, also when the value ends in ']='.
        if (value + closing).find(closing) == len(value):
            break
        level += 1
    # CMake drops a newline (LF or CRLF) right after the opening bracket: give it one to drop.
    lead = "\n" if value.startswith(("\n", "\r")) else ""
    return "[" + "=" * level + "[" + lead + value + closing


def list_item_problem(item: str) -> str | None:
    """Why CMake would not read `item` back as one item of a list, or None.

    CMake splits lists at `;`, except after a backslash and while more `[` than `]` have been
    seen (every `[` counts one up, every `]` one down). An item with `;`, with unequal numbers
    of `[` and `]`, or ending in a backslash would merge with its neighbours, and an empty item
    can vanish.
    """
    if not item:
        return "a CMake list cannot hold an empty item"
    if ";" in item:
        return "a CMake list item cannot contain ';' (the list separator)"
    if item.endswith("\\"):
        return "a CMake list item cannot end in a backslash (it would escape the list separator)"
    if item.count("[") != item.count("]"):
        return "a CMake list item needs as many '[' as ']' (CMake does not split a list inside square brackets)"
    return None


def set_command(variable: str, values: str | Iterable[str]) -> str:
    """`set(<variable> <bracket> ...)`: one string, or a list (one bracket argument per item)."""
    if not VARIABLE_RE.fullmatch(variable):
        raise ValueError(f"{variable!r} is not a CMake variable name")
    if isinstance(values, str):
        return f"set({variable} {bracket(values)})"
    items = list(values)
    for item in items:
        problem = list_item_problem(item)
        if problem:
            raise ValueError(f"{item!r}: {problem}")
    if not items:
        return f'set({variable} "")'
    return f"set({variable} " + " ".join(bracket(item) for item in items) + ")"
