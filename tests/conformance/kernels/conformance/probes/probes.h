// The conformance probes: host C++ compiled into every variant (CPU and CUDA). Each is one op;
// most return a JSON object that tests/test_conformance.py decodes and checks.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include <c10/util/ArrayRef.h>

namespace conformance {

// exceptions.cpp
int64_t check_positive(int64_t x);                                   // TORCH_CHECK(x > 0) -> RuntimeError
void throw_std(const std::string& kind, const std::string& message);  // a C++ exception escapes to Python
std::string catch_torch_error();                                      // libtorch's c10::Error caught here
std::string exceptions_inside();                                      // thrown and caught in the extension
std::string parallel_for_throw(int64_t n, const std::string& kind);   // thrown on an at::parallel_for worker
int64_t concurrent_throws(int64_t threads, int64_t iters);            // many threads throwing at once
int64_t uncaught_exceptions();                                        // this runtime's std::uncaught_exceptions()

// threads.cpp
std::string mutex_probe(int64_t threads, int64_t iters);
std::string condvar_probe(int64_t items);
std::string call_once_probe(int64_t threads);
std::string timed_wait_probe(int64_t ms);
std::string async_probe(int64_t threads);

// text.cpp
std::string format_probe();
std::string istringstream_probe();
std::string file_roundtrip(const std::string& path, int64_t lines);
std::string parallel_streams(const std::string& directory, int64_t tasks);
void print_streams(const std::string& text);
std::string random_device_probe(int64_t draws);
std::string regex_probe();
std::string to_chars_probe(c10::ArrayRef<double> values);
std::string info();

// state.cpp
std::tuple<int64_t, int64_t, int64_t, int64_t> bump();

}  // namespace conformance
