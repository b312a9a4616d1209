"""Load built variants in the target Python, the way the Hub loader does, and check what loading
them registers with torch.

Each variant is loaded with the real `kernels` loader (`get_local_kernel`) when that Python has
it, otherwise by the same mechanism by hand (the variant's __init__.py executed as a package
named after metadata `id`). Around each load, the torch dispatcher's registrations are compared
(`torch._C._dispatch_get_registrations_for_dispatch_key("")` lists every operator name,
including impl-only ones; `_dispatch_dump` each one's schema and kernels with the file:line
they were registered at). Loading a variant must register nothing outside its own namespace
(metadata `id`), nor in the namespaces of the kernels it loads as kernel-depends:

- a new operator in another namespace is the variant's (`TORCH_LIBRARY(mykernel, m)`,
  `torch.library.custom_op("mykernel::op")`, `Library("mykernel", "DEF")`) unless torch's own
  files registered it (a torch module the kernel imports may register ops lazily: importing
  torch._dynamo adds ~40 in 10 namespaces); for a custom_op, the function it was made from
  says whose it is;
- a new kernel on an existing operator (an `aten` override) is the variant's unless it was
  registered from torch's own files or a folder torch registered from before (torch's lazy
  registrations, e.g. of a torch module the kernel imports).

Several variants are checked in one process, one after the other, each against the state just
before it was loaded, so one variant's registrations are never blamed on another. A variant that
fails ends its process (what it registered before failing must not trip the next one), and the
rest are checked in a new one; a variant that passed registered only in its own namespace. When
loading a variant kills the process (registering a namespace twice aborts it), that variant is
reported with the process's last words. Variants with the same `id` go to separate processes
(the loader would reuse the first one's module).

A torch that cannot be imported there (a CUDA wheel without its runtime libraries) makes the
check a warning instead of a failure: the variant was still built and checked statically.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .layout import Finding

MARK = "KB-IMPORT-CHECK:"  # prefixes our records on stdout, which the kernel's code may print to too
_SCRIPT = r"""
import importlib.util, json, os, sys, traceback
from pathlib import Path

MARK = sys.argv[1]


def emit(**record):
    sys.stdout.write("\n" + MARK + json.dumps(record) + "\n")
    sys.stdout.flush()


def leave():
    # os._exit: tearing down a Python with torch loaded takes about a second, and nothing is
    # left to run (output is flushed).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


try:
    import torch
except Exception as exc:
    emit(event="no-torch", error=f"{type(exc).__name__}: {exc}")
    leave()
try:
    import kernels
except ImportError:
    kernels = None
try:  # ops made with torch.library.custom_op, with the function they were made from
    from torch._library.custom_ops import OPDEFS
except ImportError:
    OPDEFS = {}


TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


def registrations():
    names = torch._C._dispatch_get_registrations_for_dispatch_key("")
    return {name: torch._C._dispatch_dump(name) for name in names}


def location(line):
    # "CPU: registered at /path/file.cpp:12 :: (Tensor _0) -> ..." / "debug: registered at /path/x.py:5"
    text = line.split("registered at ", 1)[1] if "registered at " in line else ""
    return text.split(" :: ", 1)[0].strip()


def folder(where):
    return os.path.dirname(where.rsplit(":", 1)[0]) if where else ""


def kernel_lines(dump):
    # Registration lines, with the "(inactive)" marker that an override puts on the old one removed.
    return {line.replace(" (inactive):", ":") for line in dump.splitlines() if "registered at " in line}


def origin(name, dump):
    # Where a new op was registered; None for torch's own (lazy) registrations, which come from
    # torch's files. An op made by custom_op also comes from torch's files: its function says
    # whose it is.
    lines = dump.splitlines()
    where = location(next((l for l in lines if l.startswith("debug: ")), "")) or location(next((l for l in lines if "registered at " in l), ""))
    if not where.startswith(TORCH_DIR):
        return where
    code = getattr(getattr(OPDEFS.get(name), "_init_fn", None), "__code__", None)
    if code is not None and not code.co_filename.startswith(TORCH_DIR):
        return f"{code.co_filename}:{code.co_firstlineno}"
    return None


def loaded_ids():
    return {k.metadata.id for k in kernels.get_loaded_kernels()} if kernels is not None else set()


