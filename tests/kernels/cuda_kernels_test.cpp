// Every CUDA kernel of kernels/solvers/batched_cg_kernels.hpp against the host reference kernels, on
// random data, for batch widths wider than a warp and not multiples of it (37, 70), on a P2
// thermal operator with 3 terms and Dirichlet rows. Tolerance: 1e-12 relative (the kernels
// sum in different orders). Skipped with a message where no GPU is present.
#include <algorithm>
#include <random>

#include "kernels/fem/assembly_kernels.hpp"
#include "kernels/solvers/batched_cg.hpp"
#include "kernels/solvers/batched_cg_kernels.hpp"
#include "tests/test_util.hpp"

namespace doppel {
namespace {

struct Both {
  std::vector<double> host;
  Array<double> dev;
};

// A 3-term thermal operator (stiffness, mass, convection on xmax; temperature held on xmin).
AffineOperator thermal_operator(const Mesh& mesh) {
  const CsrPattern p = cell_pattern(mesh, 1, 1);
  std::vector<std::vector<double>> terms(3, std::vector<double>(p.nnz(), 0.0));
  add_stiffness(mesh, p, -1, 1.0, terms[0].data());
  add_mass(mesh, p, -1, 1.0, terms[1].data());
  add_boundary_mass(mesh, p, mesh.boundary_index("xmax"), 1.0, terms[2].data());
  std::vector<int> dir;
  for (size_t f = 0; f < mesh.num_facets(); ++f)
    if (mesh.facet_boundary[f] == mesh.boundary_index("xmin"))
      for (int i = 0; i < mesh.nodes_per_facet(); ++i) dir.push_back(mesh.facet(f)[i]);
  std::sort(dir.begin(), dir.end());
  dir.erase(std::unique(dir.begin(), dir.end()), dir.end());
  return AffineOperator(p, terms, dir);
}

// Compares every kernel of one operator on the host and on the device.
class KernelComparison {
 protected:
  void prepare(const Mesh& mesh) {
    dev_ = Executor::cuda(0);
    op_ = thermal_operator(mesh);
    host_op_ = std::make_unique<OperatorData>(Executor::host(), op_);
    dev_op_ = std::make_unique<OperatorData>(dev_, op_);
  }

  std::vector<double> random(size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<double> v(n);
    for (double& x : v) x = u(rng_);
    return v;
  }
  Both both(const std::vector<double>& v) { return {v, Array<double>(dev_, v)}; }
  static void expect_near(const std::vector<double>& host, const Array<double>& dev, const char* what) {
    const std::vector<double> d = dev.to_host();
    ASSERT_EQ(host.size(), d.size()) << what;
    double scale = 0;
    for (double h : host) scale = std::max(scale, std::fabs(h));
    for (size_t i = 0; i < host.size(); ++i)
      ASSERT_NEAR(d[i], host[i], 1e-12 * std::max(scale, 1.0)) << what << " entry " << i;
  }
  void match_host_reference(int w);

  std::mt19937 rng_{1234};
  std::shared_ptr<const Executor> dev_;
  AffineOperator op_;
  std::unique_ptr<OperatorData> host_op_, dev_op_;
};

class CudaKernels : public KernelComparison, public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    DOPPEL_SKIP_WITHOUT_CUDA("CUDA kernels against the host");
    prepare(generate_rectangle(1.0, 0.5, 14, 9, 2));
  }
};

TEST_P(CudaKernels, MatchHostReference) { match_host_reference(GetParam()); }

