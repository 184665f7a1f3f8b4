// The outputs as one affine operator of the fields (OutputEvaluator::linearize) against the
// per-scenario evaluator (OutputEvaluator::site_components) that it replaces in batches.
//
// The batched outputs (BatchOutputs: the operator's product and the reductions as executor
// kernels) against the same reference on the host executor, and on the CUDA executor where
// there is one: from host fields, from executor fields read at a column offset, in column
// blocks of one and two columns, and from the site components of modes (z = z0 + Z c).
//
// Reference: site_components, which recovers element values at nodes and interpolates them
// scenario by scenario. Both are the same affine map of (T, u), so they agree to rounding:
// every site component to 1e-12 of its largest magnitude over the fields tried, and every
// output (max / min / mean after the reductions) to 1e-12 of its scale. Fields: random nodal
// values of physical size (temperatures 300-900 K, displacements ~1e-4 m), not solutions, so
// every column of the operator is exercised, including Dirichlet nodes.
// Meshes: the blade's curved P2 Gmsh mesh (2D), 2D P1 rectangles, 3D P1 and P2 boxes, and a
// 3D P2 box of two materials (nodes on the interface recover one value per region).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/fem/outputs.hpp"
#include "kernels/solvers/batch_outputs.hpp"
#include "tests/test_util.hpp"

