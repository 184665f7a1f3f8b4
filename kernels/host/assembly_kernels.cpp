#include "kernels/fem/assembly_kernels.hpp"

#include "kernels/fem/assembly.hpp"

namespace doppel {

Array<double> assemble_terms(const std::shared_ptr<const Executor>& exec, const Mesh& mesh,
                             const CsrPattern& pattern, const std::vector<TermSpec>& terms) {
  if (exec->backend() == Backend::cuda) return cuda::assemble_terms(exec, mesh, pattern, terms);
  std::vector<double> values(terms.size() * pattern.nnz(), 0.0);
  for (size_t k = 0; k < terms.size(); ++k)
    add_term(mesh, pattern, terms[k].kind, terms[k].on_facets, terms[k].index, terms[k].scale,
             values.data() + k * pattern.nnz());
  return Array<double>(exec, values);
}

}  // namespace doppel
