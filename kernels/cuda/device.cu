// CUDA side of the backend seam: device queries, the executor, and a self-test kernel.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
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

namespace {
std::atomic<bool> lost{false};

// Errors after which every later call in the process fails ("sticky" errors: the context is
// corrupted).
bool context_lost_by(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}
}  // namespace

void throw_error(cudaError_t err, const std::string& what) {
  cudaGetLastError();  // clear a non-sticky error so the next launch check is not blamed for it
  const bool fatal = context_lost_by(err);
  if (fatal) lost = true;
  throw DeviceError(what + ": " + cudaGetErrorString(err) +
                        (fatal ? " (the GPU context is lost for this process: restart it)" : ""),
                    fatal);
}

bool device_lost() { return lost.load(); }

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
  DOPPEL_CUDA_LAUNCH(as_cuda(*exec), dim3(static_cast<unsigned>((n + block - 1) / block)), dim3(block), 0, axpy_kernel,
         n, 2.5, dx.data(), dy.data());
  const std::vector<double> out = dy.to_host();
  double err = 0;
  for (int i = 0; i < n; ++i)
    err = std::fmax(err, std::fabs(out[static_cast<size_t>(i)] - (y[static_cast<size_t>(i)] + 2.5 * x[static_cast<size_t>(i)])));
  return err;
}

// --- executor ---------------------------------------------------------------------------

namespace {

struct Lane {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
};

}  // namespace

// What the executors of one device share. Created once per device, never destroyed (the
// lanes and the pool live as long as the process, like the CUDA context itself).
struct DeviceContext {
  DeviceContext(int d, size_t limit) : device(d), budget(limit) {}
  int device;
  cudaDeviceProp props{};
  cudaMemPool_t pool = nullptr;  // null: the device has no stream-ordered allocator
  MemoryBudget budget;
  std::mutex mutex;
  std::vector<Lane> idle;

  Lane take_lane() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!idle.empty()) {
        const Lane l = idle.back();
        idle.pop_back();
        return l;
      }
    }
    Lane l;
    DOPPEL_CUDA_CHECK(cudaSetDevice(device));
    // Non-blocking: no implicit synchronization with the legacy default stream, which
    // LibTorch and other libraries in the same process may be using.
    DOPPEL_CUDA_CHECK(cudaStreamCreateWithFlags(&l.stream, cudaStreamNonBlocking));
    if (cublasCreate(&l.blas) != CUBLAS_STATUS_SUCCESS) {
      cudaStreamDestroy(l.stream);
      throw DeviceError("cuBLAS could not be initialized on device " + std::to_string(device));
    }
    if (cublasSetStream(l.blas, l.stream) != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(l.blas);
      cudaStreamDestroy(l.stream);
      throw DeviceError("cuBLAS could not be bound to a stream on device " + std::to_string(device));
    }
    return l;
  }
  void give_back(Lane l) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mutex);
      idle.push_back(l);
    } catch (...) {
      cublasDestroy(l.blas);
      cudaStreamDestroy(l.stream);
    }
  }
};

namespace {

struct Registry {
  std::mutex mutex;
  std::map<int, std::shared_ptr<DeviceContext>> contexts;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: executors may outlive static teardown
  return *r;
}

std::shared_ptr<DeviceContext> context_for(int device) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  const int count = device_count();
  if (device < 0 || device >= count)
    throw Unavailable("CUDA device " + std::to_string(device) + " is not present (" +
                      std::to_string(count) + " device(s) found)");
  auto& c = reg.contexts[device];
  if (c) return c;
  DOPPEL_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp props{};
  DOPPEL_CUDA_CHECK(cudaGetDeviceProperties(&props, device));
  auto ctx = std::make_shared<DeviceContext>(
      device, static_cast<size_t>(memory_fraction() * static_cast<double>(props.totalGlobalMem)));
  ctx->props = props;
  int pools = 0;
  if (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess && pools) {
    DOPPEL_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&ctx->pool, device));
    // Keep freed blocks for the next solve instead of returning them to the driver at every
    // synchronization, but only a tenth of the device (at least 2 GiB): beyond that, memory a
    // large batch used goes back at the next synchronization, so LibTorch's allocator in the
    // same process is not starved by blocks doppel holds idle.
    unsigned long long keep = std::min<unsigned long long>(
        ctx->budget.limit(), std::max<unsigned long long>(2ull << 30, props.totalGlobalMem / 10));
    DOPPEL_CUDA_CHECK(cudaMemPoolSetAttribute(ctx->pool, cudaMemPoolAttrReleaseThreshold, &keep));
  } else {
    cudaGetLastError();
  }
  c = ctx;
  return c;
}

