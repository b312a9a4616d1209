#!/usr/bin/env python3
"""Acceptance runner for kernel-builder: build real kernels, run their own tests, check refusals.

Standard library only: the `test`, `table` and `gpu-bundle` steps also run on the GPU machine,
where neither kernel-builder's dependencies nor click are installed.

Work-dir layout (nothing is ever built in the source checkouts):

    WORK/<group>/<kernel>/          a copy of the kernel (build.toml, sources, tests/)
    WORK/<group>/<kernel>/build/    the variants kernel-builder produced
    WORK/.pythonpath/<group>/<kernel>/<module> -> ../build/<variant>   (for `import <module>`)
    WORK/negative/<case>/           copies (or derived copies) of the negative cases
    WORK/acceptance-results.json    every recorded result, keyed "<group>/<kernel>"

Subcommands:
    build       copy kernels into WORK/<group>/, run `kernel-builder build --json` and
                `check-builds`, record seconds, variants, .so sizes, the portability gate and
                (with --expect-archs) the SASS list that `cuobjdump --list-elf` shows
    test        run each kernel's tests/ against the variant the running torch would load
    negative    builds that must be refused before anything is compiled
    table       a markdown table of the recorded results
    gpu-bundle  one folder with the CUDA variants, tests, wheels and run.sh for the GPU machine
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None  # type: ignore[assignment]

RESULTS_NAME = "acceptance-results.json"
SKIP_COPY = ("build", "result", ".git", "__pycache__", ".pytest_cache", "flake.lock")
GATE_LINE = re.compile(r"^\s*\S+: \S+\.so: ")
SUMMARY_WORD = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)\b")
GET_KERNEL_CALL = re.compile(r"get_kernel\(\s*[\"']([^\"']+)[\"']")
LOCAL_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)


# ---- small helpers ---------------------------------------------------------------------------


def tail(text: str, lines: int = 30) -> str:
    """The last `lines` lines of `text`."""
    return "\n".join(text.strip().splitlines()[-lines:])


def read_toml(path: Path) -> dict:
    """Parse a TOML file (Python >= 3.11)."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def read_kernel_list(spec: str) -> list[str]:
    """Names from a comma/space separated string, or from a file (one per line, # comments)."""
    path = Path(spec)
    text = path.read_text() if path.is_file() else spec
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        names += [n for n in re.split(r"[\s,]+", line) if n]
    return names


def kernel_dirs(work: Path) -> list[Path]:
    """Every WORK/<group>/<kernel> that holds a build.toml."""
    return sorted(p.parent for p in work.glob("*/*/build.toml") if p.parent.parent.name != "negative")


def kernel_key(kernel_dir: Path) -> str:
    """The results key of a kernel copy: `<group>/<kernel>`."""
    return f"{kernel_dir.parent.name}/{kernel_dir.name}"


def variant_dirs(kernel_dir: Path) -> list[Path]:
    """The installed variants under build/ (folders holding metadata.json)."""
    build = kernel_dir / "build"
    if not build.is_dir():
        return []
    return sorted(p for p in build.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "metadata.json").is_file())


def so_bytes(variant: Path) -> int:
    """Total size of the shared objects of a variant."""
    return sum(p.stat().st_size for p in variant.rglob("*.so"))


def copy_kernel(src: Path, dst: Path) -> None:
    """Copy a kernel's source into the work dir; an existing build/ there is kept."""
    if not (src / "build.toml").is_file():
        raise SystemExit(f"error: {src} has no build.toml")
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name in SKIP_COPY:
            continue
        target = dst / item.name
        if item.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(item, target, symlinks=True)
        else:
            shutil.copy2(item, target)


# ---- results store ---------------------------------------------------------------------------


@contextlib.contextmanager
def results_file(path: Path) -> Iterator[dict]:
    """Read-modify-write the results JSON under an exclusive lock on the file itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read()
        data = json.loads(text) if text.strip() else {}
        data.setdefault("kernels", {})
        data.setdefault("negative", {})
        yield data
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def merge_results(documents: list[dict]) -> dict:
    """Combine several results files (later ones win per build label / test label / case)."""
    merged: dict = {"kernels": {}, "negative": {}}
    for doc in documents:
        for key, entry in doc.get("kernels", {}).items():
            target = merged["kernels"].setdefault(key, {"builds": {}, "tests": {}})
            for part in ("builds", "tests"):
                target[part].update(entry.get(part, {}))
            if "has_tests" in entry:
                target["has_tests"] = entry["has_tests"]
        merged["negative"].update(doc.get("negative", {}))
    return merged


# ---- build -----------------------------------------------------------------------------------


def tool_env(cuda_home: str | None = None) -> dict:
    """Environment for kernel-builder: CUDA_HOME (given, set, else the newest /usr/local/cuda*) with its bin/ first on PATH."""
    env = dict(os.environ)
    home = cuda_home or env.get("CUDA_HOME")
    if not home:
        candidates = sorted(Path("/usr/local").glob("cuda*/bin/nvcc"))
        home = str(candidates[-1].parent.parent) if candidates else None
    if home:
        env["CUDA_HOME"] = home
        env["PATH"] = f"{home}/bin{os.pathsep}{env.get('PATH', '')}"
    return env


def kernel_builder_command(args: list[str], python: str | None) -> list[str]:
    """`python -m kernel_builder ARGS` in this interpreter, with --python passed on to `build`."""
    command = [sys.executable, "-m", "kernel_builder", *args]
    if args[0] == "build":  # one Python's torch, not the matrix
        command += ["--python", python] if python else ["--host"]
    return command


def gate_status(variant: dict) -> str:
    """The portability gate's verdict for one variant record of `kernel-builder build --json`."""
    if variant.get("status") == "built":
        return "pass"
    error = variant.get("error") or ""
    if "failed its checks" in error and any(GATE_LINE.match(line) for line in error.splitlines()):
        return "FAIL"
    if "failed its checks" in error:
        return "n/a (other check failed)"
    return "n/a (not compiled)"


