// The training pipeline: sample parameters, solve, POD, train the network ensemble, calibrate
// the error estimate, validate on held-out solves, and write the bundle.
//
//   training samples    Halton sequence (scrambled by a seeded shift) inside the bounds
//   calibration samples uniform random, never trained on: calibrate the error estimate
//   test samples        uniform random, never trained on or calibrated with: validation.json
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/solvers/scenario_batch.hpp"
#include "surrogate/surrogate.hpp"

namespace doppel {

// Finite-element snapshots of steady training solves, by parameter vector: adaptive rounds
// retrain on the solves of earlier rounds without solving them again.
struct SnapshotCache {
  struct Steady {
    std::vector<double> T, u, outputs;
  };
  std::map<std::vector<double>, Steady> steady;
};

struct TrainOptions {
  // 0: the default, 512 / 128 / 128 for steady twins, 48 / 40 / 24 transient runs (40: the
  // conformal quantile at 97.5 % of one score per run is then the largest, not past it).
  int samples = 0;         // training solves (the network's own validation split included)
  int calibration = 0;     // held-out solves that calibrate the error estimate
  int test = 0;            // held-out solves reported in validation.json
  uint64_t seed = 2026;
  BatchOptions batch;      // backend and solver of the snapshot solves
  PodOptions pod;
  MlpShape network;        // inputs and outputs are filled in
  MlpTrainOptions fit;
  double coverage = 0.975; // estimate >= true error on this fraction of the calibration set
  double hot_spot_margin = 0.02;
  // Training bounds narrower than the twin's, NAME -> (min, max): the surrogate covers that
  // envelope only; scenarios outside it are answered by FEM.
  std::map<std::string, std::pair<double, double>> ranges;
  std::string device = "cpu";
  std::function<void(const std::string&)> log;  // progress lines
  // Adaptive training (adaptive_target > 0): after each round, the calibrated field estimate is
  // evaluated on a pool of candidate parameter points (uniform random, max(512, 8 x samples),
  // never the calibration or test points); the candidates with the largest estimates, spread
  // apart, become new training samples, and the surrogate is trained again, until every pool
  // estimate is at most the target or the training samples reach max_samples (0: 4 x samples).
  // Each round retrains the network on every sample (steady solves are not repeated: cache).
  double adaptive_target = 0;
  int max_samples = 0;
  int adaptive_rounds = 8;  // at most this many rounds; two rounds without improvement also stop
                            // (the round with the best pool estimates is kept)
  // Training samples beyond the Halton points (what adaptive rounds add).
  std::vector<std::vector<double>> extra_samples;
  std::shared_ptr<SnapshotCache> cache;  // steady snapshots already solved (adaptive rounds)
};

struct TrainResult {
  std::unique_ptr<Surrogate> surrogate;
  nlohmann::json training;    // what was done, how long it took
  nlohmann::json validation;  // validation.json
};

// Points 0, 1, ... of the Halton sequence in [0,1)^dim (radical inverses in the first primes),
// shifted modulo 1 by a seeded random vector (so no point sits on the boundary by design).
std::vector<std::vector<double>> halton(size_t count, size_t dim, uint64_t seed);

// One training (options.adaptive_target == 0), or adaptive rounds of them; the result's
// training JSON then holds "adaptive": the rounds with their sample counts and pool estimates.
TrainResult train_surrogate(const FemModel& model, const TrainOptions& options);

// Errors of surrogate answers against finite-element solutions of the same scenarios
// (validation.json's body). reference_T / reference_u hold one field per scenario.
nlohmann::json validate_surrogate(const Surrogate& surrogate, const std::vector<Params>& params,
                                  const std::vector<std::vector<double>>& reference_outputs,
                                  const std::vector<std::vector<double>>& reference_T,
                                  const std::vector<std::vector<double>>& reference_u);

}  // namespace doppel
