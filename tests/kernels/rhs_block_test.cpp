// Right-hand sides of a block as one product (RhsBlock) and the block thermal-strain loads,
// against the per-scenario assembly they replace (FemModel::assemble_rhs,
// add_thermal_strain_load). Reference: those functions, column by column; tolerance 1e-12 of
// each column's norm (the two sum in different orders). Meshes: a 3D P1 box (operators that
// vary with k and h, a prescribed temperature and a prescribed displacement that depend on the
// parameters) and the 3D P1 heat box with a dof prescribed by two terms.
#include <algorithm>

#include "tests/test_util.hpp"

namespace doppel {
namespace {

const char* kVaryingBox = R"({"name": "box",
  "mesh": {"generate": "box", "size": [0.1, 0.05, 0.04], "cells": [6, 4, 3], "order": 1},
  "physics": {"thermal": {}, "mechanical": {"formulation": "3d"}},
  "materials": {"steel": {"conductivity": "$k", "density": 7800, "specific_heat": 480,
                          "youngs_modulus": "$E", "poisson_ratio": 0.3, "thermal_expansion": 1.2e-5,
                          "reference_temperature": "$Tref"}},
  "regions": {"domain": "steel"},
  "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}, "mechanical": {"type": "fixed"}},
                 "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": "$Tamb"},
                          "mechanical": {"type": "displacement", "value": [0, 0, "$uz"]}},
                 "zmax": {"thermal": {"type": "flux", "value": "$q"}}},
  "parameters": {"k": {"default": 45, "min": 15, "max": 60},
                 "h": {"default": 100, "min": 10, "max": 1000},
                 "T0": {"default": 200, "min": 50, "max": 400},
                 "Tamb": {"default": 20, "min": 0, "max": 40},
                 "Tref": {"default": 20, "min": 0, "max": 100},
                 "E": {"default": 2e11, "min": 1e11, "max": 3e11},
                 "uz": {"default": 1e-4, "min": -1e-3, "max": 1e-3},
                 "q": {"default": 1000, "min": -5000, "max": 5000}},
  "outputs": {"T_tip": {"quantity": "temperature", "at": [0.1, 0.025, 0.02]}}})";

void expect_columns_equal(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B, const char* what) {
  ASSERT_EQ(A.rows(), B.rows());
  ASSERT_EQ(A.cols(), B.cols());
  for (Eigen::Index s = 0; s < A.cols(); ++s)
    EXPECT_LE((A.col(s) - B.col(s)).norm(), 1e-12 * std::max(1.0, B.col(s).norm())) << what << ", scenario " << s;
}

Eigen::MatrixXd per_scenario(const AffineOperator& op, const std::vector<RhsTerm>& terms,
                             const std::vector<Params>& theta, const std::vector<Params>& p) {
  Eigen::MatrixXd B(op.size(), static_cast<Eigen::Index>(p.size()));
  for (size_t s = 0; s < p.size(); ++s)
    FemModel::assemble_rhs(op, terms, theta[s], p[s], B.col(static_cast<Eigen::Index>(s)).data());
  return B;
}

