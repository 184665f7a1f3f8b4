// Element-level checks: shape functions, quadrature exactness, patch tests (P1 and P2).
#include <cmath>
#include <random>

#include "tests/test_util.hpp"

namespace doppel {
namespace {

const CellType kTypes[] = {CellType::line2, CellType::line3, CellType::tri3, CellType::tri6,
                           CellType::tet4, CellType::tet10};

TEST(ShapeFunctions, KroneckerAtNodesAndPartitionOfUnity) {
  for (CellType t : kTypes) {
    const int n = cell_nodes(t), dim = cell_dim(t);
    for (int j = 0; j < n; ++j) {
      double xi[3], N[kMaxNodes];
      reference_node(t, j, xi);
      shape_functions(t, xi, N, nullptr);
      for (int i = 0; i < n; ++i) EXPECT_NEAR(N[i], i == j ? 1.0 : 0.0, 1e-14) << int(t);
    }
    const double xi[3] = {0.21, 0.17, 0.33};
    double N[kMaxNodes], dN[kMaxNodes * 3];
    shape_functions(t, xi, N, dN);
    double s = 0, g[3] = {0, 0, 0};
    for (int i = 0; i < n; ++i) {
      s += N[i];
      for (int d = 0; d < dim; ++d) g[d] += dN[i * dim + d];
    }
    EXPECT_NEAR(s, 1.0, 1e-14);
    for (int d = 0; d < dim; ++d) EXPECT_NEAR(g[d], 0.0, 1e-13);
  }
}

TEST(ShapeFunctions, GradientsMatchFiniteDifferences) {
  for (CellType t : kTypes) {
    const int n = cell_nodes(t), dim = cell_dim(t);
    double xi[3] = {0.2, 0.3, 0.1}, N[kMaxNodes], dN[kMaxNodes * 3];
    shape_functions(t, xi, N, dN);
    for (int d = 0; d < dim; ++d) {
      double xp[3] = {xi[0], xi[1], xi[2]}, xm[3] = {xi[0], xi[1], xi[2]}, Np[kMaxNodes], Nm[kMaxNodes];
      xp[d] += 1e-6;
      xm[d] -= 1e-6;
      shape_functions(t, xp, Np, nullptr);
      shape_functions(t, xm, Nm, nullptr);
      for (int i = 0; i < n; ++i) EXPECT_NEAR(dN[i * dim + d], (Np[i] - Nm[i]) / 2e-6, 1e-7);
    }
  }
}

double factorial(int k) { return k <= 1 ? 1.0 : k * factorial(k - 1); }

// Exact integrals of monomials over the reference simplex:
// int x^a y^b z^c = a! b! c! / (a + b + c + dim)!
TEST(Quadrature, ExactForAllMonomialsUpToItsDegree) {
  for (CellType t : {CellType::line2, CellType::tri3, CellType::tet4}) {
    const int dim = cell_dim(t);
    for (int degree : {1, 2, 3, 4}) {
      const QuadratureRule& q = quadrature(t, degree);
      for (int a = 0; a <= degree; ++a)
        for (int b = 0; b <= (dim > 1 ? degree - a : 0); ++b)
          for (int c = 0; c <= (dim > 2 ? degree - a - b : 0); ++c) {
            double s = 0;
            for (int k = 0; k < q.points; ++k) {
              const double* x = q.xi + k * q.dim;
              s += q.w[k] * std::pow(x[0], a) * (dim > 1 ? std::pow(x[1], b) : 1.0) *
                   (dim > 2 ? std::pow(x[2], c) : 1.0);
            }
            const double exact = factorial(a) * factorial(b) * factorial(c) / factorial(a + b + c + dim);
            EXPECT_NEAR(s, exact, 1e-14) << "dim " << dim << " degree " << degree << " x^" << a
                                         << " y^" << b << " z^" << c;
          }
    }
  }
}

// Moves interior nodes randomly so that patch tests run on irregular cells.
Mesh distorted(Mesh m, double amount, unsigned seed) {
  const auto bnd = test::all_boundary_nodes(m);
  std::vector<char> on_boundary(m.num_nodes(), 0);
  for (int b : bnd) on_boundary[static_cast<size_t>(b)] = 1;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(-amount, amount);
  // Only vertices move; P2 mid-edge nodes are then re-centred so edges stay straight.
  std::vector<char> vertex(m.num_nodes(), 0);
  for (size_t c = 0; c < m.num_cells(); ++c)
    for (int i = 0; i <= m.dim; ++i) vertex[static_cast<size_t>(m.cell(c)[i])] = 1;
  for (size_t i = 0; i < m.num_nodes(); ++i)
    if (!on_boundary[i] && vertex[i])
      for (int a = 0; a < m.dim; ++a) m.coords[i * 3 + a] += d(rng);
  if (m.order() == 2)
    for (size_t c = 0; c < m.num_cells(); ++c) {
      const int* v = m.cell(c);
      for (int e = 0; e < num_edges(m.cell_type); ++e) {
        int a = 0, b = 0;
        edge_vertices(m.cell_type, e, a, b);
        const size_t mid = static_cast<size_t>(v[m.dim + 1 + e]);
        for (int k = 0; k < 3; ++k)
          m.coords[mid * 3 + k] = 0.5 * (m.coords[static_cast<size_t>(v[a]) * 3 + k] + m.coords[static_cast<size_t>(v[b]) * 3 + k]);
      }
    }
  return m;
}

// Patch test: a field in the element's space that satisfies -lap u = 0 is reproduced exactly
// (to round-off) on distorted meshes.
TEST(PatchTest, HeatP1ReproducesLinearField2DAnd3D) {
  auto u = [](const double* x) { return 1.0 + 2.0 * x[0] - 3.0 * x[1] + 0.5 * x[2]; };
  for (const Mesh& m : {distorted(generate_rectangle(1, 1, 5, 5, 1), 0.05, 1),
                        distorted(generate_box(1, 1, 1, 3, 3, 3, 1), 0.05, 2)}) {
    const auto T = test::solve_poisson(m, [](const double*) { return 0.0; }, u);
    for (size_t i = 0; i < m.num_nodes(); ++i) EXPECT_NEAR(T[i], u(&m.coords[i * 3]), 1e-11);
  }
}

TEST(PatchTest, HeatP2ReproducesHarmonicQuadratic2DAnd3D) {
  auto u = [](const double* x) { return x[0] * x[0] - x[1] * x[1] + 2 * x[0] * x[1] + x[1] * x[2] + x[0]; };
  for (const Mesh& m : {distorted(generate_rectangle(1, 1, 4, 4, 2), 0.05, 3),
                        distorted(generate_box(1, 1, 1, 2, 2, 2, 2), 0.05, 4)}) {
    const auto T = test::solve_poisson(m, [](const double*) { return 0.0; }, u);
    for (size_t i = 0; i < m.num_nodes(); ++i) EXPECT_NEAR(T[i], u(&m.coords[i * 3]), 1e-10);
  }
}

TEST(PatchTest, ElasticityP1LinearAndP2QuadraticDisplacement) {
  const double lambda = 1.7, mu = 0.9;
  // Linear displacement: zero body force.
  auto lin = [](const double* x, double* v) {
    v[0] = 0.1 + 0.2 * x[0] - 0.3 * x[1] + 0.05 * x[2];
    v[1] = -0.2 + 0.1 * x[0] + 0.4 * x[1] - 0.1 * x[2];
    v[2] = 0.3 - 0.1 * x[0] + 0.2 * x[1] + 0.3 * x[2];
  };
  auto zero = [](const double*, double* v) { v[0] = v[1] = v[2] = 0; };
  for (const Mesh& m : {distorted(generate_rectangle(1, 1, 4, 4, 1), 0.05, 5),
                        distorted(generate_box(1, 1, 1, 2, 2, 2, 1), 0.05, 6)}) {
    const auto U = test::solve_elasticity(m, lambda, mu, zero, lin);
    for (size_t i = 0; i < m.num_nodes(); ++i) {
      double e[3];
      lin(&m.coords[i * 3], e);
      for (int a = 0; a < m.dim; ++a) EXPECT_NEAR(U[i * static_cast<size_t>(m.dim) + static_cast<size_t>(a)], e[a], 1e-11);
    }
  }
  // Quadratic u = (x^2, 0): div sigma = ((lambda + 2 mu) * 2, 0), body force = -that.
  auto quad = [](const double* x, double* v) { v[0] = x[0] * x[0]; v[1] = 0; v[2] = 0; };
  auto force = [&](const double*, double* v) { v[0] = -2 * (lambda + 2 * mu); v[1] = 0; v[2] = 0; };
  for (const Mesh& m : {distorted(generate_rectangle(1, 1, 3, 3, 2), 0.05, 7),
                        distorted(generate_box(1, 1, 1, 2, 2, 2, 2), 0.05, 8)}) {
    const auto U = test::solve_elasticity(m, lambda, mu, force, quad);
    for (size_t i = 0; i < m.num_nodes(); ++i) {
      double e[3];
      quad(&m.coords[i * 3], e);
      for (int a = 0; a < m.dim; ++a) EXPECT_NEAR(U[i * static_cast<size_t>(m.dim) + static_cast<size_t>(a)], e[a], 1e-10);
    }
  }
}

}  // namespace
}  // namespace doppel