def gate_findings(error: str) -> list[str]:
    """The portability findings quoted in a failed variant's error message."""
    return [line.strip() for line in error.splitlines() if GATE_LINE.match(line)]


def find_cuobjdump(cuda_home: str | None) -> str | None:
    """cuobjdump from $KB_CUOBJDUMP (as scripts/test.sh sets it), PATH, else $CUDA_HOME/bin."""
    found = os.environ.get("KB_CUOBJDUMP") or shutil.which("cuobjdump")
    if found:
        return found
    if cuda_home and (Path(cuda_home) / "bin" / "cuobjdump").is_file():
        return str(Path(cuda_home) / "bin" / "cuobjdump")
    return None


def sm_key(arch: str) -> tuple[int, str]:
    """Sort key for 'sm_90a'-style names: by number, then suffix."""
    return int(re.sub(r"\D", "", arch)), arch


def parse_list_elf(text: str) -> list[str]:
    """`cuobjdump --list-elf` output -> sorted unique SASS archs (['sm_75', 'sm_90'])."""
    return sorted(set(re.findall(r"\.(sm_\d+[af]?)\.cubin", text)), key=sm_key)


def elf_archs(binary: Path, cuobjdump: str) -> list[str]:
    """The SASS archs embedded in one binary."""
    result = subprocess.run([cuobjdump, "--list-elf", str(binary)], capture_output=True, text=True)
    return parse_list_elf(result.stdout)


def arch_check(found: list[str], expected: list[str]) -> str:
    """'ok' when the SASS set is exactly the expected one, else a message naming the difference."""
    extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    if not extra and not missing:
        return "ok"
    return f"FAIL: expected exactly {', '.join(expected)}; found {', '.join(found) or 'none'}"


def describe_variant(record: dict, kernel_dir: Path, cuobjdump: str | None, expect: list[str]) -> dict:
    """One variant of the build JSON plus size, gate verdict, check-builds/check-abi and (CUDA) SASS list."""
    info = {key: record.get(key) for key in ("variant", "status", "seconds", "error", "warnings", "cuda_archs")}
    info["gate"] = gate_status(record)
    info["gate_findings"] = gate_findings(record.get("error") or "")
    folder = kernel_dir / "build" / record["variant"]
    if record.get("status") == "built" and folder.is_dir():
        info["so_bytes"] = so_bytes(folder)
        info["check_builds"] = run_check("check-builds", folder)
        info["check_abi"] = run_check("check-abi", folder)  # the gate again, as a command
        if cuobjdump and "-cu" in record["variant"]:
            info["elf_archs"] = sorted({a for so in folder.rglob("*.so") for a in elf_archs(so, cuobjdump)}, key=sm_key)
            if expect:
                info["archs_check"] = arch_check(info["elf_archs"], expect)
    return info


def run_check(command: str, variant: Path) -> dict:
    """Run `kernel-builder <command>` (check-builds, check-abi) on one variant folder: exit code and output tail."""
    result = subprocess.run(kernel_builder_command([command, str(variant)], None), capture_output=True, text=True)
    return {"rc": result.returncode, "output": tail(result.stdout + result.stderr, 40)}


def build_one(kernel_dir: Path, *, python: str | None, cuda_archs: str | None, extra: list[str], env: dict,
              cuobjdump: str | None, expect: list[str]) -> dict:
    """Build one kernel copy; return its record (seconds, variants, check-builds)."""
    args = ["build", str(kernel_dir), "--backend", "local", "--json", *extra]
    if cuda_archs:
        args += ["--cuda-archs", cuda_archs]
    start = time.monotonic()
    result = subprocess.run(kernel_builder_command(args, python), capture_output=True, text=True, env=env)
    seconds = round(time.monotonic() - start, 1)
    record: dict = {"python": python or sys.executable, "cuda_archs": cuda_archs or "default", "rc": result.returncode,
                    "seconds": seconds, "expect_archs": expect, "ended": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "kernel_builder": builder_revision()}
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        record.update(ok=False, variants=[], error=tail(result.stderr or result.stdout))
        return record
    record.update(ok=report["ok"], skipped=report.get("skipped", {}), stderr=tail(result.stderr, 15))
    record["variants"] = [describe_variant(v, kernel_dir, cuobjdump, expect) for v in report["variants"]]
    return record


def builder_revision() -> str:
    """The kernel-builder commit this runner belongs to (`git describe --always --dirty`)."""
    result = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def build_label(python: str | None, cuda_archs: str | None) -> str:
    """A stable name for one build configuration: the venv folder plus the arch override."""
    base = Path(python).parent.parent.name if python else Path(sys.executable).parent.parent.name
    return f"{base}" + (f"@{cuda_archs}" if cuda_archs else "")


