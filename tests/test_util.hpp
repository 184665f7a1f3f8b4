// Helpers shared by the tests: twins from JSON text, kernel-level scalar and vector solves
// with function-valued data, and L2 errors.
#pragma once

#include <cmath>
#include <cstdlib>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/fem/assembly.hpp"
#include "kernels/backend.hpp"
#include "kernels/solvers/batched_solver.hpp"
#include "kernels/fem/fem_model.hpp"
#include "kernels/fem/quadrature.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "spec/errors.hpp"

namespace doppel::test {

// DOPPEL_REQUIRE_GPU=1 (the GPU run): a test that would skip for want of a device fails
// instead, so a run on a GPU machine cannot pass by skipping.
inline bool gpu_required() {
  const char* v = std::getenv("DOPPEL_REQUIRE_GPU");
  return v && *v && std::string(v) != "0";
}

// Why the CUDA backend cannot run here ("" when it can).
inline std::string cuda_unavailable() {
  if (!cuda::compiled()) return "the CUDA backend is not compiled into this build";
  if (cuda::device_count() == 0) return "no CUDA device is present";
  return "";
}

}  // namespace doppel::test

// Skips the current test with `why: what not run` when `why` is not empty, or fails it when
// DOPPEL_REQUIRE_GPU=1. Use in a test body or SetUp (a failure there skips the body).
#define DOPPEL_SKIP_FOR_WANT_OF_GPU(why, what)                                                       \
  do {                                                                                             \
    const std::string doppel_why_ = (why);                                                         \
    if (!doppel_why_.empty()) {                                                                    \
      if (::doppel::test::gpu_required()) FAIL() << "DOPPEL_REQUIRE_GPU=1, but " << doppel_why_ << ": " << what; \
      GTEST_SKIP() << doppel_why_ << ": " << what << " not run";                                   \
    }                                                                                              \
  } while (0)
// The common case: the CUDA backend and a device.
#define DOPPEL_SKIP_WITHOUT_CUDA(what) DOPPEL_SKIP_FOR_WANT_OF_GPU(::doppel::test::cuda_unavailable(), what)

namespace doppel::test {

inline spec::TwinSpec twin_from(const std::string& json, const std::string& dir = DOPPEL_SOURCE_DIR) {
  return spec::parse_twin(json, dir);
}

// The heat box of the benchmarks (unit cube of nx x ny x nz cells, 6 P1 tetrahedra each, k = 50):
// temperature $Tb on xmin, convection (h = 40) to $Tamb on xmax, source $q; outputs the probe
// T(1, 0.5, 0.5) and T_max, plus `extra_outputs` (JSON members, each with a leading comma).
inline spec::TwinSpec heat_box_twin(int nx, int ny, int nz, double Tb, double q,
                                    const std::string& extra_outputs = "") {
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  return twin_from(R"({"name": "box", "mesh": {"generate": "box", "size": [1, 1, 1], "cells": [)" +
                   std::to_string(nx) + "," + std::to_string(ny) + "," + std::to_string(nz) + R"(], "order": 1},
    "physics": {"thermal": {}}, "materials": {"steel": {"conductivity": 50}}, "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$Tb"}},
                   "xmax": {"thermal": {"type": "convection", "h": 40, "ambient": "$Tamb"}}},
    "sources": {"domain": {"heat": "$q"}},
    "parameters": {"Tb": {"default": )" + num(Tb) + R"(, "min": 0, "max": 300},
                   "Tamb": {"default": 20, "min": 0, "max": 40},
                   "q": {"default": )" + num(q) + R"(, "min": 0, "max": 1e5}},
    "outputs": {"T_probe": {"quantity": "temperature", "at": [1, 0.5, 0.5]},
                "T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"})" +
                   extra_outputs + "}}");
}

// n scenarios at the default parameters with the named ones drawn uniformly inside their
// bounds (every parameter when `vary` is empty).
inline std::vector<spec::Scenario> random_scenarios(const spec::TwinSpec& twin, std::vector<std::string> vary,
                                                    int n, unsigned seed) {
  if (vary.empty())
    for (const auto& p : twin.parameters) vary.push_back(p.name);
  return spec::random_scenarios(twin, vary, n, seed);
}

inline std::vector<double> solve_single(const FemModel& model, const std::vector<std::pair<std::string, double>>& set = {}) {
  spec::Scenario s;
  s.parameters = model.twin().default_parameters();
  for (const auto& [k, v] : set) s.parameters[static_cast<size_t>(model.twin().parameter_index(k))] = v;
  return solve_batch(model, {s}).scenarios[0].outputs[0];
}