void KernelComparison::match_host_reference(int w) {
  const int n = op_.size();
  const size_t N = static_cast<size_t>(n) * static_cast<size_t>(w);
  const Executor& H = *Executor::host();
  const Executor& D = *dev_;
  Both theta = both(random(static_cast<size_t>(w) * 3, 0.5, 4.0));
  std::vector<int> st(static_cast<size_t>(w), kActive);
  for (int s = 4; s < w; s += 5) st[static_cast<size_t>(s)] = kConverged;  // some columns finished
  const Array<int> st_dev(dev_, st);
  BatchView hb, db;
  hb.width = db.width = w;
  hb.theta = theta.host.data();
  db.theta = theta.dev.data();
  hb.state = st.data();
  db.state = st_dev.data();

  // affine_apply with the fused dot product.
  Both x = both(random(N, -1, 1)), y = both(std::vector<double>(N, 0.0)), xy = both(std::vector<double>(static_cast<size_t>(w), 0.0));
  host::affine_apply(H, host_op_->view(), hb, x.host.data(), y.host.data(), xy.host.data());
  cuda::affine_apply(D, dev_op_->view(), db, x.dev.data(), y.dev.data(), xy.dev.data());
  expect_near(y.host, y.dev, "affine_apply y");
  expect_near(xy.host, xy.dev, "affine_apply x.y");

  // cg_initialize (r holds A x on entry).
  Both b = both(random(N, -1, 1)), r = both(y.host), p = both(std::vector<double>(N, 0.0));
  Both rz = both(std::vector<double>(static_cast<size_t>(w), 0.0)), rr = both(rz.host), bb = both(rz.host);
  host::cg_initialize(H, host_op_->view(), hb, b.host.data(), r.host.data(), p.host.data(), rz.host.data(), rr.host.data(), bb.host.data());
  cuda::cg_initialize(D, dev_op_->view(), db, b.dev.data(), r.dev.data(), p.dev.data(), rz.dev.data(), rr.dev.data(), bb.dev.data());
  expect_near(r.host, r.dev, "cg_initialize r");
  expect_near(p.host, p.dev, "cg_initialize p");
  expect_near(rz.host, rz.dev, "cg_initialize rz");
  expect_near(rr.host, rr.dev, "cg_initialize rr");
  expect_near(bb.host, bb.dev, "cg_initialize bb");

  // cg_update_solution.
  Both pq = both(random(static_cast<size_t>(w), 1, 2)), q = both(random(N, -1, 1));
  Both rzn = both(std::vector<double>(static_cast<size_t>(w), 0.0)), rr2 = both(rzn.host);
  host::cg_update_solution(H, host_op_->view(), hb, pq.host.data(), rz.host.data(), p.host.data(), q.host.data(), x.host.data(), r.host.data(), rzn.host.data(), rr2.host.data());
  cuda::cg_update_solution(D, dev_op_->view(), db, pq.dev.data(), rz.dev.data(), p.dev.data(), q.dev.data(), x.dev.data(), r.dev.data(), rzn.dev.data(), rr2.dev.data());
  expect_near(x.host, x.dev, "cg_update_solution x");
  expect_near(r.host, r.dev, "cg_update_solution r");
  expect_near(rzn.host, rzn.dev, "cg_update_solution rz_new");
  expect_near(rr2.host, rr2.dev, "cg_update_solution rr");

  // cg_update_scalars, including a breakdown (pq < 0) and a converged column.
  if (w >= 3) {
    pq.host[1] = -1.0;
    rr2.host[2] = 0.0;
  }
  pq.dev.copy_from_host(pq.host.data(), pq.host.size());
  rr2.dev.copy_from_host(rr2.host.data(), rr2.host.size());
  std::vector<int> st_h = st, its_h(static_cast<size_t>(w), 0);
  Array<int> st_d(dev_, st), its_d(dev_, its_h);
  Both beta = both(std::vector<double>(static_cast<size_t>(w), 0.0));
  host::cg_update_scalars(H, w, 7, 1e-20, pq.host.data(), bb.host.data(), rr2.host.data(), rz.host.data(), rzn.host.data(), beta.host.data(), st_h.data(), its_h.data());
  cuda::cg_update_scalars(D, w, 7, 1e-20, pq.dev.data(), bb.dev.data(), rr2.dev.data(), rz.dev.data(), rzn.dev.data(), beta.dev.data(), st_d.data(), its_d.data());
  expect_near(beta.host, beta.dev, "cg_update_scalars beta");
  expect_near(rz.host, rz.dev, "cg_update_scalars rz");
  EXPECT_EQ(st_h, st_d.to_host());
  EXPECT_EQ(its_h, its_d.to_host());
  if (w >= 3) {
    EXPECT_EQ(st_h[1], kBreakdown);
    EXPECT_EQ(st_h[2], kConverged);
  }
  int host_count = -1;
  Array<int> dev_count(dev_, 1);
  EXPECT_EQ(host::count_active(H, st_h.data(), w, &host_count), cuda::count_active(D, st_d.data(), w, dev_count.data()));
  EXPECT_EQ(host_count, dev_count.to_host()[0]);

  // cg_update_directions, with Jacobi on the fly and with a given z.
  host::cg_update_directions(H, host_op_->view(), hb, beta.host.data(), r.host.data(), nullptr, p.host.data());
  cuda::cg_update_directions(D, dev_op_->view(), db, beta.dev.data(), r.dev.data(), nullptr, p.dev.data());
  expect_near(p.host, p.dev, "cg_update_directions p");
  Both z = both(random(N, -1, 1));
  host::cg_update_directions(H, host_op_->view(), hb, beta.host.data(), r.host.data(), z.host.data(), p.host.data());
  cuda::cg_update_directions(D, dev_op_->view(), db, beta.dev.data(), r.dev.data(), z.dev.data(), p.dev.data());
  expect_near(p.host, p.dev, "cg_update_directions p (given z)");

  // The kernels of a preconditioner other than Jacobi: cg_residual, cg_check, dot_columns,
  // and cg_update_solution without the Jacobi r.z.
  Both r2 = both(y.host), rr3 = both(std::vector<double>(static_cast<size_t>(w), 0.0)), bb2 = both(rr3.host);
  host::cg_residual(H, n, w, b.host.data(), r2.host.data(), rr3.host.data(), bb2.host.data());
  cuda::cg_residual(D, n, w, b.dev.data(), r2.dev.data(), rr3.dev.data(), bb2.dev.data());
  expect_near(r2.host, r2.dev, "cg_residual r");
  expect_near(rr3.host, rr3.dev, "cg_residual rr");
  expect_near(bb2.host, bb2.dev, "cg_residual bb");
  Both dots = both(std::vector<double>(static_cast<size_t>(w), 0.0));
  host::dot_columns(H, n, hb, r2.host.data(), z.host.data(), dots.host.data());
  cuda::dot_columns(D, n, db, r2.dev.data(), z.dev.data(), dots.dev.data());
  expect_near(dots.host, dots.dev, "dot_columns");
  Both rr4 = both(std::vector<double>(static_cast<size_t>(w), 0.0));
  host::cg_update_solution(H, host_op_->view(), hb, pq.host.data(), rz.host.data(), p.host.data(), q.host.data(), x.host.data(), r2.host.data(), nullptr, rr4.host.data());
  cuda::cg_update_solution(D, dev_op_->view(), db, pq.dev.data(), rz.dev.data(), p.dev.data(), q.dev.data(), x.dev.data(), r2.dev.data(), nullptr, rr4.dev.data());
  expect_near(r2.host, r2.dev, "cg_update_solution r (no Jacobi)");
  expect_near(rr4.host, rr4.dev, "cg_update_solution rr (no Jacobi)");
  std::vector<int> st_c = st, its_c(static_cast<size_t>(w), 0);
  Array<int> st_cd(dev_, st), its_cd(dev_, its_c);
  host::cg_check(H, w, 3, 1e-20, pq.host.data(), bb2.host.data(), rr4.host.data(), st_c.data(), its_c.data());
  cuda::cg_check(D, w, 3, 1e-20, pq.dev.data(), bb2.dev.data(), rr4.dev.data(), st_cd.data(), its_cd.data());
  EXPECT_EQ(st_c, st_cd.to_host());
  EXPECT_EQ(its_c, its_cd.to_host());

  // gather / scatter.
  // Distinct columns (a scatter to one column twice has no defined order).
  const std::vector<int> cols = w >= 4 ? std::vector<int>{w - 1, 0, 3, w / 2} : std::vector<int>{w - 1};
  const int nc = static_cast<int>(cols.size());
  const Array<int> cols_d(dev_, cols);
  Both g = both(std::vector<double>(static_cast<size_t>(n) * cols.size(), 0.0));
  host::gather_columns(H, n, x.host.data(), w, cols.data(), nc, g.host.data());
  cuda::gather_columns(D, n, x.dev.data(), w, cols_d.data(), nc, g.dev.data());
  expect_near(g.host, g.dev, "gather_columns");
  host::scatter_columns(H, n, g.host.data(), nc, cols.data(), y.host.data(), w);
  cuda::scatter_columns(D, n, g.dev.data(), nc, cols_d.data(), y.dev.data(), w);
  expect_near(y.host, y.dev, "scatter_columns");

  // difference_norms, multiply_basis, combine_terms, fill.
  Both dd = both(std::vector<double>(static_cast<size_t>(w), 0.0)), aa = both(dd.host);
  host::difference_norms(H, n, w, x.host.data(), y.host.data(), dd.host.data(), aa.host.data());
  cuda::difference_norms(D, n, w, x.dev.data(), y.dev.data(), dd.dev.data(), aa.dev.data());
  expect_near(dd.host, dd.dev, "difference_norms dd");
  expect_near(aa.host, aa.dev, "difference_norms aa");
  Both U = both(random(static_cast<size_t>(n) * 5, -1, 1)), C = both(random(5 * static_cast<size_t>(w), -1, 1));
  host::multiply_basis(H, n, 5, w, U.host.data(), C.host.data(), y.host.data());
  cuda::multiply_basis(D, n, 5, w, U.dev.data(), C.dev.data(), y.dev.data());
  expect_near(y.host, y.dev, "multiply_basis");
  Both values = both(std::vector<double>(op_.pattern().nnz(), 0.0)), diag = both(std::vector<double>(static_cast<size_t>(n), 0.0));
  host::combine_terms(H, host_op_->view(), theta.host.data(), values.host.data(), diag.host.data());
  cuda::combine_terms(D, dev_op_->view(), theta.dev.data(), values.dev.data(), diag.dev.data());
  expect_near(values.host, values.dev, "combine_terms values");
  expect_near(diag.host, diag.dev, "combine_terms diagonal");
  host::axpby(H, N, 0.75, x.host.data(), -2.0, y.host.data(), y.host.data());  // in place
  cuda::axpby(D, N, 0.75, x.dev.data(), -2.0, y.dev.data(), y.dev.data());
  expect_near(y.host, y.dev, "axpby");
  // The history term's free-row operator: no identity on the constrained rows.
  const OperatorData host_free(Executor::host(), op_, true), dev_free(dev_, op_, true);
  host::affine_apply(H, host_free.view(), hb, x.host.data(), y.host.data(), nullptr);
  cuda::affine_apply(D, dev_free.view(), db, x.dev.data(), y.dev.data(), nullptr);
  expect_near(y.host, y.dev, "affine_apply on the free rows");
  cuda::fill(D, x.dev.data(), N, 2.5);
  expect_near(std::vector<double>(N, 2.5), x.dev, "fill");
}

