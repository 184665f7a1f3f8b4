// Batched solves equal one-at-a-time solves, for every strategy (superposition, shared
// Cholesky factor, batched PCG) and for transient schedules.
#include <random>

#include <nlohmann/json.hpp>

#include "tests/test_util.hpp"

namespace doppel {
namespace {

void expect_batch_equals_single(const FemModel& model, const std::vector<spec::Scenario>& sc,
                                const std::string& expected_method) {
  const BatchResult batch = solve_batch(model, sc);
  bool method_seen = false;
  for (size_t s = 0; s < sc.size(); ++s) {
    method_seen = method_seen || batch.scenarios[s].method.find(expected_method) != std::string::npos;
    const BatchResult one = solve_batch(model, {sc[s]});
    ASSERT_EQ(one.scenarios[0].outputs.size(), batch.scenarios[s].outputs.size());
    for (size_t t = 0; t < one.scenarios[0].outputs.size(); ++t)
      for (size_t o = 0; o < one.scenarios[0].outputs[t].size(); ++o) {
        const double a = batch.scenarios[s].outputs[t][o], b = one.scenarios[0].outputs[t][o];
        EXPECT_NEAR(a, b, 1e-8 * std::max(1.0, std::fabs(b))) << "scenario " << s << " output " << o;
      }
  }
  EXPECT_TRUE(method_seen) << "expected strategy " << expected_method;
}

TEST(Batch, BladeLoadsOnlyUsesSuperpositionAndEqualsSingleSolves) {
  const spec::TwinSpec twin = spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json");
  FemModel model(twin);
  expect_batch_equals_single(model, test::random_scenarios(twin, {"T_gas", "T_cool"}, 12, 1), "superposition");
}

TEST(Batch, BladeVaryingConvectionUsesPcgAndEqualsSingleSolves) {
  const spec::TwinSpec twin = spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json");
  FemModel model(twin);
  expect_batch_equals_single(model, test::random_scenarios(twin, {"T_gas", "h_gas", "T_cool", "h_cool"}, 10, 2), "pcg");
}

TEST(Batch, FewDistinctOperatorsAreFactoredDirectly) {
  const spec::TwinSpec twin = spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json");
  FemModel model(twin);
  auto sc = test::random_scenarios(twin, {"T_gas"}, 6, 3);
  for (size_t i = 0; i < sc.size(); ++i) sc[i].parameters[static_cast<size_t>(twin.parameter_index("h_gas"))] = i % 2 ? 800 : 2000;
  expect_batch_equals_single(model, sc, "cholesky");
}

const char* kTransient = R"({"name": "plate",
  "mesh": {"generate": "rectangle", "size": [0.2, 0.1], "cells": [10, 5], "order": 2},
  "physics": {"thermal": {}, "mechanical": {"formulation": "plane_stress"}},
  "analysis": {"type": "transient", "end_time": 60, "time_step": 2, "initial_temperature": 20,
               "output_times": [10, 31, 60], "scheme": "bdf2"},
  "materials": {"al": {"conductivity": 160, "density": 2700, "specific_heat": 900, "youngs_modulus": 7e10,
                       "poisson_ratio": 0.33, "thermal_expansion": 2.3e-5, "reference_temperature": 20}},
  "regions": {"domain": "al"},
  "boundaries": {"xmin": {"thermal": {"type": "convection", "h": "$h", "ambient": "$T_hot"},
                          "mechanical": {"type": "fixed"}},
                 "xmax": {"thermal": {"type": "flux", "value": "$q"}}},
  "parameters": {"h": {"default": 500, "min": 100, "max": 2000},
                 "T_hot": {"default": 300, "min": 20, "max": 600},
                 "q": {"default": 0, "min": -5e4, "max": 5e4}},
  "outputs": {"T_end": {"quantity": "temperature", "at": [0.2, 0.05]},
              "vm": {"quantity": "von_mises", "reduce": "max", "region": "domain"}}})";

