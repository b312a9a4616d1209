// A TORCH_LIBRARY extension for tests/test_portability.py, built with the full portability
// recipe against torch's CPU libraries. Its ops exercise what a static libstdc++ inside a torch
// process must get right: iostreams (cold, also from torch's worker threads), random_device
// (arc4random reaches the glibc shim), threads and mutexes, exceptions in both directions.
#include <Python.h>  // first, as Python requires (limited API: only PyInit below uses it)

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <torch/library.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

at::Tensor relu(const at::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat, "relu: expected float32, got ", x.scalar_type());
  auto input = x.contiguous();
  auto out = at::empty_like(input);
  const float* src = input.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, input.numel(), 1024, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = src[i] > 0.f ? src[i] : 0.f;
  });
  return out;
}

std::string streams(int64_t n) {
  std::ostringstream out;
  out << "x=" << n << " y=" << 3.5 << " hex=" << std::hex << 255;
  return out.str();
}

// Formats on torch's intra-op worker threads at once; returns how many chunks came out right.
int64_t parallel_streams(int64_t chunks) {
  std::atomic<int64_t> good{0};
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      std::ostringstream out;
      out << "chunk " << i;
      if (out.str() == "chunk " + std::to_string(i)) ++good;
    }
  });
  return good.load();
}

int64_t randoms() {
  int64_t working = 0;
  for (const char* token : {"default", "arc4random", "getentropy", "/dev/urandom"}) {
    try {
      std::random_device device(token);
      (void)device();
      ++working;
    } catch (const std::exception&) {
    }
  }
  return working;
}

int64_t threads(int64_t n_threads, int64_t iterations) {
  std::mutex mutex;
  std::shared_timed_mutex shared;
  std::condition_variable ready;
  bool go = false;
  int64_t counter = 0;
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < n_threads; ++t) {
    pool.emplace_back([&] {
      {
        std::unique_lock<std::mutex> lock(mutex);
        while (!go) ready.wait_for(lock, std::chrono::milliseconds(20));
      }
      for (int64_t i = 0; i < iterations; ++i) {
        std::lock_guard<std::mutex> lock(mutex);
        ++counter;
      }
      if (shared.try_lock_shared_for(std::chrono::milliseconds(20))) shared.unlock_shared();
    });
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    go = true;
  }
  ready.notify_all();
  for (auto& thread : pool) thread.join();
  return counter;
}

double exp_log(double x) { return std::exp(x) + std::log(x + 10.0); }

void fail(std::string message) { throw std::runtime_error(message); }

// A c10::Error thrown inside libtorch, caught here (libtorch's libstdc++ threw it).
std::string catch_torch_error() {
  try {
    (void)at::matmul(at::ones({2, 3}), at::ones({2, 3}));
  } catch (const c10::Error&) {
    return "caught c10::Error";
  } catch (const std::exception&) {
    return "caught std::exception";
  }
  return "no error";
}

}  // namespace

TORCH_LIBRARY(TORCH_EXTENSION_NAME, m) {
  m.def("relu(Tensor x) -> Tensor");
  m.def("streams(int n) -> str", &streams);
  m.def("parallel_streams(int chunks) -> int", &parallel_streams);
  m.def("randoms() -> int", &randoms);
  m.def("threads(int n, int iterations) -> int", &threads);
  m.def("exp_log(float x) -> float", &exp_log);
  m.def("fail(str message) -> ()", &fail);
  m.def("catch_torch_error() -> str", &catch_torch_error);
}

TORCH_LIBRARY_IMPL(TORCH_EXTENSION_NAME, CPU, m) { m.impl("relu", &relu); }

namespace {
PyModuleDef module_def = {PyModuleDef_HEAD_INIT, KB_MODULE_NAME_STR, nullptr, -1, nullptr,
                          nullptr, nullptr, nullptr, nullptr};
}

#define KB_CONCAT2(a, b) a##b
#define KB_CONCAT(a, b) KB_CONCAT2(a, b)
PyMODINIT_FUNC KB_CONCAT(PyInit_, KB_MODULE_NAME)(void) { return PyModule_Create(&module_def); }