// An operator with more terms than the register-specialized kernels (8) takes the generic path.
TEST_P(CudaKernels, ManyTermsTakeTheGenericPath) {
  const int w = GetParam();
  std::vector<std::vector<double>> terms(11, op_.terms()[0]);
  for (size_t k = 0; k < terms.size(); ++k)
    for (double& v : terms[k]) v *= 1.0 + 0.1 * static_cast<double>(k);
  const AffineOperator big(op_.pattern(), terms, op_.dirichlet_dofs());
  const OperatorData h(Executor::host(), big), d(dev_, big);
  const size_t N = static_cast<size_t>(big.size()) * static_cast<size_t>(w);
  Both theta = both(random(static_cast<size_t>(w) * 11, 0.1, 1.0));
  const std::vector<int> st(static_cast<size_t>(w), kActive);
  const Array<int> st_d(dev_, st);
  BatchView hb, db;
  hb.width = db.width = w;
  hb.theta = theta.host.data();
  db.theta = theta.dev.data();
  hb.state = st.data();
  db.state = st_d.data();
  Both x = both(random(N, -1, 1)), y = both(std::vector<double>(N, 0.0));
  host::affine_apply(*Executor::host(), h.view(), hb, x.host.data(), y.host.data(), nullptr);
  cuda::affine_apply(*dev_, d.view(), db, x.dev.data(), y.dev.data(), nullptr);
  expect_near(y.host, y.dev, "affine_apply (11 terms)");
}