TEST(Batch, TransientSchedulesBatchEqualsSingle) {
  const spec::TwinSpec twin = test::twin_from(kTransient);
  FemModel model(twin);
  auto sc = test::random_scenarios(twin, {"T_hot", "q"}, 5, 4);
  // Scheduled convection coefficient (operator varies in time) in some scenarios.
  for (size_t i = 0; i < sc.size(); i += 2) {
    spec::Schedule s;
    s.parameter = twin.parameter_index("h");
    s.points = {{0, 200.0}, {30, 1500.0 + 50.0 * static_cast<double>(i)}, {45, 900}};
    sc[i].schedules.push_back(s);
  }
  expect_batch_equals_single(model, sc, "");
}

TEST(Batch, ScheduleEqualToConstantReproducesConstantParameter) {
  const spec::TwinSpec twin = test::twin_from(kTransient);
  FemModel model(twin);
  spec::Scenario plain;
  plain.parameters = twin.default_parameters();
  spec::Scenario scheduled = plain;
  spec::Schedule s;
  s.parameter = twin.parameter_index("T_hot");
  s.points = {{0, 300.0}, {60, 300.0}};
  scheduled.schedules.push_back(s);
  const auto a = solve_batch(model, {plain}).scenarios[0].outputs;
  const auto b = solve_batch(model, {scheduled}).scenarios[0].outputs;
  for (size_t t = 0; t < a.size(); ++t)
    for (size_t o = 0; o < a[t].size(); ++o) EXPECT_DOUBLE_EQ(a[t][o], b[t][o]);
}

// Values that depend on t (spec/field.hpp) against the same loads given as parameters with
// schedules: every scheme reads its loads and operator at step times only (Crank-Nicolson at
// both ends of a step), so a schedule with a point at every step reproduces the expression
// exactly there, and the two runs are the same arithmetic up to rounding. Convection h varying
// in time (the operator changes every step), an ambient approaching T_hot, a flux ramp shaped
// in y and a traction ramp (mechanics at the output times, between steps: linear in t, which
// the schedule reproduces at any time). Plate of kTransient; 1e-9 of each output's scale.
TEST(Batch, ExpressionsOfTimeEqualSchedulesSampledAtEveryStep) {
  for (const char* scheme : {"backward_euler", "bdf2", "crank_nicolson"}) {
    nlohmann::json a = nlohmann::json::parse(kTransient);
    a["analysis"]["scheme"] = scheme;
    nlohmann::json b = a;
    auto& ax = a["boundaries"]["xmin"]["thermal"];
    ax["h"] = "$h * (1 + 0.5 * sin(2 * pi * t / 60))";
    ax["ambient"] = "$T_hot + (20 - $T_hot) * exp(-t / 20)";
    a["boundaries"]["xmax"]["thermal"]["value"] = "$q * t / 60 * (1 + y / 0.1)";
    a["boundaries"]["xmax"]["mechanical"] = {{"type", "traction"}, {"value", {"2e5 * t / 60 * (1 + y / 0.1)", 0}}};
    b["boundaries"]["xmin"]["thermal"]["h"] = "$hs";
    b["boundaries"]["xmin"]["thermal"]["ambient"] = "$Ts";
    b["boundaries"]["xmax"]["thermal"]["value"] = "$qs * (1 + y / 0.1)";
    b["boundaries"]["xmax"]["mechanical"] = {{"type", "traction"}, {"value", {"$tr * (1 + y / 0.1)", 0}}};
    b["parameters"]["hs"] = {{"default", 500}, {"min", 1}, {"max", 5000}};
    b["parameters"]["Ts"] = {{"default", 20}, {"min", 0}, {"max", 1000}};
    b["parameters"]["qs"] = {{"default", 0}, {"min", -1e5}, {"max", 1e5}};
    b["parameters"]["tr"] = {{"default", 0}, {"min", 0}, {"max", 2e5}};
    const spec::TwinSpec ta = test::twin_from(a.dump()), tb = test::twin_from(b.dump());
    ASSERT_EQ(ta.time_varying.size(), 4u);
    FemModel ma(ta), mb(tb);
    auto sa = test::random_scenarios(ta, {"h", "T_hot", "q"}, 4, 21);
    std::vector<spec::Scenario> sb(sa.size());
    for (size_t s = 0; s < sa.size(); ++s) {
      auto value = [&](const char* name) { return sa[s].parameters[static_cast<size_t>(ta.parameter_index(name))]; };
      const double h = value("h"), T_hot = value("T_hot"), q = value("q");
      sb[s].parameters = tb.default_parameters();
      std::vector<spec::Schedule> sched(4);
      for (size_t k = 0; k < 4; ++k) sched[k].parameter = tb.parameter_index(std::vector<std::string>{"hs", "Ts", "qs", "tr"}[k]);
      for (int step = 0; step <= 30; ++step) {
        const double t = 2.0 * step;
        sched[0].points.emplace_back(t, h * (1 + 0.5 * std::sin(2 * M_PI * t / 60)));
        sched[1].points.emplace_back(t, T_hot + (20 - T_hot) * std::exp(-t / 20));
        sched[2].points.emplace_back(t, q * t / 60);
      }
      sched[3].points = {{0.0, 0.0}, {60.0, 2e5}};
      sb[s].schedules = sched;
    }
    const BatchResult ra = solve_batch(ma, sa), rb = solve_batch(mb, sb);
    for (size_t s = 0; s < sa.size(); ++s)
      for (size_t t = 0; t < rb.scenarios[s].outputs.size(); ++t)
        for (size_t o = 0; o < rb.scenarios[s].outputs[t].size(); ++o) {
          const double y = rb.scenarios[s].outputs[t][o];
          EXPECT_NEAR(ra.scenarios[s].outputs[t][o], y, 1e-9 * std::max(1.0, std::fabs(y)))
              << scheme << " scenario " << s << " time " << t << " output " << ta.outputs[o].name;
        }
    // The range of h is checked over the steps: one that turns negative is refused by name.
    nlohmann::json c = a;
    c["boundaries"]["xmin"]["thermal"]["h"] = "$h * (1 - t / 30)";
    try {
      FemModel bad(test::twin_from(c.dump()));
      ADD_FAILURE() << "expected h < 0 to be refused";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("boundaries.xmin.thermal.h"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("time steps"), std::string::npos) << e.what();
    }
  }
}

