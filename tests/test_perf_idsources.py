"""Which kernel sources are compiled with the unique ops namespace (builder/render/idsources.py).

A source that may use TORCH_EXTENSION_NAME must get it; one that cannot should not, so that a
new id does not recompile it. When in doubt, the scan gives the id.
"""

from __future__ import annotations

from pathlib import Path

from kernel_builder.config import load_config
from kernel_builder.render.description import kernel_description
from kernel_builder.render.idsources import id_sources, strip_comments

TOML = """\
[general]
name = "scan"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu"]

[torch]
src = ["torch-ext/torch_binding.cpp"]

[kernel.scan_cpu]
backend = "cpu"
depends = ["torch"]
include = ["include"]
src = [{sources}]
"""


def kernel(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "scan"
    files = {"torch-ext/torch_binding.cpp": "TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) {}\n", "torch-ext/scan/__init__.py": "", **files}
    sources = ", ".join(f'"{rel}"' for rel in files if rel.startswith("src/"))
    files["build.toml"] = TOML.format(sources=sources)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "include").mkdir(exist_ok=True)
    return root


def scanned(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return id_sources(load_config(kernel(tmp_path, files)))


def test_a_source_naming_the_macro_gets_the_id(tmp_path):
    assert scanned(tmp_path, {
        "src/uses.cpp": "const char *ns = KB_STR(TORCH_EXTENSION_NAME);\n",
        "src/plain.cpp": "int plain() { return 1; }\n",
    }) == ["src/uses.cpp"]


def test_a_source_reaching_the_macro_through_headers_gets_the_id(tmp_path):
    assert scanned(tmp_path, {
        "src/relative.cpp": '#include "detail/a.h"\n',
        "src/detail/a.h": '#include "b.h"  // the next one\n',
        "src/detail/b.h": "#define NS TORCH_EXTENSION_NAME\n",
        "src/angled.cpp": "#include <ns.h>\n",  # from the section's include folder
        "include/ns.h": "#ifdef TORCH_EXTENSION_NAME\n#endif\n",
        "src/plain.cpp": "#include <vector>\n#include <torch/all.h>\n#include \"detail/c.h\"\n",
        "src/detail/c.h": "#include \"c.h\"\nint c();\n",  # a cycle ends
    }) == ["src/relative.cpp", "src/angled.cpp"]


def test_comments_do_not_count_but_doubt_does(tmp_path):
    assert scanned(tmp_path, {
        "src/comment.cpp": "// TORCH_EXTENSION_NAME is not used here\n/* nor\n TORCH_EXTENSION_NAME here */ int f();\n",
        "src/string.cpp": 'const char *s = "/* not a comment"; int g = TORCH_EXTENSION_NAME_len; // */\n',
        "src/computed.cpp": "#define HEADER <vector>\n#include HEADER\n",
        "src/raw.cpp": 'const char *r = R"(TORCH)";\n',
    }) == ["src/computed.cpp", "src/raw.cpp"]


def test_strip_comments_keeps_literals():
    assert strip_comments(b'a("//x"); /* y */ b(\'/\'); // z\nc') == b'a("//x");   b(\'/\');  \nc'


def test_the_description_lists_them_and_the_bindings_are_implied(tmp_path):
    config = load_config(kernel(tmp_path, {"src/uses.cpp": "TORCH_EXTENSION_NAME\n", "src/plain.cpp": "\n"}))
    text = kernel_description(config, unique_id="abc", source_dir_rel=".")
    assert "set(KB_ID_SOURCES [[src/uses.cpp]])" in text.splitlines()
