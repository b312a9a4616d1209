"""The Nix engine: the kernel's flake builds each variant as a derivation (docs/nix.md).

Python decides, Nix builds. `kernel-builder build --backend nix`:
1. locks the selected variants' toolchains (the same step as the local engine, for the Python
   version of the flake's nixpkgs), so the flake reads a fresh kernel-builder.lock.json;
2. puts every file those derivations fetch into the Nix store (`nix-store --add-fixed`), from
   the artifact store shared with the local engine (fetching there what is missing), so the
   fixed-output fetches need no network;
3. runs one `nix build --json --no-link` of `redistributable.<variant>` for every variant;
4. copies each built variant from the store into build/<variant>/ (writable, swapped in whole,
   as the local engine installs) and reports it like a local build.

Settings only the CLI knows (unique id, the kernel's commit, CUDA architectures, kernel-
builder's own commit) reach the flake as KERNEL_BUILDER_* environment variables of an
`--impure` evaluation. Flakes are always referenced as `path:<absolute dir>` so that untracked
and generated files are seen (a `git+file:` flake sees tracked files only).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import KernelBuilderError, UsageError

log = logging.getLogger("kernel_builder")

MIN_VERSION = (2, 8)
INSTALL_HINT = "install Nix (https://nixos.org/download; on Debian: apt-get install nix-bin) or use --backend local"
FLAKES_HINT = "enable flakes: add `experimental-features = nix-command flakes` to nix.conf (or NIX_CONFIG)"
# Characters Nix accepts in a `path:` flake reference without quoting.
SAFE_PATH = re.compile(r"^[A-Za-z0-9._+\-/=~@,]+$")


class NixError(KernelBuilderError):
    """Nix failed; the message carries what it said."""


@dataclass(frozen=True)
class NixOptions:
    """What the CLI passes through to Nix."""

    overrides: tuple[tuple[str, str], ...] = ()  # --override-input NAME REF
    max_jobs: int | None = None  # derivations built at once (0: only on --builders)
    cores: int | None = None  # NIX_BUILD_CORES of each derivation (kernel-builder gives them to Ninja and nvcc)
    print_build_logs: bool = False  # -L
    builders: str | None = None  # remote builders, e.g. 'ssh://host x86_64-linux'
    keep_going: bool = True


# -- is Nix usable? ----------------------------------------------------------------------------

def nix_version(nix: str = "nix") -> tuple[int, ...] | None:
    """The version of `nix`, or None when it is not installed."""
    path = shutil.which(nix)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def nix_problem() -> str | None:
    """Why Nix cannot be used here (missing, too old, flakes disabled), or None."""
    version = nix_version()
    if version is None:
        return f"nix is not installed: {INSTALL_HINT}"
    if version < MIN_VERSION:
        return f"nix {'.'.join(map(str, version))} is too old (kernel-builder needs {'.'.join(map(str, MIN_VERSION))} or newer)"
    try:
        result = subprocess.run(["nix", "show-config"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run nix: {exc}"
    if result.returncode != 0:
        if "experimental" in result.stderr:
            return f"the nix command and flakes are disabled: {FLAKES_HINT}"
        return f"nix does not work: {_last_error(result.stderr)}"
    # (`show-config --json` is no help: Nix 2.8 lists the features as numbers.)
    match = re.search(r"^experimental-features = (.*)$", result.stdout, re.MULTILINE)
    if match is None or "flakes" not in match.group(1).split():
        return f"flakes are disabled: {FLAKES_HINT}"
    return None


def require_nix() -> None:
    problem = nix_problem()
    if problem is not None:
        raise UsageError(f"the Nix engine cannot run: {problem}")


def auto_engine(kernel_dir: Path) -> tuple[str, str]:
    """(`nix` or `local`, why) for `--backend auto`: Nix when the kernel has a flake and Nix works."""
    if not (Path(kernel_dir) / "flake.nix").is_file():
        return "local", f"no flake.nix in {kernel_dir}"
    problem = nix_problem()
    if problem is not None:
        return "local", f"{kernel_dir} has a flake.nix, but {problem}"
    return "nix", f"{kernel_dir} has a flake.nix and nix works"


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.lstrip().startswith("error:")]
    return "\n".join(lines[errors[-1]:] if errors else lines[-5:]) or "(no output)"


# -- running Nix -------------------------------------------------------------------------------

def flake_ref(directory: Path) -> str:
    """`path:<absolute dir>`: Nix sees every file, tracked or not (docs/nix.md)."""
    absolute = str(Path(directory).resolve())
    if not SAFE_PATH.match(absolute):
        raise UsageError(f"{absolute}: Nix cannot take this folder as a flake (use letters, digits and ._+-/=~@, in its path)")
    return f"path:{absolute}"


def absolute_ref(ref: str) -> str:
    """A `path:`/`git+file:` reference or plain folder made absolute (Nix runs in other folders)."""
    for scheme in ("path:", "git+file://", "git+file:"):
        if ref.startswith(scheme):
            rest = ref[len(scheme):]
            location, sep, query = rest.partition("?")
            if location and not location.startswith("/"):
                return f"{scheme}{Path(location).resolve()}{sep}{query}"
            return ref
    if ref.startswith((".", "/")) and ":" not in ref:
        return f"path:{Path(ref).resolve()}"
    return ref


def this_system() -> str:
    from .host import this_system as system

    return system()


class Nix:
    """Runs `nix` with the options of one CLI invocation."""

    def __init__(self, options: NixOptions | None = None, *, env: dict[str, str] | None = None):
        self.options = options or NixOptions()
        self.env = env or {}

    # The KERNEL_BUILDER_* settings reach the flake only through an --impure evaluation.
    def _flake_args(self) -> list[str]:
        args = ["--impure"]
        for name, ref in self.options.overrides:
            args += ["--override-input", name, absolute_ref(ref)]
        return args

    def _environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def eval_json(self, ref: str, attr: str) -> object:
        cmd = ["nix", "eval", "--json", *self._flake_args(), f"{ref}#{attr}"]
        log.debug("$ %s", " ".join(cmd))
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, env=self._environment(), timeout=900)
        except subprocess.TimeoutExpired:
            raise NixError(f"`nix eval {ref}#{attr}` took longer than 15 minutes") from None
        if result.returncode != 0:
            hint = ("\n(an input of the flake cannot be fetched from here: give it with --override-input INPUT REF, docs/nix.md)"
                    if "unable to download" in result.stderr else "")
            raise NixError(f"nix could not evaluate {ref}#{attr}:\n  " + _last_error(result.stderr).replace("\n", "\n  ") + hint)
        return json.loads(result.stdout)

    def build_args(self) -> list[str]:
        args = self._flake_args()
        o = self.options
        if o.max_jobs is not None:
            args += ["--max-jobs", str(o.max_jobs)]
        if o.cores is not None:
            args += ["--cores", str(o.cores)]
        if o.builders is not None:
            args += ["--builders", o.builders]
        if o.print_build_logs:
            args.append("-L")
        if o.keep_going:
            args.append("--keep-going")
        return args

    def build(self, installables: list[str], *, echo: bool) -> tuple[int, str]:
        """`nix build --json --no-link`; (exit code, stderr). Nix's messages are shown as they come when `echo`."""
        cmd = ["nix", "build", "--json", "--no-link", *self.build_args(), *installables]
        log.debug("$ %s", " ".join(cmd))
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", env=self._environment(),
                                   start_new_session=True)
        lines: list[str] = []
        try:
            assert process.stderr is not None
            for line in process.stderr:
                lines.append(line)
                if echo:
                    sys.stderr.write(line)
            process.wait()
        except BaseException:  # Ctrl-C: stop Nix and its builds
            _stop(process)
            raise
        return process.returncode, "".join(lines)

    def run(self, args: list[str], *, cwd: Path | None = None) -> int:
        cmd = ["nix", *args]
        log.debug("$ %s", " ".join(cmd))
        return subprocess.run(cmd, cwd=cwd, env=self._environment()).returncode

    def exec(self, args: list[str], *, cwd: Path) -> None:
        """Replace this process by `nix ARGS` (interactive shells)."""
        cmd = ["nix", *args]
        log.debug("$ %s", " ".join(cmd))
        os.chdir(cwd)
        os.execvpe("nix", cmd, self._environment())

    def log_of(self, drv: str) -> str:
        result = subprocess.run(["nix", "log", drv], capture_output=True, text=True, errors="replace", env=self._environment())
        return result.stdout if result.returncode == 0 else ""

    def add_fixed(self, file: Path) -> str:
        """`nix-store --add-fixed sha256 FILE`: the store path of a flat fixed-output fetch named like the file."""
        result = subprocess.run(["nix-store", "--add-fixed", "sha256", str(file)], capture_output=True, text=True, env=self._environment())
        if result.returncode != 0:
            raise NixError(f"nix-store --add-fixed {file.name} failed: {_last_error(result.stderr)}")
        return result.stdout.strip()


