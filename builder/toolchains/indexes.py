"""Where toolchain packages are looked for: pip's and uv's conventions, plus a torch index.

Sources, later ones adding to earlier ones (the command line replaces the environment):
- the default index: `--index-url`, else `UV_DEFAULT_INDEX`/`UV_INDEX_URL`/`PIP_INDEX_URL`,
  else PyPI;
- extra indexes: `--extra-index-url`, else `UV_INDEX`/`UV_EXTRA_INDEX_URL`/`PIP_EXTRA_INDEX_URL`;
- local folders of wheels: `--find-links`, else `UV_FIND_LINKS`/`PIP_FIND_LINKS`;
- `--torch-index`/`KERNEL_BUILDER_TORCH_INDEX`: the base of a PyTorch-style index
  (https://download.pytorch.org/whl), used, as uv's torch-backend option does, for torch
  builds of one compute backend at `<base>/cpu`, `<base>/cu126`, ...
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

PYPI = "https://pypi.org/simple"
PYTORCH_INDEX = "https://download.pytorch.org/whl"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split() if v)


@dataclass(frozen=True)
class IndexSettings:
    index_url: str = PYPI
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    torch_index: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # setting -> where it came from

    @classmethod
    def from_environment(cls, *, index_url: str | None = None, extra_index_urls: tuple[str, ...] = (), find_links: tuple[str, ...] = (),
                         torch_index: str | None = None, environ: dict | None = None) -> "IndexSettings":
        """Settings from command-line values, falling back to uv's, then pip's variables."""
        env = os.environ if environ is None else environ
        sources: dict[str, str] = {}

        def pick(name: str, given, variables: tuple[str, ...], default, split: bool):
            if given:
                sources[name] = "command line"
                return given
            for var in variables:
                if env.get(var):
                    sources[name] = var
                    return _split(env[var]) if split else env[var].strip()
            return default

        return cls(
            index_url=pick("index-url", index_url, ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"), PYPI, False),
            extra_index_urls=tuple(pick("extra-index-url", tuple(extra_index_urls), ("UV_INDEX", "UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL"), (), True)),
            find_links=tuple(pick("find-links", tuple(find_links), ("UV_FIND_LINKS", "PIP_FIND_LINKS"), (), True)),
            torch_index=pick("torch-index", torch_index, ("KERNEL_BUILDER_TORCH_INDEX",), None, False),
            sources=sources,
        )

    def torch_index_for(self, compute: str) -> str | None:
        """The PyTorch-style index holding torch builds for `compute` (cpu, cu126, ...), if set."""
        return f"{self.torch_index.rstrip('/')}/{compute}" if self.torch_index else None

    def uv_arguments(self, compute: str | None = None) -> list[str]:
        """Index arguments for `uv pip compile` (uv gives --extra-index-url priority)."""
        args = ["--index-url", self.index_url]
        torch_index = self.torch_index_for(compute) if compute else None
        for url in ((torch_index,) if torch_index else ()) + self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args

    def describe(self) -> str:
        parts = [self.index_url, *self.extra_index_urls, *(f"find-links {f}" for f in self.find_links)]
        if self.torch_index:
            parts.append(f"torch index {self.torch_index}/<compute>")
        return ", ".join(parts)

    def to_json(self) -> dict:
        return {"index-url": self.index_url, "extra-index-urls": list(self.extra_index_urls), "find-links": list(self.find_links), "torch-index": self.torch_index}

    @property
    def fingerprint(self) -> str:
        """Changes when the places looked in change (a failed resolution is then tried again)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def where_torch_is(torch: str, compute: str) -> str:
    """Advice for a torch build the configured indexes do not have."""
    url = f"{PYTORCH_INDEX}/{compute}"
    return (f"the PyTorch index has torch {torch} builds for {compute}: pass --extra-index-url {url}, "
            f"or set KERNEL_BUILDER_TORCH_INDEX={PYTORCH_INDEX} (uv's torch-backend convention: {PYTORCH_INDEX}/<compute>)")
