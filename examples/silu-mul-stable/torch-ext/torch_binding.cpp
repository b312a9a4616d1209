// Registration through the torch stable ABI (TORCH_TARGET_VERSION is set by the build).
#include <torch/csrc/stable/library.h>

#include "registration.h"
#include "torch_binding.h"

STABLE_TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) {
  m.def("silu_and_mul(Tensor! out, Tensor input) -> ()");
}

#if defined(CPU_KERNEL)
STABLE_TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, CPU, m) {
  m.impl("silu_and_mul", TORCH_BOX(&silu_and_mul));
}
#elif defined(CUDA_KERNEL)
STABLE_TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME, CUDA, m) {
  m.impl("silu_and_mul", TORCH_BOX(&silu_and_mul));
}
#endif

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