INSTANTIATE_TEST_SUITE_P(Widths, CudaKernels, ::testing::Values(37, 70));

// The same kernels at the sizes the GPU runs: ~2x10^5 rows (P1 box, 57^3 cells: 195,112
// nodes, grid-stride loops over many row blocks) for one column and 33 (one past a warp:
// a second, almost empty column block), and 3000 columns (94 column blocks, per-column
// reductions over many row blocks) on ~2x10^4 rows (27^3 cells: 21,952 nodes), where 2x10^5
// rows would need ~5 GB per multi-vector and make the host reference the cost of a short GPU
// window. Tolerance 1e-12 relative, as above.
struct LargeCase {
  int cells, width;
};

class CudaKernelsLarge : public KernelComparison, public ::testing::TestWithParam<LargeCase> {
 protected:
  void SetUp() override {
    DOPPEL_SKIP_WITHOUT_CUDA("CUDA kernels against the host at full size");
    const int c = GetParam().cells;
    prepare(generate_box(1.0, 1.0, 1.0, c, c, c, 1));
  }
};

TEST_P(CudaKernelsLarge, MatchHostReference) {
  ASSERT_GE(op_.size(), GetParam().cells > 40 ? 190000 : 20000);
  match_host_reference(GetParam().width);
}

INSTANTIATE_TEST_SUITE_P(Sizes, CudaKernelsLarge,
                         ::testing::Values(LargeCase{57, 1}, LargeCase{57, 33}, LargeCase{27, 3000}),
                         [](const ::testing::TestParamInfo<LargeCase>& i) {
                           return "cells" + std::to_string(i.param.cells) + "_width" + std::to_string(i.param.width);
                         });

}  // namespace
}  // namespace doppel

