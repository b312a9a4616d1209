"""`kernel-builder build`: plan, build, check and install variants.

Stages per variant: assemble (compile with the backend, or copy for Python-only variants) into
a staging folder → checks (layout, metadata, digest, Python code, the portability gate and the
linkage check on every binary, an import check) → atomic install into build/<variant>/. A failed or interrupted build
leaves the previous good variant in place and no partial folder behind.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .backends.host import Host, detect_host
from .backends.local import Cancellation, Job, Plan, build_compiled, link_map, object_files, parse_cuda_archs, plan_local
from .checks.importcheck import import_check
from .checks.layout import Finding, check_variant
from .checks.python_code import check_source_package, format_registration_report
from .config import BuildConfig, load_config
from .errors import BuildError, CheckError, KernelBuilderError, UsageError
from .layout.assemble import add_legacy_subpackage, assemble_noarch
from .layout.install import BuildDir
from .progress import Reporter
from .provenance import provenance, unique_id

BACKENDS = ("auto", "local", "nix")
log = logging.getLogger("kernel_builder")


@dataclass
class BuildOptions:
    backend: str = "auto"
    variant: str | None = None
    python: Path | None = None
    max_jobs: int = 1
    cores: int | None = None
    cuda_archs: str | None = None
    unique_id: str | None = None
    legacy_subpackage: bool = False
    import_check: bool = True
    allowed_imports: tuple[str, ...] = ()  # --allow-import: modules the kernel's Python may import besides python-depends


@dataclass
class VariantResult:
    variant: str
    status: str  # "built" | "failed" | "interrupted"
    seconds: float
    path: str | None = None
    log: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    cuda_archs: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BuildReport:
    kernel: str
    backend: str
    results: list[VariantResult]
    skipped: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(r.status == "built" for r in self.results)

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "backend": self.backend, "ok": self.ok, "variants": [asdict(r) for r in self.results], "skipped": self.skipped}


def choose_backend(requested: str) -> str:
    """The backend to use; `auto` is the local backend (the Nix backend is not available yet)."""
    if requested not in BACKENDS:
        raise UsageError(f"--backend {requested!r}: choose one of {', '.join(BACKENDS)}")
    if requested == "nix":
        raise UsageError("the Nix backend is not available in this version of kernel-builder; use --backend local (the default)")
    return "local"


class StageLog:
    """Passes stage events on to the progress display and logs, at debug level, how long
    each stage of each variant took."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self._current: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, variant: str, stage: str, done: int | None = None, total: int | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            previous = self._current.get(variant)
            if previous is None or previous[0] != stage:
                if previous is not None:
                    log.debug("%s: %s took %.2f s", variant, previous[0], now - previous[1])
                self._current[variant] = (stage, now)
        self.reporter.stage(variant, stage, done, total)


@contextmanager
def _timed(what: str) -> Iterator[None]:
    """Log at debug level how long the block took."""
    start = time.monotonic()
    yield
    log.debug("%s: %.2f s", what, time.monotonic() - start)


def binary_findings(variant_dir: Path, build_dir: BuildDir, torch_lib_dir: Path | None = None, library_dirs: tuple[Path, ...] = ()) -> list[Finding]:
    """The portability gate and the linkage check (every undefined symbol provided by a library
    the module loads from `torch_lib_dir` & co., PyInit_<module> defined) on every shared
    object of a variant."""
    from .checks.linkage import check_linkage
    from .checks.portability import check_binary

    findings = []
    objects = object_files(build_dir, variant_dir.name)
    mapfile = link_map(build_dir, variant_dir.name)
    for binary in sorted(variant_dir.rglob("*.so")):
        violations = check_binary(binary, objects=objects, link_map=mapfile)
        gated = {v.symbol for v in violations if v.symbol}  # e.g. std:: symbols left for another libstdc++: reported once
        violations += [v for v in check_linkage(binary, torch_lib_dir, extra_library_dirs=library_dirs, objects=objects, link_map=mapfile)
                       if v.symbol not in gated]
        findings += [Finding(variant_dir.name, violation.render()) for violation in violations]
    return findings


