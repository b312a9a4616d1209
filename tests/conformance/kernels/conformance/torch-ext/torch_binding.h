#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace conformance {

// out[:] = value for a contiguous float32 tensor (CPU: fill_cpu/, CUDA: fill_cuda/).
void fill_(at::Tensor& out, double value);

#if defined(CUDA_KERNEL)
// Launches a kernel with an invalid configuration; with catch_inside the resulting c10 CUDA
// error is caught in nvcc-compiled code and its message returned, otherwise it escapes.
std::string cuda_bad_launch(bool catch_inside);
#endif

}  // namespace conformance
