// Compressed sparse row patterns shared by all affine terms of an operator, so a linear
// combination of terms is a combination of value arrays (the layout the CUDA backend uses).
#pragma once

#include <vector>

#include "kernels/fem/mesh.hpp"

namespace doppel {

struct CsrPattern {
  int rows = 0;
  int cols = 0;
  std::vector<int> row_ptr;  // rows + 1
  std::vector<int> col;      // sorted within each row
  size_t nnz() const { return col.size(); }
  // Position of (r, c) in the value array, or -1.
  long find(int r, int c) const;
};

// Pattern coupling every pair of nodes of a cell, with `row_block` dofs per node on the rows
// and `col_block` on the columns (dof = node * block + component).
CsrPattern cell_pattern(const Mesh& mesh, int row_block, int col_block);

// y = alpha * A x + beta * y for one value array on a pattern.
void spmv(const CsrPattern& p, const double* values, const double* x, double* y,
          double alpha = 1.0, double beta = 0.0);

}  // namespace doppel
