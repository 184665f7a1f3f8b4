// CUDA side of the backend seam: device queries and a self-test kernel. The batched
// finite-element kernels of the CUDA backend build on these helpers.
#include <cmath>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/cuda/cuda_check.cuh"

namespace doppel::cuda {
namespace {

__global__ void axpy_kernel(int n, double a, const double* __restrict__ x, double* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  y[i] += a * x[i];
}

}  // namespace

bool compiled() { return true; }

bool solvers_available() { return false; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  DOPPEL_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

std::string driver_version() {
  int v = 0;
  DOPPEL_CUDA_CHECK(cudaDriverGetVersion(&v));
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

double self_test(int n) {
  std::vector<double> x(static_cast<size_t>(n)), y(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = std::sin(0.1 * i);
    y[static_cast<size_t>(i)] = std::cos(0.3 * i);
  }
  DeviceBuffer<double> dx(static_cast<size_t>(n)), dy(static_cast<size_t>(n));
  dx.upload(x.data());
  dy.upload(y.data());
  const int block = 256;
  axpy_kernel<<<(n + block - 1) / block, block>>>(n, 2.5, dx.data(), dy.data());
  DOPPEL_CUDA_CHECK(cudaGetLastError());
  DOPPEL_CUDA_CHECK(cudaDeviceSynchronize());
  dy.download(out.data());
  double err = 0;
  for (int i = 0; i < n; ++i)
    err = std::fmax(err, std::fabs(out[static_cast<size_t>(i)] - (y[static_cast<size_t>(i)] + 2.5 * x[static_cast<size_t>(i)])));
  return err;
}

}  // namespace doppel::cuda
