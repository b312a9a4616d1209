#include <stdexcept>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include "../torch-ext/torch_binding.h"

namespace {

__global__ void fill_kernel(float* __restrict__ out, float value, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = value;
  }
}

}  // namespace

void conformance::fill_(at::Tensor& out, double value) {
  TORCH_CHECK(out.is_cuda(), "conformance.fill_: expected a CUDA tensor, got ", out.device());
  TORCH_CHECK(out.scalar_type() == at::kFloat, "conformance.fill_: expected a float32 tensor, got ", out.scalar_type());
  TORCH_CHECK(out.is_contiguous(), "conformance.fill_: expected a contiguous tensor");
  const int64_t n = out.numel();
  if (n == 0) return;
  const c10::cuda::CUDAGuard guard(out.device());
  constexpr int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  fill_kernel<<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(out.data_ptr<float>(), static_cast<float>(value), n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::string conformance::cuda_bad_launch(bool catch_inside) {
  // 2048 threads per block (every GPU allows at most 1024): a launch error that is not sticky
  // (cudaErrorInvalidConfiguration, or cudaErrorInvalidValue with the CUDA 13 runtime).
  fill_kernel<<<1, 2048, 0, c10::cuda::getCurrentCUDAStream()>>>(nullptr, 0.0f, 0);
  if (!catch_inside) {
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return "no error";
  }
  try {
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } catch (const c10::Error& e) {
    // Also an exception thrown and caught inside nvcc-compiled code.
    try {
      throw std::runtime_error(e.what_without_backtrace());
    } catch (const std::exception& inner) {
      return inner.what();
    }
  }
  return "no error";
}
