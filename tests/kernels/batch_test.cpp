// Batched solves equal one-at-a-time solves, for every strategy (superposition, shared
// Cholesky factor, batched PCG) and for transient schedules.
#include <random>

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