def _library_dirs(host: Host) -> tuple[Path, ...]:
    """Library folders besides torch's where a CUDA variant's libraries are found: the toolkit's
    (with its link stubs, e.g. libcuda.so for the driver)."""
    if host.cuda is None:
        return ()
    return tuple(host.cuda.root / sub for sub in ("lib64", "lib64/stubs", "lib", "lib/stubs"))


def check_staged(variant_dir: Path, job: Job, host: Host, build_dir: BuildDir, options: BuildOptions) -> list[Finding]:
    name = variant_dir.name
    with _timed(f"{name}: layout, metadata and Python code checks"):
        findings = check_variant(variant_dir, extra_imports=frozenset(options.allowed_imports), code_warnings=False)
    if job.compiled:
        with _timed(f"{name}: portability gate and linkage"):
            torch_lib = host.torch.dir / "lib" if host.torch is not None else None
            findings += binary_findings(variant_dir, build_dir, torch_lib, _library_dirs(host))
    if options.import_check and not [f for f in findings if not f.warning]:
        with _timed(f"{name}: import check in {host.python}"):
            problem = import_check(host.python, variant_dir)
        if problem is not None:
            findings.append(problem)
    return findings


def _build_one(config: BuildConfig, job: Job, host: Host, build_dir: BuildDir, options: BuildOptions, stage: StageLog, prov: dict,
               cancel: Cancellation) -> VariantResult:
    name = job.variant.name
    start = time.monotonic()
    log = build_dir.log_path(name)
    log.write_text(f"kernel-builder: building {name} for {config.root}\n")
    try:
        with build_dir.staging(name) as staging:
            if job.compiled:
                staged = build_compiled(config, job, host, build_dir, staging, log, provenance=prov, cores=options.cores, report=stage, cancel=cancel)
            else:
                stage(name, "assemble")
                staged = assemble_noarch(config, job.variant.backend, job.unique_id, prov, staging, name)
            if options.legacy_subpackage:
                add_legacy_subpackage(config, staged)
            stage(name, "checks")
            findings = check_staged(staged, job, host, build_dir, options)
            errors = [f.render() for f in findings if not f.warning]
            warnings = [f"{f.where}: {f.message}" for f in findings if f.warning]
            with open(log, "a") as out:
                out.write("\n".join(["", "checks:", *(f.render() for f in findings)] if findings else ["", "checks: all passed"]) + "\n")
            if errors:
                raise CheckError(f"{name} failed its checks; it was not installed:\n  " + "\n  ".join(errors) + f"\nfull log: {log}")
            cancel.check()
            final = build_dir.install(staged)
        stage(name, "done")
        return VariantResult(name, "built", round(time.monotonic() - start, 1), path=str(final), log=str(log), warnings=warnings, cuda_archs=job.cuda_archs)
    except KernelBuilderError as exc:
        if cancel.event.is_set():  # Ctrl-C or SIGTERM: the tools were stopped, nothing failed
            stage(name, "interrupted")
            return VariantResult(name, "interrupted", round(time.monotonic() - start, 1), log=str(log), error="interrupted", cuda_archs=job.cuda_archs)
        stage(name, "failed")
        message = str(exc)
        if isinstance(exc, BuildError) and exc.log is not None:  # a tool failed: show its last words
            tail = exc.log.read_text(errors="replace").splitlines()[-25:]
            message += "\n  last lines of the log:\n    " + "\n    ".join(tail)
        return VariantResult(name, "failed", round(time.monotonic() - start, 1), log=str(log), error=message, cuda_archs=job.cuda_archs)


