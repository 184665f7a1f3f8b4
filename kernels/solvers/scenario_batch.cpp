#include "kernels/solvers/scenario_batch.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kernels/solvers/batch_outputs.hpp"
#include "kernels/solvers/batched_cg.hpp"
#include "kernels/solvers/batched_cg_kernels.hpp"  // gather_columns
#include "kernels/executor.hpp"
#include "kernels/fem/outputs.hpp"
#include "kernels/host/parallel.hpp"
#include "spec/errors.hpp"

namespace doppel {
namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::string merge_methods(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty() || a == b) return a;
  std::set<std::string> parts;
  for (const std::string& s : {a, b}) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('+', start);
      if (end == std::string::npos) end = s.size();
      parts.insert(s.substr(start, end - start));
      start = end + 1;
    }
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "+") + p;
  return out;
}

void record(ScenarioSolution& sol, const SolveInfo& info) {
  sol.method = merge_methods(sol.method, info.method);
  sol.iterations += info.iterations;
  sol.residual = std::max(sol.residual, info.residual);
}

// One physics (heat or elasticity) solved for a chunk of scenarios.
class PhysicsSolver {
 public:
  // dofs_per_node and dimension: what the automatic preconditioner choice needs to know.
  // exec: the executor of the executor backends (cuda, host "cg"), shared with the outputs;
  // null for the host's direct solvers.
  PhysicsSolver(const AffineOperator& op, const std::vector<RhsTerm>& terms, const BatchOptions& options,
                int dofs_per_node, int dimension, std::shared_ptr<const Executor> exec)
      : op_(op), terms_(terms), options_(options), rhs_(op, terms),
        solver_(op, with_operator(options.solver, dofs_per_node, dimension)) {
    if (exec) {
      CgOptions cg;
      cg.rtol = options.solver.rtol;
      cg.max_iterations = std::max(options.solver.max_iterations, 4 * op.size());
      cg.memory_limit = options.memory_limit;
      executor_ = std::make_unique<ExecutorSolver>(std::move(exec), op, cg);
    }
  }

  // The solves run on an executor, whose blocks a sink can read where they live.
  bool on_executor() const { return executor_ != nullptr; }

  // Solve A(theta_s) x_s = rhs_s where rhs_s = assemble_rhs(theta_s, p_s) + extra_s: the
  // right-hand sides of the block as one product (RhsBlock). `extra` adds scenario-specific
  // loads to the block (the thermal strain); superposition is used only without it and without
  // a sink. sink, download: ExecutorSolver::solve's (on_executor() only).
  std::vector<SolveInfo> solve(const std::vector<Params>& theta, const std::vector<Params>& p,
                               const std::function<void(MatrixXd&)>& extra, MatrixXd& X,
                               const ExecutorSolver::BlockSink& sink = {}, bool download = true) {
    const size_t S = p.size();
    const Index n = op_.size();
    const bool shared = std::all_of(theta.begin(), theta.end(), [&](const Params& t) { return t == theta[0]; });
    X.resize(n, static_cast<Index>(S));
    if (!sink && options_.allow_superposition && shared && !extra && !terms_.empty() && S > terms_.size())
      return superpose(theta[0], p, X);
    MatrixXd B;
    rhs_.assemble(theta, p, B);
    if (extra) extra(B);
    X.setZero();
    parallel_for(S, [&](size_t s) { FemModel::apply_dirichlet(terms_, p[s], X.col(static_cast<Index>(s)).data()); });
    if (sink) {
      DOPPEL_ASSERT(executor_);
      return executor_->solve(theta, B, X, sink, download);
    }
    return solve_rhs(theta, B, X);
  }

  // Solve with given right-hand sides (transient steps); X holds initial guesses.
  std::vector<SolveInfo> solve_rhs(const std::vector<Params>& theta, const MatrixXd& B, MatrixXd& X) {
    if (executor_) return executor_->solve(theta, B, X);
    return solver_.solve(theta, B, X);
  }

  // The right-hand sides of a block (loads and lifts as one product).
  const RhsBlock& rhs() const { return rhs_; }
  ExecutorSolver& executor_solver() {
    DOPPEL_ASSERT(executor_);
    return *executor_;
  }
  int factorizations() const { return solver_.factorizations(); }
  size_t preconditioner_bytes() const { return solver_.preconditioner_bytes(); }
  size_t operator_bytes() const { return op_.bytes(); }

  // Superposition would be chosen for these scenarios (see solve()).
  bool superposes(const std::vector<Params>& theta) const {
    const bool shared = std::all_of(theta.begin(), theta.end(), [&](const Params& t) { return t == theta[0]; });
    return options_.allow_superposition && shared && !terms_.empty() && theta.size() > terms_.size();
  }

  // The superposition basis for one operator: unit right-hand sides U (n x R), their solutions
  // X, and the Gram matrices of the basis residuals (U - A X) and of U, from which each
  // scenario's relative residual follows exactly: ||R c||^2 = c^T (R^T R) c.
  struct Superposition {
    Params theta;
    MatrixXd U, X, residual_gram, rhs_gram;
    int iterations = 0;
    std::string method;
  };
  const Superposition& superposition(const Params& theta) {
    if (sup_ && sup_->theta == theta) return *sup_;
    const Index n = op_.size();
    const size_t R = terms_.size();
    auto b = std::make_unique<Superposition>();
    b->theta = theta;
    b->U.resize(n, static_cast<Index>(R));
    for (size_t r = 0; r < R; ++r)
      FemModel::assemble_unit_rhs(op_, terms_[r], theta, b->U.col(static_cast<Index>(r)).data());
    if (executor_) {
      // The basis solved on the executor: coefficients I give the basis solutions themselves.
      const MatrixXd I = MatrixXd::Identity(static_cast<Index>(R), static_cast<Index>(R));
      const auto info = executor_->superpose(theta, b->U, I, b->X);
      for (const auto& i : info) b->iterations = std::max(b->iterations, i.iterations);
      b->method = "superposition-cg";
    } else {
      const SolveInfo info = solver_.solve_shared(theta, b->U, b->X);
      b->iterations = info.iterations;
      b->method = "superposition-" + info.method;
    }
    const MatrixXd res = residuals(op_, theta.data(), b->U, b->X);
    b->residual_gram = res.transpose() * res;
    b->rhs_gram = b->U.transpose() * b->U;
    sup_ = std::move(b);
    return *sup_;
  }

  // Load coefficients of the scenarios (R x S): b_s = U c_s.
  MatrixXd coefficients(const std::vector<Params>& p) const {
    const size_t R = terms_.size();
    MatrixXd coef(static_cast<Index>(R), static_cast<Index>(p.size()));
    for (size_t s = 0; s < p.size(); ++s)
      for (size_t r = 0; r < R; ++r) coef(static_cast<Index>(r), static_cast<Index>(s)) = terms_[r].coef(p[s]);
    return coef;
  }