def _stop(process: subprocess.Popen) -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


# -- the flake's view ------------------------------------------------------------------------

@dataclass
class FlakeView:
    """What the kernel's flake says for this system (kernelBuilder.systems.<system>)."""

    python: str
    available: list[str]
    bundle: list[str]
    default: str | None
    unlocked: dict[str, str]
    fetches: dict[str, list[dict]]
    paths: dict[str, dict[str, str]]

    @classmethod
    def evaluate(cls, nix: Nix, ref: str, system: str) -> "FlakeView":
        data = nix.eval_json(ref, f"kernelBuilder.systems.{system}")
        if not isinstance(data, dict):
            raise NixError(f"{ref}#kernelBuilder.systems.{system} is not what kernel-builder's flake library makes; is the flake made with genKernelFlakeOutputs?")
        return cls(python=data["python"], available=list(data["available"]), bundle=list(data["bundle"]), default=data.get("default"),
                   unlocked=dict(data.get("unlocked", {})), fetches=dict(data["fetches"]), paths=dict(data["paths"]))


def flake_python(nix: Nix, ref: str, system: str) -> str:
    """The Python version the flake builds with on `system` (nixpkgs' python3)."""
    pythons = nix.eval_json(ref, "kernelBuilder.pythons")
    if not isinstance(pythons, dict) or system not in pythons:
        raise UsageError(f"the kernel flake {ref} has no outputs for {system} (systems: {', '.join(sorted(pythons or {}))})")
    return str(pythons[system])