// --- outputs combined from the superposition basis (BatchOptions::batched_outputs) -----------

// The combined outputs against the per-scenario path (every scenario's field formed and
// evaluated) on the same batch, every output kind, relative to each output's scale. Where both
// paths combine the same basis solutions (one physics) they are the same affine maps summed in
// another order: 1e-12. Thermo-elastic twins: the fast path solves the thermal-strain modes once
// and combines them where the reference solves each scenario's own thermal-strain load, so the
// two differ by the solves' accuracy (CHOLMOD, residual ~1e-14, elasticity condition numbers
// ~1e8): 1e-8, as the other batch-against-single tests.
void expect_batched_outputs_equal_per_scenario(const FemModel& model, const std::vector<std::string>& loads,
                                               int scenarios, unsigned seed, double tolerance = 1e-12) {
  const auto sc = test::random_scenarios(model.twin(), loads, scenarios, seed);
  BatchOptions fast, reference;
  reference.batched_outputs = false;
  const BatchResult a = solve_batch(model, sc, fast), b = solve_batch(model, sc, reference);
  ASSERT_EQ(a.scenarios.size(), b.scenarios.size());
  // Each output's scale: its largest magnitude over the batch (a flux or stress component near
  // zero at one scenario is a difference of large nodal terms).
  const size_t O = b.scenarios[0].outputs[0].size();
  std::vector<double> scale(O, 1.0);
  for (const auto& r : b.scenarios)
    for (size_t o = 0; o < O; ++o) scale[o] = std::max(scale[o], std::fabs(r.outputs[0][o]));
  for (size_t s = 0; s < sc.size(); ++s) {
    EXPECT_EQ(a.scenarios[s].method.rfind("superposition-", 0), 0u) << a.scenarios[s].method << "scenario " << s;
    // The residual from the Gram matrices and the residual of the formed field: both at
    // rounding level (they differ there, by the rounding of forming the field).
    EXPECT_LT(a.scenarios[s].residual, 1e-10) << "scenario " << s;
    EXPECT_LT(b.scenarios[s].residual, 1e-10) << "scenario " << s;
    for (size_t o = 0; o < O; ++o) {
      const double x = a.scenarios[s].outputs[0][o], y = b.scenarios[s].outputs[0][o];
      EXPECT_NEAR(x, y, tolerance * scale[o]) << "scenario " << s << " output " << model.twin().outputs[o].name;
    }
  }
  ASSERT_TRUE(a.first_fields && b.first_fields);
  const auto& fa = a.first_fields->T.empty() ? a.first_fields->u : a.first_fields->T;
  const auto& fb = b.first_fields->T.empty() ? b.first_fields->u : b.first_fields->T;
  ASSERT_EQ(fa.size(), fb.size());
  double field_scale = 1.0;
  for (double v : fb) field_scale = std::max(field_scale, std::fabs(v));
  for (size_t i = 0; i < fa.size(); ++i) EXPECT_NEAR(fa[i], fb[i], tolerance * field_scale) << "node value " << i;
}