 private:
  // The per-scenario path of superposition: each scenario's field formed from the basis, its
  // residual checked against its own right-hand side (on the executor for the executor
  // backends).
  std::vector<SolveInfo> superpose(const Params& theta, const std::vector<Params>& p, MatrixXd& X) {
    const Index n = op_.size();
    const MatrixXd coef = coefficients(p);
    if (executor_) {
      MatrixXd U(n, static_cast<Index>(terms_.size()));
      for (size_t r = 0; r < terms_.size(); ++r)
        FemModel::assemble_unit_rhs(op_, terms_[r], theta, U.col(static_cast<Index>(r)).data());
      return executor_->superpose(theta, U, coef, X);
    }
    const Superposition& sup = superposition(theta);
    X.noalias() = sup.X * coef;
    // Each scenario's true residual against its own right-hand side, in one pass.
    const std::vector<Params> thetas(p.size(), theta);
    MatrixXd B;
    rhs_.assemble(thetas, p, B);
    const std::vector<double> res = relative_residuals(op_, std::vector<const double*>(p.size(), theta.data()), B, X);
    std::vector<SolveInfo> info(p.size());
    for (size_t s = 0; s < p.size(); ++s) {
      info[s].method = sup.method;
      info[s].iterations = sup.iterations;
      info[s].residual = res[s];
    }
    return info;
  }

  static SolverOptions with_operator(SolverOptions o, int dofs_per_node, int dimension) {
    o.dofs_per_node = dofs_per_node;
    o.dimension = dimension;
    return o;
  }

  const AffineOperator& op_;
  const std::vector<RhsTerm>& terms_;
  const BatchOptions& options_;
  RhsBlock rhs_;
  BatchedSolver solver_;
  std::unique_ptr<ExecutorSolver> executor_;  // the executor backends (cuda, or host "cg")
  std::unique_ptr<Superposition> sup_;  // the basis, kept while theta repeats
};

bool same_material(const RegionMaterial& a, const RegionMaterial& b) {
  return a.conductivity == b.conductivity && a.heat_capacity == b.heat_capacity &&
         a.youngs_modulus == b.youngs_modulus && a.poisson_ratio == b.poisson_ratio && a.lambda == b.lambda &&
         a.mu == b.mu && a.expansion == b.expansion && a.reference_temperature == b.reference_temperature &&
         a.thermal_stress_modulus == b.thermal_stress_modulus;
}

// Adds scale * sum_m phi_m(p) load_m (loads are zero on constrained rows).
void add_loads(const std::vector<RhsTerm>& terms, const Params& p, double scale, double* out, size_t n) {
  for (const auto& t : terms) {
    if (t.load.empty()) continue;
    const double c = scale * t.coef(p);
    if (c == 0.0) continue;
    for (size_t i = 0; i < n; ++i) out[i] += c * t.load[i];
  }
}

// The largest output operator a batch builds (stored entries, 12 bytes each): beyond it,
// outputs are evaluated scenario by scenario (a max over a very large region of a recovered
// quantity, where the operator would outweigh the fields it saves work on).
inline constexpr size_t kMaxOutputEntries = size_t{1} << 25;

class BatchRunner {
 public:
  BatchRunner(const FemModel& model, const BatchOptions& options)
      : model_(model), options_(options), outputs_(OutputEvaluator::for_outputs(model)) {
    const bool executor_backend = options.backend == Backend::cuda || options.linear == LinearSolver::cg;
    exec_ = executor_backend ? Executor::create(options.backend) : Executor::host();
    if (model.thermal())
      thermal_ = std::make_unique<PhysicsSolver>(model.thermal_operator(), model.thermal_rhs_terms(), options, 1,
                                                 model.mesh().dim, executor_backend ? exec_ : nullptr);
    if (model.mechanical())
      mech_ = std::make_unique<PhysicsSolver>(model.mechanical_operator(), model.mechanical_rhs_terms(), options,
                                              model.mesh().dim, model.mesh().dim, executor_backend ? exec_ : nullptr);
  }

  BatchResult run(const std::vector<spec::Scenario>& scenarios) {
    BatchResult result;
    result.scenarios.resize(scenarios.size());
    const auto& an = model_.twin().analysis;
    if (an.transient) result.times = options_.window ? std::vector<double>{options_.window->duration} : an.output_times;
    const size_t chunk = std::max<size_t>(1, options_.chunk);
    for (size_t begin = 0; begin < scenarios.size(); begin += chunk) {
      const size_t end = std::min(scenarios.size(), begin + chunk);
      std::vector<const spec::Scenario*> part;
      for (size_t s = begin; s < end; ++s) part.push_back(&scenarios[s]);
      if (an.transient) run_transient(part, begin, result);
      else run_steady(part, begin, result);
      if (options_.progress) options_.progress("scenarios", end, scenarios.size());
    }
    result.factorizations = (thermal_ ? thermal_->factorizations() : 0) + (mech_ ? mech_->factorizations() : 0);
    result.preconditioner_bytes = (thermal_ ? thermal_->preconditioner_bytes() : 0) + (mech_ ? mech_->preconditioner_bytes() : 0);
    result.operator_bytes = (thermal_ ? thermal_->operator_bytes() : 0) + (mech_ ? mech_->operator_bytes() : 0);
    return result;
  }

  // solve_with_temperatures(): the mechanics of given temperatures, then the outputs.
  BatchResult run_given(const std::vector<spec::Scenario>& scenarios, const MatrixXd* T, const std::vector<double>& times) {
    BatchResult result;
    result.scenarios.resize(scenarios.size());
    const bool one_time = std::all_of(times.begin(), times.end(), [&](double t) { return t == times[0]; });
    if (model_.twin().analysis.transient && one_time) result.times = {times[0]};
    const size_t chunk = std::max<size_t>(1, options_.chunk);
    for (size_t begin = 0; begin < scenarios.size(); begin += chunk) {
      const size_t end = std::min(scenarios.size(), begin + chunk);
      std::vector<Params> p;
      for (size_t s = begin; s < end; ++s) {
        p.push_back(scenarios[s].parameters_at(times[s]));
        result.scenarios[s].outputs.resize(1);
        result.scenarios[s].method = "given temperature";
      }
      if (T) {
        const MatrixXd Tc = T->middleCols(static_cast<Index>(begin), static_cast<Index>(end - begin));
        finish(p, &Tc, begin, 0, times[begin], result);
      } else {
        finish(p, nullptr, begin, 0, times[begin], result);
      }
      if (options_.progress) options_.progress("scenarios", end, scenarios.size());
    }
    result.factorizations = mech_ ? mech_->factorizations() : 0;
    result.preconditioner_bytes = mech_ ? mech_->preconditioner_bytes() : 0;
    result.operator_bytes = mech_ ? mech_->operator_bytes() : 0;
    return result;
  }