@dataclass
class PreloadStats:
    present: int = 0  # already in the Nix store
    added: int = 0  # added from the artifact store
    fetched: int = 0  # downloaded into the artifact store first
    bytes: int = 0


def preload(nix: Nix, view: FlakeView, groups: list[str], store=None) -> PreloadStats:
    """Put every fixed-output fetch of `groups` (variant names, `kernel-builder`, `pytest`) into the Nix store.

    Each file comes from the artifact store (kernel-builder's download cache, shared with the
    local engine; fetched there first when missing) and is added with `nix-store --add-fixed
    sha256`, whose result must be the path the fetchurl derivation expects (same name, same
    flat hash): then Nix never downloads it.
    """
    from ..toolchains.lock import Artifact
    from ..toolchains.store import ArtifactStore

    store = store or ArtifactStore()
    wanted: dict[str, dict] = {}
    for group in groups:
        for entry in view.fetches.get(group, []):
            wanted.setdefault(entry["path"], entry)
    stats = PreloadStats()
    missing = [entry for path, entry in wanted.items() if not Path(path).exists()]
    stats.present = len(wanted) - len(missing)
    if not missing:
        return stats

    def one(entry: dict) -> None:
        artifact = Artifact(name=entry["name"], version=str(entry.get("version", "")), filename=entry["filename"], url=entry["url"],
                            sha256=entry["sha256"], size=entry.get("size"))
        had = store.has(artifact)
        file = store.fetch(artifact)
        added = nix.add_fixed(file)
        if added != entry["path"]:
            raise NixError(f"{entry['filename']}: nix-store --add-fixed gave {added}, but the flake's fetchurl expects {entry['path']}")
        stats.added += 1
        if not had:
            stats.fetched += 1
            stats.bytes += file.stat().st_size

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, missing))
    return stats


# -- build --backend nix -------------------------------------------------------------------------

