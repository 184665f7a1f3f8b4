#include "apps/solve_command.hpp"

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "kernels/backend.hpp"
#include "kernels/executor.hpp"
#include "kernels/parallel.hpp"
#include "kernels/vtu_writer.hpp"
#include "apps/train_command.hpp"
#include "spec/errors.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel::app {

namespace {
nlohmann::ordered_json number(double v) {
  // JSON has no NaN/Inf; they cannot occur for a converged solve, but never emit invalid JSON.
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}
}  // namespace

nlohmann::ordered_json solve_with_surrogate(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                            BatchOptions options, const SolveArgs& args,
                                            const std::string& fidelity);

nlohmann::ordered_json solve_result_json(const FemModel& model,
                                         const std::vector<spec::Scenario>& scenarios,
                                         const BatchResult& result) {
  const auto& twin = model.twin();
  nlohmann::ordered_json doc;
  doc["twin"] = twin.name;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (size_t s = 0; s < scenarios.size(); ++s) {
    const ScenarioSolution& sol = result.scenarios[s];
    nlohmann::ordered_json item;
    item["id"] = scenarios[s].id;
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    for (size_t k = 0; k < twin.parameters.size(); ++k) params[twin.parameters[k].name] = scenarios[s].parameters[k];
    item["parameters"] = params;
    nlohmann::ordered_json outs = nlohmann::ordered_json::object();
    for (size_t o = 0; o < twin.outputs.size(); ++o) {
      if (twin.analysis.transient) {
        nlohmann::ordered_json series = nlohmann::ordered_json::array();
        for (const auto& at_time : sol.outputs) series.push_back(number(at_time[o]));
        outs[twin.outputs[o].name] = series;
      } else {
        outs[twin.outputs[o].name] = number(sol.outputs[0][o]);
      }
    }
    item["outputs"] = outs;
    item["fidelity"] = "fem";
    item["error_estimate"] = sol.residual;  // algebraic: the solve's relative residual
    item["solver"] = {{"method", sol.method}, {"iterations", sol.iterations}, {"residual", sol.residual}};
    list.push_back(item);
  }
  doc["scenarios"] = list;
  doc["times"] = twin.analysis.transient ? nlohmann::ordered_json(result.times) : nlohmann::ordered_json(nullptr);
  return doc;
}

BatchOptions batch_options_for(Backend backend, const std::string& solver, double rtol) {
  DOPPEL_VERIFY(rtol > 0 && rtol < 1e-2, "--rtol", "must lie in (0, 1e-2)");
  BatchOptions options;
  options.backend = backend;
  options.solver.rtol = rtol;
  if (solver == "auto") {
    options.linear = backend == Backend::cuda ? LinearSolver::cg : LinearSolver::direct;
  } else if (solver == "direct") {
    DOPPEL_VERIFY(backend == Backend::host, "--solver",
                  "direct (CHOLMOD) runs on the host only: use --backend cpu, or --solver cg");
    options.linear = LinearSolver::direct;
  } else if (solver == "cg") {
    options.linear = LinearSolver::cg;
  } else {
    throw InvalidInput("--solver", "must be auto, direct or cg (got \"" + solver + "\")");
  }
  // A GPU wants wide batches: one read of the operator serves every scenario in flight.
  if (backend == Backend::cuda) options.chunk = 4096;
  return options;
}