 private:
  // The output operator for these scenarios' materials (kept while they repeat), or null
  // where the outputs are evaluated scenario by scenario: the scenarios' materials differ (and
  // some output depends on them),
  // BatchOptions::batched_outputs is off, or the operator would exceed kMaxOutputEntries.
  const LinearOutputs* linear_outputs(const std::vector<Params>& p) {
    if (!options_.batched_outputs || p.empty() || outputs_.size() == 0) return nullptr;
    // Interpolated quantities alone: one operator whatever the materials.
    const size_t regions = outputs_.depends_on_materials() ? model_.mesh().region_names.size() : 0;
    std::vector<RegionMaterial> materials(regions);
    for (size_t r = 0; r < regions; ++r) {
      materials[r] = model_.material(static_cast<int>(r), p[0]);
      for (size_t s = 1; s < p.size(); ++s)
        if (!same_material(model_.material(static_cast<int>(r), p[s]), materials[r])) return nullptr;
    }
    auto same = [&](const std::vector<RegionMaterial>& a) {
      if (a.size() != regions) return false;
      for (size_t r = 0; r < regions; ++r)
        if (!same_material(a[r], materials[r])) return false;
      return true;
    };
    if (linear_ && same(linear_materials_)) return linear_.get();
    if (outputs_.linear_entries_bound() > kMaxOutputEntries) return nullptr;
    batch_outputs_.reset();
    linear_ = std::make_unique<LinearOutputs>(outputs_.linearize(p[0]));
    linear_materials_ = std::move(materials);
    return linear_.get();
  }

  // The output operator for these scenarios on the solves' executor (where their fields
  // live), or null where the outputs are evaluated scenario by scenario (linear_outputs()).
  const BatchOutputs* batch_outputs(const std::vector<Params>& p) {
    const LinearOutputs* lin = linear_outputs(p);
    if (!lin) return nullptr;
    if (!batch_outputs_) batch_outputs_ = std::make_unique<BatchOutputs>(exec_, outputs_, *lin);
    return batch_outputs_.get();
  }

  // Column 0 of a block's solutions on the executor (a multi-vector of ld `width`).
  std::vector<double> first_column(const Array<double>& X, int width) const {
    const int rows = static_cast<int>(X.size() / static_cast<size_t>(width));
    const int zero = 0;
    const Array<int> cols(exec_, &zero, 1);
    Array<double> col(exec_, static_cast<size_t>(rows));
    DOPPEL_RUN(*exec_, gather_columns, rows, X.data(), width, cols.data(), 1, col.data());
    return col.to_host();
  }

  // Site components (total_components x width) of scenarios [begin, begin + width) with
  // fields T and U (columns; either null without that physics): one sparse product with the
  // output operator, or scenario by scenario where there is none.
  MatrixXd site_components(const std::vector<Params>& p, const MatrixXd* T, const MatrixXd* U, size_t begin,
                           size_t width) {
    std::vector<Params> part(p.begin() + static_cast<std::ptrdiff_t>(begin),
                             p.begin() + static_cast<std::ptrdiff_t>(begin + width));
    if (const LinearOutputs* lin = linear_outputs(part))
      return lin->apply(T, U, static_cast<Index>(begin), static_cast<Index>(width));
    MatrixXd Z(static_cast<Index>(outputs_.total_components()), static_cast<Index>(width));
    parallel_for(width, [&](size_t j) {
      const Index c = static_cast<Index>(begin + j);
      const std::vector<double> z = outputs_.site_components(part[j], T ? T->col(c).data() : nullptr,
                                                             U ? U->col(c).data() : nullptr);
      Z.col(static_cast<Index>(j)) = Eigen::Map<const Eigen::VectorXd>(z.data(), Z.rows());
    });
    return Z;
  }

  // A solved block's outputs (columns [b0, b0 + w) of the batch part starting at `first`) from
  // its fields T and u on the executor (either null), `solved` being the one just solved; its
  // scenario 0 goes to `first_field` (for the VTU).
  void store_block_outputs(const BatchOutputs& out, const double* T, const double* u, const Array<double>& solved,
                           int b0, int w, size_t first, size_t time_index, BatchResult& result,
                           std::vector<double>& first_field) {
    auto values = out.evaluate(T, u, w, 0, w);
    for (int j = 0; j < w; ++j)
      result.scenarios[first + static_cast<size_t>(b0 + j)].outputs[time_index] = std::move(values[static_cast<size_t>(j)]);
    if (b0 == 0 && first == 0 && options_.keep_first_fields) first_field = first_column(solved, w);
  }

  // Outputs of scenarios [first + begin, first + begin + width) from host fields (columns
  // [begin, begin + width) of T and U; either null without that physics): the output operator
  // on the executor, or scenario by scenario where there is none.
  void host_outputs(const std::vector<Params>& p, const MatrixXd* T, const MatrixXd* U, size_t first,
                    size_t time_index, BatchResult& result) {
    const size_t S = p.size();
    if (const BatchOutputs* out = batch_outputs(p)) {
      auto values = out->evaluate(T, U, 0, static_cast<Index>(S));
      for (size_t s = 0; s < S; ++s) result.scenarios[first + s].outputs[time_index] = std::move(values[s]);
      return;
    }
    parallel_for(S, [&](size_t s) {
      const Index c = static_cast<Index>(s);
      result.scenarios[first + s].outputs[time_index] =
          outputs_.evaluate(p[s], T ? T->col(c).data() : nullptr, U ? U->col(c).data() : nullptr);
    });
  }

