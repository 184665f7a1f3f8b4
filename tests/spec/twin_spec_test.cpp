// Parsing of a valid twin: every field lands in the native structs.
#include <gtest/gtest.h>

#include "spec/errors.hpp"
#include "spec/twin_spec.hpp"

namespace doppel::spec {
namespace {

const char* kPlate = R"({
  "name": "plate",
  "mesh": {"generate": "rectangle", "size": [0.6, 1.0], "cells": [24, 40], "order": 1},
  "physics": {"thermal": {}, "mechanical": {"formulation": "plane_stress", "thickness": 0.01}},
  "analysis": {"type": "steady"},
  "materials": {"steel": {"conductivity": 52, "density": 7850, "specific_heat": 460,
                "youngs_modulus": 2.1e11, "poisson_ratio": 0.3,
                "thermal_expansion": 1.2e-5, "reference_temperature": 20}},
  "regions": {"domain": "steel"},
  "boundaries": {
    "ymin": {"thermal": {"type": "temperature", "value": 100}, "mechanical": {"type": "fixed"}},
    "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 0}},
    "ymax": {"thermal": {"type": "flux", "value": 500}}
  },
  "sources": {"domain": {"heat": "$q"}},
  "parameters": {
    "h": {"default": 750, "min": 100, "max": 2000, "unit": "W/m2K", "role": "load"},
    "q": {"default": 0, "min": 0, "max": 1e5, "unit": "W/m3", "role": "control"}
  },
  "sensors": {"tc1": {"quantity": "temperature", "at": [0.6, 0.2], "noise_std": 0.5}},
  "outputs": {
    "T_E":   {"quantity": "temperature", "at": [0.6, 0.2]},
    "T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"},
    "vm_max": {"quantity": "von_mises", "reduce": "max", "region": "domain"}
  },
  "limits": {"vm_max": {"max": 2.0e8, "severity": "critical"}}
})";

TEST(TwinSpec, DesignDocumentExampleParses) {
  const TwinSpec t = parse_twin(kPlate, ".");
  EXPECT_EQ(t.name, "plate");
  EXPECT_EQ(t.mesh.kind, MeshSpec::Kind::rectangle);
  EXPECT_EQ(t.mesh.cells[1], 40);
  EXPECT_TRUE(t.thermal);
  ASSERT_TRUE(t.mechanical.has_value());
  EXPECT_EQ(t.mechanical->formulation, Formulation::plane_stress);
  EXPECT_DOUBLE_EQ(t.mechanical->thickness, 0.01);
  ASSERT_EQ(t.parameters.size(), 2u);
  EXPECT_EQ(t.parameters[static_cast<size_t>(t.parameter_index("q"))].role, ParameterRole::control);
  ASSERT_EQ(t.boundaries.size(), 3u);
  const BoundarySpec& xmax = t.boundaries[0];
  EXPECT_EQ(xmax.name, "xmax");
  EXPECT_EQ(xmax.thermal->type, ThermalBcType::convection);
  ASSERT_EQ(xmax.thermal->h.terms.size(), 1u);
  EXPECT_EQ(xmax.thermal->h.terms[0].parameter, t.parameter_index("h"));
  EXPECT_TRUE(xmax.thermal->h.uniform());
  EXPECT_EQ(t.outputs.size(), 3u);
  EXPECT_EQ(t.limits[0].severity, Severity::critical);
  EXPECT_EQ(t.content_hash.size(), 16u);
  EXPECT_EQ(t.content_hash, parse_twin(kPlate, ".").content_hash);
}

TEST(Scenarios, DefaultsFilledAndBoundsChecked) {
  const TwinSpec t = parse_twin(kPlate, ".");
  const auto sc = parse_scenarios(t, R"({"scenarios": [{"parameters": {"h": 1000}}, {"id": "b"}]})");
  ASSERT_EQ(sc.size(), 2u);
  EXPECT_DOUBLE_EQ(sc[0].parameters[static_cast<size_t>(t.parameter_index("h"))], 1000);
  EXPECT_DOUBLE_EQ(sc[1].parameters[static_cast<size_t>(t.parameter_index("h"))], 750);
  EXPECT_EQ(sc[1].id, "b");
  try {
    parse_scenarios(t, R"({"scenarios": [{"parameters": {"h": 5000}}]})");
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_EQ(e.path(), "scenarios[0].parameters.h");
  }
  // Finite-element answers may go beyond the declared bounds, never outside the physical range
  // of the properties the parameter feeds (h is a convection coefficient: must be >= 0).
  const auto beyond = parse_scenarios(t, R"({"scenarios": [{"parameters": {"h": 5000}}]})", ScenarioBounds::physical);
  EXPECT_DOUBLE_EQ(beyond[0].parameters[static_cast<size_t>(t.parameter_index("h"))], 5000);
  try {
    parse_scenarios(t, R"({"scenarios": [{"parameters": {"h": -5}}]})", ScenarioBounds::physical);
    FAIL();
  } catch (const InvalidInput& e) {
    EXPECT_EQ(e.path(), "scenarios[0].parameters.h");
    EXPECT_NE(std::string(e.what()).find("boundaries.xmax.thermal.h"), std::string::npos) << e.what();
  }
  const Scenario s = scenario_from_assignments(t, {"q=1e4"});
  EXPECT_DOUBLE_EQ(s.parameters[static_cast<size_t>(t.parameter_index("q"))], 1e4);
  EXPECT_THROW(scenario_from_assignments(t, {"q=abc"}), InvalidInput);
  EXPECT_THROW(scenario_from_assignments(t, {"nope=1"}), InvalidInput);
}

}  // namespace
}  // namespace doppel::spec