@dataclass
class NixBuildSettings:
    """Environment of the --impure evaluation (see nix/kernel.nix)."""

    unique_id: str
    kernel_commit: str | None = None
    kernel_dirty: bool = False
    cuda_archs: tuple[str, ...] = ()
    builder_commit: str | None = None
    builder_dirty: bool = False

    def environment(self) -> dict[str, str]:
        env = {"KERNEL_BUILDER_UNIQUE_ID": self.unique_id, "KERNEL_BUILDER_CUDA_ARCHS": ",".join(self.cuda_archs)}
        if self.kernel_commit:
            env.update(KERNEL_BUILDER_KERNEL_COMMIT=self.kernel_commit, KERNEL_BUILDER_KERNEL_DIRTY="1" if self.kernel_dirty else "")
        if self.builder_commit:
            env.update(KERNEL_BUILDER_SOURCE_COMMIT=self.builder_commit, KERNEL_BUILDER_SOURCE_DIRTY="1" if self.builder_dirty else "")
        return env


def builder_source_state(options: NixOptions):
    """kernel-builder's commit for provenance, when the flake's kernel-builder input is a local checkout.

    KERNEL_BUILDER_SOURCE_COMMIT in the environment wins; else the git state of the folder
    `--override-input kernel-builder path:<dir>` (or git+file:) points at. A flake input pinned
    to a revision supplies its own (self.rev), which the flake prefers.
    """
    from ..provenance import COMMIT_RE, GitState, git_state

    commit = os.environ.get("KERNEL_BUILDER_SOURCE_COMMIT", "").strip().lower()
    if COMMIT_RE.match(commit):
        return GitState(commit=commit, tree="", dirty=os.environ.get("KERNEL_BUILDER_SOURCE_DIRTY", "") in ("1", "true"))
    for name, ref in options.overrides:
        if name != "kernel-builder":
            continue
        ref = absolute_ref(ref)
        for scheme in ("path:", "git+file://"):
            if ref.startswith(scheme):
                folder = Path(ref[len(scheme):].partition("?")[0])
                if folder.is_dir():
                    return git_state(folder)
    return None


def settings_for(config, options, nix_options: NixOptions) -> NixBuildSettings:
    from ..provenance import git_state, unique_id
    from .local import parse_cuda_archs

    targets = parse_cuda_archs(options.cuda_archs if options.cuda_archs is not None else os.environ.get("KERNEL_BUILDER_CUDA_ARCHS"))
    kernel = git_state(config.root)
    builder = builder_source_state(nix_options)
    return NixBuildSettings(unique_id=unique_id(config, options.unique_id), kernel_commit=kernel.commit if kernel else None,
                            kernel_dirty=bool(kernel and kernel.dirty), cuda_archs=targets, builder_commit=builder.commit if builder else None,
                            builder_dirty=bool(builder and builder.dirty))


def failure_message(nix: Nix, drv: str | None, stderr: str) -> str:
    """What to show for a variant Nix did not build: kernel-builder's own error from the build log, else Nix's."""
    text = nix.log_of(drv) if drv else ""
    lines = text.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if errors:
        return "\n".join(lines[errors[-1]:])
    if text:
        return "the build failed; last lines of its log:\n    " + "\n    ".join(lines[-15:])
    return "nix did not build it:\n    " + _last_error(stderr).replace("\n", "\n    ")


def copy_out(store_variant: Path, build_dir, name: str) -> Path:
    """Copy a built variant from the store into build/<name> (writable), swapped in whole."""
    with build_dir.staging(name) as staging:
        target = staging / name
        shutil.copytree(store_variant, target, copy_function=shutil.copy)
        for root, dirs, files in os.walk(target):
            for entry in [*dirs, *files]:
                path = Path(root) / entry
                path.chmod(path.stat().st_mode | 0o200)
        target.chmod(target.stat().st_mode | 0o200)
        return build_dir.install(target)


def variant_findings(variant: Path):
    """The checks `build` runs on an installed variant: layout, metadata, digest, and the gate on every binary."""
    from ..checks.layout import Finding, check_variant
    from ..checks.portability import check_binary

    findings = check_variant(variant)
    for binary in sorted(variant.rglob("*.so")):
        findings += [Finding(variant.name, v.render()) for v in check_binary(binary)]
    return findings