def _check_python_sources(config: BuildConfig, reporter: Reporter, allowed_imports: tuple[str, ...] = ()) -> None:
    """The kernel's Python code is checked once, before anything is built (every variant would
    fail the same way)."""
    for name in allowed_imports:
        if not name.isidentifier():
            raise UsageError(f"--allow-import {name!r}: give the top-level module name the code imports (e.g. numpy)")
    if allowed_imports:
        log.warning("allowing the kernel's Python code to import %s (--allow-import): the `kernels` loader does not install "
                    "%s, so this kernel's users must have it installed", ", ".join(allowed_imports), "it" if len(allowed_imports) == 1 else "them")
    findings = check_source_package(config, frozenset(allowed_imports))
    errors = [f for f in findings if not f.warning]
    for finding in findings:
        if finding.warning:
            reporter.note("warning: " + finding.render(config.root))
    if not errors:
        return
    lines = []
    registrations = [f for f in errors if f.rule == "registration"]
    if registrations:
        lines.append(format_registration_report(registrations, config.root))
    lines += [f.render(config.root) for f in errors if f.rule != "registration"]
    raise UsageError(f"the Python code of {config.general.name} would not work once loaded:\n" + "\n".join(lines))


def _check_registration_sources(config: BuildConfig) -> None:
    """Literal op namespaces in the C++ sources are refused before anything is compiled."""
    from .checks.registration_source import check_registration_sources

    findings = check_registration_sources(config)
    if findings:
        raise UsageError(f"the C++ sources of {config.general.name} register ops outside the build's namespace:\n"
                         + "\n".join(f.render(config.root) for f in findings))


def run_build(kernel_dir: Path, options: BuildOptions, reporter: Reporter) -> BuildReport:
    """Build every variant this machine can build for the kernel in `kernel_dir`."""
    kernel_dir = Path(kernel_dir)
    with _timed(f"read and validated {kernel_dir / 'build.toml'}"):
        config = load_config(kernel_dir)
    choose_backend(options.backend)
    with _timed("checked the kernel's Python code and op registrations"):
        _check_python_sources(config, reporter, options.allowed_imports)
        _check_registration_sources(config)
    targets = parse_cuda_archs(options.cuda_archs if options.cuda_archs is not None else os.environ.get("KERNEL_BUILDER_CUDA_ARCHS"))
    with _timed(f"probed {options.python or 'this Python'} and the toolchain"):
        host = detect_host(options.python)
    if host.torch is not None:
        log.debug("build Python %s: torch %s (%s) in %s; CUDA toolkit: %s", host.python, host.torch.version, host.torch.abi, host.torch.dir,
                  host.cuda.root if host.cuda else host.cuda_problem or "not needed")
    uid = unique_id(config, options.unique_id)
    with _timed("planned the build"):
        plan: Plan = plan_local(config, host, variant=options.variant, unique_id=uid, cuda_targets=targets)
    log.debug("unique id %s; variants to build: %s", uid, ", ".join(j.variant.name for j in plan.jobs))
    for backend_name, reason in plan.skipped.items():
        reporter.note(f"skipping {backend_name}: {reason}")
    prov = provenance(config)
    build_dir = BuildDir(config.root)
    results: list[VariantResult] = []
    with build_dir.locked(on_wait=reporter.waiting), reporter:
        for job in plan.jobs:
            reporter.add(job.variant.name)
        cancel = Cancellation()
        stage = StageLog(reporter)
        with ThreadPoolExecutor(max_workers=max(1, options.max_jobs)) as pool:
            futures = [pool.submit(_build_one, config, job, host, build_dir, options, stage, prov, cancel) for job in plan.jobs]
            try:
                results = [f.result() for f in futures]
            except BaseException:
                # Ctrl-C (or SIGTERM): stop the tools, let workers clean their staging folders.
                cancel.cancel()
                for future in futures:
                    future.cancel()
                raise
    return BuildReport(config.general.name, "local", results, plan.skipped)
