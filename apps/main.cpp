// The doppel command line. Thin: parses arguments and calls into the rooms; one place maps
// error types to exit codes.
#include <iostream>

#include <CLI/CLI.hpp>

#include "apps/plant_command.hpp"
#include "apps/serve_command.hpp"
#include "apps/solve_command.hpp"
#include "apps/train_command.hpp"
#include "benchmarks/fem_bench.hpp"
#include "benchmarks/surrogate_bench.hpp"
#include "kernels/executor.hpp"
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
                "linear solver: auto (cpu: CHOLMOD factors, multigrid CG for large 3D heat problems; "
                "cuda: cg), direct (CHOLMOD factors only, cpu), amg (multigrid-preconditioned CG "
                "wherever CG runs, cpu) or cg (batched Jacobi CG, the CUDA algorithm)")
      ->capture_default_str();
  s->add_option("--rtol", solve.rtol, "relative residual of iterative solves")->capture_default_str();
  s->add_option("--vtu", solve.vtu, "write the first scenario's fields to this VTU file");
  s->add_option("--output", solve.output, "write the JSON result here instead of stdout");
  s->add_option("--threads", solve.threads, "host threads (default: all cores)");
  s->add_flag("--quiet", solve.quiet, "no progress on stderr");
  s->add_option("--bundle", solve.bundle, "surrogate bundle (from doppel train)");
  s->add_option("--fidelity", solve.fidelity,
                "fem, surrogate or auto (surrogate where its error estimate is within --tolerance, "
                "FEM for the rest; surrogate: the surrogate's tiers only); default auto with --bundle, else fem");
  s->add_option("--tolerance", solve.tolerance,
                "auto and surrogate: largest accepted error estimate (relative L2 of the field) of a tier before the next")
      ->capture_default_str();
  s->add_option("--output-tolerance", solve.output_tolerances,
                 "auto: NAME=VALUE, the largest accepted error estimate of output NAME in its units (repeatable); "
                 "a scenario above it goes to the next tier, FEM last");
  s->add_flag("--one-fidelity", solve.one_fidelity,
              "auto, surrogate: answer the whole batch at one fidelity, the highest any scenario needs (FEM for all "
              "when one falls back under auto; the reduced tier for all when one needs it), so optimizers see one model");
  s->add_option("--device", solve.device, "surrogate inference device: auto, cpu or cuda")->capture_default_str();

  doppel::app::TrainArgs train;
  auto* t = app.add_subcommand("train", "train a twin's surrogate from finite-element solves and write a bundle");
  t->add_option("twin", train.twin, "twin definition (twin.json)")->required();
  t->add_option("--out", train.out, "bundle directory to write")->required();
  t->add_option("--samples", train.samples, "training solves (Halton sequence; default 512, transient 48)");
  t->add_option("--calibration", train.calibration, "held-out solves calibrating the error estimate (default 128, transient 40)");
  t->add_option("--test", train.test, "held-out solves reported in validation.json (default 128, transient 40)");
  t->add_option("--seed", train.seed, "sampling and initialisation seed")->capture_default_str();
  t->add_option("--backend", train.backend, "FE solves: auto, cpu or cuda")->capture_default_str();
  t->add_option("--solver", train.solver, "FE linear solver: auto, direct, amg or cg")->capture_default_str();
  t->add_option("--device", train.device, "network inference device: auto, cpu or cuda")->capture_default_str();
  t->add_option("--epochs", train.epochs, "largest number of training epochs")->capture_default_str();
  t->add_option("--members", train.members, "networks in the ensemble")->capture_default_str();
  t->add_option("--hidden", train.hidden, "hidden layer widths")->delimiter(',')->capture_default_str();
  t->add_option("--max-rank", train.max_rank, "largest POD rank per field")->capture_default_str();
  t->add_option("--adaptive", train.adaptive,
                 "adaptive training: add samples where the calibrated field estimate of a candidate pool is largest, "
                 "round by round, until every pool estimate is at most this (relative L2) or --max-samples is reached");
  t->add_option("--max-samples", train.max_samples, "budget of training samples for --adaptive (default 4 x --samples)");
  t->add_option("--range", train.ranges, "train over NAME=MIN:MAX inside the parameter's bounds (repeatable)");
  t->add_option("--threads", train.threads, "host threads (default: all cores)");
  t->add_flag("--quiet", train.quiet, "no progress on stderr");

  doppel::app::ServeArgs serve;
  auto* sv = app.add_subcommand("serve", "serve twins and their surrogates over HTTP");
  sv->add_option("--twin", serve.twins, "twin definition (repeatable)")->required();
  sv->add_option("--bundle", serve.bundles, "surrogate bundle, attached to the twin it was trained for (repeatable)");
  sv->add_option("--host", serve.host, "address to listen on")->capture_default_str();
  sv->add_option("--port", serve.port, "port (0: any free port, printed at start)")->capture_default_str();
  sv->add_option("--backend", serve.backend, "FE solves: auto, cpu or cuda")->capture_default_str();
  sv->add_option("--device", serve.device, "surrogate inference: auto, cpu or cuda")->capture_default_str();
  sv->add_option("--config", serve.config, "server.json: bearer tokens and scopes, TLS, limits, batching, jobs");
  sv->add_option("--max-sync", serve.max_sync, "largest batch answered at once; larger ones become jobs (default 1000)");
  sv->add_option("--max-body-mb", serve.max_body_mb, "largest request body in MiB (default 64)");
  sv->add_option("--batching", serve.batching, "gather concurrent requests into one device batch: on|off (default on)");
  sv->add_option("--max-batch", serve.max_batch, "scenarios per gathered batch (default 4096)");
  sv->add_option("--max-queue-delay-ms", serve.max_queue_delay_ms, "longest a request waits for others (default 2)");
  sv->add_option("--db", serve.database, "SQLite file of jobs, results and observations (default doppel.sqlite)");
  sv->add_option("--threads", serve.threads, "host threads for FE solves (default: all cores)");
  sv->add_flag("--quiet", serve.quiet, "no per-request log lines");

  doppel::app::PlantArgs plant;
  auto* pl = app.add_subcommand("plant", "the virtual plant: posts readings of a simulated asset to a server");
  pl->add_option("--twin", plant.twin, "twin definition")->required();
  pl->add_option("--server", plant.server, "the doppel server")->capture_default_str();
  pl->add_option("--token", plant.token, "bearer token (scopes ingest and read)");
  pl->add_option("--seed", plant.seed, "random seed (hidden truth, noise, events)")->capture_default_str();
  pl->add_option("--speed", plant.speed, "simulated seconds per wall second")->capture_default_str();
  pl->add_option("--duration", plant.duration, "simulated seconds to run")->capture_default_str();
  pl->add_option("--step", plant.step, "simulated seconds between readings")->capture_default_str();
  pl->add_option("--set", plant.sets,
                 "start a hidden parameter at NAME=VALUE (repeatable; default: random mid-range values from the seed; "
                 "a control: the asset's setting until the server desires another)");
  pl->add_option("--drift", plant.drift, "hidden parameters' drift per sqrt(hour), fraction of the range")->capture_default_str();
  pl->add_option("--truth", plant.truth, "write the hidden truth here (NDJSON, one line per step)");
  pl->add_option("--fault", plant.fault, "sensor fault SENSOR[:FROM:TO[:OFFSET]], auto or none")->capture_default_str();
  pl->add_option("--dropout", plant.dropout, "sensor dropout SENSOR[:FROM:TO], auto or none")->capture_default_str();
  pl->add_option("--start", plant.start, "RFC 3339 start of simulated time");
  pl->add_flag("--quiet", plant.quiet, "no progress lines");

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
  bf->add_flag("!--no-preconditioners", fem.preconditioners, "skip the Cholesky-against-multigrid timings");
  bf->add_flag("!--no-linear", fem.linear, "skip the timings of the linear solves alone");
  bf->add_option("--regimes", fem.regimes,
                 "end-to-end regimes to time, each a part of a regime's name (\"one rhs\", \"varies\"; default: all)")
      ->delimiter(',');
  bf->add_option("--batches", fem.batches, "batch sizes")->delimiter(',')->capture_default_str();
  bf->add_option("--max-seconds", fem.max_seconds, "skip a case predicted to take longer")->capture_default_str();
  bf->add_option("--backend", fem.backend, "auto, cpu or cuda")->capture_default_str();
  bf->add_option("--output", fem.output, "write the JSON results here");
  bf->add_option("--threads", fem.threads, "host threads (default: all cores)");
  bf->add_option("--memory-limit-mb", fem.memory_limit_mb,
                 "working memory of one batched solve in MiB (default: the executor's budget, "
                 "DOPPEL_MEMORY_FRACTION of its memory)");
  doppel::bench::SurrogateBenchArgs sb;
  auto* bs = bench->add_subcommand("surrogate", "surrogate throughput against FE solves of the same scenarios");
  bs->add_option("--twin", sb.twin, "twin definition")->capture_default_str();
  bs->add_option("--bundle", sb.bundle, "the twin's bundle (doppel train)")->required();
  bs->add_option("--batches", sb.batches, "batch sizes")->delimiter(',')->capture_default_str();
  bs->add_option("--fem-max", sb.fem_max, "FE solves per batch size at most")->capture_default_str();
  bs->add_option("--fields-max", sb.fields_max, "largest batch also timed with full fields")->capture_default_str();
  bs->add_option("--backend", sb.backend, "FE backend: auto, cpu or cuda")->capture_default_str();
  bs->add_option("--device", sb.device, "surrogate device: auto, cpu or cuda")->capture_default_str();
  bs->add_option("--repeats", sb.repeats, "timings per batch (best kept)")->capture_default_str();
  bs->add_option("--output", sb.output, "write the JSON results here");
  bs->add_option("--threads", sb.threads, "host threads (default: all cores)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    // The environment is read where it is first needed, deep in a solve: check it here, so a
    // bad value stops the command at once (exit 2) instead of failing requests later.
    doppel::memory_fraction();
    if (s->parsed()) return doppel::app::run_solve(solve);
    if (bf->parsed()) return doppel::bench::run_fem_bench(fem);
    if (t->parsed()) return doppel::app::run_train(train);
    if (sv->parsed()) return doppel::app::run_serve(serve);
    if (pl->parsed()) return doppel::app::run_plant(plant);
    if (bs->parsed()) return doppel::bench::run_surrogate_bench(sb);
  } catch (const std::exception& e) {
    return report(e);
  }
  return 0;
}
