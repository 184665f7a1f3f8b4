#include "kernels/fem/sparse.hpp"

#include <algorithm>

namespace doppel {

long CsrPattern::find(int r, int c) const {
  const int* begin = col.data() + row_ptr[static_cast<size_t>(r)];
  const int* end = col.data() + row_ptr[static_cast<size_t>(r) + 1];
  const int* it = std::lower_bound(begin, end, c);
  return (it != end && *it == c) ? static_cast<long>(it - col.data()) : -1;
}

CsrPattern cell_pattern(const Mesh& mesh, int row_block, int col_block) {
  const size_t n = mesh.num_nodes();
  const int npc = mesh.nodes_per_cell();
  // Node adjacency via a sort of (node, neighbour) pairs gathered cell by cell.
  std::vector<std::vector<int>> adj(n);
  for (size_t c = 0; c < mesh.num_cells(); ++c) {
    const int* v = mesh.cell(c);
    for (int i = 0; i < npc; ++i)
      for (int j = 0; j < npc; ++j) adj[static_cast<size_t>(v[i])].push_back(v[j]);
  }
  for (auto& a : adj) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
  CsrPattern p;
  p.rows = static_cast<int>(n) * row_block;
  p.cols = static_cast<int>(n) * col_block;
  p.row_ptr.assign(static_cast<size_t>(p.rows) + 1, 0);
  size_t total = 0;
  for (const auto& a : adj) total += a.size();
  p.col.reserve(total * static_cast<size_t>(row_block * col_block));
  for (size_t node = 0; node < n; ++node) {
    for (int rb = 0; rb < row_block; ++rb) {
      for (int m : adj[node])
        for (int cb = 0; cb < col_block; ++cb) p.col.push_back(m * col_block + cb);
      p.row_ptr[node * static_cast<size_t>(row_block) + static_cast<size_t>(rb) + 1] =
          static_cast<int>(p.col.size());
    }
  }
  return p;
}

void spmv(const CsrPattern& p, const double* values, const double* x, double* y, double alpha,
          double beta) {
  for (int r = 0; r < p.rows; ++r) {
    double s = 0.0;
    for (int k = p.row_ptr[static_cast<size_t>(r)]; k < p.row_ptr[static_cast<size_t>(r) + 1]; ++k)
      s += values[k] * x[p.col[static_cast<size_t>(k)]];
    y[r] = alpha * s + (beta == 0.0 ? 0.0 : beta * y[r]);
  }
}

}  // namespace doppel