def load(variant, module_id):
    if kernels is not None:
        return kernels.get_local_kernel(variant), "kernels.get_local_kernel"
    spec = importlib.util.spec_from_file_location(module_id, variant / "__init__.py", submodule_search_locations=[str(variant)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_id] = module
    spec.loader.exec_module(module)
    return module, "importlib"


# The dispatcher's state before the first variant: taken before the variants are read, so that
# a process started early (--stdin) has it ready; each variant is then compared with the state
# just before it (the previous one's "after").
after = registrations()
ARGS = sys.argv[2:]
if ARGS == ["--stdin"]:  # started early (torch imported while the variants compiled): now read them
    ARGS = [line for line in sys.stdin.read().splitlines() if line]

for arg in ARGS:
    variant = Path(arg)
    emit(event="start", variant=arg)
    try:
        module_id = json.loads((variant / "metadata.json").read_text())["id"]
        before = after
        known_folders = {folder(location(line)) for dump in before.values() for line in dump.splitlines() if "registered at " in line}
        ids_before = loaded_ids()
        module, how = load(variant, module_id)
        after = registrations()
    except BaseException:
        emit(event="result", variant=arg, loaded=False, error=traceback.format_exc()[-6000:])
        leave()  # what it left behind must not be blamed on the next variant: a new process takes over
    allowed = {module_id} | (loaded_ids() - ids_before)  # its own namespace and its kernel-depends'
    foreign = []
    for name, dump in sorted(after.items()):
        if name.split("::", 1)[0] in allowed or before.get(name) == dump:
            continue
        if name not in before:
            where = origin(name, dump)
            if where is not None:
                foreign.append({"op": name, "where": where, "new": True})
            continue
        for line in sorted(kernel_lines(dump) - kernel_lines(before[name])):
            where = location(line)
            if folder(where) not in known_folders and not where.startswith(TORCH_DIR):
                foreign.append({"op": name, "where": where, "new": False, "key": line.split(":", 1)[0]})
    emit(event="result", variant=arg, loaded=True, how=how, module=module.__name__, foreign=foreign, allowed=sorted(allowed))
    if foreign:
        leave()  # as above
leave()
"""


@dataclass
class _Run:
    """What one subprocess reported."""

    results: dict[str, dict] = field(default_factory=dict)
    started: str | None = None  # the last variant it began loading
    no_torch: str | None = None


def _parse(stdout: str) -> _Run:
    run = _Run()
    for line in stdout.splitlines():
        if not line.startswith(MARK):
            continue
        try:
            record = json.loads(line[len(MARK):])
        except ValueError:
            continue
        if record.get("event") == "start":
            run.started = record["variant"]
        elif record.get("event") == "result":
            run.results[record["variant"]] = record
            run.started = None
        elif record.get("event") == "no-torch":
            run.no_torch = record.get("error", "")
    return run


def _tail(text: str, lines: int = 12) -> str:
    """The last lines of a process's stderr, without C++ stack frames (after an abort, the
    reason is in the `what():` line above them)."""
    kept = [line for line in text.strip().splitlines() if not line.startswith(("frame #", "Exception raised from "))]
    return "\n    ".join(kept[-lines:]) or "(no output)"


def _language(where: str) -> str:
    return "Python" if where.rsplit(":", 1)[0].endswith(".py") else "C++"


def foreign_message(module_id: str, foreign: list[dict]) -> str:
    """The refusal for registrations outside the variant's namespace, naming what to use."""
    shown = []
    for item in foreign[:8]:
        what = item["op"] if item["new"] else f"a {item.get('key', '')} kernel for torch's {item['op']}"
        shown.append(f"{what} ({_language(item['where'])}, registered at {item['where'] or 'an unknown place'})")
    if len(foreign) > 8:
        shown.append(f"and {len(foreign) - 8} more")
    languages = {_language(item["where"]) for item in foreign}
    hints = []
    if "C++" in languages:
        hints.append("in C++ register with TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) and "
                     "TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, <dispatch key>, m) from registration.h "
                     "(STABLE_TORCH_LIBRARY_EXPAND with the stable ABI), never TORCH_LIBRARY(<name>, m)")
    if "Python" in languages:
        hints.append("in Python name ops with add_op_namespace_prefix(\"<op>\") from ._ops (torch.library.custom_op, "
                     "register_fake, Library(...)) instead of a literal namespace")
    return (f"import check: loading the kernel registers ops outside its namespace {module_id}: " + "; ".join(shown)
            + ". Every build must register only in its own unique namespace (a literal one collides between builds and "
            "is not where `ops` looks): " + "; ".join(hints) + ".")


def _finding(variant: Path, record: dict) -> Finding | None:
    if not record.get("loaded"):
        return Finding(variant.name, f"import check failed: the kernel does not load:\n    {_tail(record.get('error', ''))}")
    if record.get("foreign"):
        return Finding(variant.name, foreign_message(_module_id(variant) or variant.name, record["foreign"]))
    return None


def _module_id(variant: Path) -> str | None:
    try:
        value = json.loads((variant / "metadata.json").read_text()).get("id")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _rounds(variants: list[Path]) -> list[list[Path]]:
    """Split so that no process loads two variants with the same id (or an unreadable one with another)."""
    rounds: list[list[Path]] = []
    seen: list[set[str]] = []
    for variant in variants:
        key = _module_id(variant) or f"?{variant}"
        for index, ids in enumerate(seen):
            if key not in ids:
                rounds[index].append(variant)
                ids.add(key)
                break
        else:
            rounds.append([variant])
            seen.append({key})
    return rounds


