// Host-only builds link these in place of kernels/cuda/*.cu: every entry point of the CUDA
// backend reports that it was not compiled.
#include "kernels/assembly_kernels.hpp"
#include "kernels/backend.hpp"
#include "kernels/batched_cg_kernels.hpp"
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

Array<double> assemble_terms(const std::shared_ptr<const Executor>&, const Mesh&, const CsrPattern&,
                             const std::vector<TermSpec>&) { not_compiled(); }
void fill(const Executor&, double*, size_t, double) { not_compiled(); }
void fill(const Executor&, int*, size_t, int) { not_compiled(); }
void affine_apply(const Executor&, const OperatorView&, const BatchView&, const double*, double*,
                  double*) { not_compiled(); }
void cg_initialize(const Executor&, const OperatorView&, const BatchView&, const double*, double*,
                   double*, double*, double*, double*) { not_compiled(); }
void cg_start(const Executor&, int, double, double*, const double*, int*, int*) { not_compiled(); }
void cg_update_solution(const Executor&, const OperatorView&, const BatchView&, const double*,
                        const double*, const double*, const double*, double*, double*, double*,
                        double*) { not_compiled(); }
void cg_update_scalars(const Executor&, int, int, double, double*, const double*, double*, double*,
                       double*, double*, int*, int*) { not_compiled(); }
void cg_update_directions(const Executor&, const OperatorView&, const BatchView&, const double*,
                          const double*, double*) { not_compiled(); }
int count_active(const Executor&, const int*, int, int*) { not_compiled(); }
void gather_columns(const Executor&, int, const double*, int, const int*, int, double*) { not_compiled(); }
void scatter_columns(const Executor&, int, const double*, int, const int*, double*, int) { not_compiled(); }
void difference_norms(const Executor&, int, int, const double*, const double*, double*, double*) { not_compiled(); }
void multiply_basis(const Executor&, int, int, int, const double*, const double*, double*) { not_compiled(); }
void combine_terms(const Executor&, const OperatorView&, const double*, double*, double*) { not_compiled(); }

}  // namespace doppel::cuda
