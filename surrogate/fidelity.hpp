// Answering scenarios at a chosen fidelity: the finite-element model, the surrogate, or
// "auto" (the surrogate where the scenario lies inside its training bounds and its error
// estimate is within the tolerance, FEM for the rest, in one batch). Shared by the command
// line and the HTTP service; neither sees how the answers were split.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/solvers/scenario_batch.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel {

enum class Fidelity { fem, surrogate, automatic };
// "fem" | "surrogate" | "auto"; InvalidInput naming `path` otherwise.
Fidelity parse_fidelity(const std::string& text, const std::string& path);
const char* fidelity_name(Fidelity f);

struct ScenarioAnswer {
  std::vector<std::vector<double>> outputs;  // [time][output]; one time for steady analyses
  bool surrogate = false;                    // which fidelity answered
  // Which model produced it: "network" (the MLP ensemble), "reduced" (the Galerkin solve in
  // the reduced space: the steady second tier, and every transient surrogate answer) or "fem".
  std::string tier = "fem";
  double error_estimate = 0;                 // surrogate: estimate; FEM: the solve's relative residual
  std::vector<double> error_estimates;       // transient surrogate answers: per output time
  std::vector<double> spread;                // steady surrogate answers: ensemble std per output
  // Surrogate answers from a bundle with per-output estimates: [time][output], in each output's
  // units (a bound on |answer - FE| at the bundle's calibrated coverage).
  std::vector<std::vector<double>> output_estimates;
  std::string fallback;                      // FEM standing in: outside_training_bounds | estimate_above_tolerance |
                                             // output_estimate_above_tolerance | one_fidelity
  std::optional<double> surrogate_estimate;  // the estimate that sent it to FEM
  std::optional<ScenarioSolution> solver;    // FEM answers
};

struct AnswerOptions {
  Fidelity fidelity = Fidelity::fem;
  double tolerance = 5e-3;
  // auto only: one fidelity for the whole batch, the highest any scenario needs (FEM for all
  // when one falls back), so an optimizer's finite differences and line searches see one model.
  bool one_fidelity = false;
  // auto only: per output (twin order), the largest error estimate accepted from a surrogate
  // tier, in the output's units (0: none). A scenario whose estimate of any output exceeds its
  // tolerance goes on to the next tier (FEM last). parse_output_tolerances builds it.
  std::vector<double> output_tolerances;
  BatchOptions batch;              // FEM solves
  bool first_fields = false;       // keep scenario 0's fields (VTU export)
};

struct AnswerSet {
  std::vector<ScenarioAnswer> answers;
  std::vector<double> times;       // transient output times (empty for steady)
  size_t surrogate_answers = 0, fem_answers = 0;
  int factorizations = 0;
  size_t operator_bytes = 0, preconditioner_bytes = 0;  // of the FE solve (BatchResult)
  std::optional<FieldSnapshot> first_fields;
};

// Output tolerances by name ("T_max" -> 0.5) as AnswerOptions::output_tolerances; an unknown
// name or a value that is not a positive number is InvalidInput naming path + "." + name.
std::vector<double> parse_output_tolerances(const spec::TwinSpec& twin,
                                            const std::vector<std::pair<std::string, double>>& tolerances,
                                            const std::string& path);

// surrogate may be null only for Fidelity::fem.
AnswerSet answer_scenarios(const FemModel& model, const Surrogate* surrogate,
                           const std::vector<spec::Scenario>& scenarios, const AnswerOptions& options);

}  // namespace doppel
