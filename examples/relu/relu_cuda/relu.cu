#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../torch-ext/torch_binding.h"

namespace {

template <typename T>
__global__ void relu_kernel(T *__restrict__ out, const T *__restrict__ in, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T x = in[i];
    // Compare in float (or double): Half/BFloat16 have no unambiguous device operator>.
    using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;
    out[i] = static_cast<acc_t>(x) > acc_t(0) ? x : T(0);
  }
}

}  // namespace

void relu(at::Tensor &out, const at::Tensor &input) {
  TORCH_CHECK(input.is_cuda(), "relu: expected a CUDA tensor, got ", input.device());
  TORCH_CHECK(out.device() == input.device(), "relu: out is on ", out.device(), " but input is on ", input.device());
  TORCH_CHECK(out.sizes() == input.sizes(), "relu: out has shape ", out.sizes(), " but input has shape ", input.sizes());
  TORCH_CHECK(out.scalar_type() == input.scalar_type(), "relu: out is ", out.scalar_type(), " but input is ", input.scalar_type());

  const int64_t n = input.numel();
  if (n == 0) {
    return;
  }
  const c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor in = input.contiguous();
  at::Tensor dst = out.is_contiguous() ? out : at::empty_like(in);
  constexpr int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "relu_cuda", [&] {
    relu_kernel<scalar_t><<<blocks, threads, 0, stream>>>(dst.data_ptr<scalar_t>(), in.const_data_ptr<scalar_t>(), n);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (!dst.is_same(out)) {
    out.copy_(dst);
  }
}