  // Mechanics for temperature fields T (columns; may be null) at parameters p; then outputs.
  // On an executor backend with an output operator, the displacements never leave the
  // executor: each solved block's outputs are evaluated there (the block's temperatures
  // copied to it), and only scenario 0's displacement comes back, for the VTU.
  void finish(const std::vector<Params>& p, const MatrixXd* T, size_t first, size_t time_index,
              double time, BatchResult& result) {
    const size_t S = p.size();
    if (options_.temperatures_only) {
      if (options_.field_sink)
        for (size_t s = 0; s < S; ++s)
          options_.field_sink(first + s, time_index, T ? T->col(static_cast<Index>(s)).data() : nullptr, nullptr);
      return;
    }
    MatrixXd U;
    std::vector<double> u_first;  // scenario 0's displacement, when it stays on the executor
    bool outputs_done = false;
    if (mech_) {
      std::vector<Params> theta(S);
      for (size_t s = 0; s < S; ++s) theta[s] = model_.mechanical_theta(p[s]);
      std::function<void(MatrixXd&)> extra;
      if (T) extra = [&](MatrixXd& B) { model_.add_thermal_strain_loads(p, *T, B); };
      const BatchOutputs* out = mech_->on_executor() && !options_.field_sink ? batch_outputs(p) : nullptr;
      ExecutorSolver::BlockSink sink;
      if (out) {
        sink = [&](int b0, int w, const Array<double>& Ud) {
          Array<double> Td;
          if (T) {
            const RowMajor Tb = T->middleCols(b0, w);
            Td = Array<double>(exec_, Tb.data(), static_cast<size_t>(Tb.size()));
          }
          store_block_outputs(*out, T ? Td.data() : nullptr, Ud.data(), Ud, b0, w, first, time_index, result, u_first);
        };
      }
      const auto info = mech_->solve(theta, p, extra, U, sink, !out);
      for (size_t s = 0; s < S; ++s) record(result.scenarios[first + s], info[s]);
      outputs_done = out != nullptr;
    }
    if (!outputs_done) host_outputs(p, T, mech_ ? &U : nullptr, first, time_index, result);
    if (options_.field_sink)
      for (size_t s = 0; s < S; ++s)
        options_.field_sink(first + s, time_index, T ? T->col(static_cast<Index>(s)).data() : nullptr,
                            mech_ ? U.col(static_cast<Index>(s)).data() : nullptr);
    if (first == 0 && options_.keep_first_fields) {
      FieldSnapshot snap;
      snap.parameters = p[0];
      snap.time = time;
      if (T) snap.T.assign(T->col(0).data(), T->col(0).data() + T->rows());
      if (mech_) snap.u = outputs_done ? std::move(u_first) : std::vector<double>(U.col(0).data(), U.col(0).data() + U.rows());
      result.first_fields = std::move(snap);
    }
  }

  void run_steady(const std::vector<const spec::Scenario*>& part, size_t first, BatchResult& result) {
    const size_t S = part.size();
    std::vector<Params> p(S);
    for (size_t s = 0; s < S; ++s) {
      p[s] = part[s]->parameters;
      result.scenarios[first + s].outputs.resize(1);
    }
    if (run_steady_superposed(p, first, result)) return;
    MatrixXd T;
    if (thermal_) {
      std::vector<Params> theta(S);
      for (size_t s = 0; s < S; ++s) theta[s] = model_.thermal_theta(p[s]);
      // Heat alone on an executor backend: each solved block's outputs evaluated where its
      // temperatures live; only scenario 0's field comes back (for the VTU).
      const BatchOutputs* out =
          !mech_ && thermal_->on_executor() && !options_.field_sink ? batch_outputs(p) : nullptr;
      if (out) {
        std::vector<double> t_first;
        const auto sink = [&](int b0, int w, const Array<double>& Td) {
          store_block_outputs(*out, Td.data(), nullptr, Td, b0, w, first, 0, result, t_first);
        };
        const auto info = thermal_->solve(theta, p, nullptr, T, sink, false);
        for (size_t s = 0; s < S; ++s) record(result.scenarios[first + s], info[s]);
        if (first == 0 && options_.keep_first_fields) {
          FieldSnapshot snap;
          snap.parameters = p[0];
          snap.T = std::move(t_first);
          result.first_fields = std::move(snap);
        }
        return;
      }
      const auto info = thermal_->solve(theta, p, nullptr, T);
      for (size_t s = 0; s < S; ++s) record(result.scenarios[first + s], info[s]);
    }
    finish(p, thermal_ ? &T : nullptr, first, 0, 0.0, result);
  }

  // Steady scenarios that share their operators and materials, with loads superposed: every
  // output from a basis of "modes" (BatchOptions::batched_outputs). A scenario's fields are
  // (T, u) = sum_m c_m(p) (T_m, u_m): heat alone has a mode per thermal load term; mechanics
  // alone one per mechanical load term; thermo-elasticity one per thermal load term (its
  // temperature, and the displacement of its thermal strain), one per mechanical load term, and
  // one of coefficient 1 (the strain of the reference temperature). The thermal strain load is
  // affine in T for fixed materials, so this is exact. Each output's site components are affine
  // in (T, u), z = z0 + Z [T; u], so a scenario's are z0 + (Z [T_m; u_m]) c: the M columns are
  // evaluated once, and a scenario costs M multiply-adds per site component plus its reduction.
  // Scenarios go in blocks (one GEMM each, then the reductions), so memory stays bounded.
  // Residuals come from M x M Gram matrices: ||sum c_m r_m||^2 = c^T (R^T R) c. Returns false
  // where it does not apply (the per-scenario path runs).
  // The modes, their site components and residual Gram matrices: built once and kept while
  // the operators and materials repeat (every chunk of a batch).
  struct Modes {
    Params thermal_theta, mech_theta;
    std::vector<RegionMaterial> materials;
    size_t RT = 0, RM = 0;
    MatrixXd T, u;             // mode fields (nT x M, nU x M)
    Eigen::VectorXd z0;        // site components of the zero fields
    MatrixXd Z;                // site components of each mode, less z0 (N x M)
    MatrixXd thermal_residual_gram, thermal_rhs_gram, mech_residual_gram, mech_rhs_gram;
    SolveInfo thermal_info, mech_info;
    std::unique_ptr<BatchOutputs> outputs;  // z0 and Z on the executor
  };

