"""`kernel-builder build`: plan, build, check and install variants.

Two ways to choose what is built:
- the matrix (default): every required variant of nix/build-matrix.json that applies to the
  kernel and that this machine can build, each in its own hermetic toolchain environment made
  from the kernel's lock (kernel-builder.lock.json; see builder/toolchains);
- `--host` (implied by `--python`): the variant of one Python's torch, with the host's CUDA
  toolkit, for development.

Stages per variant: toolchain (fetch + install, once per toolchain, overlapping other variants'
compilation) → assemble (compile with CMake + Ninja, or copy a Python-only variant) into a
staging folder → checks (layout, metadata, digest, Python code, the portability gate and the
linkage check on every binary) → import check (once per toolchain environment for all its
variants, in one process: each must register ops only in its own namespace) → atomic install
into build/<variant>/. A failed or interrupted build leaves the previous good variant in place
and no partial folder behind; one failing variant does not stop the others (--fail-fast does).
A variant whose inputs did not change since it was installed is skipped without starting any
process (builder/layout/stamp.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .backends.host import Host, detect_host, host_from_environment, this_system
from .backends.local import Job, build_compiled, build_environment, link_map, object_files, parse_cuda_archs, plan_local, plan_toolchain_job
from .checks.importcheck import WarmImportCheck
from .process import Cancellation
from .checks.layout import Finding, check_variant
from .checks.python_code import check_source_package, format_registration_report
from .config import BuildConfig, load_config
from .errors import BuildError, CheckError, KernelBuilderError, UsageError, named_os_errors
from .layout import stamp
from .layout.assemble import add_legacy_subpackage, assemble_noarch
from .layout.install import BuildDir
from .progress import Reporter
from .resources import ResourcePlan, plan_resources
from .toolchains import IndexSettings, LockedToolchain
from .variants import Selection, Variant

log = logging.getLogger("kernel_builder")
BACKENDS = ("auto", "local", "nix")


@dataclass
class BuildOptions:
    backend: str = "auto"
    selection: Selection = field(default_factory=Selection)
    host: bool = False  # --host: the chosen Python's torch and the host CUDA toolkit
    python: Path | None = None
    max_jobs: int | None = None
    cores: int | None = None
    cuda_archs: str | None = None
    unique_id: str | None = None
    legacy_subpackage: bool = False
    import_check: bool = True
    indexes: IndexSettings | None = None
    frozen: bool = False  # use the lock as it is; never resolve
    locked: bool = False  # fail when the lock would change
    upgrade: bool = False  # resolve every toolchain again
    fail_fast: bool = False
    allowed_imports: tuple[str, ...] = ()  # --allow-import: modules the kernel's Python may import besides python-depends
    nix: object | None = None  # backends.nix.NixOptions: what --backend nix passes to Nix

    @property
    def host_mode(self) -> bool:
        return self.host or self.python is not None


@dataclass
class VariantResult:
    variant: str
    status: str  # "built" | "up-to-date" | "failed"
    seconds: float
    path: str | None = None
    log: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    cuda_archs: dict[str, list[str]] = field(default_factory=dict)
    toolchain: str | None = None


@dataclass
class BuildReport:
    kernel: str
    backend: str
    results: list[VariantResult]
    skipped: dict[str, str]  # not asked for (not required, filtered out), with the reason
    unreachable: dict[str, str] = field(default_factory=dict)  # asked for, but this machine cannot build them
    notes: list[str] = field(default_factory=list)
    resolved: int = 0  # toolchains resolved in this run
    downloaded: int = 0  # files fetched in this run
    downloaded_bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.status in ("built", "up-to-date") for r in self.results)

    def to_json(self) -> dict:
        return {"kernel": self.kernel, "backend": self.backend, "ok": self.ok, "variants": [asdict(r) for r in self.results], "skipped": self.skipped,
                "unreachable": self.unreachable, "notes": self.notes, "resolved": self.resolved, "downloaded": self.downloaded,
                "downloaded_bytes": self.downloaded_bytes, "seconds": round(self.seconds, 2)}


def choose_backend(requested: str, kernel_dir: Path | None = None, *, host: bool = False) -> tuple[str, str | None]:
    """(backend, why): `auto` is Nix when the kernel has a flake.nix and Nix (with flakes) works, else local."""
    if requested not in BACKENDS:
        raise UsageError(f"--backend {requested!r}: choose one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested, None
    if host:
        return "local", "--host builds with one Python's torch"
    from .backends.nix import auto_engine

    return auto_engine(kernel_dir) if kernel_dir is not None else ("local", None)


# -- debug timing ----------------------------------------------------------------------------

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


# -- checks ----------------------------------------------------------------------------------

def binary_findings(variant_dir: Path, build_dir: BuildDir, torch_lib_dir: Path | None = None, library_dirs: tuple[Path, ...] = ()) -> list[Finding]:
    """The portability gate and the linkage check (every undefined symbol provided by a library
    the module loads from `torch_lib_dir` & co., PyInit_<module> defined) on every shared
    object of a variant."""
    from .checks.linkage import check_linkage
    from .checks.portability import check_binary

    import json

    findings = []
    try:
        target = json.loads((variant_dir / "metadata.json").read_text()).get("id")
    except (OSError, ValueError):
        target = None
    objects = object_files(build_dir, variant_dir.name, target)
    mapfile = link_map(build_dir, variant_dir.name, target)
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


def static_findings(variant_dir: Path, job: Job, build_dir: BuildDir, host: Host | None = None,
                    allowed_imports: tuple[str, ...] = ()) -> list[Finding]:
    """Every check that needs no Python process: layout, metadata, digest, code, the gate, linkage."""
    name = variant_dir.name
    with _timed(f"{name}: layout, metadata and Python code checks"):
        findings = check_variant(variant_dir, extra_imports=frozenset(allowed_imports), code_warnings=False)
    if job.compiled:
        with _timed(f"{name}: portability gate and linkage"):
            torch_lib = host.torch.dir / "lib" if host is not None and host.torch is not None else None
            findings += binary_findings(variant_dir, build_dir, torch_lib, _library_dirs(host) if host is not None else ())
    return findings


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


# -- planning --------------------------------------------------------------------------------

@dataclass
class Unit:
    """One variant to build, with what it is built with."""

    variant: Variant
    toolchain: LockedToolchain | None = None  # matrix builds
    job: Job | None = None  # host builds (planned up front)
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def group(self) -> str:
        """Units of one group share a build environment (and one import-check process)."""
        return self.toolchain.hash if self.toolchain else "host"


@dataclass
class Planned:
    units: list[Unit]
    skipped: dict[str, str]
    unreachable: dict[str, str]
    notes: list[str]
    resolved: int = 0
    host: Host | None = None  # host builds
    matrix_store: object | None = None


def _stamp_options(options: BuildOptions, targets: tuple[str, ...], unit: Unit) -> dict:
    return {"unique-id": options.unique_id, "cuda-archs": list(targets), "legacy": options.legacy_subpackage, "import-check": options.import_check,
            "allowed-imports": sorted(options.allowed_imports), "variant": unit.name}


def _plan_matrix(config: BuildConfig, options: BuildOptions, targets: tuple[str, ...], python: str | None = None) -> Planned:
    from .backends.matrix import ToolchainLocker, plan_matrix, require_buildable
    from .toolchains import LockFile
    from .variants import load_matrix, select_variants

    matrix = load_matrix()
    selected = select_variants(config, matrix, options.selection)
    _check_capabilities(config, selected.variants, targets)
    lock = LockFile.load(config.root)
    indexes = options.indexes or IndexSettings.from_environment()
    locker = ToolchainLocker(lock, indexes, frozen=options.frozen, upgrade=options.upgrade)
    plan = plan_matrix(config, selected.variants, matrix, locker, system=this_system(), python=python)
    if options.locked and lock.changed:
        raise UsageError(f"{lock.path} is not up to date (--locked): run `kernel-builder lock {config.root}` and commit the result")
    with named_os_errors(lock.path):
        lock.save()
    require_buildable(plan, options.selection.explicit)
    units = [Unit(job.variant, toolchain=job.toolchain) for job in plan.jobs]
    for unit in units:
        unit.fingerprint = stamp.fingerprint(config, toolchain=unit.toolchain.hash, options=_stamp_options(options, targets, unit))
    return Planned(units, selected.skipped, plan.unreachable, plan.notes, plan.resolved)


def _check_capabilities(config: BuildConfig, variants: list[Variant], targets: tuple[str, ...]) -> None:
    """Empty capability intersections are bad input, found before anything is fetched or built."""
    from .standalone import archs

    problems = []
    for version in sorted({v.backend_version for v in variants if v.backend == "cuda" and not v.is_noarch and v.backend_version}):
        for kernel in config.kernels_for("cuda"):
            if kernel.cuda_minver is not None and archs.version_key(version) < archs.version_key(str(kernel.cuda_minver)):
                continue
            try:
                archs.select_cuda_archs(kernel.name, version, list(kernel.cuda_capabilities) if kernel.cuda_capabilities else None, None, list(targets) or None)
            except archs.ArchError as exc:
                problems.append(f"CUDA {version}: {exc}")
    if problems:
        raise UsageError("cannot build " + config.general.name + ":\n  " + "\n  ".join(dict.fromkeys(problems)))


def _plan_host(config: BuildConfig, options: BuildOptions, targets: tuple[str, ...], uid: str) -> Planned:
    host = detect_host(options.python)
    names = options.selection.names
    if len(names) > 1:
        raise UsageError("--host builds one Python's torch: name at most one --variant")
    plan = plan_local(config, host, variant=names[0] if names else None, unique_id=uid, cuda_targets=targets)
    units = [Unit(job.variant, job=job) for job in plan.jobs]
    for unit in units:
        unit.fingerprint = stamp.fingerprint(config, toolchain=_host_id(host), options=_stamp_options(options, targets, unit))
    return Planned(units, dict(plan.skipped), {}, [], host=host)


# -- running ---------------------------------------------------------------------------------

class _Run:
    """One build run: shared state of the worker threads."""

    def __init__(self, config: BuildConfig, options: BuildOptions, reporter: Reporter, build_dir: BuildDir, resources: ResourcePlan,
                 targets: tuple[str, ...], uid: str, prov: dict):
        self.config, self.options, self.reporter, self.build_dir = config, options, reporter, build_dir
        self.resources, self.targets, self.uid, self.prov = resources, targets, uid, prov
        self.cancel = Cancellation()
        self.failed = threading.Event()
        self.stage = StageLog(reporter)  # stage events, with each stage's time at debug level

    def fail_result(self, unit: Unit, start: float, exc: KernelBuilderError, log_path: Path | None, job: Job | None = None) -> VariantResult:
        interrupted = self.cancel.event.is_set() and not self.failed.is_set()
        self.stage(unit.name, "interrupted" if interrupted else "failed")
        message = str(exc)
        if isinstance(exc, BuildError) and exc.log is not None and not interrupted:  # a tool failed: show its last words
            tail = exc.log.read_text(errors="replace").splitlines()[-25:]
            message += "\n  last lines of the log:\n    " + "\n    ".join(tail)
        if self.options.fail_fast:
            self.failed.set()
            self.cancel.cancel()
        return VariantResult(unit.name, "interrupted" if interrupted else "failed", round(time.monotonic() - start, 1), log=str(log_path) if log_path else None, error=message,
                             cuda_archs=job.cuda_archs if job else {}, toolchain=unit.toolchain.key if unit.toolchain else None)

    def build_group(self, units: list[Unit], host: Host) -> list[VariantResult]:
        """Build the units of one environment, import-check them in one process, install them.

        The import-check process starts with the group, so that importing torch overlaps the
        compilation of its variants."""
        results: dict[str, VariantResult] = {}
        staged: list[tuple[Unit, Job, Path, Path, float, list[str]]] = []
        with ExitStack() as stack:
            checker = None
            if self.options.import_check and not self.cancel.event.is_set():
                checker = WarmImportCheck(host.python, register=self.cancel.register)
                stack.callback(self._close_checker, checker)
            for unit in units:
                start = time.monotonic()
                log_path = None
                job = unit.job
                try:
                    if self.failed.is_set() or self.cancel.event.is_set():
                        raise BuildError("not built: the build was stopped (--fail-fast or interrupted)")
                    log_path = self.build_dir.log_path(unit.name)
                    with named_os_errors(log_path):
                        log_path.write_text(f"kernel-builder: building {unit.name} for {self.config.root}\n")
                    if job is None:
                        job = plan_toolchain_job(self.config, unit.variant, host, unique_id=self.uid, cuda_targets=self.targets)
                    staging = stack.enter_context(self.build_dir.staging(unit.name))
                    if job.compiled:
                        largest = max((len(a) for a in job.cuda_archs.values()), default=1)
                        jobs, threads = self.resources.nvcc_for(largest) if job.variant.backend == "cuda" else (self.resources.cores, None)
                        log.debug("%s: %d compile job(s)%s", unit.name, jobs, f", nvcc --threads={threads}" if threads else "")
                        staged_dir = build_compiled(self.config, job, host, self.build_dir, staging, log_path, provenance=self.prov, cores=jobs,
                                                    report=self.stage, cancel=self.cancel, nvcc_threads=threads)
                    else:
                        self.stage(unit.name, "assemble")
                        staged_dir = assemble_noarch(self.config, job.variant.backend, job.unique_id, self.prov, staging, unit.name)
                    if self.options.legacy_subpackage:
                        add_legacy_subpackage(self.config, staged_dir)
                    self.stage(unit.name, "checks")
                    findings = static_findings(staged_dir, job, self.build_dir, host, self.options.allowed_imports)
                    self._log_findings(log_path, findings)
                    errors = [f.render() for f in findings if not f.warning]
                    if errors:
                        raise CheckError(f"{unit.name} failed its checks; it was not installed:\n  " + "\n  ".join(errors) + f"\nfull log: {log_path}")
                    warnings = [f"{f.where}: {f.message}" for f in findings if f.warning]
                    staged.append((unit, job, staged_dir, log_path, start, warnings))
                except KernelBuilderError as exc:
                    results[unit.name] = self.fail_result(unit, start, exc, log_path, job)
            loaded = self._import_checks(host, checker, staged) if checker is not None else {}
            for unit, job, staged_dir, log_path, start, warnings in staged:
                try:
                    problem = loaded.get(unit.name)
                    if problem is not None:
                        self._log_findings(log_path, [problem])
                        if not problem.warning:
                            raise CheckError(f"{unit.name} failed its checks; it was not installed:\n  {problem.render()}\nfull log: {log_path}")
                        warnings.append(f"{problem.where}: {problem.message}")
                    self.cancel.check()
                    final = self.build_dir.install(staged_dir)
                    stamp.write_stamp(self.build_dir.state, final, unit.fingerprint)
                    self.stage(unit.name, "done")
                    results[unit.name] = VariantResult(unit.name, "built", round(time.monotonic() - start, 1), path=str(final), log=str(log_path),
                                                       warnings=warnings, cuda_archs=job.cuda_archs, toolchain=unit.toolchain.key if unit.toolchain else None)
                except KernelBuilderError as exc:
                    results[unit.name] = self.fail_result(unit, start, exc, log_path, job)
        return [results[u.name] for u in units]

    def _import_checks(self, host: Host, checker: WarmImportCheck, staged: list) -> dict[str, Finding | None]:
        """Load every staged variant of one environment with the real loader, in the group's
        warm process (checks/importcheck.py: each variant's registrations compared before and after it)."""
        if self.cancel.event.is_set() or not staged:
            return {}
        for unit, *_ in staged:
            self.stage(unit.name, "import")
        with _timed(f"import check of {len(staged)} variant(s) in {host.python}"):
            found = checker.check([staged_dir for _, _, staged_dir, *_ in staged])
        return {unit.name: found.get(staged_dir) for unit, _, staged_dir, *_ in staged}

    def _close_checker(self, checker: WarmImportCheck) -> None:
        if checker.process is not None:
            self.cancel.unregister(checker.process)
        checker.close()

    @staticmethod
    def _log_findings(log_path: Path, findings: list[Finding]) -> None:
        with named_os_errors(log_path), open(log_path, "a") as out:
            out.write("\n".join(["", "checks:", *(f.render() for f in findings)] if findings else ["", "checks: all passed"]) + "\n")


def _prepare_environment(toolchain: LockedToolchain, store, reporter: Reporter, names: list[str]) -> Host:
    from .toolchains.environment import ensure_environment

    def on_stage(stage: str) -> None:
        for name in names:
            reporter.stage(name, f"toolchain: {stage}")

    return host_from_environment(ensure_environment(toolchain, store, on_stage=on_stage))


def run_build(kernel_dir: Path, options: BuildOptions, reporter: Reporter) -> BuildReport:
    """Build the selected variants of the kernel in `kernel_dir` (see the module docstring)."""
    began = time.monotonic()
    kernel_dir = Path(kernel_dir)
    with _timed(f"read and validated {kernel_dir / 'build.toml'}"):
        config = load_config(kernel_dir)
    backend, why = choose_backend(options.backend, config.root, host=options.host_mode)
    if backend == "local" and why and not reporter.quiet:
        print(f"engine: local ({why})", file=sys.stderr)  # one line, never wrapped
    build_environment()  # MAX_JOBS, NVCC_THREADS and CMAKE_ARGS: bad values are bad input, found first
    with _timed("checked the kernel's Python code and op registrations"):
        _check_python_sources(config, reporter, options.allowed_imports)
        _check_registration_sources(config)
    if backend == "nix":
        from .backends.nix import run_nix_build

        return run_nix_build(config, options, reporter, options.nix)
    if options.max_jobs == 0:
        raise UsageError("--max-jobs 0 means 'build only on remote builders', which only the Nix engine has")
    targets = parse_cuda_archs(options.cuda_archs if options.cuda_archs is not None else os.environ.get("KERNEL_BUILDER_CUDA_ARCHS"))
    from .provenance import provenance, unique_id

    with _timed("planned the build"):
        if options.host_mode:
            uid = unique_id(config, options.unique_id)
            planned = _plan_host(config, options, targets, uid)
        else:
            uid = None
            planned = _plan_matrix(config, options, targets)
    log.debug("variants to build: %s", ", ".join(u.name for u in planned.units) or "none")
    for note in planned.notes:
        reporter.note("note: " + note)
    for name, reason in sorted(planned.unreachable.items()):
        log.debug("unreachable %s: %s", name, reason)

    build_dir = BuildDir(config.root)
    results: list[VariantResult] = []
    store = None
    with build_dir.locked(on_wait=reporter.waiting):
        pending = []
        for unit in planned.units:
            if stamp.is_up_to_date(build_dir.state, build_dir.root / unit.name, unit.fingerprint):
                results.append(VariantResult(unit.name, "up-to-date", 0.0, path=str(build_dir.root / unit.name),
                                             toolchain=unit.toolchain.key if unit.toolchain else None))
            else:
                pending.append(unit)
        if pending:
            if uid is None:
                uid = unique_id(config, options.unique_id)
            prov = provenance(config)
            resources = plan_resources(len(pending), has_cuda=any(u.variant.backend == "cuda" for u in pending), max_jobs=options.max_jobs, cores=options.cores)
            log.debug("resources: %s", resources.how)
            run = _Run(config, options, reporter, build_dir, resources, targets, uid, prov)
            from .toolchains.store import ArtifactStore

            store = ArtifactStore()
            with reporter:
                for unit in pending:
                    reporter.add(unit.name)
                results += _execute(run, pending, planned, store)
            # The stamps were written against a git index that our own `git status` may have refreshed.
            for result in results:
                if result.status == "built":
                    unit = next(u for u in pending if u.name == result.variant)
                    fresh = stamp.fingerprint(config, toolchain=(unit.toolchain.hash if unit.toolchain else _host_id(planned.host)),
                                              options=_stamp_options(options, targets, unit))
                    stamp.write_stamp(build_dir.state, Path(result.path), fresh)
    order = {u.name: i for i, u in enumerate(planned.units)}
    results.sort(key=lambda r: order.get(r.variant, 0))
    return BuildReport(config.general.name, "local", results, planned.skipped, planned.unreachable, planned.notes, planned.resolved,
                       downloaded=store.stats.downloaded if store else 0, downloaded_bytes=store.stats.bytes if store else 0,
                       seconds=time.monotonic() - began)


def _host_id(host: Host | None) -> str:
    return f"host:{host.python}:{host.torch.version if host and host.torch else ''}:{host.cuda.nvcc if host and host.cuda else ''}"


def _execute(run: _Run, units: list[Unit], planned: Planned, store) -> list[VariantResult]:
    """Prepare environments (downloads) alongside building the groups whose environment is ready."""
    groups: dict[str, list[Unit]] = {}
    for unit in units:
        groups.setdefault(unit.group, []).append(unit)
    results: list[VariantResult] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-toolchain") as prepare, \
            ThreadPoolExecutor(max_workers=run.resources.max_jobs, thread_name_prefix="kb-build") as builders:
        env_futures: dict[Future, str] = {}
        for key, members in groups.items():
            if planned.host is not None:
                future: Future = Future()
                future.set_result(planned.host)
            else:
                future = prepare.submit(_prepare_environment, members[0].toolchain, store, run.reporter, [u.name for u in members])
            env_futures[future] = key
        build_futures: dict[Future, str] = {}
        try:
            waiting = set(env_futures)
            while waiting or build_futures:
                done, _ = wait(waiting | set(build_futures), return_when=FIRST_COMPLETED)
                for future in done:
                    if future in env_futures and future in waiting:
                        waiting.discard(future)
                        key = env_futures[future]
                        try:
                            host = future.result()
                        except KernelBuilderError as exc:
                            start = time.monotonic()
                            results += [run.fail_result(u, start, exc, None) for u in groups[key]]
                            continue
                        build_futures[builders.submit(run.build_group, groups[key], host)] = key
                    elif future in build_futures:
                        del build_futures[future]
                        results += future.result()
        except BaseException:
            # Ctrl-C (or SIGTERM): stop the tools, let workers clean their staging folders.
            run.cancel.cancel()
            for future in list(env_futures) + list(build_futures):
                future.cancel()
            raise
    return results


def build_variant_into(kernel_dir: Path, variant_name: str, toolchain_dir: Path, out: Path, *, work: Path, unique_id: str | None = None,
                       kernel_commit: str | None = None, kernel_dirty: bool = False, cuda_archs: str | None = None, cores: int | None = None,
                       import_check: bool = True, engine: str = "nix", reporter: Reporter | None = None) -> VariantResult:
    """Build one variant with a given toolchain environment into `out/<variant>` (the Nix engine's builder).

    The same stages as `build` (render, CMake + Ninja, the checks, the gate, the import check),
    without build/, locks or stamps: the caller (a Nix derivation) owns `out` and `work`.
    """
    from .provenance import GitState, provenance, unique_id as make_id
    from .toolchains.environment import read_environment
    from .variants import load_matrix, select_variants

    config = load_config(kernel_dir)
    reporter = reporter or Reporter(quiet=True)
    _check_python_sources(config, reporter)
    _check_registration_sources(config)
    (variant,) = select_variants(config, load_matrix(), Selection(names=(variant_name,))).variants
    host = host_from_environment(read_environment(toolchain_dir))
    targets = parse_cuda_archs(cuda_archs)
    kernel = GitState(commit=kernel_commit, tree="", dirty=kernel_dirty) if kernel_commit else None
    prov = provenance(config, engine=engine, kernel=kernel)
    uid = unique_id or make_id(config, None)
    build_dir = BuildDir(config.root, root=out, state=work)
    resources = plan_resources(1, has_cuda=variant.backend == "cuda", max_jobs=1, cores=cores)
    run = _Run(config, BuildOptions(import_check=import_check), reporter, build_dir, resources, targets, uid, prov)
    (result,) = run.build_group([Unit(variant)], host)
    return result