def cmd_build(args: argparse.Namespace) -> int:
    """`build`: copy, build, check and record each listed kernel."""
    work, src = args.work.resolve(), args.src.resolve()
    env = tool_env(args.cuda_home)
    cuobjdump = find_cuobjdump(env.get("CUDA_HOME"))
    expect = [a for a in re.split(r"[\s,]+", args.expect_archs or "") if a]
    label = args.label or build_label(args.python, args.cuda_archs)
    extra = ["--no-import-check"] if args.no_import_check else []
    failed = 0
    for name in read_kernel_list(args.list):
        kernel_dir = work / args.group / name
        copy_kernel(src / name, kernel_dir)
        print(f"[build] {args.group}/{name} ({label}) ...", flush=True)
        record = build_one(kernel_dir, python=args.python, cuda_archs=args.cuda_archs, extra=extra, env=env, cuobjdump=cuobjdump, expect=expect)
        record["source"] = str(src / name)
        with results_file(work / RESULTS_NAME) as data:
            entry = data["kernels"].setdefault(f"{args.group}/{name}", {"builds": {}, "tests": {}})
            entry["builds"][label] = record
            entry["has_tests"] = (kernel_dir / "tests").is_dir()
        failed += not record["ok"] or any(v.get("archs_check", "ok") != "ok" for v in record["variants"])
        print(f"[build] {args.group}/{name}: {'ok' if record['ok'] else 'FAILED'} in {record['seconds']} s; " + ", ".join(f"{v['variant']}={v['status']}" for v in record["variants"]), flush=True)
    return 1 if failed else 0


# ---- tests -----------------------------------------------------------------------------------


def hub_repo_id(kernel_dir: Path) -> str | None:
    """general.hub.repo-id of a kernel copy."""
    return read_toml(kernel_dir / "build.toml").get("general", {}).get("hub", {}).get("repo-id")


def module_name(kernel_dir: Path) -> str:
    """The kernel's Python package name: torch-ext/<module>/ if present, else general.name with _."""
    torch_ext = kernel_dir / "torch-ext"
    if torch_ext.is_dir():
        packages = [p.name for p in torch_ext.iterdir() if (p / "__init__.py").is_file()]
        if len(packages) == 1:
            return packages[0]
    return read_toml(kernel_dir / "build.toml")["general"]["name"].replace("-", "_")


def test_sources(kernel_dir: Path) -> str:
    """The text of every .py file under the kernel's tests/ (and a root conftest.py)."""
    files = sorted((kernel_dir / "tests").rglob("*.py")) + [p for p in [kernel_dir / "conftest.py"] if p.is_file()]
    return "\n".join(p.read_text(errors="replace") for p in files)


def requested_repo_ids(source: str) -> list[str]:
    """Repo ids passed to get_kernel(...) in test code."""
    return sorted(set(GET_KERNEL_CALL.findall(source)))


def imported_modules(source: str) -> set[str]:
    """Top-level module names imported by test code."""
    return set(LOCAL_IMPORT.findall(source))


def repo_index(kernels: list[Path]) -> dict[str, Path]:
    """repo-id -> kernel copy, for every kernel copy that declares general.hub.repo-id."""
    index: dict[str, Path] = {}
    for kernel_dir in kernels:
        repo_id = hub_repo_id(kernel_dir)
        if repo_id:
            index.setdefault(repo_id, kernel_dir)
    return index


def local_kernels_value(repo_ids: list[str], index: dict[str, Path]) -> tuple[str, list[str]]:
    """LOCAL_KERNELS for these repo ids ('id=path:id=path') and the ids with no local copy."""
    entries, missing = [], []
    for repo_id in repo_ids:
        path = index.get(repo_id)
        if path is None:
            missing.append(repo_id)
            continue
        if ":" in str(path) or "=" in str(path):
            raise SystemExit(f"error: LOCAL_KERNELS cannot hold the path {path} (':' and '=' are separators)")
        entries.append(f"{repo_id}={path}")
    return ":".join(entries), missing


def pythonpath_dir(work: Path, kernel_dir: Path, module: str, variant: Path) -> Path:
    """WORK/.pythonpath/<group>/<kernel>/ holding `<module>` -> the variant folder."""
    folder = work / ".pythonpath" / kernel_key(kernel_dir)
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / module
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(variant.resolve(), target_is_directory=True)
    return folder


_TORCH_FACTS = r"""
import json, platform, sys
from pathlib import Path
import torch
facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "machine": platform.machine(),
         "system": platform.system().lower(), "gpu": torch.cuda.is_available(), "choices": {}}
try:
    from kernels.resolver import resolve_local_kernel
except ImportError:
    resolve_local_kernel = None
for path in sys.argv[1:]:
    try:
        facts["choices"][path] = resolve_local_kernel(Path(path), backend=None).variant_path.name if resolve_local_kernel else None
    except Exception as exc:
        facts["choices"][path] = "!" + str(exc).strip().splitlines()[-1]
print(json.dumps(facts))
"""


