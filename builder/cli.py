"""The `kernel-builder` command line: thin wrappers over the pipeline modules.

Every expected failure is a KernelBuilderError, printed as one clear message with its exit
code (2 for bad input, 1 for a failed build or check), never a traceback. `-v/--verbose`
(before or after the command) or KERNEL_BUILDER_DEBUG=1 adds debug messages.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .errors import KernelBuilderError

log = logging.getLogger("kernel_builder")
DIR_ARG = click.argument("kernel_dir", default=".", type=click.Path(path_type=Path, file_okay=False))


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.DEBUG: "debug: ", logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        click.echo(prefix + record.getMessage(), err=True)


def _setup_logging(verbose: bool) -> None:
    log.handlers[:] = [_StderrHandler()]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def debug_from_environment() -> bool:
    """KERNEL_BUILDER_DEBUG=1 (any value but empty, 0, false, no, off) turns on debug messages."""
    return os.environ.get("KERNEL_BUILDER_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def _enable_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _setup_logging(True)
    return value


class _MainGroup(click.Group):
    """Every command also takes `-v/--verbose`, so it works before and after the command name."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any("--verbose" in getattr(p, "opts", ()) for p in cmd.params):
            cmd.params.append(click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_enable_debug,
                                           help="Print debug messages: the commands run and how long each stage took."))
        super().add_command(cmd, name)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into a message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KernelBuilderError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group(cls=_MainGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kernel-builder")
@click.option("-v", "--verbose", is_flag=True, help="Print debug messages: the commands run and how long each stage took.")
def main(verbose: bool) -> None:
    """Build PyTorch compute kernels described by build.toml into Hub-ready variants.

    A kernel directory holds build.toml, its C++/CUDA sources and the Python package in
    torch-ext/<module>/. Commands take that directory (default: the current one).
    """
    _setup_logging(verbose or debug_from_environment())
    # SIGTERM (a CI timeout, `kill`) stops a build like Ctrl-C: cleanly, keeping build/ intact.
    signal.signal(signal.SIGTERM, _raise_interrupt)


@main.command("check-config")
@DIR_ARG
@click.option("--schema-only", is_flag=True, help="Check build.toml alone; do not look for the files it lists.")
@handle_errors
def check_config(kernel_dir: Path, schema_only: bool) -> None:
    """Validate build.toml: keys, types, values and (unless --schema-only) listed files.

    Reports every problem found with its key path and exits with code 2 when there is any.
    """
    from .config import load_config

    config = load_config(kernel_dir, check_files=not schema_only)
    g = config.general
    kernels = ", ".join(f"{k.name} ({k.backend})" for k in config.kernels) or "none"
    click.echo(f"{config.path}: OK")
    click.echo(f"  {g.name} v{g.version}, edition {config.source_edition}, [{config.framework.kind}], backends: {', '.join(g.backends)}")
    click.echo(f"  kernel sections: {kernels}")


@main.command("update-build")
@DIR_ARG
@click.option("--license", "license_", metavar="ID", help="License for files that have none (default Apache-2.0, with a warning).")
@click.option("--dry-run", is_flag=True, help="Print the converted build.toml instead of writing it.")
@handle_errors
def update_build(kernel_dir: Path, license_: str | None, dry_run: bool) -> None:
    """Convert build.toml from any older format to edition 5.

    Reads edition-4 files and every pre-edition format (seed-era [torch] name/pysrc,
    `language`/`universal` kernels, cuda-minver in [general], ...), writes an equivalent
    edition-5 file and checks it. Comments and key order are not preserved.
    """
    from .config.update import update_build_file

    result = update_build_file(kernel_dir, license=license_, dry_run=dry_run)
    if dry_run:
        click.echo(result.text, nl=False)
    for note in result.notes:
        log.warning(note)
    if not dry_run:
        click.echo(result.summary)


@main.command("list-variants")
@DIR_ARG
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of variant objects (stable field names).")
@click.option("--all", "include_all", is_flag=True, help="Include optional build sets, not only those required for compliance.")
@handle_errors
def list_variants(kernel_dir: Path, as_json: bool, include_all: bool) -> None:
    """List the build variants this kernel gets from the variant matrix.

    By default only the build sets required for a compliant Hub kernel are used; --all adds
    the optional ones (older torch releases, the seed-era C++98 ABI, TPU, Neuron).
    """
    from .config import load_config
    from .variants import applicable_variants, load_matrix

    config = load_config(kernel_dir, check_files=False)
    variants = applicable_variants(config, load_matrix(), include_optional=include_all)
    if as_json:
        click.echo(json.dumps([v.to_json() for v in variants], indent=2))
        return
    for variant in variants:
        click.echo(variant.name + ("" if variant.required else "  (optional)"))


@main.command("create-pyproject")
@DIR_ARG
@click.argument("target", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("-f", "--force", is_flag=True, help="Overwrite existing files that kernel-builder did not generate.")
@click.option("--unique-id", metavar="ID", help="Suffix of the ops namespace (default: git tree hash, else a source hash).")
@handle_errors
def create_pyproject(kernel_dir: Path, target: Path | None, force: bool, unique_id: str | None) -> None:
    """Generate a CMake/setuptools project for the kernel (into TARGET, default: the kernel dir).

    The generated tree builds without kernel-builder: `cmake -S . -B _build -G Ninja &&
    cmake --build _build && cmake --install _build`, or `pip install --no-build-isolation .`.
    Files are recorded in .kernel-builder-generated.json so that `clean-pyproject` removes
    exactly them; existing files that kernel-builder did not write are never overwritten
    without --force.
    """
    from .config import load_config
    from .provenance import provenance
    from .provenance import unique_id as make_id
    from .render import render_project, write_tree

    config = load_config(kernel_dir)
    target = target or config.root
    files = render_project(config, make_id(config, unique_id), provenance(config), target)
    write_tree(target, files, force=force)
    click.echo(f"generated {len(files)} files in {target}")


@main.command("clean-pyproject")
@DIR_ARG
@click.option("-f", "--force", is_flag=True, help="Also remove generated files that were edited since.")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
@handle_errors
def clean_pyproject(kernel_dir: Path, force: bool, dry_run: bool) -> None:
    """Remove the files create-pyproject generated in KERNEL_DIR (and nothing else)."""
    from .render import clean_tree

    result = clean_tree(kernel_dir, force=force, dry_run=dry_run)
    for path in result.removed:
        click.echo(("would remove " if dry_run else "removed ") + str(path))
    for path in result.kept:
        log.warning("%s was edited since it was generated; kept (use --force to remove it)", path)


@main.command("build")
@DIR_ARG
@click.option("--backend", type=click.Choice(["auto", "local", "nix"]), default="auto", show_default=True, help="local: the host toolchain (what auto picks); nix: not available yet.")
@click.option("--variant", metavar="NAME", help="Build only this variant (e.g. torch213-cxx11-cpu-x86_64-linux).")
@click.option("--python", "python", type=click.Path(path_type=Path, dir_okay=False), help="Python whose torch to build against (default: the one running kernel-builder).")
@click.option("--max-jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Variants built at the same time.")
@click.option("--cores", type=click.IntRange(min=1), help="Compile jobs per variant (default: MAX_JOBS, else all CPUs; divided by NVCC_THREADS).")
@click.option("--cuda-archs", metavar="LIST", help="Build CUDA code only for these capabilities, e.g. '9.0' (development builds; env KERNEL_BUILDER_CUDA_ARCHS).")
@click.option("--unique-id", metavar="ID", help="Suffix of the ops namespace (default: git tree hash, else a source hash).")
@click.option("--legacy-subpackage", is_flag=True, help="Also write <variant>/<module>/__init__.py for loaders older than the flat layout.")
@click.option("--no-import-check", is_flag=True, help="Do not load each variant in the target Python (for kernels that need a GPU at import).")
@click.option("--allow-import", "allow_imports", metavar="NAME", multiple=True,
              help="Let the kernel's Python code import NAME (e.g. numpy), which the loader does not install; repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the result.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (for CI).")
@handle_errors
def build(kernel_dir: Path, backend: str, variant: str | None, python: Path | None, max_jobs: int, cores: int | None, cuda_archs: str | None,
          unique_id: str | None, legacy_subpackage: bool, no_import_check: bool, allow_imports: tuple[str, ...], quiet: bool,
          as_json: bool) -> None:
    """Build every variant of the kernel this machine can build into build/<variant>/.

    With the local backend that is the variant of the chosen Python's torch (its torch version,
    C++ ABI and CUDA version; the CUDA toolkit from CUDA_HOME or nvcc on PATH) plus the
    kernel's Python-only variants. Each variant is checked (layout, metadata, digest, Python
    code, portability of every binary, loading) before it replaces the previous one; a failed
    build keeps the previous good variant. Logs are kept in build/.kernel-builder/logs/.
    """
    from .build import BuildOptions, run_build
    from .progress import Reporter

    options = BuildOptions(backend=backend, variant=variant, python=python, max_jobs=max_jobs, cores=cores, cuda_archs=cuda_archs,
                           unique_id=unique_id, legacy_subpackage=legacy_subpackage, import_check=not no_import_check,
                           allowed_imports=tuple(dict.fromkeys(allow_imports)))
    reporter = Reporter(quiet=quiet or as_json)
    report = run_build(kernel_dir, options, reporter)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    for result in report.results:
        if result.status == "built":
            if not as_json:
                click.echo(f"built {result.path} ({result.seconds:.0f} s)")
            for warning in result.warnings:
                log.warning(warning)
        else:
            click.echo(f"error: {result.variant} failed after {result.seconds:.0f} s: {result.error}", err=True)
    if not report.ok:
        sys.exit(1)


@main.command("hash")
@DIR_ARG
@handle_errors
def hash_variants(kernel_dir: Path) -> None:
    """Recompute the digest in every variant's metadata.json (result/, build/ or DIR)."""
    from .checks.layout import require_variants
    from .layout.metadata import write_metadata

    base, variants = require_variants(kernel_dir)
    for variant in variants:
        metadata = json.loads((variant / "metadata.json").read_text())
        metadata.pop("digest", None)
        data = write_metadata(variant, metadata)
        click.echo(f"{variant}: {len(data['digest']['files'])} files")


@main.command("check-builds")
@DIR_ARG
@click.option("--allow-import", "allow_imports", metavar="NAME", multiple=True,
              help="Accept imports of NAME in the kernel's Python code, as `build --allow-import`; repeatable.")
@handle_errors
def check_builds(kernel_dir: Path, allow_imports: tuple[str, ...]) -> None:
    """Check built variants (result/, build/ or DIR): name, metadata.json, digest, extension,
    ops namespace, relative imports and add_op_namespace_prefix use. Exit code 1 on a problem."""
    from .checks.layout import check_variant, require_variants
    from .errors import CheckError

    base, variants = require_variants(kernel_dir)
    failed = 0
    for variant in variants:
        findings = check_variant(variant, base=base, extra_imports=frozenset(allow_imports))
        errors = [f for f in findings if not f.warning]
        failed += bool(errors)
        click.echo(f"{'FAIL' if errors else 'ok  '} {variant.name}")
        for finding in findings:
            click.echo("     " + finding.render().replace("\n", "\n     "))
    if failed:
        raise CheckError(f"{failed} of {len(variants)} variants have problems")


@main.command("check-abi")
@DIR_ARG
@click.option("-m", "--manylinux", default="manylinux_2_27", show_default=True, help="glibc ceiling as a manylinux tag.")
@click.option("-p", "--python-abi", default="3.9", show_default=True, help="Newest Python limited API version allowed (abi3).")
@handle_errors
def check_abi(kernel_dir: Path, manylinux: str, python_abi: str) -> None:
    """Check every binary of the built variants (result/, build/ or DIR) for portability.

    Rules: no glibc symbol version above the manylinux ceiling and every (symbol, version)
    present in glibc 2.27; no GLIBCXX_/CXXABI_ versions and no libstdc++ in NEEDED (libstdc++
    is linked statically); NEEDED only libc/libm/libpthread/libdl/librt/libgcc_s, torch's and
    the CUDA libraries; only PyInit_* exported; the Python limited API up to --python-abi;
    plus kernel-abi-check's manylinux and Python-ABI findings. Exit code 1 on any violation.
    """
    from .checks.layout import require_variants
    from .checks.portability import binaries_under, check_binary, format_report, policy_for
    from .errors import CheckError, UsageError

    try:
        policy = policy_for(manylinux, python_abi)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    base, variants = require_variants(kernel_dir)
    binaries = binaries_under(variants)
    if not binaries:
        click.echo("no binaries to check (Python-only variants)")
        return
    results = {path.relative_to(base) if path.is_relative_to(base) else path: check_binary(path, policy) for path in binaries}
    click.echo(format_report(results))
    if any(results.values()):
        raise CheckError("ABI compatibility issues found")


if __name__ == "__main__":  # pragma: no cover
    main()
