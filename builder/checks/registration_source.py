"""Before compiling: op registrations in a `[torch]` kernel's C++/CUDA sources that name a
literal namespace instead of this build's unique one.

`TORCH_LIBRARY(ns, m)` and its IMPL/FRAGMENT/STABLE forms paste `ns` as a token, so they
register in the namespace spelled there — even `TORCH_LIBRARY(TORCH_EXTENSION_NAME, m)`
registers `TORCH_EXTENSION_NAME`, not the unique `_<module>_<backend>_<id>` that `ops` in
_ops.py looks in. registration.h's `_EXPAND` wrappers expand the macro first. The scan, on
the sources listed in build.toml with comments and literals blanked out:

- a registration macro used directly (outside a `#define`) is an error, whatever its argument;
- an `_EXPAND` wrapper whose namespace is neither TORCH_EXTENSION_NAME nor a macro defined in
  the kernel's sources (`#define NS TORCH_EXTENSION_NAME`) is an error too.

The import check after the build catches what a text scan cannot (the torch::Library API,
macros of macros); this scan says it before a minute of compiling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cu", ".cuh", ".h", ".hh", ".hpp", ".hxx", ".hip", ".inc", ".inl", ".mm")
HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".cuh", ".inc", ".inl")
EXTENSION_NAME = "TORCH_EXTENSION_NAME"

# macro -> (what to write instead, with `{key}` for a dispatch key argument)
DIRECT = {
    "TORCH_LIBRARY": "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)",
    "TORCH_LIBRARY_IMPL": "TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, {key}, m)",
    "TORCH_LIBRARY_FRAGMENT": "one TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) block with all the definitions",
    "STABLE_TORCH_LIBRARY": "STABLE_TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)",
    "STABLE_TORCH_LIBRARY_IMPL": "STABLE_TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, {key}, m)",
    "STABLE_TORCH_LIBRARY_FRAGMENT": "one STABLE_TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) block with all the definitions",
}
EXPAND = {
    "TORCH_LIBRARY_EXPAND": "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)",
    "TORCH_LIBRARY_IMPL_EXPAND": "TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, {key}, m)",
    "STABLE_TORCH_LIBRARY_EXPAND": "STABLE_TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)",
    "STABLE_TORCH_LIBRARY_IMPL_EXPAND": "STABLE_TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, {key}, m)",
}
_CALL = re.compile(r"\b(" + "|".join(sorted({*DIRECT, *EXPAND}, key=len, reverse=True)) + r")\s*\(\s*([A-Za-z_]\w*)\s*(?:,\s*([A-Za-z_][\w:]*))?")
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)", re.MULTILINE)


@dataclass(frozen=True)
class RegistrationFinding:
    path: Path
    line: int
    macro: str
    namespace: str
    message: str

    def render(self, root: Path | None = None) -> str:
        shown = self.path.relative_to(root) if root and self.path.is_relative_to(root) else self.path
        return f"{shown}:{self.line}: {self.message}"


def blank_comments_and_literals(text: str) -> str:
    """`text` with comments, string and character literals replaced by spaces (newlines kept,
    so line numbers stay), so that a macro name inside them is not taken for code."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i:i + 2]
        if two == "//":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif two == "/*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == "R" and text[i + 1:i + 2] == '"' and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            match = re.match(r'R"([^()\\\s]{0,16})\(', text[i:])
            if match is None:
                out.append(c)
                i += 1
                continue
            close = ")" + match.group(1) + '"'
            end = text.find(close, i + match.end())
            end = n if end < 0 else end + len(close)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):  # 1'000 is a digit separator
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            end = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _without_directives(text: str) -> str:
    """Preprocessor directives (with their continuation lines) replaced by spaces: a macro
    used inside a `#define` is a wrapper's definition, not a registration."""
    lines = text.split("\n")
    inside = False
    for index, line in enumerate(lines):
        if inside or line.lstrip().startswith("#"):
            inside = line.rstrip().endswith("\\")
            lines[index] = " " * len(line)
    return "\n".join(lines)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def scan_sources(paths: list[Path], defined_macros: frozenset[str] = frozenset()) -> list[RegistrationFinding]:
    """Literal-namespace registrations in `paths`; `defined_macros` are names #defined in the
    kernel's sources (an `_EXPAND` of one of them is accepted)."""
    findings = []
    for path in paths:
        text = _read(path)
        if text is None:
            continue
        code = _without_directives(blank_comments_and_literals(text))
        for match in _CALL.finditer(code):
            macro, namespace, key = match.group(1), match.group(2), match.group(3) or "<dispatch key>"
            line = code.count("\n", 0, match.start()) + 1
            if macro in DIRECT:
                use = DIRECT[macro].format(key=key)
                why = (f"{macro} does not expand macros in its namespace argument, so this registers the namespace "
                       f"'{namespace}' literally" if namespace == EXTENSION_NAME else f"registers ops in the literal namespace '{namespace}'")
            elif namespace != EXTENSION_NAME and namespace not in defined_macros:
                use = EXPAND[macro].format(key=key)
                why = f"registers ops in the literal namespace '{namespace}'"
            else:
                continue
            message = (f"{macro}({namespace}, …) {why}, not in this build's unique namespace (which `ops` in _ops.py "
                       f"uses and which keeps builds apart): use {use} from registration.h")
            findings.append(RegistrationFinding(path, line, macro, namespace, message))
    return findings


def binding_sources(config) -> list[Path]:
    """The C/C++/CUDA files listed in `src` of [torch] and every [kernel.*] section."""
    root = config.root
    entries = [*config.framework.src, *(entry for kernel in config.kernels for entry in kernel.src)]
    paths = [root / entry for entry in entries if str(entry).endswith(SOURCE_SUFFIXES)]
    return list(dict.fromkeys(p for p in paths if p.is_file()))


def _macro_definitions(config, sources: list[Path]) -> frozenset[str]:
    """Macro names #defined in the sources and in headers beside them or in include folders."""
    root = config.root
    folders = {p.parent for p in sources}
    folders |= {root / entry for entry in (*config.framework.include, *(i for k in config.kernels for i in k.include))}
    files = set(sources)
    for folder in folders:
        if folder.is_dir():
            files.update(p for p in folder.rglob("*") if p.suffix in HEADER_SUFFIXES and p.is_file())
    names: set[str] = set()
    for path in files:
        text = _read(path)
        if text is not None:
            names.update(_DEFINE.findall(blank_comments_and_literals(text)))
    return frozenset(names)


def check_registration_sources(config) -> list[RegistrationFinding]:
    """The scan over a `[torch]` kernel's listed sources (other frameworks: nothing to scan)."""
    if config.framework.kind != "torch":
        return []
    sources = binding_sources(config)
    return scan_sources(sources, _macro_definitions(config, sources))