TEST(RhsBlock, EqualsPerScenarioAssemblyWithVaryingOperatorsAndLifts) {
  const FemModel model(test::twin_from(kVaryingBox));
  const auto sc = test::random_scenarios(model.twin(), {}, 37, 5);
  std::vector<Params> p, thT, thM;
  for (const auto& s : sc) {
    p.push_back(s.parameters);
    thT.push_back(model.thermal_theta(s.parameters));
    thM.push_back(model.mechanical_theta(s.parameters));
  }
  const RhsBlock heat(model.thermal_operator(), model.thermal_rhs_terms());
  const RhsBlock mech(model.mechanical_operator(), model.mechanical_rhs_terms());
  // Loads and lifts through every operator term: the product has columns.
  EXPECT_GT(heat.columns(), static_cast<Eigen::Index>(model.thermal_operator().num_terms()));
  EXPECT_GT(mech.columns(), static_cast<Eigen::Index>(model.mechanical_operator().num_terms()));
  Eigen::MatrixXd B;
  heat.assemble(thT, p, B);
  expect_columns_equal(B, per_scenario(model.thermal_operator(), model.thermal_rhs_terms(), thT, p), "heat");
  mech.assemble(thM, p, B);
  expect_columns_equal(B, per_scenario(model.mechanical_operator(), model.mechanical_rhs_terms(), thM, p), "mechanics");

  // The block thermal-strain loads (reference temperature and modulus vary by scenario).
  Eigen::MatrixXd T = Eigen::MatrixXd::Random(model.thermal_operator().size(), 37) * 100.0;
  Eigen::MatrixXd L = B, Lref = B;
  model.add_thermal_strain_loads(p, T, L);
  for (size_t s = 0; s < p.size(); ++s)
    model.add_thermal_strain_load(p[s], T.col(static_cast<Eigen::Index>(s)).data(), Lref.col(static_cast<Eigen::Index>(s)).data());
  expect_columns_equal(L, Lref, "thermal strain");
  EXPECT_GT((L - B).norm(), 1e-3 * B.norm());  // the loads are there
}

// A dof prescribed by several terms takes the sum of their values (a boundary temperature that
// varies in space is one term per term of its expression, on the same dofs): still linear in
// the coefficients, so the block product holds. The second term here is made by hand: a copy
// of the model's prescribed-temperature term with another coefficient and a value per dof.
TEST(RhsBlock, DofsPrescribedByTwoTermsTakeTheSumOfTheirValues) {
  const FemModel model(test::heat_box_twin(4, 3, 3, 100, 1000));
  std::vector<RhsTerm> terms = model.thermal_rhs_terms();
  const auto prescribed = std::find_if(terms.begin(), terms.end(), [](const RhsTerm& t) { return !t.dirichlet.empty(); });
  ASSERT_NE(prescribed, terms.end());
  RhsTerm twice = *prescribed;
  const Coefficient c = twice.coef;
  twice.coef = [c](const Params& q) { return 2.0 * c(q) + 1.0; };
  twice.dirichlet_value.clear();
  for (int d : twice.dirichlet) twice.dirichlet_value.push_back(1.0 + model.mesh().coords[static_cast<size_t>(d) * 3]);
  terms.push_back(twice);
  const auto sc = test::random_scenarios(model.twin(), {}, 9, 7);
  std::vector<Params> p, th;
  for (const auto& s : sc) {
    p.push_back(s.parameters);
    th.push_back(model.thermal_theta(s.parameters));
  }
  const RhsBlock heat(model.thermal_operator(), terms);
  EXPECT_GT(heat.columns(), RhsBlock(model.thermal_operator(), model.thermal_rhs_terms()).columns());
  Eigen::MatrixXd B;
  heat.assemble(th, p, B);
  expect_columns_equal(B, per_scenario(model.thermal_operator(), terms, th, p), "prescribed twice");
  for (size_t s = 0; s < p.size(); ++s)
    for (size_t i = 0; i < twice.dirichlet.size(); ++i) {
      const int d = twice.dirichlet[i];
      const double want = c(p[s]) + (2.0 * c(p[s]) + 1.0) * twice.dirichlet_value[i];
      EXPECT_NEAR(B(d, static_cast<Eigen::Index>(s)), want, 1e-12 * std::abs(want)) << "dof " << d;
    }
  std::vector<double> x(static_cast<size_t>(model.thermal_operator().size()), -7.0);
  FemModel::apply_dirichlet(terms, p[0], x.data());
  EXPECT_NEAR(x[static_cast<size_t>(twice.dirichlet[0])], c(p[0]) + (2.0 * c(p[0]) + 1.0) * twice.dirichlet_value[0], 1e-9);
}

}  // namespace
}  // namespace doppel
