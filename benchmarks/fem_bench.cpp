#include "benchmarks/fem_bench.hpp"

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <fstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "benchmarks/bench_util.hpp"
#include "benchmarks/linear_bench.hpp"
#include "kernels/fem/assembly.hpp"
#include "kernels/fem/assembly_kernels.hpp"
#include "kernels/backend.hpp"
#include "kernels/executor.hpp"
#include "kernels/fem/fem_model.hpp"
#include "kernels/host/parallel.hpp"
#include "kernels/solvers/scenario_batch.hpp"
#include "spec/errors.hpp"
#include "spec/json_reader.hpp"

namespace doppel::bench {
namespace {

// A heat-conduction box: fixed temperature at xmin, convection at xmax, a volumetric source.
spec::TwinSpec box_twin(int cells) {
  const std::string c = std::to_string(cells);
  const std::string text = R"({
    "name": "bench-box",
    "mesh": {"generate": "box", "size": [1, 1, 1], "cells": [)" + c + "," + c + "," + c + R"(], "order": 1},
    "physics": {"thermal": {}},
    "materials": {"steel": {"conductivity": "$k"}},
    "regions": {"domain": "steel"},
    "boundaries": {"xmin": {"thermal": {"type": "temperature", "value": "$T0"}},
                   "xmax": {"thermal": {"type": "convection", "h": "$h", "ambient": 20}}},
    "sources": {"domain": {"heat": "$q"}},
    "parameters": {"k": {"default": 50, "min": 20, "max": 80},
                   "h": {"default": 500, "min": 100, "max": 2000},
                   "T0": {"default": 100, "min": 0, "max": 500},
                   "q": {"default": 1e4, "min": 0, "max": 1e5}},
    "outputs": {"T_max": {"quantity": "temperature", "reduce": "max", "region": "domain"},
                "T_mid": {"quantity": "temperature", "at": [0.5, 0.5, 0.5]}}
  })";
  return spec::parse_twin(text, ".");
}

struct Case {
  std::string problem;
  std::string regime;
  std::vector<std::string> vary;
  bool superposition = true;
  bool batched_outputs = true;  // outputs combined from the basis (false: per scenario, the old path)
};

}  // namespace

