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

struct TrainOptions {
  // 0: the default, 512 / 128 / 128 for steady twins, 48 / 24 / 24 transient runs.
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
};

struct TrainResult {
  std::unique_ptr<Surrogate> surrogate;
  nlohmann::json training;    // what was done, how long it took
  nlohmann::json validation;  // validation.json
};

// Points 0, 1, ... of the Halton sequence in [0,1)^dim (radical inverses in the first primes),
// shifted modulo 1 by a seeded random vector (so no point sits on the boundary by design).
std::vector<std::vector<double>> halton(size_t count, size_t dim, uint64_t seed);

TrainResult train_surrogate(const FemModel& model, const TrainOptions& options);

// Errors of surrogate answers against finite-element solutions of the same scenarios
// (validation.json's body). reference_T / reference_u hold one field per scenario.
nlohmann::json validate_surrogate(const Surrogate& surrogate, const std::vector<Params>& params,
                                  const std::vector<std::vector<double>>& reference_outputs,
                                  const std::vector<std::vector<double>>& reference_T,
                                  const std::vector<std::vector<double>>& reference_u);

}  // namespace doppel
