// CUDA part of the KB_PROBE_KIND=cuda test module: a kernel, its launch, and host code that
// uses the C++ runtime (a timed condition wait needs the prelude, given via nvcc's -include).
#include <cuda_runtime.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

__global__ void add_one(float* data, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) data[i] += 1.0f;
}

namespace {
void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::ostringstream message;
    message << what << ": " << cudaGetErrorName(status);
    throw std::runtime_error(message.str());
  }
}
}  // namespace

// Adds one to n floats on the GPU and returns their sum; throws std::runtime_error naming the
// CUDA error when there is no usable device (the only path a GPU-less machine can take).
double kb_cuda_add_one(int n) {
  std::mutex mutex;
  std::condition_variable idle;
  std::unique_lock<std::mutex> lock(mutex);
  idle.wait_for(lock, std::chrono::microseconds(1));

  int devices = 0;
  check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  float* data = nullptr;
  check(cudaMalloc(&data, n * sizeof(float)), "cudaMalloc");
  check(cudaMemset(data, 0, n * sizeof(float)), "cudaMemset");
  add_one<<<(n + 255) / 256, 256>>>(data, n);
  check(cudaGetLastError(), "add_one");
  float* host = new float[n];
  check(cudaMemcpy(host, data, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  cudaFree(data);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += host[i];
  delete[] host;
  return sum;
}
