// Assembly of operator terms on an executor. The host backend runs assembly.cpp (add_term);
// the CUDA backend runs one thread per element computing the same element_matrix
// (kernels/fem/element_matrices.hpp) and adding it into the CSR values with atomic adds.
#pragma once

#include <memory>
#include <vector>

#include "kernels/fem/element_matrices.hpp"
#include "kernels/executor.hpp"
#include "kernels/fem/mesh.hpp"
#include "kernels/fem/sparse.hpp"

namespace doppel {

struct TermSpec {
  TermKind kind = TermKind::stiffness;
  bool on_facets = false;  // boundary term (over the facets of boundary `index`)
  int index = -1;          // region (cells; < 0: all) or boundary (facets)
  double scale = 1.0;
};

// Values of each term on `pattern`, term-major (terms.size() * pattern.nnz()), on `exec`.
// Throws InvalidInput for a degenerate element.
Array<double> assemble_terms(const std::shared_ptr<const Executor>& exec, const Mesh& mesh,
                             const CsrPattern& pattern, const std::vector<TermSpec>& terms);

// The device kernels of assembly, once: DOPPEL_KERNEL(return type, name, (parameters)).
// Declared below for the CUDA backend (kernels/cuda/assembly_kernels.cu) and expanded by
// kernels/cuda/device_stub.cpp into stubs that throw NotCompiled in a build without CUDA.
#define DOPPEL_ASSEMBLY_KERNELS(DOPPEL_KERNEL)                                                 \
  DOPPEL_KERNEL(Array<double>, assemble_terms,                                                 \
                (const std::shared_ptr<const Executor>& exec, const Mesh& mesh,                \
                 const CsrPattern& pattern, const std::vector<TermSpec>& terms))

namespace cuda {
#define DOPPEL_DECLARE_ASSEMBLY_KERNEL(ret, name, params) ret name params;
DOPPEL_ASSEMBLY_KERNELS(DOPPEL_DECLARE_ASSEMBLY_KERNEL)
#undef DOPPEL_DECLARE_ASSEMBLY_KERNEL
}  // namespace cuda

}  // namespace doppel
