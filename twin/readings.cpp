#include "twin/readings.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace doppel::twin {

ReadingCheck::ReadingCheck(const FemModel& model) : twin_(model.twin()) {
  const Mesh& m = model.mesh();
  double sum = 0;
  for (int d = 0; d < 3; ++d) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (size_t i = 0; i < m.num_nodes(); ++i) {
      lo = std::min(lo, m.coords[3 * i + static_cast<size_t>(d)]);
      hi = std::max(hi, m.coords[3 * i + static_cast<size_t>(d)]);
    }
    if (hi > lo) sum += (hi - lo) * (hi - lo);
  }
  length_ = std::sqrt(sum);
}

std::optional<std::string> ReadingCheck::problem(size_t sensor, double value) const {
  const spec::Sensor& s = twin_.sensors.at(sensor);
  auto text = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (!std::isfinite(value)) return std::string("must be a finite number");
  if (s.range && (value < s.range->first || value > s.range->second))
    return "lies outside sensor '" + s.name + "''s measuring range [" + text(s.range->first) + ", " + text(s.range->second) + "]";
  const auto [lo, hi] = spec::plausible_range(s.quantity, length_);
  if (value < lo || value > hi)
    return std::string("cannot be a reading of ") + spec::quantity_name(s.quantity) + " here: it lies outside [" + text(lo) +
           ", " + text(hi) + "], what the quantity can physically be in this body";
  return std::nullopt;
}

}  // namespace doppel::twin
