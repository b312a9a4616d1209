// Op schema and registration for the relu kernel. TORCH_EXTENSION_NAME is this build's
// unique namespace; each backend registers its own implementation.
#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) {
  m.def("relu(Tensor! out, Tensor input) -> ()");
#if defined(CPU_KERNEL)
  m.impl("relu", c10::DispatchKey::CPU, &relu);
#elif defined(CUDA_KERNEL)
  m.impl("relu", c10::DispatchKey::CUDA, &relu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
