"""The `kernel-builder` command line: thin wrappers over the pipeline modules.

Every expected failure is a KernelBuilderError, printed as one clear message with its exit
code (2 for bad input, 1 for a failed build or check); no traceback unless --debug.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__
from .errors import EXIT_BAD_INPUT, KernelBuilderError

log = logging.getLogger("kernel_builder")
DIR_ARG = click.argument("kernel_dir", default=".", type=click.Path(path_type=Path, file_okay=False))


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(record.levelno, "")
        click.echo(prefix + record.getMessage(), err=True)


def _setup_logging(verbose: bool) -> None:
    log.handlers[:] = [_StderrHandler()]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kernel-builder")
@click.option("-v", "--verbose", is_flag=True, help="Print more detail (commands run, debug messages).")
def main(verbose: bool) -> None:
    """Build PyTorch compute kernels described by build.toml into Hub-ready variants.

    A kernel directory holds build.toml, its C++/CUDA sources and the Python package in
    torch-ext/<module>/. Commands take that directory (default: the current one).
    """
    _setup_logging(verbose or bool(os.environ.get("KERNEL_BUILDER_DEBUG")))


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


if __name__ == "__main__":  # pragma: no cover
    main()