  const Modes& modes_for(const Params& thT, const Params& thM, std::vector<RegionMaterial> materials,
                         const Params& p0) {
    auto same = [&](const Modes& m) {
      if (m.thermal_theta != thT || m.mech_theta != thM || m.materials.size() != materials.size()) return false;
      for (size_t r = 0; r < materials.size(); ++r)
        if (!same_material(m.materials[r], materials[r])) return false;
      return true;
    };
    if (modes_ && same(*modes_)) return *modes_;
    auto md = std::make_unique<Modes>();
    Modes& m = *md;
    m.thermal_theta = thT;
    m.mech_theta = thM;
    m.materials = std::move(materials);
    m.RT = thermal_ ? model_.thermal_rhs_terms().size() : 0;
    m.RM = mech_ ? model_.mechanical_rhs_terms().size() : 0;
    const size_t RT = m.RT, RM = m.RM;
    const size_t M = thermal_ && mech_ ? RT + RM + 1 : RT + RM;
    const Index nT = thermal_ ? model_.thermal_operator().size() : 0;
    const Index nU = mech_ ? model_.mechanical_operator().size() : 0;
    const Index MM = static_cast<Index>(M);
    m.T = MatrixXd::Zero(nT, MM);
    m.u = MatrixXd::Zero(nU, MM);
    if (thermal_) {
      const auto& sup = thermal_->superposition(thT);
      m.T.leftCols(static_cast<Index>(RT)) = sup.X;
      m.thermal_residual_gram = sup.residual_gram;
      m.thermal_rhs_gram = sup.rhs_gram;
      m.thermal_info.method = sup.method;
      m.thermal_info.iterations = sup.iterations;
    }
    if (mech_) {
      const AffineOperator& op = model_.mechanical_operator();
      MatrixXd Bm = MatrixXd::Zero(nU, MM), Rm;  // right-hand sides and residuals of the modes
      const Index first_load = thermal_ ? static_cast<Index>(RT) : 0;
      if (RM > 0) {
        const auto& sup = mech_->superposition(thM);
        m.u.middleCols(first_load, static_cast<Index>(RM)) = sup.X;
        Bm.middleCols(first_load, static_cast<Index>(RM)) = sup.U;
        m.mech_info.iterations = sup.iterations;
        m.mech_info.method = sup.method;
      }
      if (thermal_) {
        // The thermal-strain modes: the load of each thermal mode's temperature (its linear
        // part), and of the reference temperature alone (T = 0), solved together.
        const std::vector<double> zeroT(static_cast<size_t>(nT), 0.0);
        Eigen::VectorXd b0 = Eigen::VectorXd::Zero(nU);
        model_.add_thermal_strain_load(p0, zeroT.data(), b0.data());
        const Index nS = static_cast<Index>(RT) + 1;
        MatrixXd BS(nU, nS), XS = MatrixXd::Zero(nU, nS);
        parallel_for(RT, [&](size_t k) {
          Eigen::VectorXd b = Eigen::VectorXd::Zero(nU);
          model_.add_thermal_strain_load(p0, m.T.col(static_cast<Index>(k)).data(), b.data());
          BS.col(static_cast<Index>(k)) = b - b0;
        });
        BS.col(nS - 1) = b0;
        const auto info = mech_->solve_rhs(std::vector<Params>(static_cast<size_t>(nS), thM), BS, XS);
        for (const auto& i : info) m.mech_info.iterations = std::max(m.mech_info.iterations, i.iterations);
        m.mech_info.method = merge_methods(m.mech_info.method, "superposition-" + info.front().method);
        m.u.leftCols(static_cast<Index>(RT)) = XS.leftCols(static_cast<Index>(RT));
        Bm.leftCols(static_cast<Index>(RT)) = BS.leftCols(static_cast<Index>(RT));
        m.u.col(MM - 1) = XS.col(nS - 1);
        Bm.col(MM - 1) = BS.col(nS - 1);
      }
      Rm = residuals(op, thM.data(), Bm, m.u);
      m.mech_residual_gram = Rm.transpose() * Rm;
      m.mech_rhs_gram = Bm.transpose() * Bm;
    }
    // Site components of the zero fields and of each mode (they depend on the parameters only
    // through the materials, the same for every scenario here).
    {
      const std::vector<Params> p_modes(M + 1, p0);
      MatrixXd T0 = MatrixXd::Zero(nT, MM + 1), U0 = MatrixXd::Zero(nU, MM + 1);
      T0.leftCols(MM) = m.T;
      U0.leftCols(MM) = m.u;
      const MatrixXd Z = site_components(p_modes, thermal_ ? &T0 : nullptr, mech_ ? &U0 : nullptr, 0, M + 1);
      m.z0 = Z.col(MM);
      m.Z = Z.leftCols(MM).colwise() - m.z0;
      m.outputs = std::make_unique<BatchOutputs>(exec_, outputs_, m.z0, m.Z);
    }
    modes_ = std::move(md);
    return *modes_;
  }

  // Steady scenarios that share their operators and materials, with loads superposed: every
  // output from a basis of "modes" (BatchOptions::batched_outputs). A scenario's fields are
  // (T, u) = sum_m c_m(p) (T_m, u_m): heat alone has a mode per thermal load term; mechanics
  // alone one per mechanical load term; thermo-elasticity one per thermal load term (its
  // temperature, and the displacement of its thermal strain), one per mechanical load term, and
  // one of coefficient 1 (the strain of the reference temperature). The thermal strain load is
  // affine in T for fixed materials, so this is exact. Each output's site components are affine
  // in (T, u), z = z0 + Z [T; u], so a scenario's are z0 + (Z [T_m; u_m]) c: the M columns are
  // evaluated once (modes_for), and a scenario costs M multiply-adds per site component plus its
  // reduction. Scenarios go in blocks (one GEMM each, then the reductions), so memory stays
  // bounded. Residuals come from M x M Gram matrices: ||sum c_m r_m||^2 = c^T (R^T R) c.
  // Returns false where it does not apply (the per-scenario path runs).
  bool run_steady_superposed(const std::vector<Params>& p, size_t first, BatchResult& result) {
    if (!options_.batched_outputs || options_.field_sink || !options_.allow_superposition) return false;
    const size_t S = p.size();
    const size_t regions = model_.mesh().region_names.size();
    std::vector<RegionMaterial> materials(regions);
    for (size_t r = 0; r < regions; ++r) {
      materials[r] = model_.material(static_cast<int>(r), p[0]);
      for (size_t s = 1; s < S; ++s)
        if (!same_material(model_.material(static_cast<int>(r), p[s]), materials[r])) return false;
    }
    std::vector<Params> thT, thM;
    for (size_t s = 0; s < S; ++s) {
      if (thermal_) thT.push_back(model_.thermal_theta(p[s]));
      if (mech_) thM.push_back(model_.mechanical_theta(p[s]));
    }
    const size_t RT = thermal_ ? model_.thermal_rhs_terms().size() : 0;
    const size_t RM = mech_ ? model_.mechanical_rhs_terms().size() : 0;
    const size_t M = thermal_ && mech_ ? RT + RM + 1 : RT + RM;
    if (thermal_ && !thermal_->superposes(thT)) return false;
    if (mech_ && (!std::all_of(thM.begin(), thM.end(), [&](const Params& t) { return t == thM[0]; }) ||
                  (!thermal_ && !mech_->superposes(thM))))
      return false;
    if (M == 0 || S <= M) return false;

    const Modes& m = modes_for(thermal_ ? thT[0] : Params{}, mech_ ? thM[0] : Params{}, std::move(materials), p[0]);
    const Index MM = static_cast<Index>(M);
    // Coefficients of the modes per scenario (M x S).
    MatrixXd C(MM, static_cast<Index>(S));
    if (thermal_) C.topRows(static_cast<Index>(RT)) = thermal_->coefficients(p);
    if (mech_ && RM > 0) C.middleRows(thermal_ ? static_cast<Index>(RT) : 0, static_cast<Index>(RM)) = mech_->coefficients(p);
    if (thermal_ && mech_) C.row(MM - 1).setOnes();

    auto relative = [](const Eigen::VectorXd& c, const MatrixXd& res, const MatrixXd& rhs) {
      const double bb = c.dot(rhs * c), rr = std::max(0.0, c.dot(res * c));
      return bb > 0 ? std::sqrt(rr / bb) : std::sqrt(rr);
    };
    // The outputs on the executor (one GEMM and the reductions, in column blocks of bounded
    // size), then each scenario's residuals from the Gram matrices.
    auto values = m.outputs->evaluate_modes(C);
    parallel_for(S, [&](size_t s) {
      const Eigen::VectorXd c = C.col(static_cast<Index>(s));
      ScenarioSolution& sol = result.scenarios[first + s];
      sol.outputs[0] = std::move(values[s]);
      if (thermal_) {
        SolveInfo info = m.thermal_info;
        info.residual = relative(c.head(static_cast<Index>(RT)), m.thermal_residual_gram, m.thermal_rhs_gram);
        record(sol, info);
      }
      if (mech_) {
        SolveInfo info = m.mech_info;
        info.residual = relative(c, m.mech_residual_gram, m.mech_rhs_gram);
        record(sol, info);
      }
    });
    if (first == 0 && options_.keep_first_fields) {
      FieldSnapshot snap;
      snap.parameters = p[0];
      if (thermal_) {
        const Eigen::VectorXd t0 = m.T * C.col(0);
        snap.T.assign(t0.data(), t0.data() + t0.size());
      }
      if (mech_) {
        const Eigen::VectorXd u0 = m.u * C.col(0);
        snap.u.assign(u0.data(), u0.data() + u0.size());
      }
      result.first_fields = std::move(snap);
    }
    return true;
  }

