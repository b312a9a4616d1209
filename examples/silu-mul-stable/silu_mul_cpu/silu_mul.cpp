#include <cmath>
#include <cstring>

#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>

#include "../torch-ext/torch_binding.h"

namespace {

using torch::headeronly::ScalarType;

float load(const void *base, int64_t i, ScalarType type) {
  if (type == ScalarType::Float) {
    return static_cast<const float *>(base)[i];
  }
  // bfloat16 is the upper half of a float32.
  const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t *>(base)[i]) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

void store(void *base, int64_t i, ScalarType type, float value) {
  if (type == ScalarType::Float) {
    static_cast<float *>(base)[i] = value;
    return;
  }
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  bits += 0x7FFF + ((bits >> 16) & 1);  // round to nearest even
  static_cast<uint16_t *>(base)[i] = static_cast<uint16_t>(bits >> 16);
}

}  // namespace

void silu_and_mul(torch::stable::Tensor out, torch::stable::Tensor input) {
  STD_TORCH_CHECK(input.is_cpu() && out.is_cpu(), "silu_and_mul: expected CPU tensors");
  const int64_t d = check_silu_and_mul_args(out, input);
  const ScalarType type = input.scalar_type();
  const int64_t width = 2 * d;
  const int64_t rows = d == 0 ? 0 : input.numel() / width;
  const void *src = input.const_data_ptr();
  void *dst = out.mutable_data_ptr();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < d; ++i) {
      const float gate = load(src, r * width + i, type);
      const float up = load(src, r * width + d + i, type);
      store(dst, r * d + i, type, gate / (1.0f + std::exp(-gate)) * up);
    }
  }
}
