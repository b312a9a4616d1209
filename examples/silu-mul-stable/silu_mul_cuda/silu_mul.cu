#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include "../torch-ext/torch_binding.h"

namespace {

using torch::headeronly::ScalarType;

__device__ float to_float(float x) { return x; }
__device__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ T from_float(float x);
template <> __device__ float from_float<float>(float x) { return x; }
template <> __device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

template <typename T>
__global__ void silu_and_mul_kernel(T *__restrict__ out, const T *__restrict__ in, int64_t d) {
  const int64_t row = blockIdx.x;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float gate = to_float(in[row * 2 * d + i]);
    const float up = to_float(in[row * 2 * d + d + i]);
    out[row * d + i] = from_float<T>(gate / (1.0f + expf(-gate)) * up);
  }
}

}  // namespace

void silu_and_mul(torch::stable::Tensor out, torch::stable::Tensor input) {
  STD_TORCH_CHECK(input.is_cuda() && out.is_cuda(), "silu_and_mul: expected CUDA tensors");
  STD_TORCH_CHECK(input.get_device_index() == out.get_device_index(), "silu_and_mul: tensors are on different devices");
  const int64_t d = check_silu_and_mul_args(out, input);
  const ScalarType type = input.scalar_type();
  const int64_t width = 2 * d;
  const int64_t rows = d == 0 ? 0 : input.numel() / width;
  if (rows == 0) {
    return;
  }

  void *stream_ptr = nullptr;
  TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(input.get_device_index(), &stream_ptr));
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const int threads = static_cast<int>(d < 1024 ? d : 1024);
  if (type == ScalarType::Float) {
    silu_and_mul_kernel<<<rows, threads, 0, stream>>>(static_cast<float *>(out.mutable_data_ptr()), static_cast<const float *>(input.const_data_ptr()), d);
  } else {
    silu_and_mul_kernel<<<rows, threads, 0, stream>>>(static_cast<__nv_bfloat16 *>(out.mutable_data_ptr()), static_cast<const __nv_bfloat16 *>(input.const_data_ptr()), d);
  }
  const cudaError_t err = cudaGetLastError();
  STD_TORCH_CHECK(err == cudaSuccess, "silu_and_mul: kernel launch failed: ", cudaGetErrorString(err));
}