namespace doppel {
namespace {

using Eigen::Index;
using Eigen::MatrixXd;

// Random fields for `columns` scenarios.
void random_fields(const FemModel& model, int columns, unsigned seed, MatrixXd& T, MatrixXd& u) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> temperature(300.0, 900.0), displacement(-1e-4, 1e-4);
  const Index n = static_cast<Index>(model.mesh().num_nodes());
  if (model.thermal()) {
    T.resize(n, columns);
    for (Index i = 0; i < T.size(); ++i) T.data()[i] = temperature(rng);
  }
  if (model.mechanical()) {
    u.resize(n * model.mesh().dim, columns);
    for (Index i = 0; i < u.size(); ++i) u.data()[i] = displacement(rng);
  }
}

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Outputs [scenario][output] against the reference, to 1e-12 of each output's scale.
void expect_outputs_near(const FemModel& model, const std::vector<std::vector<double>>& got,
                         const std::vector<std::vector<double>>& ref, size_t ref_first,
                         const std::vector<double>& scale, const std::string& what) {
  ASSERT_EQ(got.size() + ref_first, ref.size()) << what;
  for (size_t s = 0; s < got.size(); ++s) {
    ASSERT_EQ(got[s].size(), scale.size()) << what;
    for (size_t k = 0; k < scale.size(); ++k)
      EXPECT_NEAR(got[s][k], ref[ref_first + s][k], 1e-12 * scale[k])
          << what << ": " << model.twin().outputs[k].name << " scenario " << ref_first + s;
  }
}

// BatchOutputs on `exec` against the evaluator's outputs out_ref of fields T, u.
void expect_batch_outputs_equal(const FemModel& model, const OutputEvaluator& ev, const LinearOutputs& lin,
                                const std::shared_ptr<const Executor>& exec, const MatrixXd& T, const MatrixXd& u,
                                const std::vector<std::vector<double>>& out_ref, const std::vector<double>& scale) {
  const std::string on = exec->backend() == Backend::cuda ? "cuda" : "host";
  const MatrixXd* pT = model.thermal() ? &T : nullptr;
  const MatrixXd* pU = model.mechanical() ? &u : nullptr;
  const Index S = static_cast<Index>(out_ref.size());
  BatchOutputs out(exec, ev, lin);
  EXPECT_GT(out.bytes(), 0u);
  expect_outputs_near(model, out.evaluate(pT, pU, 0, S), out_ref, 0, scale, on + ", host fields");
  for (size_t columns : {size_t{1}, size_t{2}}) {  // column blocks of one and two scenarios
    out.set_block_values(columns * out.rows());
    expect_outputs_near(model, out.evaluate(pT, pU, 0, S), out_ref, 0, scale,
                        on + ", blocks of " + std::to_string(columns));
  }
  // Fields where they live, in the executor's layout, read from column 1 on.
  Array<double> Td, Ud;
  if (pT) {
    const RowMajor t = T;
    Td = Array<double>(exec, t.data(), static_cast<size_t>(t.size()));
  }
  if (pU) {
    const RowMajor v = u;
    Ud = Array<double>(exec, v.data(), static_cast<size_t>(v.size()));
  }
  expect_outputs_near(model, out.evaluate(pT ? Td.data() : nullptr, pU ? Ud.data() : nullptr, static_cast<int>(S), 1,
                                          static_cast<int>(S) - 1),
                      out_ref, 1, scale, on + ", executor fields from column 1");
  // Modes: each scenario's field as a mode, so that the identity's combinations are the
  // scenarios themselves, and a combination c gives the outputs of the fields T c, u c.
  const MatrixXd Zall = lin.apply(pT, pU);
  const MatrixXd Zm = Zall.colwise() - lin.z0;
  BatchOutputs modes(exec, ev, lin.z0, Zm);
  expect_outputs_near(model, modes.evaluate_modes(MatrixXd::Identity(S, S)), out_ref, 0, scale, on + ", modes");
  Eigen::VectorXd c(S);
  for (Index m = 0; m < S; ++m) c[m] = 0.3 + 0.1 * static_cast<double>(m);
  c /= c.sum();  // a convex combination: the result has the scale of the fields
  const Params p = model.twin().default_parameters();
  const Eigen::VectorXd Tc = pT ? Eigen::VectorXd(T * c) : Eigen::VectorXd();
  const Eigen::VectorXd uc = pU ? Eigen::VectorXd(u * c) : Eigen::VectorXd();
  const std::vector<std::vector<double>> combined = {ev.evaluate(p, pT ? Tc.data() : nullptr, pU ? uc.data() : nullptr)};
  expect_outputs_near(model, modes.evaluate_modes(c), combined, 0, scale, on + ", a combination of modes");
}

// The operator's site components and outputs against the evaluator's, for the default
// parameters and a few random fields; then the batched outputs on every executor here.
void expect_operator_equals_evaluator(const FemModel& model, unsigned seed) {
  const OutputEvaluator ev = OutputEvaluator::for_outputs(model);
  const Params p = model.twin().default_parameters();
  const LinearOutputs lin = ev.linearize(p);
  ASSERT_EQ(lin.rows(), ev.total_components());
  EXPECT_LE(static_cast<size_t>(lin.ZT.nonZeros() + lin.Zu.nonZeros()), ev.linear_entries_bound());
  const int S = 5;
  MatrixXd T, u;
  random_fields(model, S, seed, T, u);
  const MatrixXd Z = lin.apply(model.thermal() ? &T : nullptr, model.mechanical() ? &u : nullptr);
  ASSERT_EQ(Z.rows(), static_cast<Index>(ev.total_components()));
  ASSERT_EQ(Z.cols(), S);
  std::vector<std::vector<double>> ref(S), out_ref(S), out_lin(S);
  for (int s = 0; s < S; ++s) {
    ref[s] = ev.site_components(p, model.thermal() ? T.col(s).data() : nullptr,
                                model.mechanical() ? u.col(s).data() : nullptr);
    out_ref[s] = ev.reduce(ref[s].data());
    out_lin[s] = ev.reduce(Z.col(s).data());
  }
  // Scale per output: its components' and values' largest magnitudes over the fields.
  for (size_t k = 0; k < ev.size(); ++k) {
    const size_t begin = ev.offset(k);
    const size_t end = begin + ev.num_sites(k) * static_cast<size_t>(ev.components(k));
    double scale = 1e-300, value_scale = 1e-300;
    for (int s = 0; s < S; ++s) {
      for (size_t i = begin; i < end; ++i) scale = std::max(scale, std::fabs(ref[s][i]));
      value_scale = std::max(value_scale, std::fabs(out_ref[s][k]));
    }
    const std::string name = model.twin().outputs[k].name;
    for (int s = 0; s < S; ++s) {
      for (size_t i = begin; i < end; ++i)
        ASSERT_NEAR(Z(static_cast<Index>(i), s), ref[s][i], 1e-12 * scale) << name << " component " << i - begin;
      EXPECT_NEAR(out_lin[s][k], out_ref[s][k], 1e-12 * value_scale) << name << " scenario " << s;
    }
  }
  std::vector<double> scale(ev.size(), 1e-300);
  for (size_t k = 0; k < ev.size(); ++k)
    for (int s = 0; s < S; ++s) {
      scale[k] = std::max(scale[k], std::fabs(out_ref[s][k]));
      // evaluate() is the reference's two steps in one.
      ASSERT_EQ(ev.evaluate(p, model.thermal() ? T.col(s).data() : nullptr,
                            model.mechanical() ? u.col(s).data() : nullptr)[k], out_ref[s][k]);
    }
  expect_batch_outputs_equal(model, ev, lin, Executor::host(), T, u, out_ref, scale);
  if (test::cuda_unavailable().empty()) expect_batch_outputs_equal(model, ev, lin, Executor::cuda(0), T, u, out_ref, scale);
}

// Heat on the blade's curved P2 mesh: every temperature and heat-flux output kind.
TEST(OutputOperator, HeatOnTheCurvedP2BladeMeshEqualsTheEvaluator) {
  FemModel model(test::twin_from(R"({"name": "blade-heat", "mesh": {"file": "examples/blade/blade.msh"},
    "physics": {"thermal": {}},
    "materials": {"in718": {"conductivity": 23.0}}, "regions": {"blade": "in718"},
    "boundaries": {"root": {"thermal": {"type": "temperature", "value": 550}}},
    "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "blade"},
                "T_min": {"quantity": "temperature", "reduce": "min", "region": "blade"},
                "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "blade"},
                "T_le": {"quantity": "temperature", "at": [0.002, 0.0006]},
                "qx_te": {"quantity": "heat_flux_x", "at": [0.044, 0.00108]},
                "qy_le": {"quantity": "heat_flux_y", "at": [0.002, 0.0006]},
                "qy_max": {"quantity": "heat_flux_y", "reduce": "max", "region": "blade"},
                "qx_min": {"quantity": "heat_flux_x", "reduce": "min", "region": "blade"},
                "qx_mean": {"quantity": "heat_flux_x", "reduce": "mean", "region": "blade"}}})"));
  expect_operator_equals_evaluator(model, 1);
}

