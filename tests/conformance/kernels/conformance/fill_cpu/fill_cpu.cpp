#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "../torch-ext/torch_binding.h"

void conformance::fill_(at::Tensor& out, double value) {
  TORCH_CHECK(out.device().is_cpu(), "conformance.fill_: expected a CPU tensor, got ", out.device());
  TORCH_CHECK(out.scalar_type() == at::kFloat, "conformance.fill_: expected a float32 tensor, got ", out.scalar_type());
  TORCH_CHECK(out.is_contiguous(), "conformance.fill_: expected a contiguous tensor");
  float* data = out.data_ptr<float>();
  const float v = static_cast<float>(value);
  at::parallel_for(0, out.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) data[i] = v;
  });
}
