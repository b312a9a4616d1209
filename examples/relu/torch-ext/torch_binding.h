#pragma once

#include <ATen/core/Tensor.h>

// out = max(input, 0), elementwise. `out` must have input's shape and dtype.
void relu(at::Tensor &out, const at::Tensor &input);