def torch_facts(python: str, env: dict, kernels: list[Path]) -> dict:
    """The test Python's torch (version, CUDA, GPU) and the `kernels` loader's variant per kernel."""
    result = subprocess.run([python, "-c", _TORCH_FACTS, *map(str, kernels)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"error: cannot inspect torch in {python}:\n{tail(result.stderr)}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def environment_label(facts: dict) -> str:
    """'torch211-cu130' / 'torch213-cpu' (+ '-gpu' when a GPU is visible)."""
    major, minor = facts["torch"].split("+")[0].split(".")[:2]
    backend = f"cu{facts['cuda'].replace('.', '')}" if facts.get("cuda") else "cpu"
    return f"torch{major}{minor}-{backend}" + ("-gpu" if facts.get("gpu") else "")


def fallback_variant(names: list[str], facts: dict) -> str | None:
    """The loader's preference without `kernels`: newest fitting stable ABI, torchXY(-cxx11), noarch."""
    major, minor = (int(x) for x in facts["torch"].split("+")[0].split(".")[:2])
    backend = f"cu{facts['cuda'].replace('.', '')}" if facts.get("cuda") else "cpu"
    system = f"{facts['machine']}-{facts['system']}"
    stable = []
    for name in names:
        match = re.fullmatch(rf"torch-stable-abi(\d)(\d+)-{backend}-{re.escape(system)}", name)
        if match and (int(match.group(1)), int(match.group(2))) <= (major, minor):
            stable.append(((int(match.group(1)), int(match.group(2))), name))
    ordered = [n for _, n in sorted(stable, reverse=True)]
    ordered += [f"torch{major}{minor}-{backend}-{system}", f"torch{major}{minor}-cxx11-{backend}-{system}",
                f"torch-{'cuda' if facts.get('cuda') else 'cpu'}", "torch-universal"]
    return next((n for n in ordered if n in names), None)


def parse_pytest_summary(output: str) -> dict:
    """Counts from pytest's last summary line ('3 passed, 1 skipped in 0.5s'); empty if none."""
    for line in reversed(output.strip().splitlines()):
        if re.search(r"\bin [\d.]+s\b", line) and (SUMMARY_WORD.search(line) or "no tests ran" in line):
            counts = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "xfailed": 0, "xpassed": 0}
            for number, word in SUMMARY_WORD.findall(line):
                word = {"error": "errors", "warning": "warnings"}.get(word, word)
                if word in counts:
                    counts[word] = int(number)
            return counts
    return {}


def pytest_command(python: str, kernel_dir: Path, extra: list[str]) -> list[str]:
    """pytest on <kernel>/tests, isolated from any pytest config or conftest above the kernel."""
    return [python, "-m", "pytest", "tests", "-q", "-rfEs", "-p", "no:cacheprovider", "-c", os.devnull,
            "--rootdir", str(kernel_dir), "--confcutdir", str(kernel_dir), *extra]


def test_environment(base: dict, pythonpath: Path | None, local_kernels: str) -> dict:
    """The test process environment: our PYTHONPATH folder first, LOCAL_KERNELS, offline Hub."""
    env = dict(base)
    parts = [str(pythonpath)] if pythonpath else []
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["LOCAL_KERNELS"] = local_kernels
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_one(kernel_dir: Path, work: Path, *, python: str, facts: dict, index: dict[str, Path], timeout: int, extra: list[str]) -> dict:
    """Run one kernel's tests against the variant the running torch loads; return counts and tail."""
    names = [v.name for v in variant_dirs(kernel_dir)]
    choice = facts["choices"].get(str(kernel_dir))
    variant = choice if choice and not choice.startswith("!") else fallback_variant(names, facts)
    record: dict = {"variant": variant, "loader_choice": choice}
    if variant is None:
        record.update(status="no variant", detail=f"no variant for {environment_label(facts)} among {names or 'none'}")
        return record
    source = test_sources(kernel_dir)
    module = module_name(kernel_dir)
    repo_ids = sorted(set(requested_repo_ids(source)) | ({hub_repo_id(kernel_dir)} - {None}))
    local_kernels, missing = local_kernels_value(repo_ids, index)
    imports_module = module in imported_modules(source)
    pythonpath = pythonpath_dir(work, kernel_dir, module, kernel_dir / "build" / variant) if imports_module else None
    env = test_environment(dict(os.environ), pythonpath, local_kernels)
    record.update(module=module, pythonpath=str(pythonpath) if pythonpath else None, local_kernels=local_kernels, missing_repo_ids=missing)
    start = time.monotonic()
    try:
        result = subprocess.run(pytest_command(python, kernel_dir, extra), cwd=kernel_dir, env=env, capture_output=True, text=True, timeout=timeout)
        output, rc = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as exc:
        output, rc = f"{exc.stdout or ''}{exc.stderr or ''}\n(timed out after {timeout} s)", 124
    record.update(rc=rc, seconds=round(time.monotonic() - start, 1), tail=tail(output if isinstance(output, str) else output.decode(errors="replace"), 40))
    record.update(parse_pytest_summary(record["tail"]))
    record["status"] = "timeout" if rc == 124 else ("passed" if rc == 0 else "failed")
    return record


def cmd_test(args: argparse.Namespace) -> int:
    """`test`: each kernel copy's own tests, recorded under the running torch's label."""
    work = args.work.resolve()
    kernels = [k for k in kernel_dirs(work) if (k / "tests").is_dir() and variant_dirs(k)]
    if args.kernels:
        wanted = set(read_kernel_list(args.kernels))
        kernels = [k for k in kernels if kernel_key(k) in wanted or k.name in wanted]
    if args.skip:
        unwanted = set(read_kernel_list(args.skip))
        kernels = [k for k in kernels if kernel_key(k) not in unwanted and k.name not in unwanted]
    index = repo_index(kernel_dirs(work))
    facts = torch_facts(args.python, dict(os.environ), kernels)
    label = args.label or environment_label(facts)
    print(f"[test] {label}: torch {facts['torch']}, GPU {'yes' if facts['gpu'] else 'no'}; {len(kernels)} kernels", flush=True)
    bad = 0
    deadline = time.monotonic() + args.budget if args.budget else None
    for kernel_dir in kernels:
        timeout = args.timeout if deadline is None else min(args.timeout, int(deadline - time.monotonic()))
        if timeout < 15:
            print(f"[test] {kernel_key(kernel_dir)}: not run (the --budget of {args.budget} s is used up)", flush=True)
            bad += 1
            continue
        record = test_one(kernel_dir, work, python=args.python, facts=facts, index=index, timeout=timeout, extra=args.pytest_args or [])
        if record["status"] == "no variant":
            print(f"[test] {kernel_key(kernel_dir)}: not run here ({record['detail']})", flush=True)
            continue
        counts = "/".join(str(record.get(k, "-")) for k in ("passed", "failed", "skipped"))
        print(f"[test] {kernel_key(kernel_dir)} [{record.get('variant')}]: {record['status']} (passed/failed/skipped {counts}, {record.get('seconds', 0)} s)", flush=True)
        if record["status"] != "passed":
            print("    " + record.get("tail", record.get("detail", "")).replace("\n", "\n    ")[-3000:], flush=True)
        bad += record["status"] != "passed"
        results = args.results or work / RESULTS_NAME
        with results_file(results) as data:
            entry = data["kernels"].setdefault(kernel_key(kernel_dir), {"builds": {}, "tests": {}})
            entry["tests"][label] = record
    return 1 if bad else 0


# ---- negative cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class NegativeCase:
    """A build that must be refused: where it comes from, with which torch, what the error says."""

    name: str
    origin: str  # "community/<kernel>" or "examples/<kernel>"
    torch: str  # "cuda" (--cuda-python) or "cpu" (--cpu-python)
    expect: tuple[str, ...]  # regexes that must all match the message (case-insensitive)
    edits: tuple[tuple[str, str], ...] = ()  # exact build.toml replacements (derived cases)
    reject: tuple[str, ...] = (r"fatal error", r"No such file or directory")


RELU_CUDA = '[kernel.relu]\nbackend = "cuda"\ndepends = ["torch"]\nsrc = ["relu_cuda/relu.cu"]'
NEGATIVE_CASES = (
    NegativeCase("relu-invalid-capability", "examples/relu-invalid-capability", "cuda", (r"empty set of capabilities", r"kernel relu\b", r"99999\.0")),
    NegativeCase("silu-and-mul-bad-registration", "examples/silu-and-mul-bad-registration", "cpu", (r"add_op_namespace_prefix", r"op\.py")),
    NegativeCase("relu-torch-bounds", "examples/relu-torch-bounds", "cuda", (r"2\.11[^\n]*(too old|older than)[^\n]*2\.12",)),
    NegativeCase("quantization-eetq", "community/quantization-eetq", "cuda", (r"13\.0[^\n]*(too new|newer than)[^\n]*12\.9",)),
    NegativeCase("mlx-rmsnorm", "community/mlx-rmsnorm", "cpu", (r"metal: needs macOS",)),
    NegativeCase("relu-caps-7.0", "examples/relu", "cuda", (r"empty set of capabilities", r"kernel relu\b", r"kernel: 7\.0;"),
                 ((RELU_CUDA, RELU_CUDA.replace('depends = ["torch"]', 'depends = ["torch"]\ncuda-capabilities = ["7.0"]')),)),
    NegativeCase("relu-missing-src", "examples/relu", "cuda", (r"kernel\.relu\.src\[1\]", r"relu_cuda/missing\.cu"),
                 ((RELU_CUDA, RELU_CUDA.replace('"relu_cuda/relu.cu"', '"relu_cuda/relu.cu", "relu_cuda/missing.cu"')),)),
    NegativeCase("relu-missing-cutlass", "examples/relu", "cuda", (r"kernel\.relu depends on cutlass_3_8",),
                 ((RELU_CUDA, RELU_CUDA.replace('depends = ["torch"]', 'depends = ["torch", "cutlass_3_8"]')),)),
)


def apply_edits(build_toml: Path, edits: tuple[tuple[str, str], ...]) -> None:
    """Exact text replacements in build.toml; each `old` must occur exactly once."""
    text = build_toml.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise SystemExit(f"error: {build_toml}: expected one occurrence of {old!r}, found {text.count(old)}")
        text = text.replace(old, new)
    build_toml.write_text(text)


def compiled_leftovers(kernel_dir: Path) -> list[str]:
    """Anything a refused build must not leave: build/<variant>/ folders and object files."""
    left = [f"build/{p.name}/" for p in variant_dirs(kernel_dir)]
    state = kernel_dir / "build" / ".kernel-builder"
    left += [str(p.relative_to(kernel_dir)) for p in state.rglob("*.o")] if state.is_dir() else []
    return left


def judge_negative(case: NegativeCase, rc: int, message: str, leftovers: list[str]) -> list[str]:
    """Why a negative case did not fail the way it must (empty: it did)."""
    problems = []
    if rc == 0:
        problems.append("the build succeeded (exit code 0)")
    for pattern in case.expect:
        if not re.search(pattern, message, re.I):
            problems.append(f"the message does not match /{pattern}/")
    for pattern in case.reject:
        if re.search(pattern, message):
            problems.append(f"the message shows a compiler failure (/{pattern}/): the refusal came too late")
    if leftovers:
        problems.append("left behind: " + ", ".join(leftovers[:5]))
    return problems


def run_negative(case: NegativeCase, kernel_dir: Path, python: str, env: dict) -> dict:
    """Build a negative case and judge the outcome."""
    start = time.monotonic()
    result = subprocess.run(kernel_builder_command(["build", str(kernel_dir), "--backend", "local", "--json"], python), capture_output=True, text=True, env=env)
    seconds = round(time.monotonic() - start, 1)
    message = result.stderr
    try:
        report = json.loads(result.stdout)
        message += "\n".join(v.get("error") or "" for v in report.get("variants", []))
    except json.JSONDecodeError:
        message += result.stdout
    problems = judge_negative(case, result.returncode, message, compiled_leftovers(kernel_dir))
    return {"ok": not problems, "rc": result.returncode, "seconds": seconds, "message": tail(message, 25), "problems": problems, "expect": list(case.expect)}


def cmd_negative(args: argparse.Namespace) -> int:
    """`negative`: every case must be refused early, with a message that says what and where."""
    work = args.work.resolve()
    sources = {"community": args.community, "examples": args.examples}
    pythons = {"cuda": args.cuda_python, "cpu": args.cpu_python}
    env = tool_env(args.cuda_home)
    wanted = set(read_kernel_list(args.cases)) if args.cases else None
    bad = 0
    for case in NEGATIVE_CASES:
        if wanted and case.name not in wanted:
            continue
        group, name = case.origin.split("/")
        kernel_dir = work / "negative" / case.name
        shutil.rmtree(kernel_dir, ignore_errors=True)
        copy_kernel(Path(sources[group]) / name, kernel_dir)
        apply_edits(kernel_dir / "build.toml", case.edits)
        record = run_negative(case, kernel_dir, pythons[case.torch], env)
        bad += not record["ok"]
        print(f"[negative] {case.name}: {'ok' if record['ok'] else 'FAILED'} (exit {record['rc']}, {record['seconds']} s)", flush=True)
        print("    " + (record["message"] or "(no message)").replace("\n", "\n    "), flush=True)
        for problem in record["problems"]:
            print(f"    problem: {problem}", flush=True)
        with results_file(work / RESULTS_NAME) as data:
            data["negative"][case.name] = record
    return 1 if bad else 0


# ---- table -----------------------------------------------------------------------------------


def _mib(size: int | None) -> str:
    return "–" if not size else f"{size / 2**20:.1f} MiB"


def _counts(label: str, record: dict) -> str:
    """'torch213-cpu: 2/0/0' (failed counts errors too), with the status when not passed."""
    if "passed" not in record:
        return f"{label}: {record.get('status')}"
    text = f"{label}: {record['passed']}/{record['failed'] + record.get('errors', 0)}/{record['skipped']}"
    return text + ("" if record["status"] == "passed" else f" ({record['status']})")


def _test_cell(tests: dict, variants: list[str], has_tests: bool) -> str:
    """The test results of the runs that loaded one of `variants`; 'pending GPU run' for CUDA."""
    if not has_tests:
        return "no tests/"
    cells = [_counts(label, record) for label, record in sorted(tests.items()) if record.get("variant") in variants]
    if not cells and any("-cu" in v for v in variants):
        return "pending GPU run"
    return "; ".join(cells) or "not run"


def _gate_cell(build: dict) -> str:
    """The gate verdicts of one build's variants (+ a failing check-abi, + the SASS check)."""
    cells = []
    for v in build.get("variants", []):
        cell = v["gate"] + (" (check-abi FAIL)" if v.get("check_abi", {}).get("rc", 0) == 1 else "")
        cells.append(cell + (f"; SASS {' '.join(v['elf_archs'])}: {v['archs_check']}" if v.get("archs_check") else ""))
    return " / ".join(dict.fromkeys(cells)) or "–"


def _check_cell(build: dict) -> str:
    """check-builds over the installed variants of one build: ok, FAIL or – (none installed)."""
    codes = [v["check_builds"]["rc"] for v in build.get("variants", []) if "check_builds" in v]
    return "–" if not codes else ("ok" if not any(codes) else "FAIL")


def table_rows(results: dict) -> list[list[str]]:
    """One row per kernel build: torch, variants, seconds, .so size, gate, check-builds, tests."""
    rows = []
    for key, entry in sorted(results["kernels"].items()):
        has_tests = bool(entry.get("tests")) or entry.get("has_tests", True)
        for label, build in sorted(entry.get("builds", {}).items()):
            built = [v["variant"] for v in build.get("variants", []) if v["status"] == "built"]
            names = [v["variant"] + ("" if v["status"] == "built" else " (FAILED)") for v in build.get("variants", [])]
            size = sum(v.get("so_bytes") or 0 for v in build.get("variants", []))
            rows.append([key, label, "<br>".join(names) or "none", f"{build['seconds']:.0f}", _mib(size), _gate_cell(build),
                         _check_cell(build), _test_cell(entry.get("tests", {}), built, has_tests)])
    return rows


def key_line(message: str, patterns: list[str]) -> str:
    """The line of a refusal that matches an expected pattern, else the first error line."""
    lines = [l.strip() for l in message.splitlines() if l.strip()]
    for pattern in patterns:
        found = next((l for l in lines if re.search(pattern, l, re.I)), None)
        if found:
            return found
    return next((l for l in lines if l.startswith("error")), lines[0] if lines else "")


def render_table(results: dict) -> str:
    """The markdown tables: positive kernels, then negative cases."""
    head = ["kernel", "build with", "variants", "build s", ".so size", "gate", "check-builds", "tests passed/failed/skipped"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    if results.get("negative"):
        lines += ["", "| negative case | refused | exit | seconds | message (first line) |", "|---|---|---|---|---|"]
        for name, record in sorted(results["negative"].items()):
            first = key_line(record["message"], record.get("expect", [])).replace("|", "\\|")
            verdict = "yes" if record["ok"] else "NO: " + "; ".join(record["problems"])
            lines.append(f"| {name} | {verdict} | {record['rc']} | {record['seconds']} | {first[:160]} |")
    return "\n".join(lines)


def cmd_table(args: argparse.Namespace) -> int:
    """`table`: print the markdown table of one or more results files."""
    paths = list(args.results or []) + [w / RESULTS_NAME for w in args.work or []]
    docs = [json.loads(Path(p).read_text()) for p in paths if Path(p).is_file()]
    if not docs:
        raise SystemExit("error: no results file found")
    print(render_table(merge_results(docs)))
    return 0


# ---- GPU bundle ------------------------------------------------------------------------------

RUN_SH = r"""#!/bin/bash
# Runs every bundled kernel's own tests on the GPU machine, within __BUDGET__ s in all.
# Usage, from the repository root: bash .accept/run.sh   (results under $OUT, else .accept/out)
set -u
T0=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$HERE/out}; mkdir -p "$OUT"
ACC="python3 $REPO/scripts/acceptance.py"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$HERE"/wheels/*.whl || exit 1
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
{ nvidia-smi -L; python3 -c 'import torch, kernels; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(), "kernels", kernels.__version__)'; } 2>&1 | tee "$OUT/env.txt"
XDIST=""; python3 -c 'import xdist' 2>/dev/null && XDIST="-n __WORKERS__"
$ACC test --work "$HERE/work" --results "$OUT/gpu-results.json" --timeout __TIMEOUT__ --budget __FIRST__ --skip "__HEAVY__" 2>&1 | tee "$OUT/gpu-test.log"
rc=${PIPESTATUS[0]}
left=$(( __BUDGET__ - ($(date +%s) - T0) ))
if [ "$left" -gt 30 ]; then
  $ACC test --work "$HERE/work" --results "$OUT/gpu-results.json" --timeout "$left" --kernels "__HEAVY__" --pytest-args $XDIST 2>&1 | tee -a "$OUT/gpu-test.log"
  rc=$(( rc | ${PIPESTATUS[0]} ))
else
  echo "no time left for __HEAVY__" | tee -a "$OUT/gpu-test.log"
fi
echo "run.sh took $(( $(date +%s) - T0 )) s (exit $rc)" | tee -a "$OUT/gpu-test.log"
$ACC table --results "$HERE/build-results.json" --results "$OUT/gpu-results.json" | tee "$OUT/gpu-table.md"
exit $rc
"""


def bundle_kernel(kernel_dir: Path, dest: Path, pattern: str) -> list[str]:
    """Copy build.toml, tests/, a root conftest.py, a torch-ext/<module> marker and the matching variants."""
    chosen = [v for v in variant_dirs(kernel_dir) if fnmatch.fnmatch(v.name, pattern)]
    if not chosen:
        return []
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy2(kernel_dir / "build.toml", dest / "build.toml")
    if (kernel_dir / "tests").is_dir():
        shutil.copytree(kernel_dir / "tests", dest / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    if (kernel_dir / "conftest.py").is_file():
        shutil.copy2(kernel_dir / "conftest.py", dest / "conftest.py")
    for variant in chosen:
        shutil.copytree(variant, dest / "build" / variant.name, ignore=shutil.ignore_patterns("__pycache__"))
    module = module_name(kernel_dir)
    (dest / "torch-ext" / module).mkdir(parents=True)
    (dest / "torch-ext" / module / "__init__.py").write_text("# marker: the module name for the acceptance runner\n")
    return [v.name for v in chosen]


def kernels_to_bundle(kernels: list[Path], groups: set[str] | None) -> list[Path]:
    """Kernels with tests/ in the chosen groups, plus every kernel their tests load by repo id."""
    chosen = [k for k in kernels if (k / "tests").is_dir() and (not groups or k.parent.name in groups)]
    index = repo_index(kernels)
    needed = {index[r] for k in chosen for r in requested_repo_ids(test_sources(k)) if r in index}
    return sorted(set(chosen) | needed)


def folder_bytes(folder: Path) -> int:
    """Total size of the files under a folder (links not followed)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def exclude_in_git(repo: Path, folder: Path) -> None:
    """Add `/<folder>/` to the repo's .git/info/exclude (once)."""
    exclude = repo / ".git" / "info" / "exclude"
    line = f"/{folder.resolve().relative_to(repo.resolve())}/"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text() if exclude.is_file() else ""
    if line not in text.splitlines():
        exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + line + "\n")


def cmd_gpu_bundle(args: argparse.Namespace) -> int:
    """`gpu-bundle`: the one folder the GPU machine needs (variants, tests, wheels, run.sh)."""
    work, out = args.work.resolve(), args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "wheels").mkdir(parents=True)
    groups = set(read_kernel_list(args.groups)) if args.groups else None
    bundled = {}
    for kernel_dir in kernels_to_bundle(kernel_dirs(work), groups):
        names = bundle_kernel(kernel_dir, out / "work" / kernel_key(kernel_dir), args.variants)
        if names:
            bundled[kernel_key(kernel_dir)] = names
    for wheel in args.wheel or []:
        shutil.copy2(wheel, out / "wheels" / Path(wheel).name)
    results = work / RESULTS_NAME
    doc = json.loads(results.read_text()) if results.is_file() else {"kernels": {}, "negative": {}}
    doc["kernels"] = {k: v for k, v in doc["kernels"].items() if not groups or k.split("/")[0] in groups}
    (out / "build-results.json").write_text(json.dumps(doc, indent=2) + "\n")
    script = RUN_SH.replace("__TIMEOUT__", str(args.timeout)).replace("__BUDGET__", str(args.budget))
    script = script.replace("__FIRST__", str(args.budget - args.heavy_reserve))
    (out / "run.sh").write_text(script.replace("__HEAVY__", args.heavy).replace("__WORKERS__", str(args.workers)))
    (out / "run.sh").chmod(0o755)
    repo = Path(__file__).resolve().parents[1]
    if out.is_relative_to(repo):
        exclude_in_git(repo, out)
    size = folder_bytes(out)
    for key, names in sorted(bundled.items()):
        print(f"[bundle] {key}: {', '.join(names)}")
    print(f"[bundle] {out}: {size / 2**20:.1f} MiB ({len(bundled)} kernels, {len(args.wheel or [])} wheels)")
    if size > args.max_mib * 2**20:
        print(f"error: the bundle is larger than {args.max_mib} MiB", file=sys.stderr)
        return 1
    return 0


# ---- command line ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="copy, build and check kernels")
    p.add_argument("--src", type=Path, required=True, help="folder holding the kernel repos (read only)")
    p.add_argument("--work", type=Path, required=True, help="work folder (copies are made under WORK/GROUP/)")
    p.add_argument("--group", required=True, help="sub-folder of WORK for these kernels, e.g. community, examples")
    p.add_argument("--list", required=True, help="kernel names (comma/space separated) or a file with one per line")
    p.add_argument("--python", help="Python whose torch to build against (default: kernel-builder's own)")
    p.add_argument("--cuda-archs", help="passed to kernel-builder build --cuda-archs (default: the toolkit's list)")
    p.add_argument("--cuda-home", help="CUDA toolkit (default: $CUDA_HOME, else the newest /usr/local/cuda*)")
    p.add_argument("--expect-archs", help="with CUDA variants: cuobjdump --list-elf must show exactly these, e.g. sm_75,sm_80,sm_90")
    p.add_argument("--label", help="name of this build configuration in the results (default: venv name@archs)")
    p.add_argument("--no-import-check", action="store_true", help="pass --no-import-check (kernels that need a GPU at import)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("test", help="run each kernel's own tests against its built variant")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--python", default=sys.executable, help="Python to run pytest with (default: this one)")
    p.add_argument("--kernels", help="only these kernels (names or group/name)")
    p.add_argument("--skip", help="not these kernels (names or group/name)")
    p.add_argument("--results", type=Path, help="results file (default: WORK/acceptance-results.json)")
    p.add_argument("--label", help="name of this test environment (default: e.g. torch211-cu130-gpu)")
    p.add_argument("--timeout", type=int, default=300, help="seconds per kernel")
    p.add_argument("--budget", type=int, help="seconds for all kernels together; later kernels get what is left")
    p.add_argument("--pytest-args", nargs=argparse.REMAINDER, help="extra pytest arguments (last option)")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("negative", help="builds that must be refused before compiling")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--community", type=Path, required=True, help="kernels-community checkout")
    p.add_argument("--examples", type=Path, required=True, help="huggingface/kernels examples/kernels folder")
    p.add_argument("--cuda-python", required=True, help="Python with a CUDA torch (e.g. torch 2.11 cu130)")
    p.add_argument("--cpu-python", default=sys.executable, help="Python with a CPU torch")
    p.add_argument("--cuda-home")
    p.add_argument("--cases", help="only these cases")
    p.set_defaults(func=cmd_negative)

    p = sub.add_parser("table", help="print the markdown table")
    p.add_argument("--work", type=Path, action="append")
    p.add_argument("--results", type=Path, action="append")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("gpu-bundle", help="prepare the folder to carry to the GPU machine")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="e.g. <repo>/.accept (added to .git/info/exclude)")
    p.add_argument("--groups", help="only these groups (default: all)")
    p.add_argument("--variants", default="*cu130*", help="variant folders to carry (glob, default *cu130*)")
    p.add_argument("--wheel", action="append", help="a wheel to install on the GPU machine (repeat)")
    p.add_argument("--timeout", type=int, default=180, help="seconds per kernel in run.sh")
    p.add_argument("--budget", type=int, default=540, help="seconds for all of run.sh (the device allows 600 per command)")
    p.add_argument("--heavy", default="community/causal-conv1d", help="kernels run last, with pytest-xdist, in the time left")
    p.add_argument("--workers", type=int, default=8, help="pytest-xdist workers for the heavy kernels")
    p.add_argument("--heavy-reserve", type=int, default=240, help="seconds of --budget kept for the heavy kernels")
    p.add_argument("--max-mib", type=int, default=60, help="refuse a bundle larger than this")
    p.set_defaults(func=cmd_gpu_bundle)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
