"""Value rules of build.toml (builder/config/rules.py) and the meaning of a parsed model.

The rules follow the upstream schema (reference §1.2-1.5): the name regex, git URL schemes,
dot-separated version strings, CUDA capability spellings, the curated depends / python-depends
lists. Model tests parse small documents in-process and check defaults and derived views.
"""

from __future__ import annotations

import pytest
from packaging.version import Version

from kbtest_util import VALID_TOML, edit, kernel_builder_log
from kernel_builder.config import parse_document
from kernel_builder.config import rules
from kernel_builder.config.parse import tomllib
from kernel_builder.errors import ConfigError


def _problems(check, value, *args):
    problems = []
    check(value, problems, "the.key", *args)
    return problems


def _parse(text: str):
    return parse_document(tomllib.loads(text), "build.toml")


def _problem_keys(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _parse(text)
    return [p.key for p in info.value.problems]


# ---------------------------------------------------------------------------------------------
# Single-value rules


@pytest.mark.parametrize("name", ["relu", "ab", "a1", "silu-and-mul", "flash-attn3", "quantization-eetq", "x-9"])
def test_valid_kernel_names(name):
    assert _problems(rules.check_kernel_name, name) == []


@pytest.mark.parametrize("name", ["Relu", "my_relu", "r", "", "-ab", "ab-", "1ab", "a b", "relu!", "rélu", "relu\n"])
def test_invalid_kernel_names(name):
    (problem,) = _problems(rules.check_kernel_name, name)
    assert problem.key == "the.key" and repr(name) in problem.message


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/huggingface/kernels",
        "http://example.com/repo.git",
        "git://example.com/repo.git",
        "ssh://git@github.com/org/repo.git",
        "git+ssh://git@github.com/org/repo.git",
        "git+https://github.com/org/repo",
        "git+http://example.com/repo",
        "git@github.com:org/repo.git",
    ],
)
def test_valid_git_urls(url):
    assert _problems(rules.check_git_url, url) == []


@pytest.mark.parametrize("url", ["ftp://example.com/repo.git", "github.com/org/repo", "file:///tmp/repo", "https://", "", "git@github.com", "svn://host/repo", "git@github.com:org/repo.git\n"])
def test_invalid_git_urls(url):
    (problem,) = _problems(rules.check_git_url, url)
    assert "git URL" in problem.message
    # The message lists the accepted schemes.
    assert "git+ssh://" in problem.allowed and "git@host:" in problem.allowed


@pytest.mark.parametrize("version", ["2", "2.12", "12.8.1", "2025.3.2", "0"])
def test_valid_version_strings(version):
    problems: list = []
    assert rules.check_version_string(version, problems, "k") is True and problems == []


@pytest.mark.parametrize("version", ["2.x", "", "v2.12", "2.", ".2", "2..1", "2.12-rc1", " 2.12", "2.12.0a0", "2.12\n"])
def test_invalid_version_strings(version):
    problems: list = []
    assert rules.check_version_string(version, problems, "k") is False
    assert len(problems) == 1 and problems[0].key == "k"


@pytest.mark.parametrize("cap", ["8.0", "9.0a", "10.0f", "8.0+PTX", "12.1", "7.5"])
def test_valid_capabilities(cap):
    assert _problems(rules.check_capability, cap) == []


@pytest.mark.parametrize("cap", ["9.x", "sm_90", "90", "9", "9.0b", "9.0+ptx", "compute_90", "9.0 ", "", "9.0\n"])
def test_invalid_capabilities(cap):
    assert len(_problems(rules.check_capability, cap)) == 1


@pytest.mark.parametrize("arch", ["gfx90a", "gfx942", "gfx1201", "gfx90a:xnack+", "gfx942:sramecc+:xnack-"])
def test_valid_rocm_archs(arch):
    assert _problems(rules.check_rocm_arch, arch) == []


