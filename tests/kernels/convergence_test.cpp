// Convergence rates on manufactured solutions (closed form), unit square / cube, generated
// meshes refined by 2. Observed L2 rates must exceed 1.9 (P1) and 2.85 (P2).
#include <cmath>

#include "tests/test_util.hpp"

namespace doppel {
namespace {

const double kPi = 3.14159265358979323846;

double rate(double e_coarse, double e_fine) { return std::log2(e_coarse / e_fine); }

Mesh make(int dim, int n, int order) {
  return dim == 2 ? generate_rectangle(1, 1, n, n, order) : generate_box(1, 1, 1, n, n, n, order);
}

// u = prod sin(pi x_i), -lap u = dim pi^2 u, u = 0 on the boundary.
double heat_error(int dim, int n, int order) {
  const Mesh m = make(dim, n, order);
  auto u = [dim](const double* x) {
    double s = std::sin(kPi * x[0]) * std::sin(kPi * x[1]);
    return dim == 3 ? s * std::sin(kPi * x[2]) : s;
  };
  const auto T = test::solve_poisson(m, [&](const double* x) { return dim * kPi * kPi * u(x); }, u);
  return test::l2_error(m, T, 1, [&](const double* x, double* v) { v[0] = u(x); });
}

// u_i = s = prod sin(pi x_j) for every component; f = -((lambda + mu) grad div u + mu lap u).
double elasticity_error(int dim, int n, int order) {
  const double lambda = 1.5, mu = 1.0;
  const Mesh m = make(dim, n, order);
  auto S = [](double x) { return std::sin(kPi * x); };
  auto C = [](double x) { return std::cos(kPi * x); };
  auto exact = [&](const double* x, double* v) {
    double s = S(x[0]) * S(x[1]) * (dim == 3 ? S(x[2]) : 1.0);
    for (int a = 0; a < 3; ++a) v[a] = a < dim ? s : 0.0;
  };
  auto force = [&](const double* x, double* f) {
    if (dim == 2) {
      const double s = S(x[0]) * S(x[1]), cc = C(x[0]) * C(x[1]);
      for (int a = 0; a < 2; ++a) f[a] = -((lambda + mu) * kPi * kPi * (cc - s) - 2 * mu * kPi * kPi * s);
      f[2] = 0;
      return;
    }
    const double sx = S(x[0]), sy = S(x[1]), sz = S(x[2]), cx = C(x[0]), cy = C(x[1]), cz = C(x[2]);
    const double s = sx * sy * sz;
    const double gd[3] = {kPi * kPi * (-s + cx * cy * sz + cx * sy * cz),
                          kPi * kPi * (cx * cy * sz - s + sx * cy * cz),
                          kPi * kPi * (cx * sy * cz + sx * cy * cz - s)};
    for (int a = 0; a < 3; ++a) f[a] = -((lambda + mu) * gd[a] - 3 * mu * kPi * kPi * s);
  };
  const auto U = test::solve_elasticity(m, lambda, mu, force, exact);
  return test::l2_error(m, U, dim, exact);
}

TEST(Convergence, HeatP1_2D_UnitSquare_L2RateAbove1_9) {
  const double e1 = heat_error(2, 16, 1), e2 = heat_error(2, 32, 1);
  EXPECT_GT(rate(e1, e2), 1.9) << e1 << " " << e2;
}
TEST(Convergence, HeatP2_2D_UnitSquare_L2RateAbove2_85) {
  const double e1 = heat_error(2, 8, 2), e2 = heat_error(2, 16, 2);
  EXPECT_GT(rate(e1, e2), 2.85) << e1 << " " << e2;
}
TEST(Convergence, HeatP1_3D_UnitCube_L2RateAbove1_9) {
  const double e1 = heat_error(3, 8, 1), e2 = heat_error(3, 16, 1);
  EXPECT_GT(rate(e1, e2), 1.9) << e1 << " " << e2;
}
TEST(Convergence, HeatP2_3D_UnitCube_L2RateAbove2_85) {
  const double e1 = heat_error(3, 4, 2), e2 = heat_error(3, 8, 2);
  EXPECT_GT(rate(e1, e2), 2.85) << e1 << " " << e2;
}
TEST(Convergence, ElasticityP1_2D_PlaneStrain_L2RateAbove1_9) {
  const double e1 = elasticity_error(2, 16, 1), e2 = elasticity_error(2, 32, 1);
  EXPECT_GT(rate(e1, e2), 1.9) << e1 << " " << e2;
}
TEST(Convergence, ElasticityP2_2D_PlaneStrain_L2RateAbove2_85) {
  const double e1 = elasticity_error(2, 8, 2), e2 = elasticity_error(2, 16, 2);
  EXPECT_GT(rate(e1, e2), 2.85) << e1 << " " << e2;
}
TEST(Convergence, ElasticityP1_3D_L2RateAbove1_9) {
  const double e1 = elasticity_error(3, 8, 1), e2 = elasticity_error(3, 16, 1);
  EXPECT_GT(rate(e1, e2), 1.9) << e1 << " " << e2;
}
TEST(Convergence, ElasticityP2_3D_L2RateAbove2_85) {
  const double e1 = elasticity_error(3, 4, 2), e2 = elasticity_error(3, 8, 2);
  EXPECT_GT(rate(e1, e2), 2.85) << e1 << " " << e2;
}

}  // namespace
}  // namespace doppel