// Heat, 2D P2 on the blade's curved Gmsh mesh: probes, max, min and mean of temperature, and
// probes, max and mean of the recovered heat flux.
TEST(BatchedOutputs, HeatOnTheCurvedBladeMeshEqualPerScenarioTo1e12) {
  FemModel model(test::twin_from(R"({"name": "blade-heat", "mesh": {"file": "examples/blade/blade.msh"},
    "physics": {"thermal": {}},
    "materials": {"in718": {"conductivity": 23.0}}, "regions": {"blade": "in718"},
    "boundaries": {"gas": {"thermal": {"type": "convection", "h": 1500, "ambient": "$T_gas"}},
                   "coolant": {"thermal": {"type": "convection", "h": 3000, "ambient": "$T_cool"}},
                   "root": {"thermal": {"type": "temperature", "value": "$T_root"}}},
    "parameters": {"T_gas": {"default": 1100, "min": 900, "max": 1300},
                   "T_cool": {"default": 600, "min": 400, "max": 700},
                   "T_root": {"default": 550, "min": 500, "max": 600}},
    "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "blade"},
                "T_min": {"quantity": "temperature", "reduce": "min", "region": "blade"},
                "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "blade"},
                "T_le": {"quantity": "temperature", "at": [0.002, 0.0006]},
                "qx_te": {"quantity": "heat_flux_x", "at": [0.044, 0.00108]},
                "qy_max": {"quantity": "heat_flux_y", "reduce": "max", "region": "blade"},
                "qx_mean": {"quantity": "heat_flux_x", "reduce": "mean", "region": "blade"}}})"));
  // 400 scenarios: the site components (~25,000 per scenario) go in several blocks.
  expect_batched_outputs_equal_per_scenario(model, {"T_gas", "T_cool", "T_root"}, 400, 3);
}

// Heat, 3D P1 box with a volumetric source (the benchmark's box at a small size).
TEST(BatchedOutputs, HeatOnA3dP1BoxEqualPerScenarioTo1e12) {
  FemModel model(test::heat_box_twin(7, 6, 5, 100, 1e4,
                                     R"(, "qz_probe": {"quantity": "heat_flux_z", "at": [0.3, 0.4, 0.6]})"));
  expect_batched_outputs_equal_per_scenario(model, {"Tb", "Tamb", "q"}, 50, 4);
}

