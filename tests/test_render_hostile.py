"""Hostile values rendered into every generated file: they stay data, nothing executes.

build.toml values are validated, but the renderer must be safe without that help (issue 12,
item 1). These tests build configurations in memory, bypassing validation, with values full of
CMake, shell, Python and TOML syntax, and check:

- CMakeLists.txt holds no value at all (byte-identical to a benign rendering);
- cmake/kernel-description.cmake gives CMake back exactly the values (read by `cmake -P`);
- the CMake-side quoting (kb_bracket, for install(CODE)) round-trips too;
- setup.py, _ops.py and the legacy __init__.py have the benign rendering's syntax tree, with
  the hostile values as string constants; pyproject.toml and metadata parse to the values;
- a real configure, build and install with hostile section names, flags and include folders
  succeeds and writes none of the payload files (slow: it compiles).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kbtest_util import REPO
from kernel_builder.config import load_config
from kernel_builder.config.model import BuildConfig, General, Kernel, NoarchFramework, TorchFramework
from kernel_builder.config.parse import tomllib
from kernel_builder.layout.metadata import ops_name
from kernel_builder.render import render_legacy_init, render_noarch_ops, render_project
from kernel_builder.render.tree import write_tree
from kernel_builder.standalone.cmakedata import bracket, list_item_problem, set_command

CMAKE = shutil.which("cmake")
needs_cmake = pytest.mark.skipif(CMAKE is None, reason="cmake is not installed")

# {m} is replaced by the path of a marker file: if any payload ran, the marker exists.
PAYLOADS = [
    'x\nfile(WRITE "{m}" "newline")\n#',
    'x") file(WRITE "{m}" "quote") #',
    'x]] file(WRITE "{m}" "bracket") #[[',
    'x]=] file(WRITE "{m}" "bracket1") #[=[',
    "x]==]",
    "]",
    "a]",
    "a]=",
    "${HOME}",
    "$ENV{HOME}",
    "$<1:x>",
    "$<TARGET_FILE:x>",
    '$(touch "{m}")',
    '`touch "{m}"`',
    "\\",
    "a\\",
    '\\"',
    "\\n",
    "\\${HOME}",
    '"',
    "'",
    '"""',
    "'''",
    "\n",
    "\nleading newline",
    "trailing newline\n",
    "\rx",
    "x\r",
    "\t",
    "é日😀",
    "\u2028",
    "\x7f",
    "\x1b[31m",
    "#",
    "@KB_OPS_NAME@",
    "{{ x }}",
    "{% if x %}",
    "');import os;os.system('touch {m}');('",
    '");import os;os.system("touch {m}");("',
]


def hostile(marker: Path) -> list[str]:
    return [p.replace("{m}", str(marker)) for p in PAYLOADS]


def _list_item(value: str) -> str:
    """`value` made a valid list item (what CMake lists cannot hold is refused, see below)."""
    item = value.replace(";", ":").replace("[", "(").replace("]", ")") or "empty"
    return item + "x" if item.endswith("\\") else item


def _config(value: str, root: Path, *, noarch: bool = False) -> BuildConfig:
    """A configuration with `value` in every string field (no validation)."""
    general = General(name=value, version=1, license=value, backends=("cpu", "cuda"), python_depends=())
    items = (_list_item(value), "plain")
    if noarch:
        framework = NoarchFramework(pyext=("py", _list_item(value)))
        kernels: tuple[Kernel, ...] = ()
    else:
        framework = TorchFramework(src=items, include=items, pyext=("py", items[0]), cxx_flags=items)
        kernels = (
            Kernel(name=value, backend="cpu", depends=("torch",), src=items, include=items, cxx_flags=items),
            Kernel(name=value + "2", backend="cuda", depends=("torch", "cutlass_3_6"), src=items, include=items, cxx_flags=items,
                   cuda_flags=items, cuda_capabilities=items),
            Kernel(name="r", backend="rocm", depends=("torch",), src=items, rocm_archs=items, hip_flags=items),
            Kernel(name="x", backend="xpu", depends=("torch",), src=items, sycl_flags=items),
        )
    return BuildConfig(general, framework, kernels, path=root / "build.toml")


