// Exceptions across the boundary between the extension (its own static, hidden libstdc++) and
// torch (the shared libstdc++.so.6): thrown here and caught by torch/Python, thrown by libtorch
// and caught here, captured on an at::parallel_for worker and rethrown, thrown by many threads.
#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/select.h>
#include <c10/util/Exception.h>

#include "json.h"
#include "probes.h"

namespace conformance {
namespace {

// A type libtorch has never seen: its typeinfo exists only in this library.
class ConformanceError : public std::exception {
 public:
  explicit ConformanceError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Records std::uncaught_exceptions() when destroyed, i.e. during stack unwinding.
struct UnwindWitness {
  int* seen;
  ~UnwindWitness() { *seen = std::uncaught_exceptions(); }
};

}  // namespace

int64_t check_positive(int64_t x) {
  TORCH_CHECK(x > 0, "conformance.check_positive: x must be positive, got ", x);
  return 2 * x;
}

void throw_std(const std::string& kind, const std::string& message) {
  if (kind == "runtime_error") throw std::runtime_error(message);
  if (kind == "out_of_range") throw std::out_of_range(message);
  if (kind == "invalid_argument") throw std::invalid_argument(message);
  if (kind == "custom") throw ConformanceError(message);
  // C10_THROW_ERROR: a c10 error type thrown by this library's own runtime.
  if (kind == "c10_value_error") C10_THROW_ERROR(ValueError, message);
  if (kind == "c10_index_error") C10_THROW_ERROR(IndexError, message);
  TORCH_CHECK(false, "conformance.throw_std: unknown kind '", kind, "'");
}

std::string catch_torch_error() {
  const at::Tensor a = at::ones({2, 3});
  const at::Tensor b = at::ones({4, 5});
  Json out;
  int64_t caught = 0;
  try {
    (void)at::matmul(a, b);
  } catch (const c10::Error& e) {
    ++caught;
    out.boolean("caught_as_c10_error", true).string("c10_error", e.what_without_backtrace()).string("c10_msg", e.msg());
  }
  try {
    (void)at::matmul(a, b);
  } catch (const std::exception& e) {
    ++caught;
    out.boolean("caught_as_std_exception", true)
        .string("std_exception", e.what())
        .boolean("dynamic_cast_to_c10_error", dynamic_cast<const c10::Error*>(&e) != nullptr);
  }
  // catch (...) + std::current_exception() here, rethrown here.
  try {
    std::exception_ptr captured;
    try {
      (void)at::matmul(a, b);
    } catch (...) {
      ++caught;
      captured = std::current_exception();
    }
    std::rethrow_exception(captured);
  } catch (const c10::Error& e) {
    out.boolean("rethrown_exception_ptr", true);
  }
  // A c10::IndexError (a c10::Error subclass) from libtorch, caught by its own type.
  try {
    (void)at::select(a, 0, 7);
  } catch (const c10::IndexError& e) {
    ++caught;
    out.string("index_error", e.what_without_backtrace());
  }
  return out.integer("torch_exceptions_caught", caught).str();
}

std::string exceptions_inside() {
  Json out;
  const int at_start = std::uncaught_exceptions();
  int during_unwind = -100;
  try {
    UnwindWitness witness{&during_unwind};
    throw ConformanceError("unwinding");
  } catch (const ConformanceError& e) {
    out.string("custom", e.what());
  }
  out.integer("uncaught_delta_during_unwind", during_unwind - at_start);
  out.integer("uncaught_delta_after", std::uncaught_exceptions() - at_start);

  // Rethrow with `throw;` from a nested handler.
  try {
    try {
      throw std::out_of_range("inner");
    } catch (const std::exception&) {
      throw;
    }
  } catch (const std::out_of_range& e) {
    out.string("rethrow", e.what());
  }
  // exception_ptr round trip through make_exception_ptr, a copy and another thread.
  std::exception_ptr stored = std::make_exception_ptr(std::runtime_error("stored"));
  std::string from_thread;
  std::thread([&] {
    try {
      std::rethrow_exception(stored);
    } catch (const std::runtime_error& e) {
      from_thread = e.what();
    }
  }).join();
  out.string("exception_ptr_other_thread", from_thread);
  // Nested exceptions.
  try {
    try {
      throw std::runtime_error("cause");
    } catch (...) {
      std::throw_with_nested(std::logic_error("outer"));
    }
  } catch (const std::logic_error& e) {
    std::string nested;
    try {
      std::rethrow_if_nested(e);
    } catch (const std::runtime_error& cause) {
      nested = cause.what();
    }
    out.string("nested", std::string(e.what()) + "<-" + nested);
  }
  return out.str();
}

std::string parallel_for_throw(int64_t n, const std::string& kind) {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> thrower_is_caller{true};
  std::atomic<int64_t> chunks{0};
  Json out;
  out.integer("num_threads", at::get_num_threads());
  const int64_t target = n - 1;  // in the last chunk: a worker thread when there are several
  try {
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      ++chunks;
      if (begin <= target && target < end) {
        thrower_is_caller = std::this_thread::get_id() == caller;
        if (kind == "std") throw std::runtime_error("conformance: std::runtime_error in parallel_for at " + std::to_string(target));
        if (kind == "custom") throw ConformanceError("conformance: ConformanceError in parallel_for at " + std::to_string(target));
        TORCH_CHECK(false, "conformance: TORCH_CHECK in parallel_for at ", target);
      }
    });
    out.string("caught_as", "nothing");
  } catch (const c10::Error& e) {
    out.string("caught_as", "c10::Error").string("message", e.what_without_backtrace());
  } catch (const ConformanceError& e) {
    out.string("caught_as", "ConformanceError").string("message", e.what());
  } catch (const std::runtime_error& e) {
    out.string("caught_as", "std::runtime_error").string("message", e.what());
  } catch (const std::exception& e) {
    out.string("caught_as", "std::exception").string("message", e.what());
  }
  return out.boolean("thrower_is_caller", thrower_is_caller).integer("chunks", chunks).str();
}

int64_t concurrent_throws(int64_t threads, int64_t iters) {
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> ready{0};
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      for (int64_t i = 0; i < iters; ++i) {
        const std::string expected = std::to_string(t) + ":" + std::to_string(i);
        try {
          switch (i % 3) {
            case 0: throw std::runtime_error(expected);
            case 1: throw ConformanceError(expected);
            default: TORCH_CHECK(false, expected);  // thrown by libc10 (torch's runtime)
          }
        } catch (const c10::Error& e) {
          ok += e.msg() == expected;
        } catch (const std::exception& e) {
          ok += expected == e.what();
        }
      }
    });
  }
  for (auto& thread : pool) thread.join();
  return ok.load();
}

int64_t uncaught_exceptions() { return std::uncaught_exceptions(); }

}  // namespace conformance
