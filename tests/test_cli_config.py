"""`check-config` on the mistakes a new user makes: exit code 2, the file and the key path named,
a distinctive word about what is wrong, and never a traceback.

Each case starts from a small valid edition-5 kernel (kbtest_util.VALID_TOML) and breaks one
thing. Messages are checked on the key path and one distinctive word, not on whole sentences.
"""

from __future__ import annotations

import os

import pytest

from kbtest_util import VALID_FILES, VALID_TOML, assert_bad_input, assert_ok, edit, invoke, make_kernel, run_subprocess
from kernel_builder.config.parse import tomllib

CPU_SRC = 'src = ["relu_cpu/relu.cpp"]'
CPU_DEPENDS = 'depends = ["torch"]\nsrc = ["relu_cpu'
TORCH_SRC = 'src = ["torch-ext/torch_binding.cpp"]'
BACKENDS = 'backends = ["cpu", "cuda"]'
CAPS = 'cuda-capabilities = ["8.0", "9.0"]'


def _general(extra: str) -> str:
    return edit(VALID_TOML, BACKENDS, BACKENDS + "\n" + extra)


def _torch(extra: str) -> str:
    return edit(VALID_TOML, TORCH_SRC, TORCH_SRC + "\n" + extra)


NOARCH_ONLY = VALID_TOML.split("[torch]")[0]

