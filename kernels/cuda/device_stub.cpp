// Host-only builds link these in place of kernels/cuda/*.cu: every entry point of the CUDA
// backend reports that it was not compiled.
#include "kernels/fem/assembly_kernels.hpp"
#include "kernels/fem/output_kernels.hpp"
#include "kernels/backend.hpp"
#include "kernels/solvers/batched_cg_kernels.hpp"
#include "kernels/cuda/cuda_api.hpp"
#include "spec/errors.hpp"

namespace doppel::cuda {
namespace {
[[noreturn]] void not_compiled() { throw NotCompiled("the CUDA backend"); }
}  // namespace

bool compiled() { return false; }
bool device_lost() { return false; }
bool solvers_available() { return false; }
int device_count() { return 0; }
std::string device_name(int) { not_compiled(); }
std::string driver_version() { not_compiled(); }
bool memory_info(int, size_t&, size_t&) { return false; }
bool memory_pool_info(int, size_t&, size_t&, size_t&, size_t&) { return false; }
double self_test(int) { not_compiled(); }
std::shared_ptr<const Executor> make_executor(int) { not_compiled(); }
bool non_blocking_stream(const Executor&) { not_compiled(); }

// Every kernel of kernels/solvers/batched_cg_kernels.hpp, kernels/fem/assembly_kernels.hpp and
// kernels/fem/output_kernels.hpp, from their one lists.
#define DOPPEL_STUB_KERNEL(ret, name, params) \
  ret name params { not_compiled(); }
DOPPEL_BATCHED_CG_KERNELS(DOPPEL_STUB_KERNEL)
DOPPEL_ASSEMBLY_KERNELS(DOPPEL_STUB_KERNEL)
DOPPEL_OUTPUT_KERNELS(DOPPEL_STUB_KERNEL)
#undef DOPPEL_STUB_KERNEL

}  // namespace doppel::cuda
