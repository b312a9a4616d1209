"""Checks on a kernel's Python code (pure AST scans, nothing is imported).

- Op registrations: top-level functions/classes decorated with a torch.library registration
  (custom_op, triton_op, register_kernel, register_fake, register_vmap,
  register_torch_dispatch) must name the op through `add_op_namespace_prefix(...)`, so that
  every build registers in its own namespace.
- Imports: the package is loaded under its unique module id, not its name, so it must import
  itself relatively. Other imports must be the standard library, torch (with triton, which
  torch's GPU wheels ship), or a declared python-depends. Imports that are optional (inside a
  function, a try/except ImportError, or `if TYPE_CHECKING:`) are reported as warnings. The
  `kernels` loader installs nothing else (it refuses numpy in python-depends), so any other
  import is an error unless the author allows it by name (`build --allow-import numpy`): then
  the kernel's users must have that package themselves.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REGISTRATION_DECORATORS = ("custom_op", "triton_op", "register_kernel", "register_fake", "register_vmap", "register_torch_dispatch")
PREFIX_FUNCTION = "add_op_namespace_prefix"
PREFIX_HEADER = "Found Torch library registrations that do not use `add_op_namespace_prefix`:"
ALWAYS_ALLOWED = frozenset({"torch", "triton"})


@dataclass(frozen=True)
class CodeFinding:
    path: Path
    line: int
    rule: str  # "registration" | "import" | "syntax" | "exports"
    message: str
    warning: bool = False

    def render(self, root: Path | None = None) -> str:
        shown = self.path.relative_to(root) if root and self.path.is_relative_to(root) else self.path
        return f"{shown}:{self.line}: {'warning: ' if self.warning else ''}{self.message}"


def _callee_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def registration_findings(path: Path, tree: ast.Module) -> list[CodeFinding]:
    """Registrations whose op name does not go through add_op_namespace_prefix."""
    found = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for deco in node.decorator_list:
            if not isinstance(deco, ast.Call):
                continue
            kind = _callee_name(deco.func)
            if kind not in REGISTRATION_DECORATORS:
                continue
            first = deco.args[0] if deco.args else next((k.value for k in deco.keywords if k.arg in ("name", "op_name", "op")), None)
            if isinstance(first, ast.Call) and _callee_name(first.func) == PREFIX_FUNCTION:
                continue
            found.append(CodeFinding(path, deco.lineno, "registration", f"{kind} {node.name}"))
    return found


class _ImportVisitor(ast.NodeVisitor):
    """Collect absolute imports with whether they are optional (guarded or deferred)."""

    def __init__(self) -> None:
        self.imports: list[tuple[str, int, bool]] = []  # (top-level name, line, optional)
        self._optional = 0

    def _guarded(self, node: ast.AST, *, children_only: bool = False) -> None:
        """Visit `node` (or only its children) with every import in it marked optional."""
        self._optional += 1
        try:
            if children_only:
                self.generic_visit(node)
            else:
                self.visit(node)  # the node itself: an Import statement is visited too
        finally:
            self._optional -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._guarded(node, children_only=True)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Try(self, node: ast.Try) -> None:
        catches_import = any(
            h.type is None or any(_callee_name(t) in ("ImportError", "ModuleNotFoundError", "Exception") for t in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]))
            for h in node.handlers
        )
        for stmt in node.body:
            if catches_import:
                self._guarded(stmt)
            else:
                self.visit(stmt)
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    def visit_If(self, node: ast.If) -> None:
        if _callee_name(node.test) == "TYPE_CHECKING":
            self._guarded(node, children_only=True)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append((alias.name.split(".")[0], node.lineno, self._optional > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.imports.append((node.module.split(".")[0], node.lineno, self._optional > 0))


def import_findings(path: Path, tree: ast.Module, python_name: str, allowed: frozenset[str]) -> list[CodeFinding]:
    """Absolute imports of anything but the standard library, torch/triton and `allowed`."""
    visitor = _ImportVisitor()
    visitor.visit(tree)
    found = []
    for name, line, optional in visitor.imports:
        if name == python_name:
            found.append(CodeFinding(path, line, "import", f"absolute import of the kernel's own package {name!r}: use a relative import (the package is loaded under a unique name)"))
        elif name in sys.stdlib_module_names or name == "__future__" or name in ALWAYS_ALLOWED or name in allowed:
            continue
        else:
            found.append(CodeFinding(path, line, "import", _foreign_import_message(name), warning=optional))
    return found


def export_findings(path: Path, tree: ast.Module) -> list[CodeFinding]:
    """A package __init__.py with nothing but a docstring or `pass` exports nothing: the
    kernel would load and offer no function (a warning: the build itself is sound)."""
    if any(not isinstance(node, ast.Pass) and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in tree.body):
        return []
    return [CodeFinding(path, 1, "exports", "__init__.py is empty: the kernel exports nothing; import or define its functions there (e.g. `from ._ops import ops`)", warning=True)]


def _foreign_import_message(name: str) -> str:
    return (f"imports {name!r}, which is not the standard library, torch or a declared python-depends; the `kernels` "
            f"loader installs none other, so if this kernel's users will have it installed, allow it with "
            f"`--allow-import {name}`")


def scan_package(package_dir: Path, python_name: str, allowed_imports: frozenset[str] = frozenset()) -> list[CodeFinding]:
    """Both checks over every .py file under `package_dir` (a source package or a variant)."""
    findings: list[CodeFinding] = []
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError) as exc:
            findings.append(CodeFinding(path, getattr(exc, "lineno", 0) or 0, "syntax", f"cannot be parsed: {exc}"))
            continue
        findings += registration_findings(path, tree)
        findings += import_findings(path, tree, python_name, allowed_imports)
        if path == package_dir / "__init__.py":
            findings += export_findings(path, tree)
    return findings


def check_source_package(config, extra_imports: frozenset[str] = frozenset()) -> list[CodeFinding]:
    """Both checks on the kernel's own Python package, before anything is built.

    `extra_imports`: top-level modules the author allowed besides the declared python-depends
    (`--allow-import`). Errors are returned; the caller reports them with paths relative to
    the kernel directory.
    """
    from .layout import allowed_imports

    g = config.general
    declared = [dep for backend in g.backends for dep in g.python_depends_for(backend)]
    return scan_package(config.root / config.python_package_dir, g.python_name, allowed_imports(declared) | extra_imports)


def format_registration_report(findings: list[CodeFinding], root: Path | None = None) -> str:
    """The report for unprefixed registrations, in the format upstream tooling prints."""
    lines = [PREFIX_HEADER]
    lines += [f"  {f.render(root)}" for f in findings if f.rule == "registration"]
    return "\n".join(lines)