def install_from_store(out: Path, build_dir, name: str, *, may_reuse: bool) -> tuple[Path, list, bool]:
    """build/<name> from a variant in the store: (folder, its findings, reused?). A folder that
    already holds exactly that output (same metadata, passing its checks) is kept as it is."""
    from ..layout import stamp

    final = build_dir.root / name
    if may_reuse and (final / "metadata.json").is_file() and (final / "metadata.json").read_bytes() == (out / "metadata.json").read_bytes():
        findings = variant_findings(final)
        if all(f.warning for f in findings):
            return final, findings, True
    final = copy_out(out, build_dir, name)
    stamp.forget(build_dir.state, name)  # the local engine's up-to-date stamp described the replaced folder
    return final, variant_findings(final), False


def run_nix_build(config, options, reporter, nix_options: NixOptions | None = None):
    """`kernel-builder build --backend nix` (see the module docstring); returns a BuildReport."""
    from ..build import BuildReport, VariantResult, _check_python_sources, _plan_matrix
    from ..layout.install import BuildDir
    from ..toolchains.store import ArtifactStore
    from .local import parse_cuda_archs

    began = time.monotonic()
    nix_options = nix_options or NixOptions(max_jobs=options.max_jobs, cores=options.cores)
    if options.host_mode:
        raise UsageError("--host/--python build with one Python's torch on this machine; the Nix engine builds the matrix (use --backend local)")
    if not options.import_check:
        raise UsageError("--no-import-check: with the Nix engine the kernel's flake decides (genKernelFlakeOutputs { doGetKernelCheck = false; ... })")
    if options.legacy_subpackage:
        raise UsageError("--legacy-subpackage is not offered by the Nix engine; use --backend local")
    require_nix()
    if not (config.root / "flake.nix").is_file():
        raise UsageError(f"{config.root} has no flake.nix; the Nix engine builds a kernel's flake (docs/nix.md shows one), or use --backend local")
    _check_python_sources(config, reporter)
    ref = flake_ref(config.root)
    system = this_system()
    settings = settings_for(config, options, nix_options)
    nix = Nix(nix_options, env=settings.environment())

    python = flake_python(nix, ref, system)
    targets = parse_cuda_archs(",".join(settings.cuda_archs))
    planned = _plan_matrix(config, options, targets, python=python)  # the lock step (in Python), for the flake's Python
    for note in planned.notes:
        reporter.note("note: " + note)
    view = FlakeView.evaluate(nix, ref, system)
    skipped = dict(planned.skipped)
    names = []
    for unit in planned.units:
        if unit.name in view.available:
            names.append(unit.name)
        else:
            skipped[unit.name] = view.unlocked.get(unit.name) or "the kernel's flake does not build it (torchVersions)"
    store = ArtifactStore()
    results: list = []
    if names:
        reporter.note(f"nix: {len(names)} variant(s) of {config.general.name} with {ref} (Python {python})")
        stats = preload(nix, view, [*names, "kernel-builder"], store)
        log.debug("preload: %s", stats)
        before = {name: Path(view.paths[name]["out"]).is_dir() for name in names}
        installables = [f"{ref}#redistributable.{name}" for name in names]
        build_dir = BuildDir(config.root)
        with reporter:
            for name in names:
                reporter.add(name)
                reporter.stage(name, "nix build")
            start = time.monotonic()
            code, stderr = nix.build(installables, echo=not reporter.quiet and (nix_options.print_build_logs or not reporter.live_enabled))
            took = round(time.monotonic() - start, 1)
            with build_dir.locked(on_wait=reporter.waiting):
                for name in names:
                    out = Path(view.paths[name]["out"]) / name
                    if not out.is_dir():
                        reporter.stage(name, "failed")
                        results.append(VariantResult(name, "failed", took, error=failure_message(nix, view.paths[name]["drv"], stderr)))
                        continue
                    reporter.stage(name, "install")
                    final, findings, same = install_from_store(out, build_dir, name, may_reuse=before[name])
                    errors = [f.render() for f in findings if not f.warning]
                    if errors:  # the derivation ran the same checks; a difference here means the copy is wrong
                        reporter.stage(name, "failed")
                        results.append(VariantResult(name, "failed", took, path=str(final), error="the copy in build/ fails its checks:\n  " + "\n  ".join(errors)))
                        continue
                    reporter.stage(name, "done")
                    results.append(VariantResult(name, "up-to-date" if same else "built", 0.0 if same else took, path=str(final),
                                                 warnings=[f"{f.where}: {f.message}" for f in findings if f.warning],
                                                 toolchain=next((u.toolchain.key for u in planned.units if u.name == name and u.toolchain), None)))
        downloaded, downloaded_bytes = stats.fetched, stats.bytes
        if code != 0 and all(r.status != "failed" for r in results):
            raise NixError("nix build failed:\n  " + _last_error(stderr).replace("\n", "\n  "))
    else:
        downloaded = downloaded_bytes = 0
    return BuildReport(config.general.name, "nix", results, skipped, planned.unreachable, planned.notes, planned.resolved,
                       downloaded=downloaded, downloaded_bytes=downloaded_bytes, seconds=time.monotonic() - began)