int run_solve(const SolveArgs& args) {
  if (args.threads > 0) set_host_threads(args.threads);
  const Backend backend = select_backend(args.backend);
  BatchOptions options = batch_options_for(backend, args.solver, args.rtol);
  DOPPEL_VERIFY(args.scenarios.empty() || args.sets.empty(), "--set",
                "use either --set or --scenarios, not both");
  const auto t0 = std::chrono::steady_clock::now();
  spec::TwinSpec twin = spec::load_twin(args.twin);
  std::vector<spec::Scenario> scenarios =
      args.scenarios.empty() ? std::vector<spec::Scenario>{spec::scenario_from_assignments(twin, args.sets)}
                             : spec::load_scenarios(twin, args.scenarios);
  FemModel model(std::move(twin));
  const auto t1 = std::chrono::steady_clock::now();
  options.keep_first_fields = !args.vtu.empty();
  const bool show = !args.quiet && scenarios.size() > 1;
  if (!args.quiet)
    std::cerr << "doppel: " << model.twin().name << ": " << model.mesh().num_nodes() << " nodes, "
              << model.mesh().num_cells() << " cells, " << scenarios.size() << " scenario(s), "
              << Executor::create(backend)->description() << "\n";
  if (show || model.transient())
    options.progress = [&](const std::string& stage, size_t done, size_t total) {
      if (!args.quiet) std::cerr << "doppel: " << stage << " " << done << "/" << total << "\n";
    };
  std::string fidelity = args.fidelity.empty() ? (args.bundle.empty() ? "fem" : "auto") : args.fidelity;
  DOPPEL_VERIFY(fidelity == "fem" || fidelity == "surrogate" || fidelity == "auto", "--fidelity",
                "must be fem, surrogate or auto (got \"" + fidelity + "\")");
  DOPPEL_VERIFY(fidelity == "fem" || !args.bundle.empty(), "--fidelity", fidelity + " needs --bundle");
  DOPPEL_VERIFY(args.tolerance > 0 && std::isfinite(args.tolerance), "--tolerance", "must be a positive number");
  nlohmann::ordered_json doc;
  if (fidelity == "fem") {
    BatchResult result = solve_batch(model, scenarios, options);
    const auto t2 = std::chrono::steady_clock::now();
    if (!args.quiet)
      std::cerr << "doppel: setup " << std::chrono::duration<double>(t1 - t0).count() << " s, solve "
                << std::chrono::duration<double>(t2 - t1).count() << " s ("
                << result.factorizations << " factorization(s))\n";
    if (!args.vtu.empty() && result.first_fields) {
      write_vtu(model, *result.first_fields, args.vtu);
      if (!args.quiet) std::cerr << "doppel: wrote " << args.vtu << " (scenario " << scenarios[0].id << ")\n";
    }
    doc = solve_result_json(model, scenarios, result);
  } else {
    doc = solve_with_surrogate(model, scenarios, options, args, fidelity);
  }
  doc["backend"] = backend_name(backend);
  const std::string text = doc.dump(2) + "\n";
  if (args.output.empty()) {
    std::cout << text;
  } else {
    std::ofstream out(args.output);
    DOPPEL_VERIFY(out.good(), "--output", "cannot write " + args.output);
    out << text;
    DOPPEL_VERIFY(out.good(), "--output", "failed writing " + args.output);
    if (!args.quiet) std::cerr << "doppel: wrote " << args.output << "\n";
  }
  return 0;
}

