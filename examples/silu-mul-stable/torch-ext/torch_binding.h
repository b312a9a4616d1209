#pragma once

#include <torch/csrc/stable/tensor.h>

// out[..., i] = silu(input[..., i]) * input[..., d + i] for i < d, where input's last
// dimension is 2 * d. Both tensors contiguous, float32 or bfloat16.
void silu_and_mul(torch::stable::Tensor out, torch::stable::Tensor input);