  // The step's operator coefficients: theta of the implicit operator at t1, and of the history
  // term's (mass, and for Crank-Nicolson minus half the stiffness at t0).
  void step_thetas(const std::vector<const spec::Scenario*>& part, double t0, double t1, double dt, bool bdf2,
                   bool cn, std::vector<Params>& theta, std::vector<Params>& p1, std::vector<Params>& history_theta) {
    const size_t S = part.size();
    theta.resize(S);
    p1.resize(S);
    history_theta.resize(S);
    parallel_for(S, [&](size_t s) {
      p1[s] = part[s]->parameters_at(t1);
      if (cn) {
        theta[s] = model_.thermal_theta(p1[s], 0.5, 1.0 / dt);
        history_theta[s] = model_.thermal_theta(part[s]->parameters_at(t0), -0.5, 1.0 / dt);
      } else if (bdf2) {
        theta[s] = model_.thermal_theta(p1[s], 1.0, 1.5 / dt);
        history_theta[s] = model_.thermal_theta(p1[s], 0.0, 0.5 / dt);
      } else {
        theta[s] = model_.thermal_theta(p1[s], 1.0, 1.0 / dt);
        history_theta[s] = model_.thermal_theta(p1[s], 0.0, 1.0 / dt);
      }
    });
  }

  // The time loop on the executor (the executor backends, issue 14 item 5): the temperatures of
  // a block of scenarios stay there from the first step to the last. A step uploads only the
  // coefficients Y of its right-hand sides (RhsBlock: B = W Y, one product with W, uploaded
  // once) and the scenarios' operator coefficients; the history term is one product with the
  // free-row operator of the mass (and, for Crank-Nicolson, half the stiffness); the solve runs
  // on the resident fields, warm-started from the last step. Outputs at each output time are
  // evaluated there (heat alone, with an output operator); otherwise the interpolated field
  // comes back for the mechanics and the outputs (finish()). Blocks are sized to the memory the
  // executor's budget grants.
  struct ExecutorTransient {
    Array<double> W;              // RhsBlock's W, n x columns, by row
    std::unique_ptr<OperatorData> history;  // the thermal operator's free rows
  };

  void run_transient_executor(const std::vector<const spec::Scenario*>& all, size_t first_all, BatchResult& result) {
    const AffineOperator& op = model_.thermal_operator();
    const int n = op.size();
    const RhsBlock& rhs = thermal_->rhs();
    const int C = static_cast<int>(rhs.columns());
    if (!transient_) {
      transient_ = std::make_unique<ExecutorTransient>();
      const RowMajor W = rhs.W();
      transient_->W = Array<double>(exec_, W.data(), static_cast<size_t>(W.size()));
      transient_->history = std::make_unique<OperatorData>(exec_, op, true);
    }
    // The CG's vectors and the loop's own: T_n, T_{n-1}, T_{n+1}, B, the history and its product.
    const ColumnBlocks blocks = claim_columns(*exec_, n, kCgVectors + 6, static_cast<int>(all.size()), options_.memory_limit);
    for (size_t b0 = 0; b0 < all.size(); b0 += static_cast<size_t>(blocks.width)) {
      const size_t b1 = std::min(all.size(), b0 + static_cast<size_t>(blocks.width));
      const std::vector<const spec::Scenario*> part(all.begin() + static_cast<std::ptrdiff_t>(b0),
                                                    all.begin() + static_cast<std::ptrdiff_t>(b1));
      run_transient_block(part, first_all + b0, C, result);
    }
  }

