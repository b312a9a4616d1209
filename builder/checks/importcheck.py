"""Load a built variant in the target Python, the way the Hub loader does.

Uses the real `kernels` loader (`get_local_kernel`) when that Python has it, otherwise the same
mechanism by hand (the variant's __init__.py executed as a package named after metadata `id`).
A torch that cannot be imported there (a CUDA wheel without its runtime libraries) makes the
check a warning instead of a failure: the variant was still built and checked statically.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .layout import Finding

_SCRIPT = r"""
import importlib.util, json, sys
from pathlib import Path
variant = Path(sys.argv[1])
try:
    import torch  # noqa: F401
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(3)
try:
    try:
        import kernels
    except ImportError:
        kernels = None
    if kernels is not None:
        module = kernels.get_local_kernel(variant)
        how = "kernels.get_local_kernel"
    else:
        module_id = json.loads((variant / "metadata.json").read_text())["id"]
        spec = importlib.util.spec_from_file_location(module_id, variant / "__init__.py", submodule_search_locations=[str(variant)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_id] = module
        spec.loader.exec_module(module)
        how = "importlib"
except BaseException as exc:
    import traceback
    traceback.print_exc()
    sys.exit(4)
print(f"{how}: {module.__name__}")
"""


def import_check(python: Path, variant: Path, timeout: float = 600) -> Finding | None:
    """None when the variant loads; a Finding (warning if torch itself cannot load) otherwise."""
    try:
        result = subprocess.run([str(python), "-c", _SCRIPT, str(variant)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Finding(variant.name, f"import check: loading the kernel took longer than {timeout:.0f} s")
    if result.returncode == 0:
        return None
    detail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
    if result.returncode == 3:
        return Finding(variant.name, f"import check skipped: torch cannot be imported by {python} ({detail})", warning=True)
    tail = "\n    ".join(result.stderr.strip().splitlines()[-12:])
    return Finding(variant.name, f"import check failed: the kernel does not load:\n    {tail}")