# id -> (build.toml text, fragments that must all be in stderr)
SCHEMA_CASES = {
    # unknown keys, with a suggestion
    "typo-srcs": (edit(VALID_TOML, CPU_SRC, 'srcs = ["relu_cpu/relu.cpp"]'), ["kernel.relu_cpu.srcs", "unknown key", "did you mean 'src'"]),
    "typo-top-level-table": (VALID_TOML + '\n[tourch]\nsrc = []\n', ["tourch", "unknown key", "'torch'"]),
    "typo-hub-key": (_general('hub = { repo = "a/b" }'), ["general.hub.repo", "unknown key", "'repo-id'"]),
    # wrong types
    "version-as-string": (edit(VALID_TOML, "version = 1", 'version = "1"'), ["general.version", "integer"]),
    "version-negative": (edit(VALID_TOML, "version = 1", "version = -1"), ["general.version", "negative"]),
    "backends-as-string": (edit(VALID_TOML, BACKENDS, 'backends = "cuda"'), ["general.backends", "array"]),
    "src-as-string": (edit(VALID_TOML, CPU_SRC, 'src = "relu_cpu/relu.cpp"'), ["kernel.relu_cpu.src", "array"]),
    "capability-as-number": (edit(VALID_TOML, CAPS, "cuda-capabilities = [8.0]"), ["kernel.relu.cuda-capabilities[0]", "string"]),
    "kernel-not-a-table": (edit(VALID_TOML, "[kernel.relu_cpu]", "[kernel]\nfoo = 1\n\n[kernel.relu_cpu]"), ["kernel.foo", "table"]),
    # names
    "name-capitals": (edit(VALID_TOML, 'name = "relu"', 'name = "Relu"'), ["general.name", "'Relu'", "lowercase"]),
    "name-underscore": (edit(VALID_TOML, 'name = "relu"', 'name = "my_relu"'), ["general.name", "'my_relu'", "underscores"]),
    "name-one-char": (edit(VALID_TOML, 'name = "relu"', 'name = "r"'), ["general.name", "'r'", "2 to 96 characters"]),
    "name-trailing-dash": (edit(VALID_TOML, 'name = "relu"', 'name = "relu-"'), ["general.name", "'relu-'"]),
    "name-too-long": (edit(VALID_TOML, 'name = "relu"', f'name = "{"r" * 300}"'), ["general.name", "2 to 96 characters"]),
    # flags and source paths: only what reaches the tools intact
    "flag-newline": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ncxx-flags = ["-O3\\n-DX"]'), ["kernel.relu_cpu.cxx-flags[0]", "control character", "printable"]),
    "flag-semicolon": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ncxx-flags = ["-DA=1;2"]'), ["kernel.relu_cpu.cxx-flags[0]", "';'"]),
    "flag-empty": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ncxx-flags = [""]'), ["kernel.relu_cpu.cxx-flags[0]", "empty flag"]),
    "flag-bracket": (edit(VALID_TOML, CAPS, CAPS + '\ncuda-flags = ["-DA=x["]'), ["kernel.relu.cuda-flags[0]", "'['"]),
    "torch-flag-nul": (_torch('cxx-flags = ["-DA\\u0000"]'), ["torch.cxx-flags[0]", "control character"]),
    "src-pipe": (edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/a|b.cpp"]'), ["kernel.relu_cpu.src[0]", '"|"', "Ninja"]),
    "src-nul": (edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/a\\u0000b.cpp"]'), ["kernel.relu_cpu.src[0]", '"\\u0000"']),
    "src-dollar": (edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/$<1:x>.cpp"]'), ["kernel.relu_cpu.src[0]", '"$"']),
    "include-backslash": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ninclude = ["inc\\\\dir"]'), ["kernel.relu_cpu.include[0]", '"\\\\"']),
    "torch-src-semicolon": (edit(VALID_TOML, TORCH_SRC, 'src = ["torch-ext/a;b.cpp"]'), ["torch.src[0]", '";"']),
    # kernel section names reach CMake and messages: a strict identifier-like rule
    "section-name-space": (edit(VALID_TOML, "[kernel.relu_cpu]", '[kernel."relu cpu"]'), ['kernel."relu cpu"', "invalid kernel section name", "letters, digits"]),
    "section-name-empty": (edit(VALID_TOML, "[kernel.relu_cpu]", '[kernel.""]'), ['kernel.""', "invalid kernel section name"]),
    "section-name-slash": (edit(VALID_TOML, "[kernel.relu_cpu]", '[kernel."a/b"]'), ['kernel."a/b"', "invalid kernel section name"]),
    "section-name-digit-first": (edit(VALID_TOML, "[kernel.relu_cpu]", "[kernel.9relu]"), ["kernel.9relu", "invalid kernel section name"]),
    "section-name-too-long": (edit(VALID_TOML, "[kernel.relu_cpu]", f"[kernel.{'r' * 65}]"), ["kernel.rrr", "at most 64"]),
    "section-name-cmake-injection": (
        edit(VALID_TOML, "[kernel.relu_cpu]", r'[kernel."x\nfile(WRITE /tmp/p \"x\")\n#"]'),
        [r'kernel."x\nfile(WRITE /tmp/p \"x\")\n#"', "invalid kernel section name"],
    ),
    # backends
    "unknown-general-backend": (edit(VALID_TOML, BACKENDS, 'backends = ["cpu", "cuda", "vulkan"]'), ["general.backends[2]", "'vulkan'", "unknown backend"]),
    "duplicate-general-backend": (edit(VALID_TOML, BACKENDS, 'backends = ["cpu", "cuda", "cpu"]'), ["general.backends", "'cpu'", "more than once"]),
    "unknown-kernel-backend": (edit(VALID_TOML, 'backend = "cpu"', 'backend = "opencl"'), ["kernel.relu_cpu.backend", "'opencl'"]),
    "general-only-backend-on-kernel": (edit(VALID_TOML, 'backend = "cpu"', 'backend = "tpu"'), ["kernel.relu_cpu.backend", "'tpu'"]),
    # capabilities
    "capability-9.x": (edit(VALID_TOML, CAPS, 'cuda-capabilities = ["8.0", "9.x"]'), ["kernel.relu.cuda-capabilities[1]", "'9.x'", "CUDA capability"]),
    "capability-sm_90": (edit(VALID_TOML, CAPS, 'cuda-capabilities = ["sm_90"]'), ["kernel.relu.cuda-capabilities[0]", "'sm_90'", "CUDA capability"]),
    "rocm-arch-bad": (
        VALID_TOML + '\n[kernel.relu_rocm]\nbackend = "rocm"\ndepends = ["torch"]\nsrc = ["relu_cuda/relu.cu"]\nrocm-archs = ["sm_90"]\n',
        ["kernel.relu_rocm.rocm-archs[0]", "'sm_90'", "ROCm architecture"],
    ),
    # backend-only keys on the wrong backend
    "cuda-capabilities-on-cpu": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ncuda-capabilities = ["8.0"]'), ["kernel.relu_cpu.cuda-capabilities", "cpu kernel"]),
    "cuda-minver-on-cpu": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ncuda-minver = "12.8"'), ["kernel.relu_cpu.cuda-minver", "cpu kernel"]),
    "rocm-archs-on-cuda": (edit(VALID_TOML, CAPS, CAPS + '\nrocm-archs = ["gfx942"]'), ["kernel.relu.rocm-archs", "cuda kernel"]),
    "sycl-flags-on-cpu": (edit(VALID_TOML, CPU_SRC, CPU_SRC + '\nsycl-flags = ["-O3"]'), ["kernel.relu_cpu.sycl-flags", "cpu kernel"]),
    # depends
    "unknown-depends": (edit(VALID_TOML, CPU_DEPENDS, 'depends = ["torch", "boost"]\nsrc = ["relu_cpu'), ["kernel.relu_cpu.depends[1]", "'boost'", "unknown dependency"]),
    "cutlass-on-cpu": (edit(VALID_TOML, CPU_DEPENDS, 'depends = ["torch", "cutlass_3_6"]\nsrc = ["relu_cpu'), ["kernel.relu_cpu.depends[1]", "cutlass_3_6", "cpu"]),
    # python-depends
    "unknown-python-depends": (_general('python-depends = ["numpy"]'), ["general.python-depends[0]", "'numpy'", "unknown Python dependency"]),
    "cuda-python-depends-in-general": (_general('python-depends = ["nvidia-cutlass-dsl"]'), ["general.python-depends[0]", "nvidia-cutlass-dsl", "[general.cuda]"]),
    "general-python-depends-in-cuda": (_general('cuda = { python-depends = ["einops"] }'), ["general.cuda.python-depends[0]", "'einops'", "[general]"]),
    # kernel-depends
    "kernel-depends-both": (
        _general('kernel-depends = [{ repo-id = "kernels-community/relu", version = 1, revision = "abc123" }]'),
        ["general.kernel-depends[0]", "version", "revision", "exactly one"],
    ),
    "kernel-depends-neither": (_general('kernel-depends = [{ repo-id = "kernels-community/relu" }]'), ["general.kernel-depends[0]", "exactly one"]),
    "kernel-depends-bad-repo-id": (_general('kernel-depends = [{ repo-id = "relu", version = 1 }]'), ["general.kernel-depends[0].repo-id", "'relu'"]),
    # git URLs
    "upstream-ftp": (_general('upstream = "ftp://example.com/relu.git"'), ["general.upstream", "git URL"]),
    "upstream-no-scheme": (_general('upstream = "github.com/example/relu"'), ["general.upstream", "git URL"]),
    "source-file-url": (_general('source = "file:///tmp/relu"'), ["general.source", "git URL"]),
    # versions and bounds
    "torch-minver-2.x": (_torch('minver = "2.x"'), ["torch.minver", "'2.x'", "not a version"]),
    "torch-minver-empty": (_torch('minver = ""'), ["torch.minver", "not a version"]),
    "torch-maxver-number": (_torch("maxver = 2.12"), ["torch.maxver", "version string"]),
    "cuda-maxver-12.x": (_general('cuda = { maxver = "12.x" }'), ["general.cuda.maxver", "'12.x'"]),
    "torch-minver-gt-maxver": (_torch('minver = "2.13"\nmaxver = "2.12"'), ["torch.minver", "greater than maxver"]),
    "cuda-minver-gt-maxver": (_general('cuda = { minver = "13.0", maxver = "12.6" }'), ["general.cuda.minver", "greater than maxver"]),
    "stable-abi-bad-version": (_torch('stable-abi = "2.x"'), ["torch.stable-abi", "'2.x'"]),
    "stable-abi-unknown-backend": (_torch('stable-abi = { vulkan = "2.11" }'), ["torch.stable-abi.vulkan", "unknown backend"]),
    # editions
    "edition-4-explicit": (edit(VALID_TOML, "edition = 5", "edition = 4"), ["general.edition", "unsupported edition 4"]),
    "edition-6": (edit(VALID_TOML, "edition = 5", "edition = 6"), ["general.edition", "unsupported edition 6"]),
    "edition-string": (edit(VALID_TOML, "edition = 5", 'edition = "5"'), ["general.edition", "integer"]),
    "edition5-key-without-edition": (
        edit(VALID_TOML, "edition = 5\n", 'kernel-depends = [{ repo-id = "kernels-community/relu", version = 1 }]\n'),
        ["general.kernel-depends", "needs edition 5"],
    ),
    "stable-abi-table-without-edition": (
        edit(_torch('stable-abi = { cuda = "2.11" }'), "edition = 5\n", ""),
        ["torch.stable-abi", "needs edition 5"],
    ),
    "pre-edition4-file": (edit(VALID_TOML, "edition = 5\n", "universal = false\n"), ["older than edition 4", "general.universal", "update-build"]),
    # framework tables
    "two-frameworks": (edit(VALID_TOML, "[torch]", "[torch-noarch]\n\n[torch]"), ["more than one framework", "[torch]", "[torch-noarch]"]),
    "missing-framework": (edit(VALID_TOML, "[torch]\n" + TORCH_SRC, ""), ["missing framework table", "[torch-noarch]"]),
    "noarch-with-kernel-sections": (edit(VALID_TOML, "[torch]\n" + TORCH_SRC, "[torch-noarch]"), ["kernel.relu:", "kernel.relu_cpu:", "torch-noarch"]),
    "noarch-capability-bad": (NOARCH_ONLY + '[torch-noarch]\ncuda_capabilities = ["9.x"]\n', ["torch-noarch.cuda-capabilities[0]", "'9.x'"]),
    "noarch-both-spellings": (NOARCH_ONLY + '[torch-noarch]\ncuda_capabilities = ["9.0"]\ncuda-capabilities = ["8.0"]\n', ["torch-noarch.cuda_capabilities", "twice"]),
    "tvm-ffi-without-src": (edit(VALID_TOML, "[torch]\n" + TORCH_SRC, "[tvm-ffi]"), ["tvm-ffi.src", "missing required key"]),
    "pyext-with-dot": (_torch('pyext = [".py"]'), ["torch.pyext[0]", "file extension"]),
    "missing-general": ("[torch]\nsrc = []\n", ["general", "missing [general]"]),
    "missing-license": (edit(VALID_TOML, 'license = "Apache-2.0"\n', ""), ["general.license", "missing required key"]),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_invalid_build_toml_is_reported(case, tmp_path):
    text, fragments = SCHEMA_CASES[case]
    kernel_dir = make_kernel(tmp_path, text)
    build_toml = str(kernel_dir / "build.toml")
    # Both modes must refuse it (the full mode also looks at files, which all exist here).
    for args in (["--schema-only"], []):
        result = invoke("check-config", *args, kernel_dir)
        err = assert_bad_input(result, *fragments)
        # Every line of the report names the file.
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and all(build_toml in line for line in lines), err
        assert result.stdout == ""


def test_the_valid_template_is_valid(tmp_path):
    """The base of every case above passes: each failure comes from the one edit."""
    kernel_dir = make_kernel(tmp_path)
    for args in (["--schema-only"], []):
        result = invoke("check-config", *args, kernel_dir)
        assert_ok(result)
        assert result.stderr == ""
        assert "relu v1, edition 5, [torch], backends: cpu, cuda" in result.stdout
        assert "relu (cuda), relu_cpu (cpu)" in result.stdout


def test_edition4_file_warns_and_passes(tmp_path):
    kernel_dir = make_kernel(tmp_path, edit(VALID_TOML, "edition = 5\n", ""))
    result = invoke("check-config", kernel_dir)
    assert_ok(result)
    assert "update-build" in result.stderr and "edition" in result.stderr
    assert "edition 4" in result.stdout


def test_noarch_with_empty_kernel_table_is_valid(tmp_path):
    kernel_dir = make_kernel(tmp_path, NOARCH_ONLY + "[torch-noarch]\n\n[kernel]\n")
    assert_ok(invoke("check-config", kernel_dir))


def test_noarch_snake_and_kebab_spellings_are_both_accepted(tmp_path):
    snake = make_kernel(tmp_path, NOARCH_ONLY + '[torch-noarch]\ncuda_capabilities = ["9.0"]\nrocm_archs = ["gfx942"]\n', name="snake")
    kebab = make_kernel(tmp_path, NOARCH_ONLY + '[torch-noarch]\ncuda-capabilities = ["9.0"]\nrocm-archs = ["gfx942"]\n', name="kebab")
    assert_ok(invoke("check-config", snake))
    assert_ok(invoke("check-config", kebab))


def test_bad_toml_syntax_carries_the_toml_error(tmp_path):
    text = edit(VALID_TOML, "version = 1", "version = = 1")
    kernel_dir = make_kernel(tmp_path, text)
    with pytest.raises(tomllib.TOMLDecodeError) as decode:
        tomllib.loads(text)
    result = invoke("check-config", "--schema-only", kernel_dir)
    assert_bad_input(result, str(kernel_dir / "build.toml"), "invalid TOML", str(decode.value))


def test_missing_build_toml(tmp_path):
    kernel_dir = make_kernel(tmp_path, None)
    result = invoke("check-config", "--schema-only", kernel_dir)
    assert_bad_input(result, str(kernel_dir / "build.toml"), "no such file")


def test_missing_kernel_directory(tmp_path):
    result = invoke("check-config", tmp_path / "nope")
    assert_bad_input(result, str(tmp_path / "nope"), "no such directory")


def test_several_problems_in_different_tables_all_reported(tmp_path):
    text = edit(VALID_TOML, 'name = "relu"', 'name = "My_Relu"')  # [general]
    text = edit(text, TORCH_SRC, TORCH_SRC + '\nminver = "2.x"')  # [torch]
    text = edit(text, CAPS, 'cuda-capabilities = ["9.x"]')  # [kernel.relu]
    text = edit(text, CPU_SRC, CPU_SRC + "\ncapabilities = []")  # [kernel.relu_cpu]
    kernel_dir = make_kernel(tmp_path, text)
    result = invoke("check-config", "--schema-only", kernel_dir)
    assert_bad_input(
        result,
        "4 problems found",
        "general.name",
        "torch.minver",
        "kernel.relu.cuda-capabilities[0]",
        "kernel.relu_cpu.capabilities",
    )


def test_general_type_error_does_not_hide_other_tables(tmp_path):
    text = edit(VALID_TOML, "version = 1", 'version = "1"')
    text = edit(text, CAPS, 'cuda-capabilities = ["9.x"]')
    text = edit(text, 'backend = "cpu"', 'backend = "opencl"')
    kernel_dir = make_kernel(tmp_path, text)
    result = invoke("check-config", "--schema-only", kernel_dir)
    assert_bad_input(result, "3 problems found", "general.version", "kernel.relu.cuda-capabilities[0]", "kernel.relu_cpu.backend")


def test_schema_and_file_problems_reported_together(tmp_path):
    text = edit(VALID_TOML, CAPS, 'cuda-capabilities = ["9.x"]')
    text = edit(text, CPU_SRC, 'src = ["relu_cpu/relu.cpp", "relu_cpu/gone.cpp"]')
    kernel_dir = make_kernel(tmp_path, text)
    result = invoke("check-config", kernel_dir)
    assert_bad_input(result, "kernel.relu.cuda-capabilities[0]", "kernel.relu_cpu.src[1]", "gone.cpp")
    # --schema-only does not look at the files.
    result = invoke("check-config", "--schema-only", kernel_dir)
    err = assert_bad_input(result, "kernel.relu.cuda-capabilities[0]")
    assert "gone.cpp" not in err


def test_key_and_file_problems_of_one_table_reported_together(tmp_path):
    """An unknown key in a table does not hide that the same table names missing files."""
    text = edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/gone.cpp"]\nbogus = 1')
    text = edit(text, TORCH_SRC, 'src = ["torch-ext/torch_binding.cpp", "torch-ext/gone.cpp"]\nsrcs = []')
    kernel_dir = make_kernel(tmp_path, text)
    result = invoke("check-config", kernel_dir)
    assert_bad_input(
        result,
        "4 problems found",
        "kernel.relu_cpu.bogus: unknown key",
        "kernel.relu_cpu.src[0]: file 'relu_cpu/gone.cpp' does not exist",
        "torch.srcs: unknown key",
        "torch.src[1]: file 'torch-ext/gone.cpp' does not exist",
    )


def test_wrong_general_does_not_hide_a_missing_python_package(tmp_path):
    text = edit(VALID_TOML, "version = 1", 'version = "1"')
    kernel_dir = make_kernel(tmp_path, text, files=VALID_FILES[:-1])
    result = invoke("check-config", kernel_dir)
    assert_bad_input(result, "general.version", "torch-ext/relu/__init__.py does not exist")


# ---------------------------------------------------------------------------------------------
# Files listed in build.toml (check-config without --schema-only)


def _files_case(tmp_path, text, setup=None, files=VALID_FILES, *, path_syntax_error=False):
    kernel_dir = make_kernel(tmp_path, text, files=files)
    if setup:
        setup(kernel_dir)
    schema_only = invoke("check-config", "--schema-only", kernel_dir)
    if path_syntax_error:
        # Absolute or escaping paths are wrong without looking at the disk: --schema-only says so too.
        assert schema_only.exit_code == 2, schema_only.stderr
    else:
        # Only the file system is wrong: --schema-only passes.
        assert_ok(schema_only)
    result = invoke("check-config", kernel_dir)
    return kernel_dir, result


def test_missing_source_file(tmp_path):
    text = edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/relu.cpp", "relu_cpu/missing.cpp"]')
    kernel_dir, result = _files_case(tmp_path, text)
    assert_bad_input(result, str(kernel_dir / "build.toml"), "kernel.relu_cpu.src[1]", "relu_cpu/missing.cpp", "does not exist")


def test_missing_framework_source(tmp_path):
    files = tuple(f for f in VALID_FILES if f != "torch-ext/torch_binding.cpp")
    kernel_dir, result = _files_case(tmp_path, VALID_TOML, files=files)
    assert_bad_input(result, "torch.src[0]", "torch-ext/torch_binding.cpp", "does not exist")


def test_escaping_path(tmp_path):
    (tmp_path / "x.cu").write_text("// outside\n")
    text = edit(VALID_TOML, CPU_SRC, 'src = ["../x.cu"]')
    _, result = _files_case(tmp_path, text, path_syntax_error=True)
    assert_bad_input(result, "kernel.relu_cpu.src[0]", "'../x.cu'", "outside")


def test_escaping_path_in_the_middle(tmp_path):
    text = edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/../../kernel/relu_cpu/relu.cpp"]')
    _, result = _files_case(tmp_path, text, path_syntax_error=True)
    assert_bad_input(result, "kernel.relu_cpu.src[0]", "outside")


def test_absolute_path(tmp_path):
    outside = tmp_path / "abs.cpp"
    outside.write_text("// outside\n")
    text = edit(VALID_TOML, CPU_SRC, f'src = ["{outside}"]')
    _, result = _files_case(tmp_path, text, path_syntax_error=True)
    assert_bad_input(result, "kernel.relu_cpu.src[0]", "absolute")


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_pointing_outside(tmp_path):
    outside = tmp_path / "elsewhere.cpp"
    outside.write_text("// outside\n")
    text = edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/link.cpp"]')

    def link(kernel_dir):
        (kernel_dir / "relu_cpu" / "link.cpp").symlink_to(outside)

    _, result = _files_case(tmp_path, text, setup=link)
    assert_bad_input(result, "kernel.relu_cpu.src[0]", "relu_cpu/link.cpp", "symbolic link")


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_inside_the_kernel_is_fine(tmp_path):
    text = edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/link.cpp"]')

    def link(kernel_dir):
        (kernel_dir / "relu_cpu" / "link.cpp").symlink_to(kernel_dir / "relu_cpu" / "relu.cpp")

    kernel_dir = make_kernel(tmp_path, text)
    link(kernel_dir)
    assert_ok(invoke("check-config", kernel_dir))


def test_include_that_is_a_file(tmp_path):
    text = edit(VALID_TOML, CPU_SRC, CPU_SRC + '\ninclude = ["relu_cpu/relu.cpp"]')
    _, result = _files_case(tmp_path, text)
    assert_bad_input(result, "kernel.relu_cpu.include[0]", "not a directory")


def test_source_that_is_a_directory(tmp_path):
    text = edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu"]')
    _, result = _files_case(tmp_path, text)
    assert_bad_input(result, "kernel.relu_cpu.src[0]", "not a file")


def test_missing_python_package_init(tmp_path):
    files = tuple(f for f in VALID_FILES if not f.endswith("__init__.py"))
    _, result = _files_case(tmp_path, VALID_TOML, files=files)
    assert_bad_input(result, "torch-ext/relu/__init__.py", "does not exist")


def test_python_package_uses_module_name(tmp_path):
    """A dashed kernel name looks for torch-ext/<name with underscores>/__init__.py."""
    text = edit(VALID_TOML, 'name = "relu"', 'name = "my-relu"')
    files = tuple(f for f in VALID_FILES if not f.endswith("__init__.py")) + ("torch-ext/my_relu/__init__.py",)
    kernel_dir = make_kernel(tmp_path, text, files=files)
    assert_ok(invoke("check-config", kernel_dir))


# ---------------------------------------------------------------------------------------------
# The real process: exit codes and stderr as a user sees them


@pytest.mark.parametrize(
    "case, fragment",
    [("typo-srcs", "kernel.relu_cpu.srcs"), ("edition-6", "general.edition"), ("noarch-with-kernel-sections", "kernel.relu")],
)
def test_real_process_exit_code_and_no_traceback(case, fragment, tmp_path):
    kernel_dir = make_kernel(tmp_path, SCHEMA_CASES[case][0])
    proc = run_subprocess("check-config", kernel_dir)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fragment in proc.stderr and str(kernel_dir / "build.toml") in proc.stderr


def test_real_process_bad_toml_and_missing_file(tmp_path):
    bad = make_kernel(tmp_path, "[general\n", name="bad")
    proc = run_subprocess("check-config", bad)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "invalid TOML" in proc.stderr
    missing = make_kernel(tmp_path, edit(VALID_TOML, CPU_SRC, 'src = ["relu_cpu/nope.cpp"]'), name="missing")
    proc = run_subprocess("check-config", missing)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "kernel.relu_cpu.src[0]" in proc.stderr
