// An ensemble of small multilayer perceptrons (tanh hidden layers, linear output) from
// normalized parameters to standardized POD coefficients, trained together (one batched
// graph, each member on its own train/validation split and initialisation) with Adam and
// early stopping on each member's validation loss. Weights are plain float arrays so the
// rest of the build never sees a torch type; surrogate/network.cpp holds the LibTorch code.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace doppel {

struct MlpShape {
  int inputs = 0;
  std::vector<int> hidden = {64, 64, 64};
  int outputs = 0;
  int members = 5;
  std::vector<int> widths() const;  // inputs, hidden..., outputs
};

// Layer l of member e: weight W[l] is [members][in][out], bias b[l] is [members][out].
struct MlpWeights {
  MlpShape shape;
  std::vector<std::vector<float>> W, b;
};

struct MlpTrainOptions {
  int max_epochs = 4000;
  int patience = 400;        // epochs without a better validation loss before a member stops
  double learning_rate = 3e-3;
  double final_learning_rate = 1e-4;  // cosine decay to this
  double weight_decay = 0.0;
  double validation_fraction = 0.2;
  // Weight of each output in the squared-error loss (empty: all equal). The trainer weights
  // POD coefficients by their energy so the loss tracks the field error.
  std::vector<float> output_weights;
  uint64_t seed = 1;
  // Called every `report_every` epochs and at the end: (epoch, train loss, validation loss).
  std::function<void(int, double, double)> progress;
  int report_every = 100;
};

struct MlpTrainReport {
  int epochs = 0;                  // epochs run
  std::vector<int> best_epoch;     // per member
  std::vector<double> validation;  // best validation MSE per member (standardized units)
  std::vector<double> train;       // training MSE at the best epoch per member
  double seconds = 0;
};

// X: N x inputs, Y: N x outputs, row-major.
MlpWeights train_mlp_ensemble(const std::vector<float>& X, const std::vector<float>& Y, size_t N,
                              const MlpShape& shape, const MlpTrainOptions& options,
                              MlpTrainReport* report = nullptr);

// Host forward pass of every member (the reference the engine is tested against):
// returns [members][N][outputs].
std::vector<float> mlp_forward(const MlpWeights& w, const std::vector<float>& X, size_t N);

// Version string of the LibTorch library built against ("1.13.0").
std::string torch_version();

}  // namespace doppel