namespace doppel {
namespace {

// CUDA assembly of every term kind (P1 3D box; P2 2D rectangle with its boundary mass)
// against the host assembly, 1e-12 relative to the largest entry.
TEST(CudaAssembly, EveryTermKindMatchesHost) {
  DOPPEL_SKIP_WITHOUT_CUDA("CUDA assembly against the host");
  for (const Mesh& m : {generate_box(1.0, 0.5, 0.4, 6, 4, 3, 1), generate_rectangle(1.0, 0.5, 9, 5, 2)}) {
    for (int block : {1, m.dim}) {
      const CsrPattern p = cell_pattern(m, block, block);
      std::vector<TermSpec> terms;
      if (block == 1) {
        terms = {{TermKind::stiffness, false, -1, 2.0}, {TermKind::mass, false, 0, 1.0},
                 {TermKind::mass, true, m.boundary_index("xmax"), 3.0}};
      } else {
        terms = {{TermKind::elastic_lambda, false, -1, 1.0}, {TermKind::elastic_mu, false, 0, 0.5}};
      }
      const std::vector<double> h = assemble_terms(Executor::host(), m, p, terms).to_host();
      const std::vector<double> d = assemble_terms(Executor::cuda(0), m, p, terms).to_host();
      ASSERT_EQ(h.size(), d.size());
      double scale = 0;
      for (double v : h) scale = std::max(scale, std::fabs(v));
      for (size_t i = 0; i < h.size(); ++i) ASSERT_NEAR(d[i], h[i], 1e-12 * scale) << "entry " << i;
    }
  }
}

}  // namespace
}  // namespace doppel
