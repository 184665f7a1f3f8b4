// The doppel command line. Thin: parses arguments and calls into the rooms; one place maps
// error types to exit codes.
#include <iostream>

#include <CLI/CLI.hpp>

#include "apps/solve_command.hpp"
#include "benchmarks/fem_bench.hpp"
#include "spec/errors.hpp"

namespace {

// Exit codes: 2 bad input, 3 backend not available, 4 solver failure, 1 anything else.
int report(const std::exception& e) {
  if (const auto* in = dynamic_cast<const doppel::InvalidInput*>(&e)) {
    std::cerr << "doppel: error: " << in->what() << "\n";
    return 2;
  }
  if (dynamic_cast<const doppel::NotCompiled*>(&e) || dynamic_cast<const doppel::Unavailable*>(&e)) {
    std::cerr << "doppel: error: " << e.what() << "\n";
    return 3;
  }
  if (dynamic_cast<const doppel::SolverDiverged*>(&e)) {
    std::cerr << "doppel: solver error: " << e.what() << "\n";
    return 4;
  }
  std::cerr << "doppel: error: " << e.what() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"doppel: finite-element digital twins, batched scenarios"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "doppel 0.1.0");

  doppel::app::SolveArgs solve;
  auto* s = app.add_subcommand("solve", "solve a twin for one scenario or a batch of scenarios");
  s->add_option("twin", solve.twin, "twin definition (twin.json)")->required();
  s->add_option("--set", solve.sets, "parameter value NAME=VALUE (repeatable)");
  s->add_option("--scenarios", solve.scenarios, "scenario file {\"scenarios\": [...]}, solved as one batch");
  s->add_option("--backend", solve.backend, "auto, cpu or cuda")->capture_default_str();
  s->add_option("--solver", solve.solver,
                "linear solver: auto (direct on cpu, cg on cuda), direct (CHOLMOD, cpu only) or cg "
                "(batched Jacobi CG, the CUDA algorithm)")
      ->capture_default_str();
  s->add_option("--rtol", solve.rtol, "relative residual of iterative solves")->capture_default_str();
  s->add_option("--vtu", solve.vtu, "write the first scenario's fields to this VTU file");
  s->add_option("--output", solve.output, "write the JSON result here instead of stdout");
  s->add_option("--threads", solve.threads, "host threads (default: all cores)");
  s->add_flag("--quiet", solve.quiet, "no progress on stderr");

  auto* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  doppel::bench::FemBenchArgs fem;
  auto* bf = bench->add_subcommand("fem", "finite-element assembly, factorization and batched solves");
  bf->add_option("--twin", fem.twin, "example twin to include")->capture_default_str();
  bf->add_option("--box-cells", fem.box_cells,
                 "cells per side of each 3D P1 box (46: ~10^5 nodes, 99: ~10^6 nodes; 0: none)")
      ->delimiter(',')
      ->capture_default_str();
  bf->add_option("--rtol", fem.rtol, "relative residual of the iterative solves")->capture_default_str();
  bf->add_option("--export", fem.export_dir, "write each problem's linear system as .npy (benchmarks/peers)");
  bf->add_flag("!--no-end-to-end", fem.end_to_end, "skip the end-to-end solve_batch timings");
  bf->add_option("--batches", fem.batches, "batch sizes")->delimiter(',')->capture_default_str();
  bf->add_option("--max-seconds", fem.max_seconds, "skip a case predicted to take longer")->capture_default_str();
  bf->add_option("--backend", fem.backend, "auto, cpu or cuda")->capture_default_str();
  bf->add_option("--output", fem.output, "write the JSON results here");
  bf->add_option("--threads", fem.threads, "host threads (default: all cores)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (s->parsed()) return doppel::app::run_solve(solve);
    if (bf->parsed()) return doppel::bench::run_fem_bench(fem);
  } catch (const std::exception& e) {
    return report(e);
  }
  return 0;
}