  void run_transient_block(const std::vector<const spec::Scenario*>& part, size_t first, int C, BatchResult& result) {
    const auto& an = model_.twin().analysis;
    const AffineOperator& op = model_.thermal_operator();
    const auto& terms = model_.thermal_rhs_terms();
    const RhsBlock& rhs = thermal_->rhs();
    const Executor& ex = *exec_;
    const int S = static_cast<int>(part.size());
    const int n = op.size();
    const size_t nS = static_cast<size_t>(n) * static_cast<size_t>(S);
    const auto& window = options_.window;
    const long steps = window ? window_steps(window->duration, an.time_step) : std::lround(an.end_time / an.time_step);
    const double dt = window ? window->duration / static_cast<double>(steps) : an.time_step;
    const std::vector<double> output_times = window ? std::vector<double>{window->duration} : an.output_times;
    for (int s = 0; s < S; ++s) result.scenarios[first + static_cast<size_t>(s)].outputs.resize(output_times.size());

    Array<double> Tn(exec_, nS), Tprev(exec_, nS), Tnext(exec_, nS), B(exec_, nS), H(exec_, nS), HL(exec_, nS),
        Tout(exec_, nS);
    {
      MatrixXd T0(n, S);
      T0.setConstant(an.initial_temperature);
      for (int s = 0; s < S; ++s) {
        if (window && window->initial) window->initial(first + static_cast<size_t>(s), T0.col(s).data());
        FemModel::apply_dirichlet(terms, part[static_cast<size_t>(s)]->parameters_at(0.0), T0.col(s).data());
      }
      const RowMajor t = T0;
      Tn.copy_from_host(t.data(), nS);
    }
    const Array<int> active(exec_, std::vector<int>(static_cast<size_t>(S), kActive));
    auto to_host = [&](const Array<double>& X) {
      RowMajor h(n, S);
      X.copy_to_host(h.data(), nS);
      return MatrixXd(h);
    };
    size_t next_output = 0;
    auto emit_outputs = [&](double t_lo, const Array<double>& Tlo, double t_hi, const Array<double>* Thi) {
      while (next_output < output_times.size() &&
             (Thi ? output_times[next_output] <= t_hi + 1e-9 * dt : output_times[next_output] <= t_lo + 1e-9 * dt)) {
        const double tau = output_times[next_output];
        const Array<double>* T = &Tlo;
        if (Thi) {
          const double w = std::clamp((tau - t_lo) / (t_hi - t_lo), 0.0, 1.0);
          DOPPEL_RUN(ex, axpby, nS, 1.0 - w, Tlo.data(), w, Thi->data(), Tout.data());
          T = &Tout;
        }
        std::vector<Params> p(static_cast<size_t>(S));
        for (int s = 0; s < S; ++s) p[static_cast<size_t>(s)] = part[static_cast<size_t>(s)]->parameters_at(tau);
        const BatchOutputs* out = !mech_ && !options_.field_sink ? batch_outputs(p) : nullptr;
        if (out) {
          auto values = out->evaluate(T->data(), nullptr, S, 0, S);
          for (int s = 0; s < S; ++s)
            result.scenarios[first + static_cast<size_t>(s)].outputs[next_output] = std::move(values[static_cast<size_t>(s)]);
          if (first == 0 && options_.keep_first_fields) {
            FieldSnapshot snap;
            snap.parameters = p[0];
            snap.time = tau;
            snap.T = first_column(*T, S);
            result.first_fields = std::move(snap);
          }
        } else {
          const MatrixXd Th = to_host(*T);
          finish(p, &Th, first, next_output, tau, result);
        }
        ++next_output;
      }
    };
    emit_outputs(0.0, Tn, 0.0, nullptr);

    std::vector<Params> theta, p1, history_theta;
    for (long step = 0; step < steps; ++step) {
      const double t0 = dt * static_cast<double>(step), t1 = dt * static_cast<double>(step + 1);
      const bool bdf2 = an.scheme == spec::TimeScheme::bdf2 && step > 0;
      const bool cn = an.scheme == spec::TimeScheme::crank_nicolson;
      step_thetas(part, t0, t1, dt, bdf2, cn, theta, p1, history_theta);
      // B = W Y (the loads at the midpoint for Crank-Nicolson: half at t0, half at t1).
      if (C == 0) {
        DOPPEL_RUN(ex, fill, B.data(), nS, 0.0);
      } else {
        MatrixXd Y = rhs.coefficients(theta, p1);
        if (cn) {
          std::vector<Params> p0(static_cast<size_t>(S));
          for (int s = 0; s < S; ++s) p0[static_cast<size_t>(s)] = part[static_cast<size_t>(s)]->parameters_at(t0);
          rhs.add_load_coefficients(p1, -0.5, Y);
          rhs.add_load_coefficients(p0, 0.5, Y);
        }
        const RowMajor y = Y;
        const Array<double> Yd(exec_, y.data(), static_cast<size_t>(y.size()));
        DOPPEL_RUN(ex, multiply_basis, n, C, S, transient_->W.data(), Yd.data(), B.data());
      }
      // + the history term on the free rows: M (4 T_n - T_{n-1}) / (2 dt) for BDF2.
      if (bdf2) DOPPEL_RUN(ex, axpby, nS, 4.0, Tn.data(), -1.0, Tprev.data(), H.data());
      std::vector<double> th;
      for (const auto& t : history_theta) th.insert(th.end(), t.begin(), t.end());
      const Array<double> thd(exec_, th);
      BatchView bv;
      bv.width = S;
      bv.theta = thd.data();
      bv.state = active.data();
      DOPPEL_RUN(ex, affine_apply, transient_->history->view(), bv, bdf2 ? H.data() : Tn.data(), HL.data(),
                 static_cast<double*>(nullptr));
      DOPPEL_RUN(ex, axpby, nS, 1.0, B.data(), 1.0, HL.data(), B.data());
      ex.copy(Tnext.data(), Tn.data(), nS * sizeof(double));  // warm start
      const auto info = thermal_->executor_solver().solve_resident(theta, B, Tnext, S, first);
      for (int s = 0; s < S; ++s) record(result.scenarios[first + static_cast<size_t>(s)], info[static_cast<size_t>(s)]);
      if (options_.step_sink) {
        const MatrixXd Th = to_host(Tnext);
        for (int s = 0; s < S; ++s) options_.step_sink(first + static_cast<size_t>(s), step + 1, Th.col(s).data());
      }
      emit_outputs(t0, Tn, t1, &Tnext);
      std::swap(Tprev, Tn);  // T_{n-1} <- T_n, T_n <- T_{n+1}; Tnext is rewritten next step
      std::swap(Tn, Tnext);
      if (options_.progress && S > 0 && (step + 1) % std::max<long>(1, steps / 20) == 0)
        options_.progress("time steps", static_cast<size_t>(step + 1), static_cast<size_t>(steps));
    }
  }

