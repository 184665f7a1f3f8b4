// Backend selection: the host backend (always built) and the CUDA backend (built when nvcc is
// present). Code outside kernels/cuda never includes CUDA headers; it talks to the device
// through the plain C++ functions declared here, which a host-only build links as
// implementations that report "not compiled".
#pragma once

#include <cstddef>
#include <string>

namespace doppel {

enum class Backend { host, cuda };

const char* backend_name(Backend b);

// "auto" | "cpu" | "cuda". Throws InvalidInput (path `path`) for another word, and
// Unavailable when "cuda" is asked for and cannot run here.
Backend select_backend(const std::string& choice, const std::string& path = "--backend");

namespace cuda {
bool compiled();                  // the CUDA backend is part of this build
int device_count();               // 0 when none is present (or not compiled)
std::string device_name(int device);
std::string driver_version();
// Free and total memory of a device in bytes (cudaMemGetInfo: every allocation on the device,
// LibTorch's cache included). False when there is no such device or no CUDA backend.
bool memory_info(int device, size_t& free_bytes, size_t& total_bytes);
// doppel's own use of a device: bytes its memory pool holds and of those in use, and the bytes
// solves have claimed of its budget (MemoryBudget) and the budget's limit. False when no
// executor was ever made on the device (or no CUDA backend).
bool memory_pool_info(int device, size_t& pool_reserved, size_t& pool_used, size_t& claimed,
                      size_t& limit);
// Runs a small kernel (y = a x + y on n elements) on the device and checks the result
// against the host; returns the largest absolute error. Throws DeviceError on CUDA errors,
// NotCompiled in a host-only build.
double self_test(int n);
// A CUDA error that loses the context (an illegal address, a kernel fault) was seen in this
// process: no later device call can succeed; the service reports itself unhealthy.
bool device_lost();
// The finite-element solvers of the CUDA backend are available in this build.
bool solvers_available();
}  // namespace cuda

}  // namespace doppel
