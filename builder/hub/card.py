"""`fill-card`: render the kernel's CARD.md template into the card the Hub shows as README.md.

The facts come from the sources, never from importing the kernel (it may need a GPU or a
build): the public functions are the names in `__all__` of `torch-ext/<module>/__init__.py`
(read with `ast`) with the first line of their docstrings; layers are the classes of
`layers/__init__.py` or `layers.py` when `layers` is exported; the rest comes from build.toml
and the built variants. Template variables (upstream's names, so existing CARD.md templates
keep working): repo_id, version, functions, layers, has_benchmark, upstream, source, license;
and also name, variants. Each function or layer prints as its name and has `.name`/`.doc`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from ..checks.layout import discover_variants
from ..config import BuildConfig, load_config
from ..errors import UsageError
from .source import check_repo_id


@dataclass(frozen=True)
class Documented:
    """A public function or layer class and the first line of its docstring."""

    name: str
    doc: str = ""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class CardFacts:
    repo_id: str
    name: str
    version: int
    license: str
    functions: tuple[Documented, ...]
    layers: tuple[Documented, ...]
    has_benchmark: bool
    upstream: str | None
    source: str | None
    variants: tuple[str, ...]

    def variables(self) -> dict:
        return {
            "repo_id": self.repo_id,
            "name": self.name,
            "version": self.version,
            "license": self.license,
            "functions": list(self.functions),
            "layers": list(self.layers),
            "has_benchmark": self.has_benchmark,
            "upstream": self.upstream,
            "source": self.source,
            "variants": list(self.variants),
        }


def _first_line(node: ast.AST) -> str:
    doc = ast.get_docstring(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) else None
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as Python: {exc}") from None


def exported_names(module: ast.Module, path: Path) -> list[str]:
    """The names in `__all__` (`__all__ = [...]`, `+= [...]`, tuples); a UsageError when it is not a literal."""
    names: list[str] = []
    found = False
    for node in module.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        if not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        try:
            items = ast.literal_eval(value)
        except ValueError:
            raise UsageError(f"{path}:{node.lineno}: __all__ must be a literal list of names for the card") from None
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise UsageError(f"{path}:{node.lineno}: __all__ must be a list of strings")
        names = names + list(items) if isinstance(node, ast.AugAssign) else list(items)
        found = True
    if not found:
        raise UsageError(f"{path}: no __all__: list the kernel's public functions in __all__ for the card")
    return list(dict.fromkeys(names))


def _definitions(module: ast.Module) -> dict[str, ast.AST]:
    return {n.name: n for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _imported_from(module: ast.Module, package: Path) -> dict[str, Path]:
    """Names imported with `from .x import name` → the file of `.x` inside the package."""
    found = {}
    for node in module.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            base = package.joinpath(*node.module.split("."))
            target = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
            for alias in node.names:
                found[alias.asname or alias.name] = target
    return found


def _document(name: str, module: ast.Module, package: Path) -> Documented:
    definition = _definitions(module).get(name)
    if definition is None:
        source = _imported_from(module, package).get(name)
        if source is not None and source.is_file():
            definition = _definitions(_parse(source)).get(name)
    return Documented(name, _first_line(definition) if definition is not None else "")


def read_layers(package: Path) -> tuple[Documented, ...]:
    for path in (package / "layers" / "__init__.py", package / "layers.py"):
        if path.is_file():
            module = _parse(path)
            return tuple(Documented(n.name, _first_line(n)) for n in module.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_"))
    return ()


def card_facts(config: BuildConfig, repo_id: str, variants: tuple[str, ...] = ()) -> CardFacts:
    """Everything the card says, from build.toml, the Python sources and the variant names."""
    package = config.root / config.python_package_dir
    init = package / "__init__.py"
    if not init.is_file():
        raise UsageError(f"{init}: missing (the kernel's Python package, whose __all__ lists its functions)")
    module = _parse(init)
    names = exported_names(module, init)
    functions = tuple(_document(n, module, package) for n in names if n != "layers")
    layers = read_layers(package) if "layers" in names else ()
    general = config.general
    return CardFacts(
        repo_id=repo_id,
        name=general.name,
        version=general.version,
        license=general.license.lower(),
        functions=functions,
        layers=layers,
        has_benchmark=(config.root / "benchmarks" / "benchmark.py").is_file(),
        upstream=general.upstream,
        source=general.source,
        variants=variants,
    )


def default_template() -> str:
    from importlib import resources

    return resources.files("kernel_builder.templates").joinpath("scaffold/CARD.md").read_text()


def render_card(template: str, facts: CardFacts, where: str = "CARD.md") -> str:
    """Render a card template (sandboxed: a template cannot reach Python objects' internals)."""
    env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    try:
        return env.from_string(template).render(**facts.variables())
    except jinja2.TemplateError as exc:
        line = f":{exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise UsageError(f"{where}{line}: the card template cannot be rendered: {exc}") from None


def fill_card(kernel_dir: Path, output: Path | None = None, *, repo_id: str | None = None, variants_dir: Path | None = None) -> Path:
    """Write the filled card to OUTPUT (default: CARD.md beside the built variants, build/CARD.md).

    The variants are looked for in VARIANTS_DIR when given (the Nix bundle, whose source tree has
    no build/), else in the kernel's result/ or build/.
    """
    kernel_dir = Path(kernel_dir)
    config = load_config(kernel_dir, check_files=False)
    hub = config.general.hub
    if repo_id is not None:
        repo_id = check_repo_id(repo_id, "--repo-id")
    elif hub is not None and hub.repo_id:
        repo_id = hub.repo_id
    else:
        raise UsageError(f"no repository id for the card: pass --repo-id OWNER/NAME or set repo-id in [general.hub] of {config.path}")
    base, variants = discover_variants(variants_dir if variants_dir is not None else kernel_dir)
    template_path = kernel_dir / "CARD.md"
    template = template_path.read_text() if template_path.is_file() else default_template()
    text = render_card(template, card_facts(config, repo_id, tuple(v.name for v in variants)), str(template_path))
    if output is None:
        output = (base if variants else kernel_dir / "build") / "CARD.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return output
