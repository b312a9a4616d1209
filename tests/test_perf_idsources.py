"""Which kernel sources are compiled with the unique ops namespace (builder/render/idsources.py).

A source that may use TORCH_EXTENSION_NAME must get it; one that cannot should not, so that a
new id does not recompile it. When in doubt, the scan gives the id.
"""

from __future__ import annotations

from pathlib import Path

from kernel_builder.config import load_config
from kernel_builder.render.description import kernel_description
import pytest

from kernel_builder.render.idsources import id_sources, ops_name_at_link, strip_comments

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


# ---------------------------------------------------------------------------------------------
# Bindings that take the namespace at link time (registration.h, KB_OPS_NAME_AT_LINK)

REGISTRATION = """\
#include <torch/library.h>
#include "registration.h"
#include "torch_binding.h"
TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) { ops.def("f(Tensor x) -> Tensor"); }
TORCH_LIBRARY_IMPL_EXPAND( TORCH_EXTENSION_NAME , CPU, ops) {}
REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
"""


def at_link(tmp_path: Path, binding: str, extra: dict[str, str] | None = None, binding_name: str = "torch_binding.cpp") -> bool:
    files = {f"torch-ext/{binding_name}": binding, "torch-ext/torch_binding.h": "int f();\n", "src/kernel.cpp": "int f() { return 1; }\n",
             **(extra or {})}
    root = kernel(tmp_path, files)
    if binding_name != "torch_binding.cpp":
        (root / "torch-ext" / "torch_binding.cpp").unlink()
        toml = (root / "build.toml").read_text().replace("torch-ext/torch_binding.cpp", f"torch-ext/{binding_name}")
        (root / "build.toml").write_text(toml)
    return ops_name_at_link(load_config(root))


def test_registration_only_bindings_take_the_namespace_at_link_time(tmp_path):
    assert at_link(tmp_path, REGISTRATION)
    config = load_config(tmp_path / "scan")
    assert "set(KB_OPS_NAME_AT_LINK [[ON]])" in kernel_description(config, unique_id="abc", source_dir_rel=".").splitlines()


@pytest.mark.parametrize("binding,extra,why", [
    (REGISTRATION + 'const char *name = KB_STR(TORCH_EXTENSION_NAME);\n', None, "another use"),
    (REGISTRATION + "REGISTER_EXTENSION(TORCH_EXTENSION_NAME)\n", None, "two module inits"),
    (REGISTRATION.replace("REGISTER_EXTENSION(TORCH_EXTENSION_NAME)\n", ""), None, "no module init"),
    ("#undef TORCH_LIBRARY_EXPAND\n" + REGISTRATION, None, "a macro redefined"),
    (REGISTRATION + 'const char *r = R"(x)";\n', None, "a raw string"),
    (REGISTRATION.replace('#include "torch_binding.h"', '#include "ns.h"'), {"torch-ext/ns.h": "#define NS TORCH_EXTENSION_NAME\n"},
     "a reached header that uses it"),
    (REGISTRATION.replace("TORCH_LIBRARY_EXPAND(", "STABLE_TORCH_LIBRARY_EXPAND("), None, "the stable ABI's macros"),
])
def test_any_other_use_keeps_the_id_on_the_bindings(tmp_path, binding, extra, why):
    assert not at_link(tmp_path, binding, extra), why


def test_a_cuda_binding_keeps_the_id(tmp_path):
    assert not at_link(tmp_path, REGISTRATION, binding_name="torch_binding.cu")


def test_a_registration_in_another_namespace_keeps_the_id(tmp_path):
    # Taken at link time, TORCH_LIBRARY_EXPAND(other, m) would register in this build's namespace.
    binding = REGISTRATION.replace("TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops)", "#define OTHER relu_ops\nTORCH_LIBRARY_EXPAND(OTHER, ops)")
    assert not at_link(tmp_path, binding)
