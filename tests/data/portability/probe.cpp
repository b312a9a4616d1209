// A plain C++ Python module (limited API 3.9, no torch) that touches every part of libstdc++
// and glibc the portability recipe has to deal with. Built by tests/test_portability.py with
// templates/cmake/portable.cmake; each KB_COMPAT_DISABLE part leaves a mark the gate must catch.
#include <Python.h>  // first, as Python requires; it sets _FILE_OFFSET_BITS=64 (fcntl -> fcntl64)

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string streams(long n) {
  std::ostringstream out;
  out << "x=" << n << " y=" << 3.5 << " hex=" << std::hex << 255;
  return out.str();
}

// How many std::random_device tokens work ("arc4random" reaches the shim's arc4random).
long randoms() {
  long working = 0;
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

// Threads, mutexes (plain, try, timed, shared, shared timed), call_once, a timed condition
// wait and a future. Returns the counter, which must be n_threads * iterations.
long threads(long n_threads, long iterations) {
  std::mutex mutex;
  std::timed_mutex timed;
  std::shared_mutex shared;
  std::shared_timed_mutex shared_timed;
  std::condition_variable ready;
  std::once_flag once;
  std::atomic<int> inits{0};
  bool go = false;
  long counter = 0;
  std::vector<std::thread> pool;
  for (long t = 0; t < n_threads; ++t) {
    pool.emplace_back([&] {
      std::call_once(once, [&] { ++inits; });
      {
        std::unique_lock<std::mutex> lock(mutex);
        while (!go) ready.wait_for(lock, std::chrono::milliseconds(20));
      }
      for (long i = 0; i < iterations; ++i) {
        while (!mutex.try_lock()) std::this_thread::yield();
        ++counter;
        mutex.unlock();
      }
      if (timed.try_lock_for(std::chrono::milliseconds(50))) timed.unlock();
      { std::shared_lock<std::shared_mutex> read(shared); }
      if (shared_timed.try_lock_shared_for(std::chrono::milliseconds(50))) shared_timed.unlock_shared();
    });
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    go = true;
  }
  ready.notify_all();
  for (auto& thread : pool) thread.join();
  auto answer = std::async(std::launch::async, [] { return 0L; });
  return counter + answer.get() + (inits.load() == 1 ? 0 : 1000000);
}

long file_size(const char* path) { return static_cast<long>(std::filesystem::file_size(path)); }

long fd_flags(long fd) { return fcntl(static_cast<int>(fd), F_GETFD); }

[[noreturn]] void fail(const char* message) { throw std::runtime_error(message); }

// _Float16 arithmetic: GCC 12 calls libgcc's __extendhfsf2 / __truncsfhf2 for it.
double half_sum(double a, double b) {
#if defined(__x86_64__) && defined(__FLT16_MAX__)
  volatile _Float16 x = static_cast<_Float16>(a), y = static_cast<_Float16>(b);
  return static_cast<double>(static_cast<float>(x) + static_cast<float>(y));
#else
  return a + b;
#endif
}

// Turns a C++ exception into a Python RuntimeError (the module owns its exceptions).
template <typename F>
PyObject* guarded(F body) {
  try {
    return body();
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
}

PyObject* py_streams(PyObject*, PyObject* args) {
  long n;
  if (!PyArg_ParseTuple(args, "l", &n)) return nullptr;
  return guarded([&] { return PyUnicode_FromString(streams(n).c_str()); });
}
PyObject* py_randoms(PyObject*, PyObject*) {
  return guarded([] { return PyLong_FromLong(randoms()); });
}
PyObject* py_threads(PyObject*, PyObject* args) {
  long n, iterations;
  if (!PyArg_ParseTuple(args, "ll", &n, &iterations)) return nullptr;
  return guarded([&] { return PyLong_FromLong(threads(n, iterations)); });
}
PyObject* py_file_size(PyObject*, PyObject* args) {
  const char* path;
  if (!PyArg_ParseTuple(args, "s", &path)) return nullptr;
  return guarded([&] { return PyLong_FromLong(file_size(path)); });
}
PyObject* py_exp(PyObject*, PyObject* args) {
  double x;
  if (!PyArg_ParseTuple(args, "d", &x)) return nullptr;
  return PyFloat_FromDouble(std::exp(x) + std::pow(x, 2.0) + std::log(x + 10.0));
}
PyObject* py_half_sum(PyObject*, PyObject* args) {
  double a, b;
  if (!PyArg_ParseTuple(args, "dd", &a, &b)) return nullptr;
  return PyFloat_FromDouble(half_sum(a, b));
}
PyObject* py_fd_flags(PyObject*, PyObject* args) {
  long fd;
  if (!PyArg_ParseTuple(args, "l", &fd)) return nullptr;
  return PyLong_FromLong(fd_flags(fd));
}
PyObject* py_fail(PyObject*, PyObject* args) {
  const char* message;
  if (!PyArg_ParseTuple(args, "s", &message)) return nullptr;
  return guarded([&]() -> PyObject* { fail(message); });
}

PyMethodDef methods[] = {
    {"streams", py_streams, METH_VARARGS, nullptr},
    {"randoms", py_randoms, METH_NOARGS, nullptr},
    {"threads", py_threads, METH_VARARGS, nullptr},
    {"file_size", py_file_size, METH_VARARGS, nullptr},
    {"exp", py_exp, METH_VARARGS, nullptr},
    {"fd_flags", py_fd_flags, METH_VARARGS, nullptr},
    {"half_sum", py_half_sum, METH_VARARGS, nullptr},
    {"fail", py_fail, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, KB_MODULE_NAME_STR, nullptr, -1, methods,
                          nullptr, nullptr, nullptr, nullptr};

}  // namespace

#ifdef KB_PROBE_EXTRA_EXPORT
// Only for the export-rule test: a second default-visibility symbol.
extern "C" __attribute__((visibility("default"))) int kb_probe_extra_export(void) { return 7; }
#endif

#define KB_CONCAT2(a, b) a##b
#define KB_CONCAT(a, b) KB_CONCAT2(a, b)
PyMODINIT_FUNC KB_CONCAT(PyInit_, KB_MODULE_NAME)(void) { return PyModule_Create(&module_def); }
