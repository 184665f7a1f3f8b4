// The second step of an output (kernels/fem/outputs.hpp), shared by the host evaluator and the
// batched output kernels of both backends (kernels/fem/output_kernels.hpp): a site's value from
// its components (identity, norm, von Mises), then the reduction over the sites (max, min,
// weighted mean; a probe has one site).
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/host_device.hpp"

namespace doppel {

// How a site's components become the quantity's value.
enum class SiteFunction { identity, norm, von_mises };
// How an output's site values become its value (spec::Reduction's order).
enum class SiteReduction { none, max, min, mean };

// s: xx yy zz xy yz xz, `stride` apart.
DOPPEL_HOST_DEVICE inline double von_mises(const double* s, size_t stride = 1) {
  const double xx = s[0], yy = s[stride], zz = s[2 * stride];
  const double xy = s[3 * stride], yz = s[4 * stride], xz = s[5 * stride];
  const double a = xx - yy, b = yy - zz, c = zz - xx;
  return sqrt(0.5 * (a * a + b * b + c * c) + 3.0 * (xy * xy + yz * yz + xz * xz));
}

// The value of a site whose components are c[0], c[stride], ...
DOPPEL_HOST_DEVICE inline double site_function_value(SiteFunction f, const double* c, int components,
                                                     size_t stride = 1) {
  if (f == SiteFunction::identity) return c[0];
  if (f == SiteFunction::von_mises) return von_mises(c, stride);
  double s = 0;
  for (int a = 0; a < components; ++a) s += c[a * stride] * c[a * stride];
  return sqrt(s);
}

// Reductions as a fold: start from reduction_start, fold each site's value (times its weight
// for a mean), merge partial folds, and divide a mean by the sum of the weights at the end.
DOPPEL_HOST_DEVICE inline double reduction_start(SiteReduction r) {
  if (r == SiteReduction::max) return -HUGE_VAL;
  if (r == SiteReduction::min) return HUGE_VAL;
  return 0.0;
}
DOPPEL_HOST_DEVICE inline double reduction_fold(SiteReduction r, double acc, double value, double weight) {
  if (r == SiteReduction::max) return value > acc || value != value ? value : acc;  // NaN sticks
  if (r == SiteReduction::min) return value < acc || value != value ? value : acc;
  if (r == SiteReduction::mean) return acc + weight * value;
  return value;  // none: the one site
}
DOPPEL_HOST_DEVICE inline double reduction_merge(SiteReduction r, double a, double b) {
  if (r == SiteReduction::mean || r == SiteReduction::none) return a + b;  // none: one part holds the site
  return reduction_fold(r, a, b, 1.0);
}
DOPPEL_HOST_DEVICE inline double reduction_finish(SiteReduction r, double acc, double weight_sum) {
  return r == SiteReduction::mean ? acc / weight_sum : acc;
}

}  // namespace doppel
