"""`kernel-builder fill-card`: the card from __all__, docstrings (read with ast), layers and build.toml."""

from __future__ import annotations

import textwrap

import pytest

from kbtest_util import assert_bad_input, assert_ok, invoke

TOML = """\
[general]
name = "act"
version = 3
edition = 5
license = "Apache-2.0"
backends = ["cpu"]
upstream = "https://github.com/example/act"

[general.hub]
repo-id = "kb-test/act"

[torch-noarch]
"""


def make(tmp_path, init: str, *, layers: str | None = None, toml: str = TOML, benchmark: bool = True):
    root = tmp_path / "act"
    package = root / "torch-ext" / "act"
    package.mkdir(parents=True)
    (root / "build.toml").write_text(toml)
    (package / "__init__.py").write_text(textwrap.dedent(init))
    (package / "_impl.py").write_text('def gelu_fast(x):\n    """Fast GELU approximation.\n\n    More text."""\n')
    if layers is not None:
        (package / "layers.py").write_text(textwrap.dedent(layers))
    if benchmark:
        (root / "benchmarks").mkdir()
        (root / "benchmarks" / "benchmark.py").write_text("# bench\n")
    return root


INIT = '''\
    """Activations."""
    import torch  # never imported by fill-card: torch is not even needed here
    from ._impl import gelu_fast
    from . import layers

    def silu(x):
        """SiLU, elementwise.

        Details that stay out of the card."""
        return x

    def undocumented(x):
        return x

    __all__ = ["silu", "gelu_fast"]
    __all__ += ["undocumented", "layers"]
'''
LAYERS = '''\
    class SiluLayer:
        """A module that applies silu."""

    class _Private:
        pass
'''


def test_card_lists_functions_layers_and_facts(tmp_path):
    root = make(tmp_path, INIT, layers=LAYERS)
    variant = root / "build" / "torch-cpu"
    variant.mkdir(parents=True)
    (variant / "metadata.json").write_text("{}")
    assert_ok(invoke("fill-card", root))
    card = (root / "build" / "CARD.md").read_text()
    assert card.startswith("---\nlibrary_name: kernels\nlicense: apache-2.0\n")
    assert 'get_kernel("kb-test/act", version=3)' in card
    assert "### `silu`\n\nSiLU, elementwise." in card and "Details that stay out" not in card
    assert "### `gelu_fast`\n\nFast GELU approximation." in card
    assert "### `undocumented`" in card
    assert "### `SiluLayer`\n\nA module that applies silu." in card and "_Private" not in card
    assert "### `layers`" not in card
    assert "- `torch-cpu`" in card and "kernels benchmark kb-test/act" in card
    assert "Upstream: https://github.com/example/act" in card


def test_output_option_repo_id_and_an_upstream_style_template(tmp_path):
    root = make(tmp_path, INIT, layers=LAYERS, benchmark=False)
    (root / "CARD.md").write_text("{{ repo_id }} v{{ version }} {{ license }}\n{% for f in functions %}{{ f }},{% endfor %}\n"
                                  "{% for l in layers %}{{ l }}{% endfor %} bench={{ has_benchmark }} src={{ source }}\n")
    out = tmp_path / "out" / "README.md"
    assert_ok(invoke("fill-card", root, out, "--repo-id", "someone/else"))
    # trim_blocks: the newline after a block tag is dropped, as in upstream templates
    assert out.read_text() == "someone/else v3 apache-2.0\nsilu,gelu_fast,undocumented,SiluLayer bench=False src=None\n"
    assert not (root / "build").exists() or not (root / "build" / "CARD.md").exists()


def test_variants_from_another_folder(tmp_path):
    # The Nix bundle's source tree has no build/: the card lists the bundle's own variant folders.
    root = make(tmp_path, INIT)
    bundle = tmp_path / "bundle"
    for name in ("torch213-cxx11-cpu-x86_64-linux", "torch212-cxx11-cu130-x86_64-linux"):
        (bundle / name).mkdir(parents=True)
        (bundle / name / "metadata.json").write_text("{}")
    out = bundle / "CARD.md"
    assert_ok(invoke("fill-card", root, out, "--variants-from", bundle))
    card = out.read_text()
    assert "- `torch212-cxx11-cu130-x86_64-linux`" in card and "- `torch213-cxx11-cpu-x86_64-linux`" in card
    assert not (root / "build").exists()


def test_no_variants_writes_build_card(tmp_path):
    root = make(tmp_path, INIT)
    assert_ok(invoke("fill-card", root))
    assert (root / "build" / "CARD.md").is_file()


@pytest.mark.parametrize("init,fragments", [
    ('def f():\n    pass\n', ["no __all__"]),
    ('names = ["f"]\n__all__ = names\n', ["__all__ must be a literal list"]),
    ('__all__ = [1]\n', ["__all__ must be a list of strings"]),
    ('def broken(:\n', ["cannot read it as Python"]),
])
def test_bad_package(tmp_path, init, fragments):
    root = make(tmp_path, init)
    assert_bad_input(invoke("fill-card", root), str(root / "torch-ext" / "act" / "__init__.py"), *fragments)


def test_missing_repo_id_and_bad_template(tmp_path):
    root = make(tmp_path, INIT, toml=TOML.replace('[general.hub]\nrepo-id = "kb-test/act"\n', ""))
    assert_bad_input(invoke("fill-card", root), "no repository id", "--repo-id")
    assert_bad_input(invoke("fill-card", root, "--repo-id", "nope"), "--repo-id", "not a Hub repository id")
    (root / "CARD.md").write_text("{% for x in %}\n")
    assert_bad_input(invoke("fill-card", root, "--repo-id", "kb-test/act"), "CARD.md:1", "cannot be rendered")


def test_template_cannot_reach_python_internals(tmp_path):
    root = make(tmp_path, INIT)
    (root / "CARD.md").write_text("{{ functions[0].__class__.__mro__[1].__subclasses__() }}\n")
    assert_bad_input(invoke("fill-card", root), "cannot be rendered")
