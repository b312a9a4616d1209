"""`kernel-builder init`: a new kernel repository that builds and passes its own tests as created.

The scaffold is an edition-5 build.toml, a flake.nix that uses kernel-builder's flake library,
the torch-ext binding and Python package, one source per backend, tests, an example, a
benchmark, a CARD.md template (rendered by `fill-card`), .gitignore and .gitattributes. The
files come from templates/scaffold/; `plan_scaffold` renders them (pure), `init_kernel` writes
them and stages them in git.
"""

from __future__ import annotations

from .init import DEFAULT_BACKENDS, FLAKE_URL, SUPPORTED_BACKENDS, InitResult, KernelName, init_kernel, parse_backends, parse_name, plan_scaffold

__all__ = ["DEFAULT_BACKENDS", "FLAKE_URL", "SUPPORTED_BACKENDS", "InitResult", "KernelName", "init_kernel", "parse_backends", "parse_name", "plan_scaffold"]
