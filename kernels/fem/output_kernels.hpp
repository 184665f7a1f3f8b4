// The kernels of the batched outputs (kernels/solvers/batch_outputs.hpp), declared once and
// implemented per backend: host:: in kernels/host/output_kernels.cpp (the reference) and cuda::
// in kernels/cuda/output_kernels.cu; a host-only build links cuda:: stubs that throw NotCompiled.
// Fields and site components are multi-vectors [row][scenario] (kernels/solvers/batched_cg_math.hpp)
// with a leading dimension, so a kernel can work on a range of columns of a wider block.
#pragma once

#include <cstddef>

#include "kernels/executor.hpp"
#include "kernels/fem/site_functions.hpp"

namespace doppel {

// A sparse matrix in compressed rows, on an executor.
struct CsrView {
  int rows = 0, cols = 0;
  const int* row_ptr = nullptr;  // rows + 1
  const int* col = nullptr;
  const double* values = nullptr;
};

// One output's reduction: its sites' components are rows [offset, offset + sites * components)
// of the site components, site after site.
struct OutputReduction {
  int function = 0;   // SiteFunction
  int reduce = 0;     // SiteReduction
  int components = 1;
  int sites = 1;
  size_t offset = 0;
  size_t weights = 0;      // mean: the sites' weights start here in the weight array
  double weight_sum = 1;   // mean: the sum of the sites' weights
};

}  // namespace doppel

// The kernel set, once (see kernels/solvers/batched_cg_kernels.hpp for the pattern).
#define DOPPEL_OUTPUT_KERNELS(DOPPEL_KERNEL)                                                    \
  /* z(i, s) = v[i] for s < width */                                                           \
  DOPPEL_KERNEL(void, broadcast_rows, (const Executor& exec, int rows, int width,               \
                                       const double* v, double* z, int ldz))                    \
  /* z(:, s) += A x(:, s) for s < width */                                                     \
  DOPPEL_KERNEL(void, csr_multiply_add, (const Executor& exec, const CsrView& A, int width,     \
                                         const double* x, int ldx, double* z, int ldz))         \
  /* values(k, s) (ld = width) = output k of site components z(:, s): `outputs` reductions */  \
  /* on the executor, with `max_sites` the most sites of any, and the weights of the means */   \
  DOPPEL_KERNEL(void, reduce_outputs, (const Executor& exec, const OutputReduction* specs,      \
                                       int outputs, int max_sites, const double* weights,       \
                                       const double* z, int ldz, int width, double* values))

#define DOPPEL_DECLARE_OUTPUT_KERNEL(ret, name, params) ret name params;

namespace doppel {
namespace host {
DOPPEL_OUTPUT_KERNELS(DOPPEL_DECLARE_OUTPUT_KERNEL)
}
namespace cuda {
DOPPEL_OUTPUT_KERNELS(DOPPEL_DECLARE_OUTPUT_KERNEL)
}
}  // namespace doppel
