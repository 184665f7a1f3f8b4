#include "apps/solve_command.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "kernels/backend.hpp"
#include "kernels/executor.hpp"
#include "kernels/host/parallel.hpp"
#include "kernels/io/vtu_writer.hpp"
#include "api/answer_format.hpp"
#include "apps/train_command.hpp"
#include "spec/errors.hpp"
#include "spec/json_reader.hpp"
#include "surrogate/fidelity.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel::app {

BatchOptions batch_options_for(Backend backend, const std::string& solver, double rtol) {
  DOPPEL_VERIFY(rtol > 0 && rtol < 1e-2, "--rtol", "must lie in (0, 1e-2)");
  BatchOptions options;
  options.backend = backend;
  options.solver.rtol = rtol;
  if (solver == "auto") {
    options.linear = backend == Backend::cuda ? LinearSolver::cg : LinearSolver::direct;
  } else if (solver == "direct" || solver == "amg") {
    DOPPEL_VERIFY(backend == Backend::host, "--solver",
                  solver + " runs on the host only: use --backend cpu, or --solver cg");
    options.linear = LinearSolver::direct;
    options.solver.preconditioner = solver == "direct" ? Preconditioner::cholesky : Preconditioner::amg;
  } else if (solver == "cg") {
    options.linear = LinearSolver::cg;
  } else {
    throw InvalidInput("--solver", "must be auto, direct, amg or cg (got \"" + solver + "\")");
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
  const Fidelity fidelity = parse_fidelity(args.fidelity.empty() ? (args.bundle.empty() ? "fem" : "auto") : args.fidelity,
                                           "--fidelity");
  DOPPEL_VERIFY(fidelity == Fidelity::fem || !args.bundle.empty(), "--fidelity",
                std::string(fidelity_name(fidelity)) + " needs --bundle");
  DOPPEL_VERIFY(args.tolerance > 0 && std::isfinite(args.tolerance), "--tolerance", "must be a positive number");
  const auto t0 = std::chrono::steady_clock::now();
  spec::TwinSpec twin = spec::load_twin(args.twin);
  std::vector<spec::Scenario> scenarios =
      args.scenarios.empty() ? std::vector<spec::Scenario>{spec::scenario_from_assignments(twin, args.sets)}
                             : spec::load_scenarios(twin, args.scenarios);
  FemModel model(std::move(twin));
  for (const auto& w : model.warnings()) std::cerr << "doppel: warning: " << w << "\n";
  const bool show = !args.quiet && scenarios.size() > 1;
  if (!args.quiet)
    std::cerr << "doppel: " << model.twin().name << ": " << model.mesh().num_nodes() << " nodes, "
              << model.mesh().num_cells() << " cells, " << scenarios.size() << " scenario(s), "
              << Executor::create(backend)->description() << "\n";
  if (show || model.transient())
    options.progress = [&](const std::string& stage, size_t done, size_t total) {
      if (!args.quiet) std::cerr << "doppel: " << stage << " " << done << "/" << total << "\n";
    };
  std::unique_ptr<Surrogate> sur;
  if (fidelity != Fidelity::fem)
    sur = Surrogate::load(args.bundle, model, inference_device(args.device, backend == Backend::cuda));
  AnswerOptions answer;
  answer.fidelity = fidelity;
  answer.tolerance = args.tolerance;
  DOPPEL_VERIFY(!args.one_fidelity || fidelity != Fidelity::fem, "--one-fidelity",
                "applies to --fidelity auto and surrogate only (fem is one fidelity already)");
  answer.one_fidelity = args.one_fidelity;
  if (!args.output_tolerances.empty()) {
    DOPPEL_VERIFY(fidelity == Fidelity::automatic, "--output-tolerance", "applies to --fidelity auto only");
    std::vector<std::pair<std::string, double>> named;
    for (const std::string& a : args.output_tolerances) {
      const auto eq = a.find('=');
      DOPPEL_VERIFY(eq != std::string::npos && eq > 0, "--output-tolerance", "expected NAME=VALUE, got \"" + a + "\"");
      const std::string value = a.substr(eq + 1);
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      DOPPEL_VERIFY(!value.empty() && end && *end == '\0', "--output-tolerance." + a.substr(0, eq),
                    "'" + value + "' is not a number");
      named.emplace_back(a.substr(0, eq), v);
    }
    answer.output_tolerances = parse_output_tolerances(model.twin(), named, "--output-tolerance");
  }
  answer.batch = options;
  answer.first_fields = !args.vtu.empty();
  const auto t1b = std::chrono::steady_clock::now();
  const AnswerSet set = answer_scenarios(model, sur.get(), scenarios, answer);
  const auto t2 = std::chrono::steady_clock::now();
  if (!args.quiet) {
    std::cerr << "doppel: setup " << std::chrono::duration<double>(t1b - t0).count() << " s, answers "
              << std::chrono::duration<double>(t2 - t1b).count() << " s";
    if (sur) std::cerr << " (surrogate on " << sur->device() << ": " << set.surrogate_answers << ", fem: " << set.fem_answers << ")";
    std::cerr << ", " << set.factorizations << " factorization(s)";
    if (set.operator_bytes > 0)
      std::cerr << "; operators " << set.operator_bytes / 1048576 << " MiB, factors and multigrid "
                << set.preconditioner_bytes / 1048576 << " MiB";
    std::cerr << "\n";
  }
  if (!args.vtu.empty() && set.first_fields) {
    write_vtu(model, *set.first_fields, args.vtu);
    if (!args.quiet) std::cerr << "doppel: wrote " << args.vtu << " (scenario " << scenarios[0].id << ")\n";
  }
  nlohmann::ordered_json doc = api::answers_json(model, scenarios, set);
  if (sur)
    doc["surrogate"] = {{"bundle", args.bundle}, {"fidelity", fidelity_name(fidelity)}, {"tolerance", args.tolerance},
                        {"answered", set.surrogate_answers}, {"fem", set.fem_answers}};
  doc["backend"] = backend_name(backend);
  const std::string text = doc.dump(2) + "\n";
  if (args.output.empty()) {
    std::cout << text;
  } else {
    spec::write_text_file(args.output, text, "--output");
    if (!args.quiet) std::cerr << "doppel: wrote " << args.output << "\n";
  }
  return 0;
}

}  // namespace doppel::app