int run_fem_bench(const FemBenchArgs& args) {
  if (args.threads > 0) set_host_threads(args.threads);
  const Backend backend = select_backend(args.backend);
  DOPPEL_VERIFY(args.rtol > 0 && args.rtol < 1e-2, "--rtol", "must lie in (0, 1e-2)");
  for (int b : args.batches) DOPPEL_VERIFY(b >= 1 && b <= 1 << 20, "--batches", "each batch size must lie in [1, 2^20]");
  for (int c : args.box_cells) DOPPEL_VERIFY(c >= 0 && c <= 400, "--box-cells", "must lie in [0, 400]");
  DOPPEL_VERIFY(args.memory_limit_mb >= 0 && args.memory_limit_mb <= 1e8, "--memory-limit-mb",
                "must lie in [0, 10^8] (0: the executor's budget)");
  const size_t memory_limit = static_cast<size_t>(args.memory_limit_mb * 1048576.0);
  const auto exec = Executor::create(backend);
  nlohmann::ordered_json doc;
  doc["benchmark"] = "fem";
  doc["backend"] = backend_name(backend);
  doc["machine"] = {{"cpu", cpu_model()}, {"hardware_threads", std::thread::hardware_concurrency()},
                    {"threads_used", host_threads()}, {"executor", exec->description()}};
  if (backend == Backend::cuda)
    doc["machine"]["gpu"] = {{"name", cuda::device_name(0)}, {"driver", cuda::driver_version()}};
  doc["rtol"] = args.rtol;
  doc["memory_limit_bytes"] = memory_limit;
  doc["memory_budget_bytes"] = exec->memory_budget().limit();
  // Copy bandwidth of the executor, measured in this run: the roofline of the CG iterations.
  const size_t copy_bytes = backend == Backend::cuda ? size_t{1} << 30 : size_t{256} << 20;
  const double bandwidth = copy_bandwidth(exec, copy_bytes, backend == Backend::cuda ? 20 : 4);
  doc["copy_bandwidth_bytes_per_second"] = bandwidth;
  std::cerr << "bench: " << exec->description() << ": copy bandwidth " << bandwidth / 1e9 << " GB/s\n";
  const char* commit = std::getenv("DOPPEL_COMMIT");
  doc["commit"] = commit ? commit : "unknown";
  doc["date"] = utc_now();
  doc["results"] = nlohmann::ordered_json::array();
  doc["linear"] = nlohmann::ordered_json::array();
  // The document is written after every measured row, so a run cut short (a time limit, a
  // device failure) keeps what it measured; "complete" says whether it ran to the end.
  doc["complete"] = false;
  auto checkpoint = [&] { write_results(args.output, doc); };

  struct Problem {
    std::string name;
    std::unique_ptr<FemModel> model;
    std::vector<std::string> loads, operators;
    double factor_seconds = 0;
  };
  std::vector<Problem> problems;
  auto add_problem = [&](const std::string& name, spec::TwinSpec twin, std::vector<std::string> loads,
                         std::vector<std::string> ops) {
    std::cerr << "bench: assembling " << name << "...\n";
    const auto t = Clock::now();
    auto model = std::make_unique<FemModel>(std::move(twin));
    const double assembly = seconds_since(t);
    const auto& m = model->mesh();
    std::cerr << "bench: " << name << ": " << m.num_nodes() << " nodes, " << m.num_cells()
              << " cells, model build (mesh + assembly) " << assembly << " s\n";
    // Factorization time of the nominal operator, measured on its own.
    const AffineOperator& op = model->thermal() ? model->thermal_operator() : model->mechanical_operator();
    const Params theta = model->thermal() ? model->thermal_theta(model->twin().default_parameters())
                                          : model->mechanical_theta(model->twin().default_parameters());
    BatchedSolver solver(op);
    const auto tf = Clock::now();
    Eigen::MatrixXd B = Eigen::MatrixXd::Ones(op.size(), 1), X;
    solver.solve_shared(theta, B, X);
    const double factor = seconds_since(tf);
    doc["problems"][name] = {{"nodes", m.num_nodes()}, {"cells", m.num_cells()},
                             {"dofs", op.size()}, {"nnz", op.pattern().nnz()},
                             {"model_build_seconds", assembly}, {"factorization_seconds", factor}};
    // Assembly of the stiffness and mass terms alone, on the host and on the executor.
    {
      const CsrPattern& pat = op.pattern();
      const bool vec = !model->thermal();
      const std::vector<TermSpec> terms =
          vec ? std::vector<TermSpec>{{TermKind::elastic_lambda, false, -1, 1.0}, {TermKind::elastic_mu, false, -1, 1.0}}
              : std::vector<TermSpec>{{TermKind::stiffness, false, -1, 1.0}, {TermKind::mass, false, -1, 1.0}};
      auto time_assembly = [&](const std::shared_ptr<const Executor>& e) {
        assemble_terms(e, m, pat, terms);  // warm-up (module load, first allocation)
        e->synchronize();
        const auto ta = Clock::now();
        const Array<double> v = assemble_terms(e, m, pat, terms);
        e->synchronize();
        return seconds_since(ta);
      };
      const double host_assembly = time_assembly(Executor::host());
      doc["problems"][name]["assembly_seconds_host"] = host_assembly;
      if (backend == Backend::cuda) {
        try {
          const double dev_assembly = time_assembly(exec);
          doc["problems"][name]["assembly_seconds_device"] = dev_assembly;
          doc["problems"][name]["assembly_speedup"] = host_assembly / dev_assembly;
        } catch (const std::exception& e) {
          doc["problems"][name]["assembly_error_device"] = e.what();
          std::cerr << "bench: " << name << ": device assembly failed: " << e.what() << "\n";
        }
      }
    }
    problems.push_back({name, std::move(model), std::move(loads), std::move(ops), factor});
  };
  if (!args.twin.empty()) {
    auto twin = spec::load_twin(args.twin);
    std::vector<std::string> loads, ops;
    for (const auto& p : twin.parameters) loads.push_back(p.name);
    // Operator-varying: every parameter that enters a convection coefficient (the blade's h).
    for (const auto& p : twin.parameters)
      if (p.name.find("h_") == 0 || p.name.find("_h") != std::string::npos) ops.push_back(p.name);
    std::vector<std::string> pure_loads;
    for (const auto& l : loads)
      if (std::find(ops.begin(), ops.end(), l) == ops.end()) pure_loads.push_back(l);
    const std::string name = twin.name;
    add_problem(name, std::move(twin), pure_loads, ops);
  }
  for (int cells : args.box_cells)
    if (cells > 0) add_problem("box-p1-" + std::to_string(cells), box_twin(cells), {"T0", "q"}, {"h", "k"});

  LinearBenchOptions linear;
  linear.batches = args.batches;
  linear.rtol = args.rtol;
  linear.max_seconds = args.max_seconds;
  linear.export_dir = args.export_dir;
  linear.checkpoint = checkpoint;
  linear.memory_limit = memory_limit;
  checkpoint();
  if (args.linear)
    for (auto& prob : problems) run_linear_bench(prob.name, *prob.model, prob.operators, exec, bandwidth, linear, doc);

  // The host's two ways of solving R right-hand sides against one operator (the superposition
  // basis; the nominal preconditioner): the Cholesky factor, or multigrid-preconditioned CG.
  // setup = factorization or hierarchy (with the first column); then R columns at once, for
  // growing R. The crossover the automatic choice uses (kernels/solvers/batched_solver.hpp) is read
  // from these rows.
  doc["preconditioners"] = nlohmann::ordered_json::array();
  if (args.preconditioners) {
    std::printf("\n%-18s %-9s %8s %12s %12s %8s\n", "problem", "solver", "columns", "setup s", "solve s", "iters");
    for (auto& prob : problems) {
      const FemModel& m = *prob.model;
      const AffineOperator& op = m.thermal() ? m.thermal_operator() : m.mechanical_operator();
      const Params theta = m.thermal() ? m.thermal_theta(m.twin().default_parameters())
                                       : m.mechanical_theta(m.twin().default_parameters());
      for (const Preconditioner pre : {Preconditioner::cholesky, Preconditioner::amg}) {
        const char* name = pre == Preconditioner::cholesky ? "cholesky" : "amg";
        SolverOptions so;
        so.rtol = args.rtol;
        so.preconditioner = pre;
        nlohmann::ordered_json row = {{"problem", prob.name}, {"dofs", op.size()}, {"dimension", m.mesh().dim},
                                      {"dofs_per_node", m.thermal() ? 1 : m.mesh().dim}, {"solver", name}};
        try {
          BatchedSolver solver(op, so);
          Eigen::MatrixXd X;
          const auto t0 = Clock::now();
          solver.solve_shared(theta, Eigen::MatrixXd::Ones(op.size(), 1), X);
          row["setup_seconds"] = seconds_since(t0);
          row["bytes"] = solver.preconditioner_bytes();
          row["columns"] = nlohmann::ordered_json::array();
          double last = 0;
          for (int R : {4, 16, 64}) {
            if (last * 4 > args.max_seconds) break;
            std::mt19937 rng(static_cast<unsigned>(R));
            std::normal_distribution<double> g;
            Eigen::MatrixXd B(op.size(), R);
            for (Eigen::Index j = 0; j < B.cols(); ++j)
              for (Eigen::Index i = 0; i < B.rows(); ++i) B(i, j) = g(rng);
            const auto t = Clock::now();
            const SolveInfo info = solver.solve_shared(theta, B, X);
            last = seconds_since(t);
            row["columns"].push_back({{"columns", R}, {"seconds", last}, {"seconds_per_column", last / R},
                                      {"iterations", info.iterations}, {"max_relative_residual", info.residual}});
            std::printf("%-18s %-9s %8d %12.4f %12.4f %8d\n", prob.name.c_str(), name, R,
                        row["setup_seconds"].get<double>(), last, info.iterations);
            std::fflush(stdout);
          }
        } catch (const std::exception& e) {
          row["error"] = e.what();
        }
        doc["preconditioners"].push_back(row);
        checkpoint();
      }
    }
  }

  std::printf("\n%-18s %-34s %6s %12s %14s %8s\n", "problem", "regime (end to end)", "batch", "seconds", "solves/s", "iters");
  for (auto& prob : problems) {
    if (!args.end_to_end) break;
    std::vector<Case> cases = {{prob.name, "shared operator, superposition", prob.loads, true},
                               {prob.name, "superposition, outputs per scenario", prob.loads, true, false},
                               {prob.name, "shared operator, one rhs each", prob.loads, false}};
    if (!prob.operators.empty()) cases.push_back({prob.name, "operator varies (batched PCG)", prob.operators, true});
    for (const auto& c : cases) {
      if (!args.regimes.empty() &&
          std::none_of(args.regimes.begin(), args.regimes.end(),
                       [&](const std::string& r) { return c.regime.find(r) != std::string::npos; }))
        continue;
      // Predicted time of the next batch: each batch pays about one factorization F, then a
      // cost linear in the batch size, estimated from the last batch measured.
      double last_seconds = 0;
      int last_batch = 0;
      for (int batch : args.batches) {
        nlohmann::ordered_json row = {{"problem", c.problem}, {"regime", c.regime}, {"batch", batch}};
        const double F = std::min(prob.factor_seconds, last_seconds);
        const double predicted = last_batch > 0 ? F + (last_seconds - F) * batch / last_batch : 0.0;
        // Host memory of one chunk: right-hand sides, solutions and fields of every physics, and
        // the staging of a block (about six n x chunk arrays of the larger operator).
        const auto& m = *prob.model;
        const double dofs = std::max(m.thermal() ? m.thermal_operator().size() : 0,
                                     m.mechanical() ? m.mechanical_operator().size() : 0);
        const double chunk = std::min<double>(batch, backend == Backend::cuda ? 4096 : 256);
        const double host_bytes = 6.0 * 8.0 * dofs * chunk;
        if (predicted > args.max_seconds) {
          row["skipped"] = "predicted " + std::to_string(predicted) + " s > --max-seconds";
        } else if (host_bytes > 0.6 * static_cast<double>(Executor::host()->free_memory())) {
          row["skipped"] = "needs about " + std::to_string(static_cast<long>(host_bytes / 1e9)) + " GB of host memory";
        }
        if (row.contains("skipped")) {
          std::printf("%-18s %-34s %6d %12s\n", c.problem.c_str(), c.regime.c_str(), batch, "skipped");
          doc["results"].push_back(row);
          checkpoint();
          continue;
        }
        auto scenarios = spec::random_scenarios(prob.model->twin(), c.vary, batch, 1234u + static_cast<unsigned>(batch));
        BatchOptions options;
        options.backend = backend;
        options.linear = backend == Backend::cuda ? LinearSolver::cg : LinearSolver::direct;
        if (backend == Backend::cuda) options.chunk = 4096;
        options.solver.rtol = args.rtol;
        options.keep_first_fields = false;
        options.memory_limit = memory_limit;
        options.allow_superposition = c.superposition;
        options.batched_outputs = c.batched_outputs;
        const auto t = Clock::now();
        BatchResult r;
        try {
          r = solve_batch(*prob.model, scenarios, options);
        } catch (const std::exception& e) {
          row["error"] = e.what();
          std::printf("%-18s %-34s %6d error: %s\n", c.problem.c_str(), c.regime.c_str(), batch, e.what());
          doc["results"].push_back(row);
          checkpoint();
          break;  // larger batches of this case would fail the same way
        }
        const double sec = seconds_since(t);
        last_seconds = sec;
        last_batch = batch;
        double iters = 0, worst = 0;
        for (const auto& s : r.scenarios) {
          iters += s.iterations;
          worst = std::max(worst, s.residual);
        }
        iters /= batch;
        row["seconds"] = sec;
        row["scenario_solves_per_second"] = batch / sec;
        row["mean_cg_iterations"] = iters;
        row["max_relative_residual"] = worst;
        row["factorizations"] = r.factorizations;
        row["method"] = r.scenarios[0].method;
        doc["results"].push_back(row);
        checkpoint();
        std::printf("%-18s %-34s %6d %12.4f %14.1f %8.1f\n", c.problem.c_str(), c.regime.c_str(), batch,
                    sec, batch / sec, iters);
        std::fflush(stdout);
      }
    }
  }
  doc["complete"] = true;
  checkpoint();
  if (!args.output.empty()) std::cerr << "bench: wrote " << args.output << "\n";
  return 0;
}

}  // namespace doppel::bench
