// Solving a batch of scenarios of one twin: steady or transient heat, then (quasi-static)
// thermo-elasticity, then the twin's outputs. Strategy per physics and chunk of scenarios:
//   - one operator for all (only loads and boundary values differ) and more scenarios than
//     right-hand-side terms: superposition, one solve per term, then linear combinations;
//   - one or a few operators: one Cholesky factor per operator, all right-hand sides at once;
//   - operators that vary across many scenarios: batched preconditioned CG.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/solvers/batched_solver.hpp"
#include "kernels/fem/fem_model.hpp"

namespace doppel {

// Linear solvers of the host backend: "direct" is CHOLMOD (shared factors, factor-preconditioned
// CG for operator-varying batches); "cg" is the executor algorithm of kernels/solvers/batched_cg.hpp,
// the one the CUDA backend runs, on the host. The CUDA backend always runs "cg".
enum class LinearSolver { direct, cg };

struct BatchOptions {
  SolverOptions solver;
  Backend backend = Backend::host;
  LinearSolver linear = LinearSolver::direct;
  size_t chunk = 256;  // scenarios held in memory at once
  // Executor solvers (cuda, host "cg"): bytes of working blocks one solve may hold on the
  // executor (0: what the executor's MemoryBudget grants; see DOPPEL_MEMORY_FRACTION).
  size_t memory_limit = 0;
  // Called with (scenarios finished, total) after each chunk, and for transient analyses
  // (step, steps) within a chunk.
  std::function<void(const std::string& stage, size_t done, size_t total)> progress;
  bool keep_first_fields = true;  // keep scenario 0's fields (for VTU export)
  // Called (from one thread) with every scenario's fields at every output time: the snapshots
  // of surrogate training. T or u is null when the twin lacks that physics.
  std::function<void(size_t scenario, size_t time_index, const double* T, const double* u)> field_sink;
  // Transient analyses: called (from one thread) with every scenario's temperature after every
  // time step (step = 1, 2, ...; time = step * time_step).
  std::function<void(size_t scenario, long step, const double* T)> step_sink;
  bool allow_superposition = true;
  // Steady twins of one physics solved by superposition: outputs and residuals combined from
  // the basis solutions (each output's site components and the residual Gram matrices of the
  // R load terms, computed once), no per-scenario field, right-hand side or mesh work. Off:
  // every scenario's field is formed and evaluated (the reference the fast path is tested
  // against). Not used with field_sink (fields wanted) or when a scenario's materials differ.
  bool batched_outputs = true;
  // Transient analyses: continue from given temperatures instead of the twin's initial state.
  // Each scenario runs `duration` seconds (time 0 = the window's start; schedules are read on
  // that clock) in whole steps of at most the twin's time_step, from the temperature initial()
  // writes (n nodal values; Dirichlet values are then applied); outputs (and field_sink) at the
  // window's end only. The live twin's members and the virtual plant advance this way.
  struct TransientWindow {
    double duration = 0;
    std::function<void(size_t scenario, double* T)> initial;
  };
  std::optional<TransientWindow> window;
  // The temperatures only: no mechanics and no outputs (the scenarios' outputs stay empty);
  // field_sink sees u null. For callers that solve the mechanics of the temperatures themselves
  // (the live twin advancing its members, then observing them with solve_with_temperatures).
  bool temperatures_only = false;
};

// The steps of a transient window: whole steps of at most time_step, but never more than
// kMaxWindowSteps (a long gap, say a weekend without readings, takes that many longer implicit
// steps rather than hours of computing; the FE and reduced windows share this rule).
inline constexpr long kMaxWindowSteps = 2000;
long window_steps(double duration, double time_step);

struct ScenarioSolution {
  std::vector<std::vector<double>> outputs;  // [time][output]; one time for steady
  std::string method;                        // thermal (and mechanical) strategy
  int iterations = 0;                        // CG iterations, summed over physics and steps
  double residual = 0;                       // largest relative residual of any solve
};

struct FieldSnapshot {
  Params parameters;
  double time = 0;
  std::vector<double> T;  // empty without thermal physics
  std::vector<double> u;  // empty without mechanics
};

struct BatchResult {
  std::vector<ScenarioSolution> scenarios;
  std::vector<double> times;  // transient output times (empty for steady)
  std::optional<FieldSnapshot> first_fields;
  int factorizations = 0;
  // Memory of the solve: the operators' and (host backend) the factors' and multigrid
  // hierarchies' held at the end of the batch.
  size_t operator_bytes = 0;
  size_t preconditioner_bytes = 0;
};

BatchResult solve_batch(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                        const BatchOptions& options = {});

// The quasi-static state of given temperatures: column s of T (nodal values; 0 x 0 for a twin
// without heat) is scenario s's temperature at `time` (schedules are read there; 0 for steady
// twins). Mechanics, where the twin has it, is solved under that temperature's thermal strain
// and the mechanical loads, then the outputs are evaluated (one output time). field_sink sees
// (T, u) of each scenario with time index 0; BatchOptions::window is ignored. The live
// transient twin and the transient surrogate get their displacements and stresses this way.
BatchResult solve_with_temperatures(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                    const Eigen::MatrixXd& T, double time = 0.0, const BatchOptions& options = {});
// The same with a time per scenario (column s at times[s]: the transient surrogate's output
// times, whose loads may depend on t).
BatchResult solve_with_temperatures(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                    const Eigen::MatrixXd& T, const std::vector<double>& times,
                                    const BatchOptions& options = {});

}  // namespace doppel