// Heat on a 3D P1 box: flux components at a probe and reduced over the domain.
TEST(OutputOperator, HeatOnA3dP1BoxEqualsTheEvaluator) {
  FemModel model(test::heat_box_twin(6, 5, 4, 100, 1e4,
                                     R"(, "qz_probe": {"quantity": "heat_flux_z", "at": [0.3, 0.4, 0.6]},
                                         "qx_max": {"quantity": "heat_flux_x", "reduce": "max", "region": "domain"},
                                         "qy_mean": {"quantity": "heat_flux_y", "reduce": "mean", "region": "domain"})"));
  expect_operator_equals_evaluator(model, 2);
}

// Elasticity alone on a 3D P2 box: every displacement, strain and stress output kind.
TEST(OutputOperator, ElasticityOnA3dP2BoxEqualsTheEvaluatorForEveryKind) {
  std::string outputs;
  const char* components[] = {"xx", "yy", "zz", "xy", "yz", "xz"};
  for (const char* c : components) {
    outputs += std::string(R"(, "e)") + c + R"(": {"quantity": "strain_)" + c + R"(", "at": [0.1, 0.02, 0.013]})";
    outputs += std::string(R"(, "s)") + c + R"(": {"quantity": "stress_)" + c + R"(", "at": [0.07, 0.031, 0.02]})";
    outputs += std::string(R"(, "smax)") + c + R"(": {"quantity": "stress_)" + c + R"(", "reduce": "max", "region": "domain"})";
    outputs += std::string(R"(, "emean)") + c + R"(": {"quantity": "strain_)" + c + R"(", "reduce": "mean", "region": "domain"})";
  }
  FemModel model(test::twin_from(R"({"name": "bar", "mesh": {"generate": "box", "size": [0.2, 0.05, 0.04], "cells": [5, 2, 2], "order": 2},
    "physics": {"mechanical": {"formulation": "3d"}},
    "materials": {"steel": {"youngs_modulus": 2e11, "poisson_ratio": 0.3}}, "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"mechanical": {"type": "fixed"}}},
    "outputs": {"ux": {"quantity": "displacement_x", "at": [0.2, 0.025, 0.02]},
                "uy": {"quantity": "displacement_y", "at": [0.13, 0.01, 0.03]},
                "uz": {"quantity": "displacement_z", "at": [0.2, 0.025, 0.02]},
                "u_tip": {"quantity": "displacement_magnitude", "at": [0.2, 0.025, 0.04]},
                "u_max": {"quantity": "displacement_magnitude", "reduce": "max", "region": "domain"},
                "uz_min": {"quantity": "displacement_z", "reduce": "min", "region": "domain"},
                "vm_probe": {"quantity": "von_mises", "at": [0.05, 0.02, 0.01]},
                "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"},
                "vm_mean": {"quantity": "von_mises", "reduce": "mean", "region": "domain"})" + outputs + "}}"));
  expect_operator_equals_evaluator(model, 3);
}

// Thermo-elasticity, the example blade (curved P2 Gmsh mesh, plane strain, reference
// temperature): the thermal strain enters the stress rows and the offset z0.
TEST(OutputOperator, ThermoElasticBladeEqualsTheEvaluator) {
  FemModel blade(spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json"));
  expect_operator_equals_evaluator(blade, 4);
}

// The same on the CUDA executor, stated as its own test so that a GPU run cannot pass it by
// skipping (the tests above run the CUDA executor too where there is one).
TEST(OutputOperator, BatchOutputsOnTheCudaExecutorEqualTheEvaluator) {
  DOPPEL_SKIP_WITHOUT_CUDA("the batched outputs on the CUDA executor");
  FemModel blade(spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json"));
  expect_operator_equals_evaluator(blade, 7);
}

// Thermo-elasticity in plane stress on a 2D P1 rectangle: strain_zz follows from the thermal
// strain and the in-plane strains.
TEST(OutputOperator, PlaneStressThermoElasticRectangleEqualsTheEvaluator) {
  std::string outputs;
  const char* components[] = {"xx", "yy", "zz", "xy"};
  for (const char* c : components) {
    outputs += std::string(R"(, "e)") + c + R"(": {"quantity": "strain_)" + c + R"(", "at": [0.07, 0.03]})";
    outputs += std::string(R"(, "smin)") + c + R"(": {"quantity": "stress_)" + c + R"(", "reduce": "min", "region": "domain"})";
  }
  FemModel model(test::twin_from(R"({"name": "plate", "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [9, 5], "order": 1},
    "physics": {"thermal": {}, "mechanical": {"formulation": "plane_stress", "thickness": 0.01}},
    "materials": {"al": {"conductivity": 200, "youngs_modulus": 7e10, "poisson_ratio": 0.33,
                         "thermal_expansion": 2.3e-5, "reference_temperature": 293}},
    "regions": {"domain": "al"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": 400}, "mechanical": {"type": "fixed"}}},
    "outputs": {"T": {"quantity": "temperature", "at": [0.1, 0.05]},
                "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"},
                "u": {"quantity": "displacement_magnitude", "at": [0.2, 0.1]},
                "q": {"quantity": "heat_flux_y", "at": [0.15, 0.02]})" + outputs + "}}"));
  expect_operator_equals_evaluator(model, 5);
}

// Two materials in a 3D P2 box (x < 0.1 steel, x > 0.1 aluminium): nodes on the interface
// recover one stress per region, and probes read the region of the cell that holds them.
TEST(OutputOperator, TwoMaterialThermoElasticP2BoxEqualsTheEvaluator) {
  Mesh mesh = generate_box(0.2, 0.05, 0.04, 4, 2, 2, 2);
  mesh.region_names = {"left", "right"};
  for (size_t c = 0; c < mesh.num_cells(); ++c) {
    double X[kMaxNodes * 3];
    mesh.cell_coords(c, X);
    double x = 0;
    for (int i = 0; i < 4; ++i) x += X[3 * i] / 4;
    mesh.cell_region[c] = x < 0.1 ? 0 : 1;
  }
  spec::TwinSpec twin = test::twin_from(R"({"name": "joint", "mesh": {"generate": "box", "size": [0.2, 0.05, 0.04], "cells": [4, 2, 2], "order": 2},
    "physics": {"thermal": {}, "mechanical": {"formulation": "3d"}},
    "materials": {"steel": {"conductivity": 45, "youngs_modulus": 2e11, "poisson_ratio": 0.3,
                            "thermal_expansion": 1.2e-5, "reference_temperature": 20},
                  "al": {"conductivity": 200, "youngs_modulus": 7e10, "poisson_ratio": 0.33,
                         "thermal_expansion": 2.3e-5, "reference_temperature": 25}},
    "regions": {"left": "steel", "right": "al"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": 100}, "mechanical": {"type": "fixed"}}},
    "outputs": {"vm_left": {"quantity": "von_mises", "reduce": "max", "region": "left"},
                "vm_right": {"quantity": "von_mises", "reduce": "max", "region": "right"},
                "sxx_right": {"quantity": "stress_xx", "reduce": "mean", "region": "right"},
                "sxx_interface": {"quantity": "stress_xx", "at": [0.1, 0.025, 0.02]},
                "qx_interface": {"quantity": "heat_flux_x", "at": [0.1, 0.01, 0.03]},
                "exz_left": {"quantity": "strain_xz", "at": [0.05, 0.01, 0.03]},
                "T_right": {"quantity": "temperature", "reduce": "mean", "region": "right"}}})");
  FemModel model(std::move(twin), std::move(mesh));
  expect_operator_equals_evaluator(model, 6);
}

// The operator holds for other parameters with the same materials, and its offset carries
// the reference temperature: zero fields give the stress of T = 0 against T_ref.
TEST(OutputOperator, OffsetIsTheStressOfZeroFields) {
  FemModel model(test::twin_from(R"({"name": "plate", "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [4, 2], "order": 2},
    "physics": {"thermal": {}, "mechanical": {"formulation": "plane_strain"}},
    "materials": {"al": {"conductivity": 200, "youngs_modulus": 7e10, "poisson_ratio": 0.33,
                         "thermal_expansion": 2.3e-5, "reference_temperature": 293}},
    "regions": {"domain": "al"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}, "mechanical": {"type": "fixed"}}},
    "parameters": {"T0": {"default": 400, "min": 300, "max": 500}},
    "outputs": {"sxx": {"quantity": "stress_xx", "at": [0.1, 0.05]},
                "szz": {"quantity": "stress_zz", "at": [0.1, 0.05]}}})"));
  const OutputEvaluator ev = OutputEvaluator::for_outputs(model);
  const LinearOutputs lin = ev.linearize({350.0});
  // Plane strain, T = 0, u = 0: eth = -alpha T_ref; sigma_xx = sigma_zz = -(3 lambda + 2 mu) eth
  // ... with the sign: sigma = lambda tr(e - eth I) I + 2 mu (e - eth I) = -(3 lambda + 2 mu) eth.
  const double E = 7e10, nu = 0.33, lambda = E * nu / ((1 + nu) * (1 - 2 * nu)), mu = E / (2 * (1 + nu));
  const double eth = 2.3e-5 * (0.0 - 293.0);
  ASSERT_EQ(lin.rows(), 2u);
  EXPECT_NEAR(lin.z0[0], -(3 * lambda + 2 * mu) * eth, 1e-9 * std::fabs((3 * lambda + 2 * mu) * eth));
  EXPECT_NEAR(lin.z0[1], -(3 * lambda + 2 * mu) * eth, 1e-9 * std::fabs((3 * lambda + 2 * mu) * eth));
}

}  // namespace
}  // namespace doppel
