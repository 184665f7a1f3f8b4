// Host-only builds link these in place of kernels/cuda/device.cu.
#include "kernels/backend.hpp"
#include "spec/errors.hpp"

namespace doppel::cuda {

bool compiled() { return false; }
bool solvers_available() { return false; }
int device_count() { return 0; }
std::string device_name(int) { throw NotCompiled("the CUDA backend"); }
std::string driver_version() { throw NotCompiled("the CUDA backend"); }
double self_test(int) { throw NotCompiled("the CUDA backend"); }

}  // namespace doppel::cuda