  void run_transient(const std::vector<const spec::Scenario*>& part, size_t first, BatchResult& result) {
    if (thermal_->on_executor()) return run_transient_executor(part, first, result);
    const auto& an = model_.twin().analysis;
    const AffineOperator& op = model_.thermal_operator();
    const auto& terms = model_.thermal_rhs_terms();
    const size_t S = part.size();
    const Index n = op.size();
    const auto& window = options_.window;
    // A window runs whole steps of at most time_step; the analysis its own grid.
    const long steps = window ? window_steps(window->duration, an.time_step) : std::lround(an.end_time / an.time_step);
    const double dt = window ? window->duration / static_cast<double>(steps) : an.time_step;
    const std::vector<double> output_times = window ? std::vector<double>{window->duration} : an.output_times;
    for (size_t s = 0; s < S; ++s) result.scenarios[first + s].outputs.resize(output_times.size());

    MatrixXd Tn(n, static_cast<Index>(S)), Tprev, Tnext(n, static_cast<Index>(S)), B(n, static_cast<Index>(S));
    MatrixXd History, HistoryLoad(n, static_cast<Index>(S));  // BDF2's 4 T_n - T_{n-1}; its product with the mass
    Tn.setConstant(an.initial_temperature);
    for (size_t s = 0; s < S; ++s) {
      if (window && window->initial) window->initial(first + s, Tn.col(static_cast<Index>(s)).data());
      FemModel::apply_dirichlet(terms, part[s]->parameters_at(0.0), Tn.col(static_cast<Index>(s)).data());
    }
    size_t next_output = 0;
    auto emit_outputs = [&](double t_lo, const MatrixXd& Tlo, double t_hi, const MatrixXd* Thi) {
      while (next_output < output_times.size() &&
             (Thi ? output_times[next_output] <= t_hi + 1e-9 * dt : output_times[next_output] <= t_lo + 1e-9 * dt)) {
        const double tau = output_times[next_output];
        MatrixXd Tout;
        if (!Thi) {
          Tout = Tlo;
        } else {
          const double w = std::clamp((tau - t_lo) / (t_hi - t_lo), 0.0, 1.0);
          Tout = (1.0 - w) * Tlo + w * (*Thi);
        }
        std::vector<Params> p(S);
        for (size_t s = 0; s < S; ++s) p[s] = part[s]->parameters_at(tau);
        finish(p, &Tout, first, next_output, tau, result);
        ++next_output;
      }
    };
    emit_outputs(0.0, Tn, 0.0, nullptr);

    for (long step = 0; step < steps; ++step) {
      const double t0 = dt * static_cast<double>(step), t1 = dt * static_cast<double>(step + 1);
      const bool bdf2 = an.scheme == spec::TimeScheme::bdf2 && step > 0;
      const bool cn = an.scheme == spec::TimeScheme::crank_nicolson;
      // The step's right-hand sides for the block: loads and lifts as one product (RhsBlock),
      // the history term as one multi-column product with the mass (and, for Crank-Nicolson,
      // half the stiffness) of each scenario.
      std::vector<Params> theta, p1, history_theta;
      step_thetas(part, t0, t1, dt, bdf2, cn, theta, p1, history_theta);
      thermal_->rhs().assemble(theta, p1, B);
      if (bdf2) History = 4.0 * Tn - Tprev;
      const MatrixXd& H = bdf2 ? History : Tn;
      {
        std::vector<const double*> th(S), x(S);
        std::vector<double*> y(S);
        for (size_t s = 0; s < S; ++s) {
          th[s] = history_theta[s].data();
          x[s] = H.col(static_cast<Index>(s)).data();
          y[s] = HistoryLoad.col(static_cast<Index>(s)).data();
        }
        op.apply_free_rows_columns(S, th.data(), x.data(), y.data());
      }
      parallel_for(S, [&](size_t s) {
        double* b = B.col(static_cast<Index>(s)).data();
        if (cn) {  // the loads at the midpoint: half at t0, half at t1
          add_loads(terms, p1[s], -0.5, b, static_cast<size_t>(n));
          add_loads(terms, part[s]->parameters_at(t0), 0.5, b, static_cast<size_t>(n));
        }
        const double* h = HistoryLoad.col(static_cast<Index>(s)).data();
        for (Index i = 0; i < n; ++i)
          if (!op.is_dirichlet(static_cast<int>(i))) b[i] += h[i];
        Tnext.col(static_cast<Index>(s)) = Tn.col(static_cast<Index>(s));  // warm start
        FemModel::apply_dirichlet(terms, p1[s], Tnext.col(static_cast<Index>(s)).data());
      });
      const auto info = thermal_->solve_rhs(theta, B, Tnext);
      for (size_t s = 0; s < S; ++s) record(result.scenarios[first + s], info[s]);
      if (options_.step_sink)
        for (size_t s = 0; s < S; ++s) options_.step_sink(first + s, step + 1, Tnext.col(static_cast<Index>(s)).data());
      emit_outputs(t0, Tn, t1, &Tnext);
      Tprev = Tn;
      Tn = Tnext;
      if (options_.progress && S > 0 && (step + 1) % std::max<long>(1, steps / 20) == 0)
        options_.progress("time steps", static_cast<size_t>(step + 1), static_cast<size_t>(steps));
    }
  }

  const FemModel& model_;
  const BatchOptions& options_;
  OutputEvaluator outputs_;
  std::unique_ptr<PhysicsSolver> thermal_, mech_;
  std::unique_ptr<Modes> modes_;  // run_steady_superposed's, kept while operators and materials repeat
  std::shared_ptr<const Executor> exec_;  // of the executor backends' solves, and of the outputs
  std::unique_ptr<LinearOutputs> linear_;  // the output operator, for linear_materials_
  std::vector<RegionMaterial> linear_materials_;
  std::unique_ptr<BatchOutputs> batch_outputs_;  // linear_ on exec_
  std::unique_ptr<ExecutorTransient> transient_;  // run_transient_executor's operators on exec_
};

}  // namespace

long window_steps(double duration, double time_step) {
  DOPPEL_VERIFY(duration > 0 && std::isfinite(duration), "window", "the duration must be positive and finite");
  const double steps = std::ceil(duration / time_step - 1e-9);
  return std::clamp(static_cast<long>(std::min(steps, static_cast<double>(kMaxWindowSteps))), 1L, kMaxWindowSteps);
}

BatchResult solve_batch(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                        const BatchOptions& options) {
  DOPPEL_VERIFY(!scenarios.empty(), "scenarios", "must hold at least one scenario");
  for (size_t s = 0; s < scenarios.size(); ++s)
    DOPPEL_VERIFY(scenarios[s].parameters.size() == model.twin().parameters.size(),
                  "scenarios[" + std::to_string(s) + "].parameters", "wrong number of parameters");
  BatchRunner runner(model, options);
  return runner.run(scenarios);
}

BatchResult solve_with_temperatures(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                    const Eigen::MatrixXd& T, double time, const BatchOptions& options) {
  return solve_with_temperatures(model, scenarios, T, std::vector<double>(scenarios.size(), time), options);
}

BatchResult solve_with_temperatures(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                    const Eigen::MatrixXd& T, const std::vector<double>& times,
                                    const BatchOptions& options) {
  DOPPEL_VERIFY(!scenarios.empty(), "scenarios", "must hold at least one scenario");
  DOPPEL_VERIFY(times.size() == scenarios.size(), "times", "expected one time per scenario");
  for (size_t s = 0; s < scenarios.size(); ++s)
    DOPPEL_VERIFY(scenarios[s].parameters.size() == model.twin().parameters.size(),
                  "scenarios[" + std::to_string(s) + "].parameters", "wrong number of parameters");
  const Index n = model.thermal() ? static_cast<Index>(model.mesh().num_nodes()) : 0;
  DOPPEL_VERIFY(T.rows() == n && T.cols() == (n ? static_cast<Index>(scenarios.size()) : 0), "temperature",
                "expected " + std::to_string(n) + " x " + std::to_string(n ? scenarios.size() : 0) + " nodal values, got " +
                    std::to_string(T.rows()) + " x " + std::to_string(T.cols()));
  BatchOptions o = options;
  o.window.reset();
  o.temperatures_only = false;
  BatchRunner runner(model, o);
  return runner.run_given(scenarios, n ? &T : nullptr, times);
}

}  // namespace doppel