# -- shells, build-and-copy, list-variants ------------------------------------------------------

def prepare(kernel_dir: Path, nix_options: NixOptions, *, unique_id: str | None = None, cuda_archs: str | None = None):
    """Checks, the Nix settings and the flake's view, shared by build-and-copy and the shells: (config, nix, ref, view).

    The lock is made (every required variant, as `kernel-builder lock`) only when it is missing
    or was made for another build.toml: a fresh lock is used as it is, so the bundle is the
    required variants it has toolchains for.
    """
    from ..build import BuildOptions, _plan_matrix
    from ..config import load_config
    from ..toolchains import LockFile
    from ..toolchains.lock import build_toml_digest
    from .local import parse_cuda_archs

    require_nix()
    config = load_config(kernel_dir)
    if not (config.root / "flake.nix").is_file():
        raise UsageError(f"{config.root} has no flake.nix (docs/nix.md shows the kernel flake)")
    ref = flake_ref(config.root)
    options = BuildOptions(backend="nix", unique_id=unique_id, cuda_archs=cuda_archs)
    nix = Nix(nix_options, env=settings_for(config, options, nix_options).environment())
    system = this_system()
    if LockFile.load(config.root).build_toml_sha256 != build_toml_digest(config.root):
        python = flake_python(nix, ref, system)
        _plan_matrix(config, options, parse_cuda_archs(cuda_archs or os.environ.get("KERNEL_BUILDER_CUDA_ARCHS")), python=python)
    return config, nix, ref, FlakeView.evaluate(nix, ref, system)


def shell_attr(view: FlakeView, variant: str | None, *, test: bool) -> tuple[str, str]:
    """(devShells attribute, variant) of `devshell`/`testshell`; UsageError for a variant the flake does not build."""
    if variant is None:
        if view.default is None:
            raise UsageError("the kernel's flake builds no variant on this machine (kernel-builder list-variants says why)")
        return ("test" if test else "default"), view.default
    if variant not in view.available:
        reason = view.unlocked.get(variant)
        known = ", ".join(view.available) or "none"
        raise UsageError(f"--variant {variant}: " + (f"not built by the kernel's flake here: {reason}" if reason else f"not a variant of the kernel's flake here (it has: {known})"))
    return (f"test-{variant}" if test else variant), variant


def list_variant_states(kernel_dir: Path, nix_options: NixOptions) -> tuple[dict[str, str], str | None]:
    """Per variant, what the kernel's flake does with it on this machine; plus a problem, if Nix could not say."""
    problem = nix_problem()
    if problem is not None:
        return {}, problem
    nix = Nix(nix_options)
    try:
        view = FlakeView.evaluate(nix, flake_ref(kernel_dir), this_system())
    except KernelBuilderError as exc:
        return {}, str(exc)
    states = {name: "bundle" if name in view.bundle else "redistributable" for name in view.available}
    states.update({name: f"not built: {reason}" for name, reason in view.unlocked.items()})
    return states, None


__all__ = ["NixOptions", "Nix", "NixError", "auto_engine", "nix_problem", "require_nix", "run_nix_build", "prepare", "shell_attr", "preload",
           "flake_ref", "list_variant_states"]
