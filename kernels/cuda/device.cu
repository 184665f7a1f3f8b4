// CUDA side of the backend seam: device queries, the executor, and a self-test kernel.
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/cuda/cuda_api.hpp"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/cuda_executor.cuh"

namespace doppel::cuda {
namespace {

__global__ void axpy_kernel(int n, double a, const double* __restrict__ x, double* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  y[i] += a * x[i];
}

}  // namespace

bool compiled() { return true; }

bool solvers_available() { return true; }

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

bool memory_info(int device, size_t& free_bytes, size_t& total_bytes) {
  if (device < 0 || device >= device_count()) return false;
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess) return false;
  if (cudaSetDevice(device) != cudaSuccess) return false;
  const bool ok = cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
  cudaSetDevice(current);
  if (!ok) cudaGetLastError();
  return ok;
}

double self_test(int n) {
  std::vector<double> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = std::sin(0.1 * i);
    y[static_cast<size_t>(i)] = std::cos(0.3 * i);
  }
  const auto exec = make_executor(0);
  const Array<double> dx(exec, x);
  Array<double> dy(exec, y);
  const int block = 256;
  launch(as_cuda(*exec), dim3(static_cast<unsigned>((n + block - 1) / block)), dim3(block), 0, axpy_kernel,
         n, 2.5, dx.data(), dy.data());
  const std::vector<double> out = dy.to_host();
  double err = 0;
  for (int i = 0; i < n; ++i)
    err = std::fmax(err, std::fabs(out[static_cast<size_t>(i)] - (y[static_cast<size_t>(i)] + 2.5 * x[static_cast<size_t>(i)])));
  return err;
}

// --- executor ---------------------------------------------------------------------------

CudaExecutor::CudaExecutor(int device) : device_(device) {
  DOPPEL_CUDA_CHECK(cudaSetDevice(device_));
  DOPPEL_CUDA_CHECK(cudaGetDeviceProperties(&props_, device_));
  DOPPEL_CUDA_CHECK(cudaStreamCreate(&stream_));
  if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(stream_);
    throw DeviceError("cuBLAS could not be initialized on device " + std::to_string(device_));
  }
  cublasSetStream(blas_, stream_);
  if (cudaMalloc(&scratch_, 256) != cudaSuccess) {
    cublasDestroy(blas_);
    cudaStreamDestroy(stream_);
    throw DeviceError("could not allocate 256 bytes on device " + std::to_string(device_));
  }
}

CudaExecutor::~CudaExecutor() {
  cudaFree(scratch_);
  cublasDestroy(blas_);
  cudaStreamDestroy(stream_);
}

std::string CudaExecutor::description() const {
  return std::string(props_.name) + " (device " + std::to_string(device_) + ", " +
         std::to_string(props_.multiProcessorCount) + " SMs, " +
         std::to_string(props_.totalGlobalMem >> 20) + " MiB)";
}

void* CudaExecutor::allocate(size_t bytes) const {
  void* p = nullptr;
  DOPPEL_CUDA_CHECK(cudaSetDevice(device_));
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw DeviceError("device " + std::to_string(device_) + ": could not allocate " +
                      std::to_string(bytes >> 20) + " MiB (" + cudaGetErrorString(err) +
                      "); use smaller scenario batches");
  }
  return p;
}

void CudaExecutor::deallocate(void* ptr) const noexcept { cudaFree(ptr); }

void CudaExecutor::copy_from_host(void* dst, const void* src, size_t bytes) const {
  DOPPEL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  DOPPEL_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaExecutor::copy_to_host(void* dst, const void* src, size_t bytes) const {
  DOPPEL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  DOPPEL_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaExecutor::copy(void* dst, const void* src, size_t bytes) const {
  DOPPEL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaExecutor::synchronize() const { DOPPEL_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

size_t CudaExecutor::free_memory() const {
  size_t free_bytes = 0, total = 0;
  DOPPEL_CUDA_CHECK(cudaSetDevice(device_));
  DOPPEL_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return free_bytes;
}

std::shared_ptr<const Executor> make_executor(int device) {
  static std::mutex mutex;
  static std::map<int, std::shared_ptr<const Executor>> executors;
  std::lock_guard<std::mutex> lock(mutex);
  const int count = device_count();
  if (device < 0 || device >= count)
    throw Unavailable("CUDA device " + std::to_string(device) + " is not present (" +
                      std::to_string(count) + " device(s) found)");
  auto& e = executors[device];
  if (!e) e = std::make_shared<CudaExecutor>(device);
  return e;
}

}  // namespace doppel::cuda