// The context of a device if an executor was ever made on it (never creates one).
std::shared_ptr<DeviceContext> existing_context(int device) {
  Registry& reg = registry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  const auto it = reg.contexts.find(device);
  return it == reg.contexts.end() ? nullptr : it->second;
}

}  // namespace

bool sync_after_launch() {
  static const bool sync = [] {
    const char* v = std::getenv("DOPPEL_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return sync;
}

bool memory_pool_info(int device, size_t& pool_reserved, size_t& pool_used, size_t& claimed, size_t& limit) {
  const auto ctx = existing_context(device);
  if (!ctx) return false;
  pool_reserved = pool_used = 0;
  if (ctx->pool) {
    unsigned long long reserved = 0, used = 0;
    if (cudaMemPoolGetAttribute(ctx->pool, cudaMemPoolAttrReservedMemCurrent, &reserved) != cudaSuccess ||
        cudaMemPoolGetAttribute(ctx->pool, cudaMemPoolAttrUsedMemCurrent, &used) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    pool_reserved = reserved;
    pool_used = used;
  }
  claimed = ctx->budget.claimed();
  limit = ctx->budget.limit();
  return true;
}

CudaExecutor::CudaExecutor(std::shared_ptr<DeviceContext> context) : context_(std::move(context)) {
  const Lane l = context_->take_lane();
  stream_ = l.stream;
  blas_ = l.blas;
}

CudaExecutor::~CudaExecutor() {
  // Work still queued may use memory this executor's arrays own: finish it before the lane
  // serves another solve. Errors cannot be thrown from here; a failed stream is not reused.
  if (cudaStreamSynchronize(stream_) == cudaSuccess) {
    context_->give_back({stream_, blas_});
  } else {
    cudaGetLastError();
    cublasDestroy(blas_);
    cudaStreamDestroy(stream_);
  }
}

int CudaExecutor::device() const { return context_->device; }

int CudaExecutor::multiprocessors() const { return context_->props.multiProcessorCount; }

MemoryBudget& CudaExecutor::memory_budget() const { return context_->budget; }

std::string CudaExecutor::description() const {
  const cudaDeviceProp& p = context_->props;
  return std::string(p.name) + " (device " + std::to_string(context_->device) + ", " +
         std::to_string(p.multiProcessorCount) + " SMs, " + std::to_string(p.totalGlobalMem >> 20) + " MiB)";
}

void* CudaExecutor::allocate(size_t bytes) const {
  void* p = nullptr;
  DOPPEL_CUDA_CHECK(cudaSetDevice(context_->device));
  const cudaError_t err = context_->pool ? cudaMallocFromPoolAsync(&p, bytes, context_->pool, stream_)
                                         : cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw DeviceError("device " + std::to_string(context_->device) + ": could not allocate " +
                      std::to_string(bytes >> 20) + " MiB (" + cudaGetErrorString(err) +
                      "); use smaller scenario batches or a smaller DOPPEL_MEMORY_FRACTION");
  }
  return p;
}

void CudaExecutor::deallocate(void* ptr) const noexcept {
  // Stream-ordered: the block returns to the pool once the work queued before it is done. A
  // failed free cannot be reported from here; its error is cleared so that the next checked
  // call is not blamed for it (a sticky error shows again there anyway).
  const cudaError_t err = context_->pool ? cudaFreeAsync(ptr, stream_) : cudaFree(ptr);
  if (err != cudaSuccess) cudaGetLastError();
}

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
  DOPPEL_CUDA_CHECK(cudaSetDevice(context_->device));
  DOPPEL_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  // Blocks the pool keeps for reuse are free to doppel's solves though not to the driver.
  if (context_->pool) {
    unsigned long long reserved = 0, used = 0;
    if (cudaMemPoolGetAttribute(context_->pool, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess &&
        cudaMemPoolGetAttribute(context_->pool, cudaMemPoolAttrUsedMemCurrent, &used) == cudaSuccess &&
        reserved > used)
      free_bytes += static_cast<size_t>(reserved - used);
  }
  return free_bytes;
}

bool non_blocking_stream(const Executor& exec) {
  unsigned int flags = 0;
  DOPPEL_CUDA_CHECK(cudaStreamGetFlags(as_cuda(exec).stream(), &flags));
  return (flags & cudaStreamNonBlocking) != 0;
}

std::shared_ptr<const Executor> make_executor(int device) {
  return std::make_shared<CudaExecutor>(context_for(device));
}

}  // namespace doppel::cuda
