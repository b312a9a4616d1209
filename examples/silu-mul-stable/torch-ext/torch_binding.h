#pragma once

#include <cstdint>

#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

// out[..., i] = silu(input[..., i]) * input[..., d + i] for i < d, where input's last
// dimension is 2 * d. Both tensors contiguous, float32 or bfloat16.
void silu_and_mul(torch::stable::Tensor out, torch::stable::Tensor input);

// The argument checks both backends share; returns d (half of input's last dimension).
inline int64_t check_silu_and_mul_args(const torch::stable::Tensor &out, const torch::stable::Tensor &input) {
  using torch::headeronly::ScalarType;
  STD_TORCH_CHECK(input.is_contiguous() && out.is_contiguous(), "silu_and_mul: expected contiguous tensors");
  const ScalarType type = input.scalar_type();
  STD_TORCH_CHECK(type == ScalarType::Float || type == ScalarType::BFloat16, "silu_and_mul: supports float32 and bfloat16");
  STD_TORCH_CHECK(out.scalar_type() == type, "silu_and_mul: out and input must have the same dtype");
  const int64_t width = input.size(input.dim() - 1);
  STD_TORCH_CHECK(width % 2 == 0, "silu_and_mul: the last dimension must be even, got ", width);
  const int64_t d = width / 2;
  STD_TORCH_CHECK(out.numel() * 2 == input.numel() && out.size(out.dim() - 1) == d,
                  "silu_and_mul: out must have input's shape with the last dimension halved");
  return d;
}
