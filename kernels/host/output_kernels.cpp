// Host (reference) implementation of the batched output kernels (kernels/fem/output_kernels.hpp):
// rows split across host threads, the scenarios of a row innermost. Reductions merge per-thread
// partials in a fixed order, so results do not depend on timing.
#include "kernels/fem/output_kernels.hpp"

#include <algorithm>
#include <vector>

#include "kernels/host/parallel.hpp"

namespace doppel::host {
namespace {

// body(begin, end) over `count` items in at most host_threads() contiguous ranges of at least
// `grain` items each.
template <class Body>
void ranges_parallel(size_t count, size_t grain, Body&& body) {
  const size_t chunks = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(host_threads()), count / grain + 1));
  parallel_for(chunks, [&](size_t c) { body(count * c / chunks, count * (c + 1) / chunks); });
}

}  // namespace

void broadcast_rows(const Executor&, int rows, int width, const double* v, double* z, int ldz) {
  ranges_parallel(static_cast<size_t>(rows), 1024, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) std::fill(z + i * static_cast<size_t>(ldz), z + i * static_cast<size_t>(ldz) + width, v[i]);
  });
}

void csr_multiply_add(const Executor&, const CsrView& A, int width, const double* x, int ldx, double* z,
                      int ldz) {
  // Panels of kPanel columns accumulated in registers: one read of a row serves the panel, and
  // each stored entry is one multiply-add over contiguous columns.
  constexpr int kPanel = 16;
  ranges_parallel(static_cast<size_t>(A.rows), 256, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      double* zi = z + i * static_cast<size_t>(ldz);
      const int first = A.row_ptr[i], last = A.row_ptr[i + 1];
      for (int c0 = 0; c0 < width; c0 += kPanel) {
        const int w = std::min(kPanel, width - c0);
        double acc[kPanel] = {};
        if (w == kPanel) {
          for (int k = first; k < last; ++k) {
            const double v = A.values[k];
            const double* xk = x + static_cast<size_t>(A.col[k]) * static_cast<size_t>(ldx) + c0;
            for (int c = 0; c < kPanel; ++c) acc[c] += v * xk[c];
          }
        } else {
          for (int k = first; k < last; ++k) {
            const double v = A.values[k];
            const double* xk = x + static_cast<size_t>(A.col[k]) * static_cast<size_t>(ldx) + c0;
            for (int c = 0; c < w; ++c) acc[c] += v * xk[c];
          }
        }
        for (int c = 0; c < w; ++c) zi[c0 + c] += acc[c];
      }
    }
  });
}

void reduce_outputs(const Executor&, const OutputReduction* specs, int outputs, int, const double* weights,
                    const double* z, int ldz, int width, double* values) {
  const size_t W = static_cast<size_t>(width);
  for (int k = 0; k < outputs; ++k) {
    const OutputReduction& o = specs[k];
    const auto f = static_cast<SiteFunction>(o.function);
    const auto r = static_cast<SiteReduction>(o.reduce);
    const size_t sites = static_cast<size_t>(o.sites);
    const size_t chunks = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(host_threads()), sites / 512 + 1));
    std::vector<double> partial(chunks * W);
    parallel_for(chunks, [&](size_t c) {
      double* acc = partial.data() + c * W;
      std::fill(acc, acc + W, reduction_start(r));
      for (size_t l = sites * c / chunks; l < sites * (c + 1) / chunks; ++l) {
        const double w = r == SiteReduction::mean ? weights[o.weights + l] : 1.0;
        const double* row = z + (o.offset + l * static_cast<size_t>(o.components)) * static_cast<size_t>(ldz);
        for (size_t s = 0; s < W; ++s)
          acc[s] = reduction_fold(r, acc[s], site_function_value(f, row + s, o.components, static_cast<size_t>(ldz)), w);
      }
    });
    double* out = values + static_cast<size_t>(k) * W;
    for (size_t s = 0; s < W; ++s) {
      double a = partial[s];
      for (size_t c = 1; c < chunks; ++c) a = reduction_merge(r, a, partial[c * W + s]);
      out[s] = reduction_finish(r, a, o.weight_sum);
    }
  }
}

}  // namespace doppel::host
