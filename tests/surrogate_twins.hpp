// Small twins for the surrogate tests: fast to solve and to train on, with every kind of
// right-hand-side term (a Dirichlet value, a convection coefficient, a source), both physics
// and every kind of output (probe, max, mean, von Mises, displacement magnitude).
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace doppel::test {

// Replaces the first occurrence of `from` in `text` (it must be there: std::out_of_range otherwise),
// to make a variant of a twin's JSON.
inline void replace_once(std::string& text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
}

inline std::string surrogate_plate_json(int cells_x = 8, int cells_y = 12, const std::string& name = "splate") {
  return R"({
    "name": ")" + name + R"(",
    "mesh": {"generate": "rectangle", "size": [0.4, 0.6], "cells": [)" + std::to_string(cells_x) + "," +
         std::to_string(cells_y) + R"(], "order": 2},
    "physics": {"thermal": {}, "mechanical": {"formulation": "plane_stress", "thickness": 0.01}},
    "materials": {"steel": {"conductivity": 40, "youngs_modulus": 2e11, "poisson_ratio": 0.3,
                            "thermal_expansion": 1.2e-5, "reference_temperature": 20}},
    "regions": {"domain": "steel"},
    "boundaries": {
      "ymin": {"thermal": {"type": "temperature", "value": "$T0"}, "mechanical": {"type": "fixed"}},
      "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 20}},
      "ymax": {"thermal": {"type": "flux", "value": 2000}}
    },
    "sources": {"domain": {"heat": "$q"}},
    "parameters": {
      "T0": {"default": 100, "min": 50, "max": 150},
      "h":  {"default": 500, "min": 100, "max": 2000},
      "q":  {"default": 2e4, "min": 0, "max": 5e4}
    },
    "outputs": {
      "T_probe": {"quantity": "temperature", "at": [0.3, 0.45]},
      "T_max":   {"quantity": "temperature", "reduce": "max", "region": "domain"},
      "T_mean":  {"quantity": "temperature", "reduce": "mean", "region": "domain"},
      "vm_max":  {"quantity": "von_mises", "reduce": "max", "region": "domain"},
      "vm_probe": {"quantity": "von_mises", "at": [0.2, 0.1]},
      "u_top":   {"quantity": "displacement_magnitude", "at": [0.4, 0.6]}
    }
  })";
}

// Transient heat (heat only): a plate heated through a convection boundary whose coefficient
// and gas temperature are parameters, a source, a cooled edge held at T0.
// varying: the same twin with every value varying in space (a wall temperature, convection
// coefficient, gas temperature and source that are expressions of x and y).
inline std::string surrogate_transient_json(const std::string& scheme = "backward_euler", bool varying = false) {
  if (varying) {
    std::string s = surrogate_transient_json(scheme, false);
    replace_once(s, R"("value": "$T0")", R"~("value": "(1 + 2 * y) * $T0 + 30 * y")~");
    replace_once(s, R"("h": "$h")", R"~("h": "(1 + 5 * y) * $h")~");
    replace_once(s, R"("ambient": "$T_gas")", R"~("ambient": "$T_gas - 500 * y")~");
    replace_once(s, R"("heat": "$q")", R"~("heat": "(1 + 10 * x) * $q")~");
    return s;
  }
  return R"({
    "name": "splate_transient",
    "mesh": {"generate": "rectangle", "size": [0.1, 0.1], "cells": [10, 10], "order": 1},
    "physics": {"thermal": {}},
    "analysis": {"type": "transient", "end_time": 300, "time_step": 5, "initial_temperature": 20,
                 "output_times": [30, 60, 150, 300], "scheme": ")" + scheme + R"("},
    "materials": {"al": {"conductivity": 150, "density": 2700, "specific_heat": 900}},
    "regions": {"domain": "al"},
    "boundaries": {
      "xmin": {"thermal": {"type": "temperature", "value": "$T0"}},
      "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": "$T_gas"}}
    },
    "sources": {"domain": {"heat": "$q"}},
    "parameters": {
      "T0":    {"default": 20, "min": 10, "max": 40},
      "h":     {"default": 500, "min": 100, "max": 2000},
      "T_gas": {"default": 600, "min": 300, "max": 900},
      "q":     {"default": 0, "min": 0, "max": 1e6}
    },
    "outputs": {
      "T_max":  {"quantity": "temperature", "reduce": "max", "region": "domain"},
      "T_mean": {"quantity": "temperature", "reduce": "mean", "region": "domain"},
      "T_mid":  {"quantity": "temperature", "at": [0.05, 0.05]},
      "q_mid":  {"quantity": "heat_flux_x", "at": [0.05, 0.05]}
    }
  })";
}

// The varying twin with every value depending on t as well (spec/field.hpp: sums of products
// of a function of t and one of x, y; h varies in time, so the operator changes every step).
inline std::string surrogate_transient_in_time_json(const std::string& scheme = "backward_euler") {
  std::string s = surrogate_transient_json(scheme, true);
  replace_once(s, R"~("value": "(1 + 2 * y) * $T0 + 30 * y")~", R"~("value": "(1 + 2 * y) * $T0 + 30 * y * (1 - exp(-t / 60))")~");
  replace_once(s, R"~("h": "(1 + 5 * y) * $h")~", R"~("h": "(1 + 5 * y) * $h * (1 + 0.5 * sin(2 * pi * t / 300))")~");
  replace_once(s, R"~("ambient": "$T_gas - 500 * y")~", R"~("ambient": "$T_gas - 500 * y * t / 300")~");
  replace_once(s, R"~("heat": "(1 + 10 * x) * $q")~", R"~("heat": "(1 + 10 * x) * $q * t / 300")~");
  return s;
}

// The transient live twin of the examples (examples/slab/twin.json): a latent convection
// coefficient h, an unmeasured volumetric heat load q, a known wall temperature T0 (control),
// three noisy temperature sensors across the slab (the profile's curvature gives q, its end
// slope h), a limit on T_max. Time scale L^2/alpha about 160 s.
inline std::string live_transient_json() {
  std::ifstream in(std::string(DOPPEL_SOURCE_DIR) + "/examples/slab/twin.json");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A heat-conduction plate with sensors for the live twin: a latent convection coefficient h, an
// unmeasured load q, a known control T0, three noisy temperature sensors.
inline std::string live_plate_json() {
  return R"({
  "name": "lplate",
  "mesh": {"generate": "rectangle", "size": [0.4, 0.6], "cells": [6, 8], "order": 1},
  "physics": {"thermal": {}},
  "materials": {"steel": {"conductivity": 40}},
  "regions": {"domain": "steel"},
  "boundaries": {
    "ymin": {"thermal": {"type": "temperature", "value": "$T0"}},
    "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 20}},
    "ymax": {"thermal": {"type": "flux", "value": 2000}}
  },
  "sources": {"domain": {"heat": "$q"}},
  "parameters": {
    "T0": {"default": 100, "min": 50, "max": 150, "role": "control"},
    "h":  {"default": 500, "min": 100, "max": 2000, "role": "latent"},
    "q":  {"default": 2e4, "min": 0, "max": 5e4, "role": "load"}
  },
  "sensors": {
    "s1": {"quantity": "temperature", "at": [0.3, 0.45], "noise_std": 0.5},
    "s2": {"quantity": "temperature", "at": [0.1, 0.3], "noise_std": 0.5},
    "s3": {"quantity": "temperature", "at": [0.38, 0.1], "noise_std": 0.5}
  },
  "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"}}
})";
}

}  // namespace doppel::test