@pytest.mark.parametrize("arch", ["sm_90", "gfx", "GFX942", "942", "gfx942:xnack", "gfx942\n"])
def test_invalid_rocm_archs(arch):
    assert len(_problems(rules.check_rocm_arch, arch)) == 1


@pytest.mark.parametrize("repo_id", ["kernels-community/relu", "me/my_kernel.v2", "Org/Name"])
def test_valid_repo_ids(repo_id):
    assert _problems(rules.check_repo_id, repo_id) == []


@pytest.mark.parametrize("repo_id", ["relu", "a/b/c", "/relu", "org/", "org relu/x", "org/relu\n"])
def test_invalid_repo_ids(repo_id):
    assert len(_problems(rules.check_repo_id, repo_id)) == 1


def test_depends_allow_list_is_the_documented_one():
    documented = {"torch", "cutlass_2_10", "cutlass_3_5", "cutlass_3_6", "cutlass_3_8", "cutlass_3_9", "cutlass_4_0", "cutlass_4_4", "cutlass_4_5", "sycl_tla", "metal-cpp"}
    assert set(rules.kernel_dependencies()) == documented
    problems = _problems(rules.check_depends, ("torch", "cutlass_sycl", "boost"))
    assert [p.key for p in problems] == ["the.key[1]", "the.key[2]"]


@pytest.mark.parametrize(
    "scope, ok, bad",
    [
        ("general", ["einops", "helion", "tvm-ffi"], ["nvidia-cutlass-dsl", "numpy", "nki"]),
        ("cuda", ["nvidia-cutlass-dsl"], ["einops", "onednn"]),
        ("xpu", ["onednn"], ["nvidia-cutlass-dsl"]),
        ("neuron", ["nki"], ["einops"]),
        ("tpu", [], ["einops"]),
    ],
)
def test_python_depends_per_scope(scope, ok, bad):
    assert _problems(rules.check_python_depends, tuple(ok), scope) == []
    problems = _problems(rules.check_python_depends, tuple(bad), scope)
    assert [p.key for p in problems] == [f"the.key[{i}]" for i in range(len(bad))]


# ---------------------------------------------------------------------------------------------
# The parsed model


def test_defaults_and_derived_names():
    config = _parse(edit(VALID_TOML, 'name = "relu"', 'name = "my-relu"'))
    assert config.general.python_name == "my_relu"
    assert config.python_package_dir == "torch-ext/my_relu"
    assert config.framework.pyext == ("py", "pyi")
    assert config.framework.stable_abi is None
    assert config.source_edition == 5
    (cpu,) = config.kernels_for("cpu")
    assert cpu.cuda_capabilities is None and cpu.rocm_archs is None and cpu.include == ()


def test_versions_are_normalised():
    text = edit(VALID_TOML, 'src = ["torch-ext/torch_binding.cpp"]', 'src = ["torch-ext/torch_binding.cpp"]\nminver = "2.12.0"\nmaxver = "2.12"')
    config = _parse(text)
    assert config.framework.minver == Version("2.12") == config.framework.maxver


def test_stable_abi_string_applies_to_every_backend():
    config = _parse(edit(VALID_TOML, "[torch]\n", '[torch]\nstable-abi = "2.11"\n'))
    assert config.framework.stable_abi_for("cuda") == Version("2.11")
    assert config.framework.stable_abi_for("cpu") == Version("2.11")


def test_stable_abi_table_is_per_backend():
    config = _parse(edit(VALID_TOML, "[torch]\n", '[torch]\nstable-abi = { cuda = "2.10" }\n'))
    assert config.framework.stable_abi_for("cuda") == Version("2.10")
    assert config.framework.stable_abi_for("cpu") is None


def test_stable_abi_entry_for_unlisted_backend_is_ignored_with_warning():
    with kernel_builder_log() as records:
        config = _parse(edit(VALID_TOML, "[torch]\n", '[torch]\nstable-abi = { rocm = "2.10" }\n'))
    assert config.framework.stable_abi_for("cuda") is None
    assert any("stable-abi.rocm" in r.getMessage() for r in records)