nlohmann::ordered_json solve_with_surrogate(const FemModel& model, const std::vector<spec::Scenario>& scenarios,
                                            BatchOptions options, const SolveArgs& args,
                                            const std::string& fidelity) {
  const auto& twin = model.twin();
  const auto t0 = std::chrono::steady_clock::now();
  const auto sur = Surrogate::load(args.bundle, model, inference_device(args.device, options.backend == Backend::cuda));
  std::vector<Params> params;
  for (const auto& sc : scenarios) params.push_back(sc.parameters);
  const bool transient = twin.analysis.transient;
  SurrogateBatch b;
  std::vector<TransientAnswer> tb;
  if (transient) {
    tb = sur->evaluate_transient(scenarios);
    b.estimate.resize(scenarios.size());
    b.in_bounds.resize(scenarios.size());
    for (size_t s = 0; s < scenarios.size(); ++s) {
      b.estimate[s] = tb[s].max_estimate;
      b.in_bounds[s] = tb[s].in_bounds;
    }
  } else {
    b = sur->evaluate(params);
  }
  const auto t1 = std::chrono::steady_clock::now();
  // Scenarios the surrogate may not answer alone: outside its training bounds, or (auto) an
  // estimate above the tolerance. They are solved with FEM in one batch.
  std::vector<size_t> fem;
  std::vector<std::string> reason(scenarios.size());
  for (size_t s = 0; s < scenarios.size(); ++s) {
    if (!b.in_bounds[s]) reason[s] = "outside_training_bounds";
    else if (fidelity == "auto" && !(b.estimate[s] <= args.tolerance)) reason[s] = "estimate_above_tolerance";
    if (!reason[s].empty()) fem.push_back(s);
  }
  std::vector<spec::Scenario> fem_scenarios;
  for (size_t s : fem) fem_scenarios.push_back(scenarios[s]);
  options.keep_first_fields = !args.vtu.empty() && !fem.empty() && fem.front() == 0;
  BatchResult fr;
  nlohmann::ordered_json fem_doc;
  if (!fem_scenarios.empty()) {
    fr = solve_batch(model, fem_scenarios, options);
    fem_doc = solve_result_json(model, fem_scenarios, fr);
  }
  const auto t2 = std::chrono::steady_clock::now();
  if (!args.quiet)
    std::cerr << "doppel: surrogate (" << sur->device() << ") " << scenarios.size() - fem.size() << " scenario(s) in "
              << std::chrono::duration<double>(t1 - t0).count() << " s; fem " << fem.size() << " scenario(s) in "
              << std::chrono::duration<double>(t2 - t1).count() << " s\n";
  nlohmann::ordered_json doc;
  doc["twin"] = twin.name;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  size_t next_fem = 0;
  for (size_t s = 0; s < scenarios.size(); ++s) {
    if (!reason[s].empty()) {
      nlohmann::ordered_json item = fem_doc["scenarios"][next_fem++];
      item["fallback"] = reason[s];
      item["surrogate_estimate"] = number(b.estimate[s]);
      list.push_back(item);
      continue;
    }
    nlohmann::ordered_json item;
    item["id"] = scenarios[s].id;
    nlohmann::ordered_json ps = nlohmann::ordered_json::object();
    for (size_t k = 0; k < twin.parameters.size(); ++k) ps[twin.parameters[k].name] = params[s][k];
    item["parameters"] = ps;
    nlohmann::ordered_json outs = nlohmann::ordered_json::object(), spread = nlohmann::ordered_json::object();
    for (size_t o = 0; o < twin.outputs.size(); ++o) {
      if (transient) {
        nlohmann::ordered_json series = nlohmann::ordered_json::array();
        for (const auto& at_time : tb[s].outputs) series.push_back(number(at_time[o]));
        outs[twin.outputs[o].name] = series;
      } else {
        outs[twin.outputs[o].name] = number(b.output(s, o));
        spread[twin.outputs[o].name] = number(b.spread[s * b.outputs_per_scenario + o]);
      }
    }
    item["outputs"] = outs;
    item["fidelity"] = "surrogate";
    item["error_estimate"] = number(b.estimate[s]);
    if (transient) {
      nlohmann::ordered_json series = nlohmann::ordered_json::array();
      for (double e : tb[s].estimate) series.push_back(number(e));
      item["error_estimates"] = series;  // per output time; error_estimate is their maximum
    } else {
      item["spread"] = spread;
    }
    list.push_back(item);
  }
  doc["scenarios"] = list;
  doc["times"] = transient ? nlohmann::ordered_json(twin.analysis.output_times) : nlohmann::ordered_json(nullptr);
  doc["surrogate"] = {{"bundle", args.bundle}, {"fidelity", fidelity}, {"tolerance", args.tolerance},
                      {"answered", scenarios.size() - fem.size()}, {"fem", fem.size()}};
  if (!args.vtu.empty()) {
    if (options.keep_first_fields && fr.first_fields) {
      write_vtu(model, *fr.first_fields, args.vtu);
    } else if (transient) {
      const auto f = sur->evaluate_transient({scenarios[0]}, true);
      FieldSnapshot snap;
      snap.parameters = params[0];
      snap.time = twin.analysis.output_times.back();
      snap.T.assign(f[0].T.back().data(), f[0].T.back().data() + f[0].T.back().size());
      write_vtu(model, snap, args.vtu);
    } else {
      const SurrogateBatch f = sur->evaluate({params[0]}, true);
      FieldSnapshot snap;
      snap.parameters = params[0];
      snap.T = f.T;
      snap.u = f.u;
      write_vtu(model, snap, args.vtu);
    }
    if (!args.quiet) std::cerr << "doppel: wrote " << args.vtu << " (scenario " << scenarios[0].id << ")\n";
  }
  return doc;
}

}  // namespace doppel::app
