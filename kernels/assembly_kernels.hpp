// Assembly of operator terms on an executor. The host backend runs assembly.cpp (add_term);
// the CUDA backend runs one thread per element computing the same element_matrix
// (kernels/element_matrices.hpp) and adding it into the CSR values with atomic adds.
#pragma once

#include <memory>
#include <vector>

#include "kernels/element_matrices.hpp"
#include "kernels/executor.hpp"
#include "kernels/mesh.hpp"
#include "kernels/sparse.hpp"

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

namespace cuda {
Array<double> assemble_terms(const std::shared_ptr<const Executor>& exec, const Mesh& mesh,
                             const CsrPattern& pattern, const std::vector<TermSpec>& terms);
}  // namespace cuda

}  // namespace doppel
