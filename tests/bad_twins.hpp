// A table of broken twin definitions, each with the JSON path its error must name.
#pragma once

#include <string>
#include <vector>

namespace doppel::test {

struct BadTwin {
  std::string name;
  std::string json;
  std::string path;
};

// A valid twin with one substitution: `key` replaced by `value` (text level).
inline std::string good_twin(const std::string& mesh = R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})",
                             const std::string& extra = "") {
  return R"({"name": "t", "mesh": )" + mesh + R"(,
    "physics": {"thermal": {}, "mechanical": {"formulation": "plane_strain"}},
    "materials": {"m": {"conductivity": 10, "youngs_modulus": 1e9, "poisson_ratio": 0.3,
                        "thermal_expansion": 1e-5, "reference_temperature": 20}},
    "regions": {"domain": "m"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": 50}, "mechanical": {"type": "fixed"}}},
    "parameters": {"h": {"default": 10, "min": 1, "max": 100}},
    "outputs": {"T": {"quantity": "temperature", "at": [0.5, 0.5]}})" + extra + "}";
}

inline std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

inline std::vector<BadTwin> bad_twins() {
  const std::string g = good_twin();
  return {
      {"NotJson", "{\"name\": ", "name"},  // the JSON path where the document broke off
      {"SyntaxErrorNamesItsPath", replace(g, R"("cells": [4, 4])", R"("cells": [4 4])"), "mesh.cells[1]"},
      {"NumberBeyondDouble", replace(g, R"("default": 10)", R"("default": 1e400)"), "parameters.h.default"},
      {"NestedTooDeep", replace(g, R"("outputs": {)", R"("deep": )" + std::string(100, '[') + std::string(100, ']') + R"(, "outputs": {)"), ""},
      {"RootNotObject", "[1, 2]", ""},
      {"MissingName", replace(g, R"("name": "t",)", ""), "name"},
      {"NameWrongType", replace(g, R"("name": "t")", R"("name": 5)"), "name"},
      // The name is the twin's id in URLs: "a/b" was accepted and listed, then every route 404.
      {"NameWithASlash", replace(g, R"("name": "t")", R"("name": "a/b")"), "name"},
      {"NameWithASpace", replace(g, R"("name": "t")", R"("name": "my twin")"), "name"},
      {"NameDotDot", replace(g, R"("name": "t")", R"("name": "..")"), "name"},
      {"NameTooLong", replace(g, R"("name": "t")", R"("name": ")" + std::string(129, 'a') + R"(")"), "name"},
      {"UnknownTopLevelKey", replace(g, R"("name": "t",)", R"("name": "t", "colour": "red",)"), "colour"},
      {"UnknownMaterialKey", replace(g, R"("conductivity": 10,)", R"("conductivity": 10, "conductivty": 3,)"), "materials.m.conductivty"},
      {"NegativeConductivity", replace(g, R"("conductivity": 10)", R"("conductivity": -10)"), "materials.m.conductivity"},
      {"ConductivityString", replace(g, R"("conductivity": 10)", R"("conductivity": "ten")"), "materials.m.conductivity"},
      {"NaNConductivity", replace(g, R"("conductivity": 10)", R"("conductivity": NaN)"), "materials.m.conductivity"},  // not JSON, named where
      {"NaNAsString", replace(g, R"("conductivity": 10)", R"("conductivity": "NaN")"), "materials.m.conductivity"},
      {"PoissonTooLarge", replace(g, R"("poisson_ratio": 0.3)", R"("poisson_ratio": 0.5)"), "materials.m.poisson_ratio"},
      {"MissingYoungsModulus", replace(g, R"("youngs_modulus": 1e9, )", ""), "materials.m.youngs_modulus"},
      {"UndefinedParameter", replace(g, R"("value": 50)", R"("value": "$Tin")"), "boundaries.xmin.thermal.value"},
      {"UndefinedMaterial", replace(g, R"("domain": "m")", R"("domain": "steel")"), "regions.domain"},
      {"RegionNotInMesh", replace(g, R"("domain": "m")", R"("domain": "m", "core": "m")"), "regions.core"},
      {"BoundaryNotInMesh", replace(g, R"("xmin": {)", R"("inlet": {"thermal": {"type": "insulated"}}, "xmin": {)"), "boundaries.inlet"},
      {"UnknownBcType", replace(g, R"("type": "temperature")", R"("type": "radiation")"), "boundaries.xmin.thermal.type"},
      {"ConvectionMissingH", replace(g, R"({"type": "temperature", "value": 50})", R"({"type": "convection", "ambient": 20})"), "boundaries.xmin.thermal.h"},
      {"NegativeH", replace(g, R"({"type": "temperature", "value": 50})", R"({"type": "convection", "h": -5, "ambient": 20})"), "boundaries.xmin.thermal.h"},
      {"ParameterRangeIncludesNegativeH", replace(replace(g, R"({"type": "temperature", "value": 50})", R"({"type": "convection", "h": "$h", "ambient": 20})"), R"("min": 1)", R"("min": -1)"), "boundaries.xmin.thermal.h"},
      {"DefaultOutsideBounds", replace(g, R"("default": 10)", R"("default": 1000)"), "parameters.h.default"},
      {"MinAboveMax", replace(g, R"("min": 1, "max": 100)", R"("min": 100, "max": 1)"), "parameters.h.max"},
      {"BadRole", replace(g, R"("max": 100})", R"("max": 100, "role": "boss"})"), "parameters.h.role"},
      {"EmptyMesh", replace(g, R"([4, 4])", R"([0, 4])"), "mesh.cells[0]"},
      {"MeshFileMissing", good_twin(R"({"file": "nowhere.msh"})"), "mesh.file"},
      {"UnsupportedElement", good_twin(R"({"file": "quads.msh"})"), "mesh.file"},
      {"EmptyGmshFile", good_twin(R"({"file": "empty.msh"})"), "mesh.file"},
      {"MeshOrderThree", replace(g, R"("cells": [4, 4])", R"("cells": [4, 4], "order": 3)"), "mesh.order"},
      {"ProbeOutsideMesh", replace(g, R"("at": [0.5, 0.5])", R"("at": [1.5, 0.5])"), "outputs.T.at"},
      {"ProbeWrongDimension", replace(g, R"("at": [0.5, 0.5])", R"("at": [0.5, 0.5, 0.5])"), "outputs.T.at"},
      {"UnknownQuantity", replace(g, R"("quantity": "temperature")", R"("quantity": "pressure")"), "outputs.T.quantity"},
      {"ZQuantityIn2D", replace(g, R"("quantity": "temperature")", R"("quantity": "stress_xz")"), "outputs.T.quantity"},
      {"ProbeAndReduce", replace(g, R"("at": [0.5, 0.5])", R"("at": [0.5, 0.5], "reduce": "max")"), "outputs.T"},
      {"ReduceUnknownRegion", replace(g, R"("at": [0.5, 0.5])", R"("reduce": "max", "region": "shell")"), "outputs.T.region"},
      {"LimitOnUnknownOutput", good_twin(R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})", R"(, "limits": {"T_max": {"max": 3}})"), "limits.T_max"},
      {"WrongFormulationFor2D", replace(g, R"("plane_strain")", R"("3d")"), "physics.mechanical.formulation"},
      {"NoThermalSink", replace(g, R"({"type": "temperature", "value": 50}, )", R"({"type": "flux", "value": 5}, )"), "boundaries"},
      {"Unrestrained", replace(g, R"(, "mechanical": {"type": "fixed"})", ""), "boundaries"},
      {"TractionWrongLength", replace(g, R"({"type": "fixed"})", R"({"type": "traction", "value": [1, 2, 3]})"), "boundaries.xmin.mechanical.value"},
      {"FixedBadComponent", replace(g, R"({"type": "fixed"})", R"({"type": "fixed", "components": ["w"]})"), "boundaries.xmin.mechanical.components[0]"},
      {"TransientMissingTimeStep", replace(g, R"("materials")", R"("analysis": {"type": "transient", "end_time": 10, "initial_temperature": 20}, "materials")"), "analysis.time_step"},
      {"TransientMissingDensity", replace(g, R"("materials")", R"("analysis": {"type": "transient", "end_time": 10, "time_step": 1, "initial_temperature": 20}, "materials")"), "materials.m.density"},
      {"TimeStepNotDividing", replace(g, R"("materials")", R"("analysis": {"type": "transient", "end_time": 10, "time_step": 3, "initial_temperature": 20}, "materials")"), "analysis.time_step"},
      {"SensorRangeNotAPair", good_twin(R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})", R"(, "sensors": {"s": {"quantity": "temperature", "at": [0.1, 0.1], "noise_std": 1, "range": [5]}})"), "sensors.s.range"},
      {"SensorRangeReversed", good_twin(R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})", R"(, "sensors": {"s": {"quantity": "temperature", "at": [0.1, 0.1], "noise_std": 1, "range": [500, 0]}})"), "sensors.s.range"},
      {"SensorRangeBelowAbsoluteZero", good_twin(R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})", R"(, "sensors": {"s": {"quantity": "temperature", "at": [0.1, 0.1], "noise_std": 1, "range": [-300, 100]}})"), "sensors.s.range[0]"},
      {"SensorRangeNotFinite", good_twin(R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})", R"(, "sensors": {"s": {"quantity": "temperature", "at": [0.1, 0.1], "noise_std": 1, "range": [0, "hot"]}})"), "sensors.s.range[1]"},
      {"SensorNoiseZero", good_twin(R"({"generate": "rectangle", "size": [1, 1], "cells": [4, 4]})", R"(, "sensors": {"s": {"quantity": "temperature", "at": [0.1, 0.1], "noise_std": 0}})"), "sensors.s.noise_std"},
  };
}

}  // namespace doppel::test
