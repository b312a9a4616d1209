"""CUDA capability and ROCm architecture selection (builder/standalone/archs.py).

Behaviour follows the upstream CMake helpers (reference §3.3-3.4): per-toolkit default target
lists, the loose same-major intersection, `a`/`f` suffixes kept verbatim, `+PTX`, the FATAL
"empty set of capabilities/architectures after intersection" errors, exact ROCm intersection.
"""

from __future__ import annotations

import pytest

from kernel_builder.standalone.archs import (
    ROCM_ARCHS,
    ArchError,
    cuda_gencode_flags,
    default_cuda_archs,
    known_cuda_archs,
    metadata_archs,
    parse_nvcc_arch_list,
    select_cuda_archs,
    select_rocm_archs,
)

DEFAULT_13_0 = ["7.5", "8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1+PTX"]
DEFAULT_12_8 = ["7.0", "7.2", "7.5", "8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "10.1", "12.0+PTX"]
DEFAULT_OLDER = ["7.0", "7.2", "7.5", "8.0", "8.6", "8.7", "8.9", "9.0+PTX"]

NVCC_13_0_OUTPUT = "compute_75\ncompute_80\ncompute_86\ncompute_87\ncompute_88\ncompute_89\ncompute_90\ncompute_100\ncompute_103\ncompute_110\ncompute_120\ncompute_121\n"


@pytest.mark.parametrize("toolkit, expected", [("13.0", DEFAULT_13_0), ("13.2", DEFAULT_13_0), ("12.8", DEFAULT_12_8), ("12.9", DEFAULT_12_8), ("12.6", DEFAULT_OLDER), ("12.4", DEFAULT_OLDER)])
def test_default_target_lists(toolkit, expected):
    assert default_cuda_archs(toolkit) == expected


@pytest.mark.parametrize("toolkit", ["12.6", "13.0"])
def test_loose_intersection_drops_unsupported_and_uncovered(toolkit):
    # 5.0 is not a target (and not compilable by 13.0): dropped silently, not an error.
    assert select_cuda_archs("relu", toolkit, ["5.0", "7.5", "8.0", "9.0"]) == ["7.5", "8.0", "9.0"]


def test_defaults_under_cuda_13():
    assert select_cuda_archs("relu", "13.0", None) == DEFAULT_13_0


def test_sm103_is_a_cuda_13_target():
    # 10.3a was silently dropped while 10.3 was not a default target (upstream kernels#720).
    assert select_cuda_archs("gemm", "13.0", ["10.3a"]) == ["10.3a"]
    assert select_cuda_archs("gemm", "13.0", ["10.0", "10.3a"]) == ["10.0", "10.3a"]
    # A plain 10.0 request still covers 10.3 (same major) without a second entry.
    assert select_cuda_archs("gemm", "13.0", ["10.0"]) == ["10.0"]


def test_defaults_under_cuda_12_6():
    assert select_cuda_archs("relu", "12.6", None) == DEFAULT_OLDER


def test_empty_intersection_is_an_error_naming_section_and_lists():
    with pytest.raises(ArchError) as info:
        select_cuda_archs("relu_kernel", "13.0", ["99999.0"])
    message = str(info.value)
    assert "empty set of capabilities" in message
    assert "relu_kernel" in message
    assert "99999.0" in message  # the kernel's list
    assert "7.5 8.0 8.6" in message and "12.1" in message  # the supported list
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("requested", [["7.0"], ["10.1"]])
def test_capabilities_cuda_13_cannot_serve(requested):
    # 7.0 is no longer compilable with 13.0; 10.1 was renamed 11.0 and covers no 10.x target.
    with pytest.raises(ArchError, match="empty set of capabilities"):
        select_cuda_archs("k", "13.0", requested)


def test_capabilities_fine_under_12_8_that_13_0_refuses():
    assert select_cuda_archs("k", "12.8", ["7.0"]) == ["7.0"]
    assert select_cuda_archs("k", "12.8", ["10.1"]) == ["10.1"]


def test_arch_specific_suffix_kept_verbatim():
    assert select_cuda_archs("k", "13.0", ["9.0a"]) == ["9.0a"]
    assert select_cuda_archs("k", "13.0", ["10.0f", "8.0"]) == ["8.0", "10.0f"]
    # The suffixed request consumes its target: no plain 9.0 next to 9.0a.
    assert select_cuda_archs("k", "13.0", ["9.0a", "9.0"]) == ["9.0a"]


def test_arch_specific_suffix_needs_its_exact_target():
    # 10.0 is not a target of the pre-12.8 default list.
    with pytest.raises(ArchError):
        select_cuda_archs("k", "12.6", ["10.0a"])


def test_one_request_covers_later_minors_of_its_major_but_is_emitted_once():
    # 8.0 serves the 8.0, 8.6, 8.7 and 8.9 targets (SASS runs forward within a major).
    assert select_cuda_archs("k", "13.0", ["8.0"]) == ["8.0"]
    # ... but not 9.0 (another major): with 9.0 requested too, both are kept.
    assert select_cuda_archs("k", "13.0", ["8.0", "9.0"]) == ["8.0", "9.0"]
    # The highest requested capability <= target wins.
    assert select_cuda_archs("k", "13.0", ["8.0", "8.6"]) == ["8.0", "8.6"]


def test_each_target_takes_the_highest_request_not_above_it():
    # 8.8 is no target, but it is compilable by 13.0 and serves the 8.9 target.
    assert select_cuda_archs("k", "13.0", ["8.8", "9.0"]) == ["8.8", "9.0"]
    assert select_cuda_archs("k", "12.6", ["8.0", "8.9"]) == ["8.0", "8.9"]


def test_request_above_every_same_major_target_is_dropped():
    assert select_cuda_archs("k", "13.0", ["8.9", "9.0"], targets=["8.6", "9.0"]) == ["9.0"]


def test_ptx_is_kept():
    assert select_cuda_archs("k", "13.0", ["8.0+PTX"]) == ["8.0+PTX"]
    assert select_cuda_archs("k", "13.0", ["7.5+PTX", "9.0"]) == ["7.5+PTX", "9.0"]


def test_override_targets_restrict_the_defaults():
    assert select_cuda_archs("k", "13.0", None, targets=["9.0"]) == ["9.0"]
    with pytest.raises(ArchError) as info:
        select_cuda_archs("only80", "13.0", ["8.0"], targets=["9.0"])
    assert "only80" in str(info.value) and "empty set of capabilities" in str(info.value)


def test_known_list_from_nvcc_limits_the_selection():
    known = parse_nvcc_arch_list("compute_80\ncompute_90\n")
    assert select_cuda_archs("k", "13.0", ["7.5", "8.0", "9.0"], known=known) == ["8.0", "9.0"]


def test_results_are_naturally_sorted():
    result = select_cuda_archs("k", "13.0", ["12.0", "10.0", "9.0", "8.0"])
    assert result == ["8.0", "9.0", "10.0", "12.0"]


@pytest.mark.parametrize(
    "arch, flags",
    [
        ("9.0", ["-gencode=arch=compute_90,code=sm_90"]),
        ("9.0a", ["-gencode=arch=compute_90a,code=sm_90a"]),
        ("10.0f", ["-gencode=arch=compute_100f,code=sm_100f"]),
        ("8.0+PTX", ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_80,code=compute_80"]),
        ("12.1+PTX", ["-gencode=arch=compute_121,code=sm_121", "-gencode=arch=compute_121,code=compute_121"]),
    ],
)
def test_gencode_flags(arch, flags):
    assert cuda_gencode_flags([arch]) == flags


def test_gencode_flags_for_a_list_keep_order():
    assert cuda_gencode_flags(["8.0", "9.0a"]) == ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90a,code=sm_90a"]


def test_gencode_rejects_bad_capability():
    with pytest.raises(ValueError):
        cuda_gencode_flags(["sm_90"])


def test_rocm_exact_intersection():
    assert select_rocm_archs("k", ["gfx942", "gfx940", "gfx90a"]) == ["gfx90a", "gfx942"]
    assert select_rocm_archs("k", None) == ROCM_ARCHS
    assert ROCM_ARCHS == ["gfx906", "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101", "gfx1200", "gfx1201"]


def test_rocm_empty_intersection_is_an_error():
    with pytest.raises(ArchError) as info:
        select_rocm_archs("relu_rocm", ["gfx99999"])
    message = str(info.value)
    assert "empty set of architectures" in message
    assert "relu_rocm" in message and "gfx99999" in message and "gfx942" in message


def test_parse_nvcc_arch_list():
    assert parse_nvcc_arch_list(NVCC_13_0_OUTPUT) == ["7.5", "8.0", "8.6", "8.7", "8.8", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1"]
    # Same set as the table for 13.0.
    assert parse_nvcc_arch_list(NVCC_13_0_OUTPUT) == known_cuda_archs("13.0")


def test_parse_nvcc_arch_list_tolerates_noise_and_order():
    assert parse_nvcc_arch_list("compute_90\r\ncompute_50\ncompute_90\n\nnvcc warning\n") == ["5.0", "9.0"]
    assert parse_nvcc_arch_list("") == []


def test_metadata_archs_are_a_sorted_union():
    assert metadata_archs(["9.0", "8.0", "9.0", "12.1+PTX"]) == ["12.1+PTX", "8.0", "9.0"]