def _cmake_values(description: Path, names: list[str], tmp_path: Path) -> dict[str, tuple[str, int]]:
    """{variable: (value, list length)} as CMake reads them from `description`."""
    out = tmp_path / "values.txt"
    script = tmp_path / "dump.cmake"
    script.write_text(
        'include("${DATA}")\n'
        'file(WRITE "${OUT}" "")\n'
        "foreach(name IN LISTS NAMES)\n"
        '  set(value "${${name}}")\n'
        "  string(LENGTH \"${value}\" bytes)\n"
        "  list(LENGTH ${name} count)\n"
        '  file(APPEND "${OUT}" "${bytes} ${count} ${value}\\n")\n'
        "endforeach()\n"
    )
    result = subprocess.run([CMAKE, f"-DDATA={description}", f"-DOUT={out}", "-DNAMES=" + ";".join(names), "-P", str(script)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    values = {}
    for name in names:
        size, count, rest = data.split(b" ", 2)
        value = rest[: int(size)]
        assert rest[int(size): int(size) + 1] == b"\n"
        data = rest[int(size) + 1:]
        values[name] = (value.decode(), int(count))
    return values


# ---------------------------------------------------------------------------------------------
# The escaping function


@needs_cmake
def test_bracket_round_trips_through_cmake(tmp_path):
    marker = tmp_path / "marker"
    values = hostile(marker) + ["", "a;b", ";", "]]]", "]=]]==]]===]", "[[", "[=["]
    data = tmp_path / "data.cmake"
    data.write_text("\n".join(set_command(f"V{i}", v) for i, v in enumerate(values)) + "\n")
    read = _cmake_values(data, [f"V{i}" for i in range(len(values))], tmp_path)
    for i, value in enumerate(values):
        assert read[f"V{i}"][0] == value, f"value {i}: {value!r}"
    assert not marker.exists()


LIST_EXTRAS = ["a[b]c", "]", "a]b", "[]", "][", "a\\[b]", "a\\]b", "a\\b", "\\\\", "a[b", "[[", "a\\", "x\\\\\\", "", "a;b", "[;]"]


@needs_cmake
def test_bracket_lists_round_trip_through_cmake(tmp_path):
    """Items CMake reads back as themselves are written; the others are refused, never mangled."""
    candidates = hostile(tmp_path / "marker") + LIST_EXTRAS
    items = [v for v in candidates if list_item_problem(v) is None]
    refused = [v for v in candidates if list_item_problem(v) is not None]
    assert {"a[b", "[[", "]", "a]b", "a\\", "\\\\", "", "a;b", "[;]"} <= set(refused) and {"a[b]c", "a\\[b]", "[]", "]["} <= set(items)
    for item in refused:
        with pytest.raises(ValueError):
            set_command("L", ["ok", item])
    data = tmp_path / "data.cmake"
    data.write_text(set_command("L", items) + "\n" + set_command("E", []) + "\n")
    read = _cmake_values(data, ["L", "E"], tmp_path)
    assert read["L"] == (";".join(items), len(items))
    assert read["E"] == ("", 0)
    # Each item alone is one item too, and so is each one next to every other.
    for item in items:
        one = tmp_path / "one.cmake"
        one.write_text(set_command("L", [item, "after"]) + "\n")
        assert _cmake_values(one, ["L"], tmp_path)["L"] == (item + ";after", 2), repr(item)


def test_what_a_bracket_argument_cannot_carry_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        bracket("a\0b")
    with pytest.raises(ValueError, match="carriage return"):
        bracket("a\r\nb")
    with pytest.raises(ValueError, match="';'"):
        set_command("L", ["a;b"])
    with pytest.raises(ValueError, match="empty"):
        set_command("L", [""])
    with pytest.raises(ValueError, match="variable name"):
        set_command("A B", "x")


@needs_cmake
def test_cmake_side_bracket_for_install_code_round_trips(tmp_path):
    """kb_bracket (kernel-builder.cmake) quotes values for install(CODE); EVAL reads them back."""
    marker = tmp_path / "marker"
    values = hostile(marker) + ["", "a;b", "]]]", "]=]]==]"]
    data = tmp_path / "data.cmake"
    data.write_text("\n".join(set_command(f"V{i}", v) for i, v in enumerate(values)) + "\n")
    out = tmp_path / "out.txt"
    script = tmp_path / "check.cmake"
    module = REPO / "templates" / "cmake" / "kernel-builder.cmake"
    script.write_text(
        "cmake_minimum_required(VERSION 3.25)\n"
        f"include({bracket(str(module))})\n"
        'include("${DATA}")\n'
        'file(WRITE "${OUT}" "")\n'
        f"foreach(i RANGE 0 {len(values) - 1})\n"
        '  kb_bracket(quoted "${V${i}}")\n'
        '  cmake_language(EVAL CODE "set(back ${quoted})")\n'
        '  if(back STREQUAL V${i})\n'
        '    file(APPEND "${OUT}" "${i} ok\\n")\n'
        "  else()\n"
        '    file(APPEND "${OUT}" "${i} DIFFERENT\\n")\n'
        "  endif()\n"
        "endforeach()\n"
    )
    result = subprocess.run([CMAKE, f"-DDATA={data}", f"-DOUT={out}", "-P", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.read_text().split("\n")[:-1] == [f"{i} ok" for i in range(len(values))]
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Every template


def _structure(source: str) -> str:
    """The syntax tree of Python source with every constant blanked out."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = None
    return ast.dump(tree)


def _constants(source: str) -> set:
    return {node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)}


def _assigned(source: str, name: str):
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned")


def _render(value: str, tmp_path: Path, tag: str, *, noarch: bool = False) -> tuple[BuildConfig, dict[str, bytes], Path]:
    root = tmp_path / f"kernel-{tag}"
    root.mkdir()
    config = _config(value, root, noarch=noarch)
    target = tmp_path / f"tree-{tag}"
    return config, render_project(config, value, {"kernel-builder": {"version": "test"}}, target), target


@needs_cmake
def test_hostile_values_in_every_generated_file(tmp_path):
    marker = tmp_path / "marker"
    _benign_config, benign, _ = _render("benign", tmp_path, "benign")
    names = None
    for n, value in enumerate(hostile(marker)):
        config, files, _target = _render(value, tmp_path, str(n))
        python_name = value.replace("-", "_")
        assert set(files) == set(benign)
        # CMakeLists.txt and the cmake/ helpers carry no value.
        assert files["CMakeLists.txt"] == benign["CMakeLists.txt"]
        assert files["cmake/kernel-builder.cmake"] == benign["cmake/kernel-builder.cmake"]
        # The description gives CMake back exactly the values.
        description = tmp_path / f"description-{n}.cmake"
        description.write_bytes(files["cmake/kernel-description.cmake"])
        names = ["KB_NAME", "KB_PYTHON_NAME", "KB_DEFAULT_UNIQUE_ID", "KB_PYEXT", "KB_SECTION_1_NAME", "KB_SECTION_0_SOURCES",
                 "KB_SECTION_0_INCLUDES", "KB_SECTION_0_CXX_FLAGS", "KB_SECTION_2_CUDA_FLAGS", "KB_SECTION_2_CAPABILITIES",
                 "KB_SECTION_3_ROCM_ARCHS", "KB_SECTION_3_HIP_FLAGS", "KB_SECTION_4_SYCL_FLAGS", "KB_SECTION_2_NAME"]
        read = _cmake_values(description, names, tmp_path)
        items = (_list_item(value), "plain")
        expected = {"KB_NAME": value, "KB_PYTHON_NAME": python_name, "KB_DEFAULT_UNIQUE_ID": value, "KB_PYEXT": "py;" + items[0],
                    "KB_SECTION_1_NAME": value, "KB_SECTION_2_NAME": value + "2"}
        for key in names:
            if key not in expected:
                expected[key] = ";".join(items)
        assert {k: v for k, (v, _count) in read.items()} == expected, f"value {n}: {value!r}"
        assert read["KB_SECTION_0_SOURCES"][1] == 2
        # setup.py: the benign syntax tree, the values as constants.
        setup = files["setup.py"].decode()
        assert _structure(setup) == _structure(benign["setup.py"].decode())
        assert _assigned(setup, "PYTHON_NAME") == python_name
        assert _assigned(setup, "OPS_NAME") == ops_name(config, "cpu", value)
        # pyproject.toml
        project = tomllib.loads(files["pyproject.toml"].decode())["project"]
        assert project["name"] == python_name and project["license"] == {"text": value} and value in project["description"]
        # metadata templates
        meta = json.loads(files["cmake/metadata-cpu.json"])
        assert meta["name"] == value and meta["license"] == value
        # Python-only variants and source trees: _ops.py, and the legacy entry point.
        for backend in (None, "cpu"):
            ops = render_noarch_ops(config, backend, value)
            assert _structure(ops) == _structure(render_noarch_ops(_benign_config, backend, "benign"))
            assert {python_name, value} <= _constants(ops)
        legacy = render_legacy_init(config, value)
        assert _structure(legacy) == _structure(render_legacy_init(_benign_config, "benign"))
        assert _assigned(legacy, "_name") == value
        _noarch_config, noarch_files, _ = _render(value, tmp_path, f"noarch-{n}", noarch=True)
        assert tomllib.loads(noarch_files["pyproject.toml"].decode())["project"]["name"] == python_name
        (ops_path,) = [p for p in noarch_files if p.endswith("_ops.py")]
        assert {python_name, value} <= _constants(noarch_files[ops_path].decode())
    assert not marker.exists()


@pytest.mark.parametrize("value, reason", [("a\0b", "NUL"), ("a\r\nb", "carriage return"), ("\r\n", "carriage return")])
def test_what_cmake_cannot_hold_is_refused_by_the_renderer(value, reason, tmp_path):
    """Validation refuses control characters before this point; the renderer refuses them too."""
    config = _config(value, tmp_path)
    with pytest.raises(ValueError, match=reason):
        render_project(config, "id", {}, tmp_path / "tree")


# ---------------------------------------------------------------------------------------------
# A real configure, build and install


# Validation allows only printable characters in flags (a newline cannot be in a Ninja command).
CONFIGURE_PAYLOADS = [p for p in PAYLOADS if p.isprintable() and p]


@pytest.mark.slow
@needs_cmake
def test_configure_build_install_with_hostile_values_executes_nothing(tmp_path):
    """Section names, flags and include folders full of payloads: the build works, nothing runs."""
    marker = tmp_path / "marker"
    payloads = [p.replace("{m}", str(marker)) for p in CONFIGURE_PAYLOADS]
    kernel = tmp_path / "relu"
    shutil.copytree(REPO / "examples" / "relu", kernel, ignore=shutil.ignore_patterns("build", "__pycache__"))
    config = load_config(kernel)
    # Flags and include folders are list items: only those CMake lists can hold (the rest is
    # refused, see above). Section names are single values: all of them.
    flags = tuple(f for f in (f"-DKB_HOSTILE_{i}={p}" for i, p in enumerate(payloads)) if list_item_problem(f) is None)
    assert len(flags) > 20
    cpu = next(k for k in config.kernels if k.backend == "cpu")
    hostile_kernels = tuple(
        dataclasses.replace(cpu, name=p, cxx_flags=flags[i % len(flags):][:1], include=tuple(d for d in (f"inc{p}",) if list_item_problem(d) is None),
                            src=cpu.src if i == 0 else ())
        for i, p in enumerate(payloads)
    )
    framework = dataclasses.replace(config.framework, cxx_flags=flags)
    config = dataclasses.replace(config, framework=framework, kernels=hostile_kernels + tuple(k for k in config.kernels if k.backend != "cpu"))
    tree, build, prefix = tmp_path / "tree", tmp_path / "build", tmp_path / "prefix"
    write_tree(tree, render_project(config, "hostile", {"kernel-builder": {"version": "test"}}, tree))
    steps = [
        [CMAKE, "-S", str(tree), "-B", str(build), "-G", "Ninja", f"-DPython3_EXECUTABLE={sys.executable}", f"-DCMAKE_INSTALL_PREFIX={prefix}"],
        [CMAKE, "--build", str(build), "--", "-j", "2"],
        [CMAKE, "--install", str(build)],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{step[1]}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert not marker.exists(), f"a payload ran during {step[1]}"
    (variant,) = prefix.iterdir()
    assert (variant / "metadata.json").is_file() and list(variant.glob("_relu_cpu_hostile*.so"))
    # Every flag reached the compiler as one argument, unchanged: the compile command as Ninja
    # runs it (through /bin/sh), with the compiler replaced by printf.
    commands = subprocess.run([shutil.which("ninja") or "ninja", "-C", str(build), "-t", "commands"], capture_output=True, text=True, check=True).stdout
    (binding,) = [line for line in commands.splitlines() if line.endswith("torch_binding.cpp")]
    compiler, arguments = binding.split(" ", 1)
    printed = subprocess.run(["/bin/sh", "-c", "printf '%s\\n' " + arguments], capture_output=True, text=True, check=True).stdout.splitlines()
    for flag in flags:
        assert flag in printed
    assert not marker.exists()


@pytest.mark.slow
@needs_cmake
def test_unique_id_given_to_cmake_is_checked(tmp_path):
    """KB_UNIQUE_ID becomes part of a Python module name in _ops.py (configure_file): a value set
    with -D on the command line is checked by the generated project itself."""
    marker = tmp_path / "marker"
    kernel = tmp_path / "relu"
    shutil.copytree(REPO / "examples" / "relu", kernel, ignore=shutil.ignore_patterns("build", "__pycache__"))
    tree = tmp_path / "tree"
    write_tree(tree, render_project(load_config(kernel), "plain", {"kernel-builder": {"version": "test"}}, tree))
    hostile_id = f'x\nimport os; os.system("touch {marker}")\n'
    result = subprocess.run([CMAKE, "-S", str(tree), "-B", str(tmp_path / "build"), "-G", "Ninja", f"-DPython3_EXECUTABLE={sys.executable}",
                             f"-DKB_UNIQUE_ID={hostile_id}"], capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "use letters, digits and '_' only" in result.stderr
    assert not (tmp_path / "build" / "_ops.py").exists() and not marker.exists()
