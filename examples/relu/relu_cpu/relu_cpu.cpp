#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>

#include "../torch-ext/torch_binding.h"

namespace {

template <typename T>
void relu_contiguous(T *out, const T *in, int64_t n) {
  at::parallel_for(0, n, /*grain_size=*/1 << 14, [&](int64_t begin, int64_t end) {
    const T zero(0);
    for (int64_t i = begin; i < end; ++i) {
      out[i] = in[i] > zero ? in[i] : zero;
    }
  });
}

}  // namespace

void relu(at::Tensor &out, const at::Tensor &input) {
  TORCH_CHECK(input.device().is_cpu(), "relu: expected a CPU tensor, got ", input.device());
  TORCH_CHECK(out.sizes() == input.sizes(), "relu: out has shape ", out.sizes(), " but input has shape ", input.sizes());
  TORCH_CHECK(out.scalar_type() == input.scalar_type(), "relu: out is ", out.scalar_type(), " but input is ", input.scalar_type());

  const at::Tensor in = input.contiguous();
  // Write through a contiguous buffer when `out` is a strided view.
  at::Tensor dst = out.is_contiguous() ? out : at::empty_like(in);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.scalar_type(), "relu_cpu", [&] {
    relu_contiguous(dst.data_ptr<scalar_t>(), in.const_data_ptr<scalar_t>(), in.numel());
  });
  if (!dst.is_same(out)) {
    out.copy_(dst);
  }
}
