// Op schemas and registration of the conformance kernel. TORCH_EXTENSION_NAME is this build's
// unique namespace. The probes take no tensors: registered with m.def(schema, fn) they are
// catch-all kernels, the same for every backend.
#include <torch/library.h>

#include "../probes/probes.h"
#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) {
  m.def("fill_(Tensor! out, float value) -> ()");
#if defined(CPU_KERNEL)
  m.impl("fill_", c10::DispatchKey::CPU, &conformance::fill_);
#elif defined(CUDA_KERNEL)
  m.impl("fill_", c10::DispatchKey::CUDA, &conformance::fill_);
  m.def("cuda_bad_launch(bool catch_inside) -> str", &conformance::cuda_bad_launch);
#endif

  m.def("check_positive(int x) -> int", &conformance::check_positive);
  m.def("throw_std(str kind, str message) -> ()", &conformance::throw_std);
  m.def("catch_torch_error() -> str", &conformance::catch_torch_error);
  m.def("exceptions_inside() -> str", &conformance::exceptions_inside);
  m.def("parallel_for_throw(int n, str kind) -> str", &conformance::parallel_for_throw);
  m.def("concurrent_throws(int threads, int iters) -> int", &conformance::concurrent_throws);
  m.def("uncaught_exceptions() -> int", &conformance::uncaught_exceptions);

  m.def("mutex_probe(int threads, int iters) -> str", &conformance::mutex_probe);
  m.def("condvar_probe(int items) -> str", &conformance::condvar_probe);
  m.def("call_once_probe(int threads) -> str", &conformance::call_once_probe);
  m.def("timed_wait_probe(int ms) -> str", &conformance::timed_wait_probe);
  m.def("async_probe(int threads) -> str", &conformance::async_probe);

  m.def("format_probe() -> str", &conformance::format_probe);
  m.def("istringstream_probe() -> str", &conformance::istringstream_probe);
  m.def("file_roundtrip(str path, int lines) -> str", &conformance::file_roundtrip);
  m.def("parallel_streams(str directory, int tasks) -> str", &conformance::parallel_streams);
  m.def("print_streams(str text) -> ()", &conformance::print_streams);
  m.def("random_device_probe(int draws) -> str", &conformance::random_device_probe);
  m.def("regex_probe() -> str", &conformance::regex_probe);
  m.def("to_chars_probe(float[] values) -> str", &conformance::to_chars_probe);
  m.def("info() -> str", &conformance::info);

  m.def("bump() -> (int, int, int, int)", &conformance::bump);
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