// Mechanics alone, 3D P2 box: displacement probes and magnitude, strain and stress components,
// von Mises max and mean.
TEST(BatchedOutputs, ElasticityOnA3dP2BoxEqualPerScenarioTo1e12) {
  FemModel model(test::twin_from(R"({"name": "bar", "mesh": {"generate": "box", "size": [0.2, 0.05, 0.04], "cells": [6, 2, 2], "order": 2},
    "physics": {"mechanical": {"formulation": "3d"}},
    "materials": {"steel": {"youngs_modulus": 2e11, "poisson_ratio": 0.3}}, "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"mechanical": {"type": "fixed"}},
                   "xmax": {"mechanical": {"type": "traction", "value": ["$fx", 0, "$fz"]}},
                   "zmax": {"mechanical": {"type": "pressure", "value": "$p"}}},
    "parameters": {"fx": {"default": 1e6, "min": -1e6, "max": 1e6}, "fz": {"default": 0, "min": -1e5, "max": 1e5},
                   "p": {"default": 0, "min": 0, "max": 1e5}},
    "outputs": {"ux_tip": {"quantity": "displacement_x", "at": [0.2, 0.025, 0.02]},
                "u_tip": {"quantity": "displacement_magnitude", "at": [0.2, 0.025, 0.04]},
                "u_max": {"quantity": "displacement_magnitude", "reduce": "max", "region": "domain"},
                "exx_mid": {"quantity": "strain_xx", "at": [0.1, 0.025, 0.02]},
                "sxz_root": {"quantity": "stress_xz", "at": [0.01, 0.02, 0.02]},
                "szz_min": {"quantity": "stress_zz", "reduce": "min", "region": "domain"},
                "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"},
                "vm_mean": {"quantity": "von_mises", "reduce": "mean", "region": "domain"}}})"));
  expect_batched_outputs_equal_per_scenario(model, {"fx", "fz", "p"}, 30, 5);
}

// Thermo-elasticity, the example blade (curved P2 Gmsh mesh, plane strain): the thermal-strain
// modes carry temperature, von Mises and displacement outputs; 300 scenarios in several blocks.
TEST(BatchedOutputs, ThermoElasticBladeEqualsPerScenarioTo1e8) {
  FemModel blade(spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json"));
  expect_batched_outputs_equal_per_scenario(blade, {"T_gas", "T_cool"}, 300, 6, 1e-8);
}

// Thermo-elasticity with mechanical loads as well (3D P1 bar: traction and a thermal load).
TEST(BatchedOutputs, ThermoElasticBarWithMechanicalLoadsEqualsPerScenarioTo1e8) {
  FemModel model(test::twin_from(R"({"name": "bar", "mesh": {"generate": "box", "size": [0.2, 0.05, 0.04], "cells": [8, 3, 3], "order": 1},
    "physics": {"thermal": {}, "mechanical": {"formulation": "3d"}},
    "materials": {"steel": {"conductivity": 45, "youngs_modulus": 2e11, "poisson_ratio": 0.3,
                            "thermal_expansion": 1.2e-5, "reference_temperature": 20}},
    "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}, "mechanical": {"type": "fixed"}},
                   "xmax": {"thermal": {"type": "convection", "h": 50, "ambient": 20},
                            "mechanical": {"type": "traction", "value": [0, "$fy", 0]}}},
    "parameters": {"T0": {"default": 200, "min": 20, "max": 400}, "fy": {"default": 0, "min": -1e6, "max": 1e6}},
    "outputs": {"T_tip": {"quantity": "temperature", "at": [0.2, 0.025, 0.02]},
                "uy_tip": {"quantity": "displacement_y", "at": [0.2, 0.025, 0.02]},
                "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"},
                "syy_max": {"quantity": "stress_yy", "reduce": "max", "region": "domain"},
                "sxx_root": {"quantity": "stress_xx", "at": [0.01, 0.02, 0.02]},
                "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "domain"}}})"));
  expect_batched_outputs_equal_per_scenario(model, {"T0", "fy"}, 40, 7, 1e-8);
}

