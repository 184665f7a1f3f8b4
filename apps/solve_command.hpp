// `doppel solve`: the twin's scenarios through the finite-element model, written as the
// documented JSON document.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/solvers/scenario_batch.hpp"
#include "surrogate/fidelity.hpp"

namespace doppel::app {

struct SolveArgs {
  std::string twin;
  std::vector<std::string> sets;
  std::string scenarios;
  std::string backend = "auto";
  std::string solver = "auto";  // auto | direct | cg
  double rtol = 1e-12;  // iterative solves: tight enough that cpu and cuda agree to 1e-8
  std::string vtu;
  std::string output;
  int threads = 0;
  bool quiet = false;
  // Surrogate (a bundle from doppel train).
  std::string bundle;
  std::string fidelity;          // fem | surrogate | auto; default auto with a bundle, else fem
  double tolerance = 5e-3;       // auto: largest accepted error estimate (relative L2)
  bool one_fidelity = false;     // auto: the whole batch at the highest fidelity any scenario needs
  std::vector<std::string> output_tolerances;  // auto: NAME=VALUE per output, in the output's units
  std::string device = "auto";   // surrogate inference: auto | cpu | cuda
};

int run_solve(const SolveArgs& args);

// The batch options a backend and a --solver / --rtol choice stand for (shared by the
// commands that solve). Throws InvalidInput naming the option.
BatchOptions batch_options_for(Backend backend, const std::string& solver, double rtol);

}  // namespace doppel::app
