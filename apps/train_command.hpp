// `doppel train`: train a twin's surrogate and write its bundle.
#pragma once

#include <string>
#include <vector>

namespace doppel::app {

struct TrainArgs {
  std::string twin;
  std::string out;
  int samples = 0;      // 0: 512 steady, 48 transient
  int calibration = 0;  // 0: 128 steady, 24 transient
  int test = 0;         // 0: 128 steady, 24 transient
  unsigned long seed = 2026;
  std::string backend = "auto";
  std::string solver = "auto";
  std::string device = "auto";  // inference device of the calibration and validation passes
  int epochs = 4000;
  int members = 5;
  std::vector<int> hidden = {64, 64, 64};
  int max_rank = 40;
  double adaptive = 0;     // > 0: adaptive training to this field estimate (relative L2)
  int max_samples = 0;     // adaptive budget of training samples (0: 4 x samples)
  std::vector<std::string> ranges;  // NAME=MIN:MAX
  int threads = 0;
  bool quiet = false;
};

int run_train(const TrainArgs& args);

// "auto" -> "cuda" when LibTorch sees a CUDA device and the backend is CUDA, else "cpu".
std::string inference_device(const std::string& choice, bool cuda_backend);

}  // namespace doppel::app