// Where the basis cannot carry the outputs, the per-scenario path runs, bit for bit: here the
// expansion coefficient is a parameter, so the thermal strain (a material property) differs
// between scenarios although both operators are shared.
TEST(BatchedOutputs, NotUsedWhenMaterialsDifferBetweenScenarios) {
  FemModel model(test::twin_from(R"({"name": "bar", "mesh": {"generate": "box", "size": [0.2, 0.05, 0.04], "cells": [6, 2, 2], "order": 1},
    "physics": {"thermal": {}, "mechanical": {"formulation": "3d"}},
    "materials": {"steel": {"conductivity": 45, "youngs_modulus": 2e11, "poisson_ratio": 0.3,
                            "thermal_expansion": "$alpha", "reference_temperature": 20}},
    "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}, "mechanical": {"type": "fixed"}}},
    "parameters": {"T0": {"default": 200, "min": 20, "max": 400}, "alpha": {"default": 1.2e-5, "min": 1e-5, "max": 2e-5}},
    "outputs": {"vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"}}})"));
  const auto sc = test::random_scenarios(model.twin(), {"T0", "alpha"}, 12, 8);
  BatchOptions reference;
  reference.batched_outputs = false;
  const BatchResult a = solve_batch(model, sc), b = solve_batch(model, sc, reference);
  for (size_t s = 0; s < sc.size(); ++s) EXPECT_EQ(a.scenarios[s].outputs[0][0], b.scenarios[s].outputs[0][0]) << s;
}

// Outside superposition the fields are formed per scenario, and the outputs come from the
// output operator (one sparse product per block of scenarios) instead of the per-scenario
// evaluator: the same fields, the same affine map summed in another order, so 1e-12 of each
// output's scale. Operator-varying blade batch (batched PCG; thermo-elastic, von Mises over
// the curved P2 mesh), and the transient thermo-elastic plate with schedules (outputs at
// three times, interpolated between steps).
void expect_operator_outputs_equal_per_scenario(const FemModel& model, const std::vector<spec::Scenario>& sc) {
  BatchOptions fast, reference;
  reference.batched_outputs = false;
  const BatchResult a = solve_batch(model, sc, fast), b = solve_batch(model, sc, reference);
  ASSERT_EQ(a.scenarios.size(), b.scenarios.size());
  for (size_t s = 0; s < sc.size(); ++s) {
    ASSERT_EQ(a.scenarios[s].outputs.size(), b.scenarios[s].outputs.size());
    EXPECT_EQ(a.scenarios[s].method, b.scenarios[s].method);
    for (size_t t = 0; t < b.scenarios[s].outputs.size(); ++t)
      for (size_t o = 0; o < b.scenarios[s].outputs[t].size(); ++o) {
        const double y = b.scenarios[s].outputs[t][o];
        EXPECT_NEAR(a.scenarios[s].outputs[t][o], y, 1e-12 * std::max(1.0, std::fabs(y)))
            << "scenario " << s << " time " << t << " output " << model.twin().outputs[o].name;
      }
  }
}

TEST(BatchedOutputs, OperatorVaryingBladeBatchThroughTheOutputOperatorEqualsPerScenario) {
  const spec::TwinSpec twin = spec::load_twin(DOPPEL_SOURCE_DIR "/examples/blade/twin.json");
  FemModel model(twin);
  expect_operator_outputs_equal_per_scenario(model, test::random_scenarios(twin, {"T_gas", "h_gas", "h_cool"}, 12, 9));
}

TEST(BatchedOutputs, TransientThermoElasticBatchThroughTheOutputOperatorEqualsPerScenario) {
  const spec::TwinSpec twin = test::twin_from(kTransient);
  FemModel model(twin);
  auto sc = test::random_scenarios(twin, {"T_hot", "q", "h"}, 6, 10);
  spec::Schedule ramp;
  ramp.parameter = twin.parameter_index("T_hot");
  ramp.points = {{0, 20.0}, {40, 500.0}};
  sc[1].schedules.push_back(ramp);
  expect_operator_outputs_equal_per_scenario(model, sc);
}

TEST(Schedule, PiecewiseLinearHeldOutside) {
  spec::Schedule s;
  s.parameter = 0;
  s.points = {{10, 1.0}, {20, 3.0}, {20, 5.0}, {30, 5.0}};
  EXPECT_DOUBLE_EQ(s.at(0), 1.0);
  EXPECT_DOUBLE_EQ(s.at(15), 2.0);
  EXPECT_DOUBLE_EQ(s.at(25), 5.0);
  EXPECT_DOUBLE_EQ(s.at(99), 5.0);
}

}  // namespace
}  // namespace doppel