def test_backends_without_kernels_are_noarch():
    text = edit(VALID_TOML, 'backends = ["cpu", "cuda"]', 'backends = ["cpu", "cuda", "metal", "xpu"]')
    config = _parse(text)
    assert config.arch_backends == ("cpu", "cuda")
    assert config.noarch_backends == ("metal", "xpu")


def test_noarch_framework_has_no_arch_backends():
    config = _parse(VALID_TOML.split("[torch]")[0] + "[torch-noarch]\n")
    assert config.arch_backends == ()
    assert config.noarch_backends == ("cpu", "cuda")


def test_noarch_snake_and_kebab_keys_mean_the_same():
    head = VALID_TOML.split("[torch]")[0]
    snake = _parse(head + '[torch-noarch]\ncuda_capabilities = ["9.0"]\nrocm_archs = ["gfx942"]\n')
    kebab = _parse(head + '[torch-noarch]\ncuda-capabilities = ["9.0"]\nrocm-archs = ["gfx942"]\n')
    assert snake == kebab
    assert snake.framework.cuda_capabilities == ("9.0",) and snake.framework.rocm_archs == ("gfx942",)


def test_python_and_kernel_depends_per_backend():
    text = edit(
        VALID_TOML,
        'backends = ["cpu", "cuda"]',
        'backends = ["cpu", "cuda"]\npython-depends = ["einops"]\n'
        'kernel-depends = [{ repo-id = "kernels-community/a", version = 1 }]\n'
        'cuda = { python-depends = ["nvidia-cutlass-dsl"], kernel-depends = [{ repo-id = "kernels-community/b", revision = "abc" }] }',
    )
    general = _parse(text).general
    assert general.python_depends_for("cuda") == ("einops", "nvidia-cutlass-dsl")
    assert general.python_depends_for("cpu") == ("einops",)
    assert [d.repo_id for d in general.kernel_depends_for("cuda")] == ["kernels-community/a", "kernels-community/b"]
    assert [d.repo_id for d in general.kernel_depends_for("cpu")] == ["kernels-community/a"]
    assert general.kernel_depends_for("cuda")[1].revision == "abc"


def test_edition4_document_is_upgraded_in_memory():
    v5 = _parse(VALID_TOML)
    with kernel_builder_log() as records:
        v4 = _parse(edit(VALID_TOML, "edition = 5\n", ""))
    assert v4 == v5
    assert (v4.source_edition, v5.source_edition) == (4, 5)
    assert any("update-build" in r.getMessage() for r in records)


def test_problems_carry_key_paths():
    text = edit(VALID_TOML, 'name = "relu"', 'name = "Relu"')
    text = edit(text, 'cuda-capabilities = ["8.0", "9.0"]', 'cuda-capabilities = ["8.0", "sm_90"]')
    text = edit(text, 'backend = "cpu"', 'backend = "cpu"\nhip-flags = ["-O3"]')
    assert _problem_keys(text) == ["general.name", "kernel.relu.cuda-capabilities[1]", "kernel.relu_cpu.hip-flags"]


def test_empty_capability_list_is_refused():
    text = edit(VALID_TOML, 'cuda-capabilities = ["8.0", "9.0"]', "cuda-capabilities = []")
    assert _problem_keys(text) == ["kernel.relu.cuda-capabilities"]


def test_kernel_without_sources_is_refused():
    text = edit(VALID_TOML, 'src = ["relu_cpu/relu.cpp"]', "src = []")
    assert _problem_keys(text) == ["kernel.relu_cpu.src"]


def test_kernel_backend_not_listed_warns_but_parses():
    text = VALID_TOML + '\n[kernel.relu_xpu]\nbackend = "xpu"\ndepends = ["torch"]\nsrc = ["x.cpp"]\n'
    with kernel_builder_log() as records:
        config = _parse(text)
    assert "xpu" not in config.arch_backends
    assert any("relu_xpu" in r.getMessage() and "general.backends" in r.getMessage() for r in records)