def _crash_reason(returncode: int | None, stderr: str) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"loading it killed the Python process ({name})"
    return f"the Python process exited with code {returncode} while loading it"


def _collect(python: Path, remaining: list[Path], stdout: str, stderr: str, returncode: int | None, timed_out: bool, timeout: float,
             results: dict[Path, Finding | None]) -> list[Path]:
    """Record what one process reported about `remaining`; return those still to check (in a new process)."""
    run = _parse(stdout)
    why = f"loading took longer than {timeout:.0f} s" if timed_out else _crash_reason(returncode, stderr)
    if run.no_torch is not None:
        for variant in remaining:
            results[variant] = Finding(variant.name, f"import check skipped: torch cannot be imported by {python} ({run.no_torch})", warning=True)
        return []
    for variant in remaining:
        if str(variant) in run.results:
            results[variant] = _finding(variant, run.results[str(variant)])
    if run.started is not None:
        crashed = Path(run.started)
        results[crashed] = Finding(crashed.name, f"import check failed: {why}:\n    {_tail(stderr)}")
    left = [v for v in remaining if v not in results]
    if len(left) == len(remaining):  # it stopped before loading any of them: do not loop
        for variant in left:
            results[variant] = Finding(variant.name, f"import check failed: {why}:\n    {_tail(stderr)}")
        return []
    return left  # after a failed variant (or a crash): the rest in a new process


def _environment() -> dict:
    """The checking process's environment: no __pycache__ written into the variant being checked
    (it would be installed with it)."""
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def import_check_many(python: Path, variants: list[Path], timeout: float = 600, *, results: dict[Path, Finding | None] | None = None) -> dict[Path, Finding | None]:
    """Load every variant in `python`; for each, None when it loads and registers only in its
    own namespace, else a Finding (a warning when torch itself cannot be imported there)."""
    variants = [Path(v) for v in variants]
    results = {} if results is None else results
    for group in _rounds(variants):
        remaining = list(group)
        while remaining:
            command = [str(python), "-c", _SCRIPT, MARK, *map(str, remaining)]
            try:
                done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout, env=_environment())
                stdout, stderr, returncode, timed_out = done.stdout, done.stderr, done.returncode, False
            except subprocess.TimeoutExpired as exc:
                stdout, stderr, returncode, timed_out = _text(exc.stdout), _text(exc.stderr), None, True
            except OSError as exc:
                for variant in remaining:
                    results[variant] = Finding(variant.name, f"import check: cannot run {python}: {exc}")
                break
            remaining = _collect(python, remaining, stdout, stderr, returncode, timed_out, timeout, results)
    return results


class WarmImportCheck:
    """An import-check process started before its variants exist.

    Importing torch and the loader takes seconds (about 2 s for a CPU torch, more for CUDA); a
    build starts this process when it starts compiling the variants of one environment, so that
    cost overlaps compilation, and hands it the variants once they are built. What the first
    process cannot take (a second round of equal ids, the rest after a failing variant) goes
    through import_check_many.
    """

    def __init__(self, python: Path, timeout: float = 600, *, register=None):
        self.python, self.timeout = Path(python), timeout
        self.process: subprocess.Popen | None = None
        try:
            self.process = subprocess.Popen([str(self.python), "-c", _SCRIPT, MARK, "--stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True, env=_environment())
        except OSError:
            self.process = None  # check() falls back to import_check_many, which reports the error
        if self.process is not None and register is not None:
            register(self.process)

    def check(self, variants: list[Path]) -> dict[Path, Finding | None]:
        variants = [Path(v) for v in variants]
        results: dict[Path, Finding | None] = {}
        if not variants:
            self.close()
            return results
        rounds = _rounds(variants)
        first, rest = (rounds[0], [v for r in rounds[1:] for v in r]) if self.process is not None else ([], variants)
        if first:
            try:
                stdout, stderr = self.process.communicate("\n".join(map(str, first)) + "\n", timeout=self.timeout)
                returncode, timed_out = self.process.returncode, False
            except subprocess.TimeoutExpired:
                self.process.kill()
                stdout, stderr = self.process.communicate()
                returncode, timed_out = None, True
            rest = _collect(self.python, first, stdout, stderr, returncode, timed_out, self.timeout, results) + rest
        if rest:
            import_check_many(self.python, rest, self.timeout, results=results)
        return results

    def close(self) -> None:
        """Stop the process if it is still waiting (no variant of its environment was built)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def import_check(python: Path, variant: Path, timeout: float = 600) -> Finding | None:
    """import_check_many for one variant."""
    return import_check_many(python, [variant], timeout)[Path(variant)]
