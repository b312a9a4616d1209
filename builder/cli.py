"""The `kernel-builder` command line: thin wrappers over the pipeline modules.

Every expected failure is a KernelBuilderError, printed as one clear message with its exit
code (2 for bad input, 1 for a failed build or check), never a traceback. `-v/--verbose`
(before or after the command) or KERNEL_BUILDER_DEBUG=1 adds debug messages.
"""

from __future__ import annotations

import errno
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
from .errors import EXIT_FAILED, KernelBuilderError

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
    """Every command also takes `-v/--verbose`, so it works before and after the command name
    (subgroups such as `toolchains` are of this class too, and so are their commands)."""

    group_class = type  # click: @main.group(...) makes a _MainGroup

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any("--verbose" in getattr(p, "opts", ()) for p in cmd.params):
            cmd.params.append(click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_enable_debug,
                                           help="Print debug messages: the commands run and how long each stage took."))
        super().add_command(cmd, name)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


OS_ERROR_HINTS = {
    errno.ENOSPC: "free some space (or inodes) on that file system",
    errno.EDQUOT: "free some space within your quota",
    errno.EROFS: "kernel-builder writes build/ and kernel-builder.lock.json inside the kernel directory, which must be writable",
    errno.EACCES: "check the permissions of that path",
    errno.EPERM: "check the permissions of that path",
    errno.EFBIG: "a file size limit (ulimit -f) stopped the write",
}


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: what failed, on which path, and what to do."""
    text = exc.strerror or str(exc)
    if exc.filename is not None:
        text += f": {exc.filename}"
    hint = OS_ERROR_HINTS.get(exc.errno or 0)
    return f"{text} ({hint})" if hint else text


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into a message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KernelBuilderError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # the environment failed: a full disk, a read-only folder...
            click.echo(f"error: {describe_os_error(exc)}", err=True)
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _index_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Where toolchain packages are looked for (pip/uv conventions; see docs/matrix.md)."""
    options = [
        click.option("--index-url", metavar="URL", help="Default package index (else UV_DEFAULT_INDEX/UV_INDEX_URL/PIP_INDEX_URL, else PyPI)."),
        click.option("--extra-index-url", "extra_index_urls", metavar="URL", multiple=True, help="Extra package index, searched first (repeatable)."),
        click.option("--find-links", metavar="DIR|URL", multiple=True, help="A folder or page of wheels (repeatable; else UV_FIND_LINKS/PIP_FIND_LINKS)."),
        click.option("--torch-index", metavar="URL", help="Base of a PyTorch-style index: torch builds from URL/<compute> (env KERNEL_BUILDER_TORCH_INDEX)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _indexes(index_url, extra_index_urls, find_links, torch_index):
    from .toolchains import IndexSettings

    return IndexSettings.from_environment(index_url=index_url, extra_index_urls=tuple(extra_index_urls), find_links=tuple(find_links), torch_index=torch_index)


def _selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--variant", "variants", metavar="NAME", multiple=True, help="Only this variant (repeatable), required or optional."),
        click.option("--torch", "torch_versions", metavar="X.Y", multiple=True, help="Only variants of this torch release (repeatable)."),
        click.option("--backend-type", "backend_types", type=click.Choice(["cpu", "cuda", "rocm", "xpu", "metal", "tpu", "neuron", "cann"]), multiple=True,
                     help="Only variants of this compute backend (repeatable)."),
        click.option("--latest", is_flag=True, help="Only the newest torch of each backend (the fast CI loop)."),
        click.option("--all", "include_all", is_flag=True, help="Include the optional build sets (older torch releases, ...)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _selection(variants, torch_versions, backend_types, latest, include_all):
    from packaging.version import InvalidVersion, Version

    from .errors import UsageError
    from .variants import Selection

    for version in torch_versions:
        try:
            Version(version)
        except InvalidVersion:
            raise UsageError(f"--torch {version!r}: expected a torch release such as 2.13") from None
    return Selection(names=tuple(variants), torch=tuple(torch_versions), backend_types=tuple(backend_types), latest=latest, include_optional=include_all)


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
@click.option("--status", is_flag=True, help="Also say whether this machine can build each variant (resolving toolchains into the lock) and whether build/ holds it.")
@click.option("--frozen", is_flag=True, help="With --status: use kernel-builder.lock.json as it is; resolve nothing.")
@_index_options
@click.option("--override-input", "override_inputs", nargs=2, multiple=True, metavar="INPUT REF",
              help="With a flake.nix: use REF for the flake input INPUT when asking Nix (repeatable; see build).")
@handle_errors
def list_variants(kernel_dir: Path, as_json: bool, include_all: bool, status: bool, frozen: bool, index_url, extra_index_urls, find_links, torch_index,
                  override_inputs) -> None:
    """List the build variants this kernel gets from the variant matrix.

    By default only the build sets required for a compliant Hub kernel are used; --all adds
    the optional ones (older torch releases, the seed-era C++98 ABI, TPU, Neuron). --status
    adds, per variant, whether this machine can build it (and why not) and whether build/
    holds it. Where the kernel has a flake.nix and Nix works, each variant also says what the
    flake does with it on this machine (`nix eval`): bundle, redistributable, or why it is not built.
    """
    from .config import load_config
    from .variants import applicable_variants, load_matrix

    config = load_config(kernel_dir, check_files=False)
    matrix = load_matrix()
    variants = applicable_variants(config, matrix, include_optional=include_all)
    rows = [v.to_json() for v in variants]
    if status:
        from .backends.host import this_system
        from .backends.matrix import ToolchainLocker, plan_matrix
        from .toolchains import LockFile

        lock_file = LockFile.load(config.root)
        locker = ToolchainLocker(lock_file, _indexes(index_url, extra_index_urls, find_links, torch_index), frozen=frozen)
        plan = plan_matrix(config, variants, matrix, locker, system=this_system())
        lock_file.save()
        toolchains = {job.variant.name: job.toolchain.key for job in plan.jobs}
        for row in rows:
            name = row["name"]
            row["buildable"] = name in toolchains
            row["reason"] = plan.unreachable.get(name)
            row["toolchain"] = toolchains.get(name)
            row["built"] = (config.root / "build" / name / "metadata.json").is_file()
    nix_states: dict[str, str] | None = None
    if (config.root / "flake.nix").is_file():
        from .backends.nix import NixOptions, list_variant_states

        nix_states, problem = list_variant_states(config.root, NixOptions(overrides=tuple(override_inputs)))
        if problem:
            log.warning("nix: %s", problem)
            nix_states = None
    if nix_states is not None:
        for row in rows:
            row["nix"] = nix_states.get(row["name"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        line = row["name"] + ("" if row["required"] else "  (optional)")
        if status:
            line += ("  [built]" if row["built"] else "") + ("" if row["buildable"] else f"  not buildable here: {row['reason']}")
        if row.get("nix"):
            line += f"  [nix: {row['nix']}]"
        click.echo(line)


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
    from .backends.toolpaths import require_plain
    from .config import load_config
    from .provenance import provenance
    from .provenance import unique_id as make_id
    from .render import render_project, write_tree

    config = load_config(kernel_dir)
    target = target or config.root
    # The tree is built with CMake directly: refuse the paths CMake, Ninja or ld cannot use.
    remedy = "`kernel-builder build` works around it, a generated tree cannot: generate it elsewhere (create-pyproject DIR TARGET) or move the kernel"
    for path, what in ((config.root, "the kernel directory"), (target.absolute(), "the target folder")):
        require_plain(path, what, remedy)
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


def _nix_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What the Nix engine passes through to `nix` (docs/nix.md)."""
    options = [
        click.option("--override-input", "override_inputs", nargs=2, multiple=True, metavar="INPUT REF",
                     help="Nix engine: use REF for the flake input INPUT, e.g. kernel-builder/nixpkgs path:/srv/nixpkgs (repeatable)."),
        click.option("-L", "--print-build-logs", is_flag=True, help="Nix engine: print the full build logs."),
        click.option("--builders", metavar="SPEC", help="Nix engine: remote builders, as nix --builders ('ssh://host x86_64-linux'; with --max-jobs 0 nothing builds here)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _nix(override_inputs, print_build_logs: bool, builders: str | None, max_jobs: int | None, cores: int | None, fail_fast: bool = False):
    from .backends.nix import NixOptions

    return NixOptions(overrides=tuple(override_inputs), max_jobs=max_jobs, cores=cores, print_build_logs=print_build_logs, builders=builders,
                      keep_going=not fail_fast)


@main.command("build")
@DIR_ARG
@_selection_options
@click.option("--host", "host_mode", is_flag=True, help="Build for the torch of the running Python (or --python) with the host's CUDA toolkit, not the matrix.")
@click.option("--python", "python", type=click.Path(path_type=Path, dir_okay=False), help="Python whose torch to build against (implies --host).")
@click.option("--backend", type=click.Choice(["auto", "local", "nix"]), default="auto", show_default=True,
              help="local: toolchain environments here; nix: the kernel's flake (docs/nix.md); auto: nix when the kernel has a flake.nix and Nix works, else local.")
@click.option("--max-jobs", type=click.IntRange(min=0), help="Variants built at the same time (default: from CPUs and memory; Nix: 0 = only on --builders).")
@click.option("--cores", type=click.IntRange(min=1), help="Compile jobs per variant (default: CPUs / max-jobs, or MAX_JOBS; divided by NVCC_THREADS; Nix: nix --cores).")
@click.option("--cuda-archs", metavar="LIST", help="Build CUDA code only for these capabilities, e.g. '9.0' (development builds; env KERNEL_BUILDER_CUDA_ARCHS).")
@click.option("--unique-id", metavar="ID", help="Suffix of the ops namespace (default: git tree hash, else a source hash).")
@click.option("--legacy-subpackage", is_flag=True, help="Also write <variant>/<module>/__init__.py for loaders older than the flat layout.")
@click.option("--no-import-check", is_flag=True, help="Do not load each variant in its environment (for kernels that need a GPU at import).")
@_index_options
@click.option("--frozen", is_flag=True, help="Use kernel-builder.lock.json as it is; never resolve a toolchain.")
@click.option("--locked", is_flag=True, help="Fail if kernel-builder.lock.json would change.")
@click.option("--upgrade", is_flag=True, help="Resolve every toolchain again (newest matching releases).")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failing variant.")
@click.option("--allow-import", "allow_imports", metavar="NAME", multiple=True,
              help="Let the kernel's Python code import NAME (e.g. numpy), which the loader does not install; repeatable.")
@_nix_options
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the result.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (for CI).")
@handle_errors
def build(kernel_dir: Path, variants, torch_versions, backend_types, latest, include_all, host_mode: bool, python: Path | None, backend: str,
          max_jobs: int | None, cores: int | None, cuda_archs: str | None, unique_id: str | None, legacy_subpackage: bool, no_import_check: bool,
          index_url, extra_index_urls, find_links, torch_index, frozen: bool, locked: bool, upgrade: bool, fail_fast: bool,
          allow_imports: tuple[str, ...], override_inputs, print_build_logs: bool, builders: str | None, quiet: bool, as_json: bool) -> None:
    """Build the kernel's variants into build/<variant>/.

    By default: every required variant of the matrix that applies to the kernel and that this
    machine can build, each with its own toolchain (torch, CUDA toolkit, CMake, Ninja) pinned
    in kernel-builder.lock.json and installed once into a cached environment. With --host: the
    variant of one Python's torch and the host CUDA toolkit. Each variant is checked (layout,
    metadata, digest, Python code, portability of every binary, loading) before it replaces
    the previous one; a failed build keeps the previous good variant. Variants whose inputs did
    not change are not rebuilt. Logs are kept in build/.kernel-builder/logs/.

    With --backend nix (or auto, for a kernel with a flake.nix), the same variants are locked
    here and built by `nix build` of the kernel's flake, then copied into build/ (docs/nix.md).
    """
    from .build import BuildOptions, run_build
    from .errors import UsageError
    from .progress import Reporter

    if max_jobs == 0 and backend == "local":
        raise UsageError("--max-jobs 0 means 'build only on remote builders', which only the Nix engine has")

    options = BuildOptions(backend=backend, selection=_selection(variants, torch_versions, backend_types, latest, include_all), host=host_mode,
                           python=python, max_jobs=max_jobs, cores=cores, cuda_archs=cuda_archs, unique_id=unique_id, legacy_subpackage=legacy_subpackage,
                           import_check=not no_import_check, indexes=_indexes(index_url, extra_index_urls, find_links, torch_index), frozen=frozen,
                           locked=locked, upgrade=upgrade, fail_fast=fail_fast, allowed_imports=tuple(dict.fromkeys(allow_imports)),
                           nix=_nix(override_inputs, print_build_logs, builders, max_jobs, cores, fail_fast))
    reporter = Reporter(quiet=quiet or as_json)
    report = run_build(kernel_dir, options, reporter)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_summary(report, quiet)
    if not report.ok:
        sys.exit(1)


def _print_summary(report, quiet: bool) -> None:
    for result in report.results:
        if result.status == "built":
            click.echo(f"built {result.path} ({result.seconds:.0f} s)")
            for warning in result.warnings:
                log.warning(warning)
        elif result.status == "up-to-date":
            if not quiet:
                click.echo(f"up to date {result.path}")
        else:
            click.echo(f"error: {result.variant} failed after {result.seconds:.0f} s: {result.error}", err=True)
    if quiet:
        return
    for name, reason in sorted(report.unreachable.items()):
        click.echo(f"unreachable {name}: {reason}", err=True)
    by_reason: dict[str, list[str]] = {}
    for name, reason in report.skipped.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in sorted(by_reason.items()):
        click.echo(f"skipped {', '.join(sorted(names))}: {reason}", err=True)
    counts = {s: sum(r.status == s for r in report.results) for s in ("built", "up-to-date", "failed")}
    fetched = f", fetched {report.downloaded} files ({report.downloaded_bytes / 1e6:.0f} MB)" if report.downloaded else ""
    click.echo(f"{report.kernel}: {counts['built']} built, {counts['up-to-date']} up to date, {counts['failed']} failed, {len(report.unreachable)} unreachable, "
               f"{len(report.skipped)} skipped; {report.resolved} toolchain(s) resolved{fetched} in {report.seconds:.1f} s", err=True)


def _nix_build_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--max-jobs", type=click.IntRange(min=0), help="Derivations Nix builds at once (nix --max-jobs; 0 = only on --builders)."),
        click.option("--cores", type=click.IntRange(min=1), help="Cores per derivation (nix --cores; kernel-builder gives them to Ninja and nvcc --threads)."),
        click.option("--unique-id", metavar="ID", help="Suffix of the ops namespace (default: as `build`)."),
        click.option("--cuda-archs", metavar="LIST", help="Only these CUDA capabilities, e.g. '9.0' (env KERNEL_BUILDER_CUDA_ARCHS)."),
    ]
    for option in reversed(options):
        func = option(func)
    return _nix_options(func)


@main.command("build-and-copy")
@DIR_ARG
@_nix_build_options
@handle_errors
def build_and_copy(kernel_dir: Path, max_jobs, cores, unique_id, cuda_archs, override_inputs, print_build_logs: bool, builders) -> None:
    """Build the kernel flake's bundle with Nix and copy its variants into build/ (nix run .#build-and-copy).

    The required variants the flake builds on this machine; each replaces build/<variant>/ as a
    whole. `build --backend nix` does the same for any selection of variants.
    """
    from .backends.nix import preload, prepare

    config, nix, ref, view = prepare(kernel_dir, _nix(override_inputs, print_build_logs, builders, max_jobs, cores), unique_id=unique_id,
                                     cuda_archs=cuda_archs)
    if not view.bundle:
        from .errors import UsageError

        raise UsageError(f"the flake of {config.general.name} builds no required variant on this machine (kernel-builder list-variants says why)")
    preload(nix, view, [*view.bundle, "kernel-builder"])
    code = nix.run(["run", *nix.build_args(), f"{ref}#build-and-copy", "--", str(config.root / "build")])
    if code != 0:
        from .errors import BuildError

        raise BuildError(f"nix run {ref}#build-and-copy failed (exit code {code})")


def _shell(kernel_dir: Path, variant: str | None, command: str | None, test: bool, nix_options, unique_id, cuda_archs) -> None:
    from .backends.nix import preload, prepare, shell_attr, this_system

    config, nix, ref, view = prepare(kernel_dir, nix_options, unique_id=unique_id, cuda_archs=cuda_archs)
    attr, name = shell_attr(view, variant, test=test)
    preload(nix, view, [name, "kernel-builder", "pytest"])
    args = ["develop", *nix.build_args(), f"{ref}#devShells.{this_system()}.{attr}"]
    if command is not None:
        args += ["--command", "bash", "-c", command]
    nix.exec(args, cwd=config.root)


@main.command("devshell")
@DIR_ARG
@click.option("--variant", metavar="NAME", help="The variant's shell (default: the flake's default, the best bundle variant).")
@click.option("-c", "--command", "command", metavar="CMD", help="Run CMD (a bash command line) in the shell instead of an interactive shell.")
@_nix_build_options
@handle_errors
def devshell(kernel_dir: Path, variant: str | None, command: str | None, max_jobs, cores, unique_id, cuda_archs, override_inputs, print_build_logs: bool,
             builders) -> None:
    """Enter the development shell of a variant (nix develop): kernel-builder, that variant's torch,
    CUDA toolkit, CMake and Ninja, LOCAL_KERNELS pointing at ./build, and ./.venv to pip into."""
    _shell(kernel_dir, variant, command, False, _nix(override_inputs, print_build_logs, builders, max_jobs, cores), unique_id, cuda_archs)


@main.command("testshell")
@DIR_ARG
@click.option("--variant", metavar="NAME", help="The variant to test (default: the flake's default).")
@click.option("-c", "--command", "command", metavar="CMD", help="Run CMD (a bash command line) in the shell, e.g. 'python -m pytest tests'.")
@_nix_build_options
@handle_errors
def testshell(kernel_dir: Path, variant: str | None, command: str | None, max_jobs, cores, unique_id, cuda_archs, override_inputs, print_build_logs: bool,
              builders) -> None:
    """Enter a shell where the Nix-built variant is what `kernels.get_kernel` loads (LOCAL_KERNELS), with pytest."""
    _shell(kernel_dir, variant, command, True, _nix(override_inputs, print_build_logs, builders, max_jobs, cores), unique_id, cuda_archs)


@main.command("lock")
@DIR_ARG
@_selection_options
@_index_options
@click.option("--upgrade", is_flag=True, help="Resolve every toolchain again, even those already locked.")
@handle_errors
def lock(kernel_dir: Path, variants, torch_versions, backend_types, latest, include_all, index_url, extra_index_urls, find_links, torch_index,
         upgrade: bool) -> None:
    """Resolve the toolchains of the kernel's variants into kernel-builder.lock.json.

    Each toolchain (torch wheel, CUDA toolkit wheels, CMake, Ninja, the import check's
    packages) is recorded with URL, size and sha256; builds, other machines and the Nix engine
    reuse it without resolving again. Variants the configured indexes cannot provide are
    recorded with the reason (and which index would have them). Commit the file.
    """
    from .backends.host import this_system
    from .backends.matrix import ToolchainLocker, plan_matrix
    from .config import load_config
    from .toolchains import LockFile
    from .variants import load_matrix, select_variants

    config = load_config(kernel_dir, check_files=False)
    matrix = load_matrix()
    selected = select_variants(config, matrix, _selection(variants, torch_versions, backend_types, latest, include_all))
    lock_file = LockFile.load(config.root)
    locker = ToolchainLocker(lock_file, _indexes(index_url, extra_index_urls, find_links, torch_index), upgrade=upgrade)
    plan = plan_matrix(config, selected.variants, matrix, locker, system=this_system())
    written = lock_file.save()
    for job in plan.jobs:
        tc = job.toolchain
        click.echo(f"locked {job.variant.name}: {tc.key} (torch {tc.torch_version}{', CUDA toolkit ' + tc.cuda_toolkit if tc.cuda_toolkit else ''}, "
                   f"{len(tc.artifacts)} files, {tc.download_size / 1e6:.0f} MB)")
    for name, reason in sorted(plan.unreachable.items()):
        click.echo(f"unreachable {name}: {reason}")
    for note in plan.notes:
        log.warning(note)
    click.echo(f"{lock_file.path}: {'written' if written else 'unchanged'} ({plan.resolved} toolchain(s) resolved)")


@main.command("build-variant")
@DIR_ARG
@click.option("--variant", "variant_name", required=True, metavar="NAME", help="The variant to build.")
@click.option("--toolchain-dir", required=True, type=click.Path(path_type=Path, file_okay=False, exists=True), help="A toolchain environment (made by `toolchains install`).")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False), help="Where <variant>/ is written.")
@click.option("--work", type=click.Path(path_type=Path, file_okay=False), help="Scratch folder (default: a temporary one).")
@click.option("--unique-id", metavar="ID", help="Suffix of the ops namespace.")
@click.option("--kernel-commit", metavar="SHA", help="The kernel's git commit for provenance (the sources may be a copy without .git).")
@click.option("--kernel-dirty", is_flag=True, help="With --kernel-commit: the sources differ from that commit.")
@click.option("--cuda-archs", metavar="LIST", help="Only these CUDA capabilities (development builds).")
@click.option("--cores", type=click.IntRange(min=1), help="Compile jobs.")
@click.option("--no-import-check", is_flag=True, help="Do not load the variant.")
@click.option("--engine", type=click.Choice(["nix", "local"]), default="nix", show_default=True, help="Recorded in metadata provenance.")
@handle_errors
def build_variant(kernel_dir: Path, variant_name: str, toolchain_dir: Path, out: Path, work: Path | None, unique_id: str | None, kernel_commit: str | None,
                  kernel_dirty: bool, cuda_archs: str | None, cores: int | None, no_import_check: bool, engine: str) -> None:
    """Build one variant with a given toolchain environment into OUT/<variant> (used by the Nix engine's derivations).

    The same stages as `build`: render, CMake + Ninja with the compat layer, the layout and
    metadata checks, the portability gate and the import check. Exit code 1 when any fails.
    """
    import tempfile

    from .build import build_variant_into
    from .errors import CheckError
    from .provenance import COMMIT_RE
    from .errors import UsageError

    if kernel_commit is not None and not COMMIT_RE.match(kernel_commit):
        raise UsageError(f"--kernel-commit {kernel_commit!r}: expected a full 40- or 64-digit hexadecimal commit id")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kb-build-variant-") as tmp:
        result = build_variant_into(kernel_dir, variant_name, toolchain_dir, out, work=work or Path(tmp), unique_id=unique_id, kernel_commit=kernel_commit,
                                    kernel_dirty=kernel_dirty, cuda_archs=cuda_archs, cores=cores, import_check=not no_import_check, engine=engine)
    if result.status != "built":
        raise CheckError(f"{variant_name}: {result.error}")
    for warning in result.warnings:
        log.warning(warning)
    click.echo(f"built {result.path}")


@main.group("toolchains")
def toolchains() -> None:
    """Show and free the cached toolchain environments (shared by every kernel)."""


@toolchains.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def toolchains_list(as_json: bool) -> None:
    """List the toolchain environments and the artifact store, with their disk use."""
    from .toolchains.cache import inventory

    inv = inventory()
    if as_json:
        click.echo(json.dumps(inv.to_json(), indent=2))
        return
    for env in inv.environments:
        state = "ready" if env.ready else "incomplete"
        click.echo(f"{env.hash}  {env.key or '?':45} {env.size / 1e9:6.2f} GB  last used {env.last_used_text}  {state}")
    click.echo(f"{len(inv.environments)} environment(s), {inv.environments_size / 1e9:.2f} GB; artifact store {inv.artifacts} file(s), "
               f"{inv.artifacts_size / 1e9:.2f} GB (in {inv.root})")


@toolchains.command("install")
@DIR_ARG
@click.option("--variant", "variant_name", metavar="NAME", help="The variant whose toolchain to install (from the kernel's lock).")
@click.option("--key", metavar="KEY", help="Or the toolchain's key in the lock.")
@click.option("--python-version", metavar="X.Y", help="With --variant: the Python version of the toolchain (default: this interpreter's).")
@click.option("--wheel", "wheels", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True), help="A wheel file of the toolchain (repeatable; a Nix store path ending in the wheel's name is fine).")
@click.option("--prefix", required=True, type=click.Path(path_type=Path, file_okay=False), help="Where the environment is made.")
@click.option("--python", "python", metavar="PATH", help="The interpreter the environment is made with.")
@handle_errors
def toolchains_install(kernel_dir: Path, variant_name: str | None, key: str | None, python_version: str | None, wheels: tuple[Path, ...], prefix: Path,
                       python: str | None) -> None:
    """Make a toolchain environment at PREFIX from the lock and local wheel files (no network; used by Nix)."""
    from .toolchains import LockFile
    from .toolchains.environment import install_environment
    from .toolchains.store import link_wheels
    from .backends.matrix import running_python
    from .errors import UsageError

    lock_file = LockFile.load(kernel_dir)
    if variant_name:
        toolchain = lock_file.toolchain_for(variant_name, python_version or running_python())
    elif key:
        toolchain = lock_file.toolchains.get(key)
    else:
        raise UsageError("name the toolchain: --variant NAME or --key KEY")
    if toolchain is None:
        raise UsageError(f"{lock_file.path}: no toolchain for {variant_name or key}; run `kernel-builder lock`")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kb-wheels-") as tmp:
        files = link_wheels(toolchain, list(wheels), Path(tmp))
        install_environment(toolchain, files, prefix, python=python)
    click.echo(f"installed {toolchain.key} into {prefix}")


@toolchains.command("prune")
@click.option("--older-than", "days", type=click.FloatRange(min=0), default=30, show_default=True, metavar="DAYS", help="Remove environments unused for this many days.")
@click.option("--all", "everything", is_flag=True, help="Remove every environment and the artifact store.")
@click.option("--artifacts", is_flag=True, help="Also remove downloaded files no remaining environment was made from.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@handle_errors
def toolchains_prune(days: float, everything: bool, artifacts: bool, dry_run: bool) -> None:
    """Free disk: remove toolchain environments not used recently (they are made again when needed)."""
    from .toolchains.cache import prune

    removed = prune(older_than_days=0 if everything else days, artifacts=artifacts or everything, dry_run=dry_run)
    for path, size in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path} ({size / 1e9:.2f} GB)")
    click.echo(f"{'would free' if dry_run else 'freed'} {sum(s for _, s in removed) / 1e9:.2f} GB")


@main.command("hash")
@DIR_ARG
@handle_errors
def hash_variants(kernel_dir: Path) -> None:
    """Recompute the digest in every variant's metadata.json (result/, build/ or DIR)."""
    from .checks.layout import require_variants
    from .layout.metadata import write_metadata

    from .errors import CheckError

    base, variants = require_variants(kernel_dir)
    for variant in variants:
        try:
            metadata = json.loads((variant / "metadata.json").read_text())
            metadata.pop("digest", None)
            data = write_metadata(variant, metadata)
        except (OSError, ValueError, AttributeError) as exc:  # unreadable, not JSON or not an object, a bad kernels-minver
            raise CheckError(f"{variant / 'metadata.json'}: {exc}") from None
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


@main.command("init")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", metavar="[OWNER/]NAME", help="Hub owner and kernel name; without an owner, the Hub is asked who you are (HF_TOKEN).")
@click.option("--backends", default=",".join(("cpu", "cuda")), show_default=True, metavar="LIST", help="Comma-separated backends to scaffold (cpu, cuda) or `all`.")
@click.option("--license", "license_", default="apache-2.0", show_default=True, metavar="ID", help="License identifier for build.toml and the card.")
@click.option("--overwrite", is_flag=True, help="Replace scaffold files that already exist.")
@handle_errors
def init(path: Path | None, name: str | None, backends: str, license_: str, overwrite: bool) -> None:
    """Create a new kernel in PATH (default: ./NAME) that builds and passes its tests as is.

    Writes build.toml, flake.nix, torch-ext/ (binding and Python package), one source per
    backend, tests/, example.py, benchmarks/benchmark.py, a CARD.md template, .gitignore and
    .gitattributes, then runs `git init` and stages the files (no commit).
    """
    from .hub.client import whoami_name
    from .scaffold import init_kernel, parse_backends

    result = init_kernel(path, name, parse_backends(backends), license_, overwrite=overwrite, whoami=whoami_name)
    for note in result.notes:
        log.warning(note)
    click.echo(f"created {result.repo_id} in {result.root} ({len(result.written)} files; backends: {', '.join(result.backends)})")
    click.echo(f"next: kernel-builder build {result.root} && python -m pytest {result.root / 'tests'}")


@main.command("fill-card")
@DIR_ARG
@click.argument("output", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--repo-id", metavar="OWNER/NAME", help="Repository id for the card (default: general.hub.repo-id).")
@click.option("--variants-from", type=click.Path(path_type=Path, file_okay=False, exists=True), metavar="DIR",
              help="Folder holding the built variants the card lists (default: the kernel's result/ or build/).")
@handle_errors
def fill_card(kernel_dir: Path, output: Path | None, repo_id: str | None, variants_from: Path | None) -> None:
    """Render the kernel's CARD.md template into OUTPUT (default: build/CARD.md, where upload finds it).

    Functions and their one-line descriptions come from __all__ and the docstrings of
    torch-ext/<module>/__init__.py (read, never imported); layers, license, upstream/source,
    version, the built variants and how to load the kernel complete it.
    """
    from .hub.card import fill_card as render

    click.echo(f"wrote {render(kernel_dir, output, repo_id=repo_id, variants_dir=variants_from)}")


def upload_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `upload` and `build-and-upload` share."""
    options = [
        click.option("--repo-id", metavar="OWNER/NAME", help="Hub repository (default: general.hub.repo-id)."),
        click.option("--branch", metavar="NAME", help="Branch for the build (default: general.hub.branch, else v<version>)."),
        click.option("--private", is_flag=True, help="Create the repository as private."),
        click.option("--repo-type", type=click.Choice(["kernel", "model"]), default="kernel", show_default=True, help="`model` for legacy kernel repositories."),
        click.option("--create-pr", is_flag=True, help="Open pull requests instead of committing (the repository and branch must exist)."),
        click.option("--prune", is_flag=True, help="Also delete variants on the branch that are not part of this upload."),
        click.option("--dry-run", is_flag=True, help="Print what would be uploaded; no network."),
        click.option("--output-json", type=click.Path(path_type=Path, dir_okay=False), help="Write the result as JSON to this file."),
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _publish_settings(**kwargs: Any):
    from .hub.publish import PublishSettings

    return PublishSettings(**kwargs)


@main.command("upload")
@DIR_ARG
@upload_options
@handle_errors
def upload(kernel_dir: Path, **kwargs: Any) -> None:
    """Upload the built variants (result/, build/ or DIR) to the Hub with huggingface_hub.

    build/<variant>/... and benchmarks/benchmark*.py go to the version branch, build/CARD.md
    to main as README.md. Variants that fail check-builds or the portability gate are refused.
    HF_TOKEN and HF_ENDPOINT are honoured; the token is never printed. After the upload the
    branch is listed and every file and digest compared with the plan.
    """
    from .hub.publish import publish

    publish(kernel_dir, _publish_settings(**kwargs), echo=click.echo)


@main.command("build-and-upload")
@DIR_ARG
@click.option("--variant", metavar="NAME", help="Build and upload only this variant.")
@click.option("--python", "python", type=click.Path(path_type=Path, dir_okay=False), help="Python whose torch to build against.")
@upload_options
@handle_errors
def build_and_upload(kernel_dir: Path, variant: str | None, python: Path | None, **kwargs: Any) -> None:
    """Build the kernel (as `build`), fill the card, then upload the variants just built."""
    from .hub.publish import build_and_publish

    build_and_publish(kernel_dir, _publish_settings(**kwargs), variant=variant, python=python, echo=click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
