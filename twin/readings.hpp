// Whether a sensor reading can be a measurement of the asset at all, before it is stored or
// analysed: one absurd value (1e155 degC) must not reach the ensemble Kalman filter, whose
// analysis of it is not finite.
#pragma once

#include <optional>
#include <string>

#include "kernels/fem/fem_model.hpp"

namespace doppel::twin {

class ReadingCheck {
 public:
  explicit ReadingCheck(const FemModel& model);
  // Why sensor k's `value` cannot be a reading (nullopt: plausible): outside the sensor's
  // declared range, or outside what its quantity can physically be in this body
  // (spec::plausible_range with the mesh's bounding-box diagonal).
  std::optional<std::string> problem(size_t sensor, double value) const;

 private:
  const spec::TwinSpec& twin_;
  double length_ = 0;  // the mesh's bounding-box diagonal
};

}  // namespace doppel::twin
