// CUDA assembly of operator terms: one thread per element computes element_matrix (shared
// with the host assembly) and adds its entries into the CSR values. Atomic adds make the
// summation order of an entry's contributions vary between runs (differences at the level
// of rounding); a sort-by-key assembly would be reproducible but moves several times more
// bytes for the 10^6-node meshes this is for.
#include "kernels/fem/assembly_kernels.hpp"
#include "kernels/fem/assembly.hpp"
#include "kernels/cuda/cuda_executor.cuh"
#include "kernels/fem/quadrature.hpp"

namespace doppel::cuda {
namespace {

constexpr int kAssemblyThreads = 128;

__global__ void assemble_element_matrices(TermKind kind, CellType type, int sdim, int count,
                                          const int* __restrict__ nodes, const int* __restrict__ tag,
                                          int index, bool all, const double* __restrict__ coords,
                                          int points, const double* __restrict__ xi,
                                          const double* __restrict__ w, double scale,
                                          const int* __restrict__ row_ptr, const int* __restrict__ col,
                                          double* values, int* degenerate) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= count) return;
  if (!all && tag[e] != index) return;
  const int n = cell_nodes(type);
  const int* en = nodes + static_cast<size_t>(e) * n;
  double X[kMaxNodes * 3];
  for (int i = 0; i < n; ++i)
    for (int a = 0; a < 3; ++a) X[i * 3 + a] = coords[static_cast<size_t>(en[i]) * 3 + a];
  double local[kMaxNodes * 3 * kMaxNodes * 3];
  if (!element_matrix(kind, type, sdim, X, points, xi, w, scale, local)) {
    atomicMax(degenerate, e + 1);
    return;
  }
  const int bs = is_vector_term(kind) ? sdim : 1;
  const int nd = n * bs;
  for (int i = 0; i < nd; ++i) {
    const int r = en[i / bs] * bs + i % bs;
    for (int j = 0; j < nd; ++j) {
      const double v = local[i * nd + j];
      if (v == 0.0) continue;
      const long pos = csr_find(row_ptr, col, r, en[j / bs] * bs + j % bs);
      if (pos >= 0) atomicAdd(values + pos, v);
    }
  }
}

}  // namespace

Array<double> assemble_terms(const std::shared_ptr<const Executor>& exec_ptr, const Mesh& mesh,
                             const CsrPattern& pattern, const std::vector<TermSpec>& terms) {
  const CudaExecutor& exec = as_cuda(*exec_ptr);
  const size_t nnz = pattern.nnz();
  Array<double> values(exec_ptr, terms.size() * nnz);
  if (values.empty()) return values;
  DOPPEL_CUDA_CHECK(cudaMemsetAsync(values.data(), 0, values.size() * sizeof(double), exec.stream()));
  const Array<double> coords(exec_ptr, mesh.coords);
  const Array<int> row_ptr(exec_ptr, pattern.row_ptr), col(exec_ptr, pattern.col);
  Array<int> cells, cell_region, facets, facet_boundary;
  Array<int> degenerate(exec_ptr, std::vector<int>{0});
  for (size_t k = 0; k < terms.size(); ++k) {
    const TermSpec& t = terms[k];
    const bool f = t.on_facets;
    if (f && facets.empty()) {
      facets = Array<int>(exec_ptr, mesh.facets);
      facet_boundary = Array<int>(exec_ptr, mesh.facet_boundary);
    }
    if (!f && cells.empty()) {
      cells = Array<int>(exec_ptr, mesh.cells);
      cell_region = Array<int>(exec_ptr, mesh.cell_region);
    }
    const CellType type = f ? mesh.facet_cell_type() : mesh.cell_type;
    const int d = t.kind == TermKind::mass ? 2 * mesh.order() : 2 * (mesh.order() - 1);
    const QuadratureRule& q = quadrature(type, quadrature_degree(mesh, d));
    const int rdim = cell_dim(type);
    const Array<double> xi(exec_ptr, std::vector<double>(q.xi, q.xi + q.points * rdim));
    const Array<double> w(exec_ptr, std::vector<double>(q.w, q.w + q.points));
    const int count = static_cast<int>(f ? mesh.num_facets() : mesh.num_cells());
    const dim3 grid(static_cast<unsigned>((count + kAssemblyThreads - 1) / kAssemblyThreads));
    DOPPEL_CUDA_LAUNCH(exec, grid, dim3(kAssemblyThreads), 0, assemble_element_matrices, t.kind, type, mesh.dim,
           count, f ? facets.data() : cells.data(), f ? facet_boundary.data() : cell_region.data(),
           t.index, !f && t.index < 0, coords.data(), q.points, xi.data(), w.data(), t.scale,
           row_ptr.data(), col.data(), values.data() + k * nnz, degenerate.data());
  }
  const int bad = degenerate.to_host()[0];
  if (bad > 0)
    throw InvalidInput("mesh", "element " + std::to_string(bad - 1) + " is degenerate");
  return values;
}

}  // namespace doppel::cuda