inline std::vector<int> all_boundary_nodes(const Mesh& m) {
  std::vector<int> nodes(m.facets.begin(), m.facets.end());
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

using VectorFunction = std::function<void(const double* x, double* v)>;

// -lap(u) = f with u = g on the whole boundary; returns nodal values.
inline std::vector<double> solve_poisson(const Mesh& m, const PointFunction& f, const PointFunction& g) {
  const CsrPattern p = cell_pattern(m, 1, 1);
  std::vector<double> K(p.nnz(), 0.0);
  add_stiffness(m, p, -1, 1.0, K.data());
  const std::vector<int> bnd = all_boundary_nodes(m);
  AffineOperator op(p, {K}, bnd);
  const size_t n = m.num_nodes();
  std::vector<double> b(n, 0.0), gv(n, 0.0), lift(n, 0.0);
  add_region_load(m, -1, f, b.data());
  for (int d : bnd) gv[static_cast<size_t>(d)] = g(&m.coords[static_cast<size_t>(d) * 3]);
  const std::vector<double> theta{1.0};
  op.apply_free_rows(theta.data(), gv.data(), lift.data());
  Eigen::MatrixXd B(static_cast<Eigen::Index>(n), 1), X;
  for (size_t i = 0; i < n; ++i) B(static_cast<Eigen::Index>(i), 0) = b[i] - lift[i];
  for (int d : bnd) B(d, 0) = gv[static_cast<size_t>(d)];
  BatchedSolver solver(op);
  solver.solve_shared(theta, B, X);
  return std::vector<double>(X.data(), X.data() + n);
}

// Isotropic elasticity (lambda, mu as given: plane strain or 3D) with body force f and
// u = g on the whole boundary.
inline std::vector<double> solve_elasticity(const Mesh& m, double lambda, double mu,
                                            const VectorFunction& f, const VectorFunction& g) {
  const int dim = m.dim;
  const CsrPattern p = cell_pattern(m, dim, dim);
  std::vector<double> L(p.nnz(), 0.0), M(p.nnz(), 0.0);
  add_elastic_lambda(m, p, -1, 1.0, L.data());
  add_elastic_mu(m, p, -1, 1.0, M.data());
  std::vector<int> dofs;
  for (int node : all_boundary_nodes(m))
    for (int a = 0; a < dim; ++a) dofs.push_back(node * dim + a);
  AffineOperator op(p, {L, M}, dofs);
  const size_t n = static_cast<size_t>(p.rows);
  std::vector<double> b(n, 0.0), gv(n, 0.0), lift(n, 0.0);
  for (int a = 0; a < dim; ++a)
    add_body_force(m, -1, a, [&](const double* x) { double v[3]; f(x, v); return v[a]; }, b.data());
  for (int d : dofs) {
    double v[3];
    g(&m.coords[static_cast<size_t>(d / dim) * 3], v);
    gv[static_cast<size_t>(d)] = v[d % dim];
  }
  const std::vector<double> theta{lambda, mu};
  op.apply_free_rows(theta.data(), gv.data(), lift.data());
  Eigen::MatrixXd B(static_cast<Eigen::Index>(n), 1), X;
  for (size_t i = 0; i < n; ++i) B(static_cast<Eigen::Index>(i), 0) = b[i] - lift[i];
  for (int d : dofs) B(d, 0) = gv[static_cast<size_t>(d)];
  BatchedSolver solver(op);
  solver.solve_shared(theta, B, X);
  return std::vector<double>(X.data(), X.data() + n);
}

// L2 norm of (u_h - u) for a field with `comps` components per node.
inline double l2_error(const Mesh& m, const std::vector<double>& uh, int comps, const VectorFunction& u) {
  const QuadratureRule& q = quadrature(m.cell_type, 4);
  double X[kMaxNodes * 3], err = 0;
  PointMap pm;
  for (size_t c = 0; c < m.num_cells(); ++c) {
    m.cell_coords(c, X);
    const int* v = m.cell(c);
    for (int k = 0; k < q.points; ++k) {
      map_point(m.cell_type, m.dim, X, q.xi + k * q.dim, pm);
      double exact[3];
      u(pm.x, exact);
      for (int a = 0; a < comps; ++a) {
        double s = 0;
        for (int i = 0; i < m.nodes_per_cell(); ++i) s += pm.N[i] * uh[static_cast<size_t>(v[i] * comps + a)];
        err += q.w[k] * pm.measure * (s - exact[a]) * (s - exact[a]);
      }
    }
  }
  return std::sqrt(err);
}

}  // namespace doppel::test
