// CUDA implementation of the batched CG kernels (kernels/solvers/batched_cg_kernels.hpp).
//
// Multi-vector kernels use 2D blocks: threadIdx.x runs over scenarios (up to 32, so a warp
// reads 32 consecutive scenarios of one row: coalesced), threadIdx.y over rows, with a
// grid-stride loop over rows so per-scenario reductions end in one shared-memory reduction
// and a few hundred atomic adds per scenario rather than one per row block. The per-element
// arithmetic is the shared host-device code of kernels/solvers/batched_cg_math.hpp; the operator
// application is hand-written here for small term counts (theta in registers), which no
// library offers for an affine family of operators.
#include "kernels/solvers/batched_cg_kernels.hpp"
#include "kernels/cuda/cuda_executor.cuh"

#include <algorithm>

namespace doppel::cuda {
namespace {

constexpr int kThreads = 256;

struct Layout {
  dim3 grid, block;
};

Layout layout_2d(const CudaExecutor& exec, int rows, int width) {
  int bx = 1;
  while (bx < width && bx < 32) bx *= 2;
  const int by = kThreads / bx;
  const int gy = (width + bx - 1) / bx;
  const long row_blocks = (static_cast<long>(rows) + by - 1) / by;
  const long target = std::max<long>(1, static_cast<long>(exec.multiprocessors()) * 16 / std::max(gy, 1));
  const long gx = std::max<long>(1, std::min(row_blocks, std::max<long>(target, 1)));
  return {dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by))};
}

Layout layout_1d(size_t n) {
  const size_t blocks = std::min<size_t>((n + kThreads - 1) / kThreads, 1u << 20);
  return {dim3(static_cast<unsigned>(std::max<size_t>(blocks, 1))), dim3(kThreads)};
}

// Sums `count` per-thread values over threadIdx.y and adds them to outs[a][s] (one atomic per
// scenario and block). Every thread of the block must call it.
template <int count>
__device__ void reduce_to_columns(const double (&values)[count], double* const (&outs)[count], int s,
                                  bool valid) {
  extern __shared__ double shared[];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int size = bx * by;
#pragma unroll
  for (int a = 0; a < count; ++a) shared[a * size + ty * bx + tx] = values[a];
  __syncthreads();
  for (int stride = by / 2; stride > 0; stride >>= 1) {
    if (ty < stride) {
#pragma unroll
      for (int a = 0; a < count; ++a) shared[a * size + ty * bx + tx] += shared[a * size + (ty + stride) * bx + tx];
    }
    __syncthreads();
  }
  if (ty == 0 && valid) {
#pragma unroll
    for (int a = 0; a < count; ++a)
      if (outs[a]) atomicAdd(outs[a] + s, shared[a * size + tx]);
  }
}

// Row i of A(theta_s) x with theta_s held in registers (K terms known at compile time).
template <int K>
__device__ double affine_row_fixed(const OperatorView& op, const double (&th)[K],
                                   const double* __restrict__ x, int ld, int s, int i) {
  if (op.constrained[i]) return x[at(i, s, ld)];
  double sum = 0.0;
  const int end = op.row_ptr[i + 1];
  for (int j = op.row_ptr[i]; j < end; ++j) {
    double a = 0.0;
#pragma unroll
    for (int k = 0; k < K; ++k) a += th[k] * __ldg(op.values + static_cast<size_t>(k) * op.nnz + static_cast<size_t>(j));
    sum += a * x[at(__ldg(op.col + j), s, ld)];
  }
  return sum;
}

template <int K>
__global__ void apply_affine_operator(OperatorView op, BatchView batch, const double* __restrict__ x,
                                      double* __restrict__ y, double* xy) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  const bool valid = s < batch.width && batch.state[s] == kActive;
  constexpr int kRegisters = K > 0 ? K : 1;
  double th[kRegisters];
  const double* theta_s = batch.theta + static_cast<size_t>(valid ? s : 0) * op.terms;
#pragma unroll
  for (int k = 0; k < kRegisters; ++k) th[k] = (valid && K > 0) ? theta_s[k] : 0.0;
  double dot = 0.0;
  if (valid) {
    for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < op.rows; i += gridDim.x * blockDim.y) {
      double v;
      if constexpr (K > 0) v = affine_row_fixed<K>(op, th, x, batch.width, s, i);
      else v = affine_row(op, theta_s, x, batch.width, s, i);
      y[at(i, s, batch.width)] = v;
      dot += x[at(i, s, batch.width)] * v;
    }
  }
  if (xy) {
    const double vals[1] = {dot};
    double* const outs[1] = {xy};
    reduce_to_columns<1>(vals, outs, s, valid);
  }
}

__global__ void cg_initialize_kernel(OperatorView op, BatchView batch, const double* __restrict__ b,
                                     double* __restrict__ r, double* __restrict__ p, double* rz,
                                     double* rr, double* bb) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  const bool valid = s < batch.width;
  double acc[3] = {0.0, 0.0, 0.0};
  if (valid) {
    const double* theta_s = batch.theta + static_cast<size_t>(s) * op.terms;
    for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < op.rows; i += gridDim.x * blockDim.y) {
      const size_t idx = at(i, s, batch.width);
      const double res = b[idx] - r[idx];
      const double z = res * jacobi_inverse(op, theta_s, i);
      r[idx] = res;
      p[idx] = z;
      acc[0] += res * z;
      acc[1] += res * res;
      acc[2] += b[idx] * b[idx];
    }
  }
  double* const outs[3] = {rz, rr, bb};
  reduce_to_columns<3>(acc, outs, s, valid);
}

__global__ void cg_update_solution_kernel(OperatorView op, BatchView batch, const double* pq,
                                          const double* rz, const double* __restrict__ p,
                                          const double* __restrict__ q, double* __restrict__ x,
                                          double* __restrict__ r, double* rz_new, double* rr) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  const bool valid = s < batch.width && batch.state[s] == kActive;
  double acc[2] = {0.0, 0.0};
  if (valid) {
    const double* theta_s = batch.theta + static_cast<size_t>(s) * op.terms;
    const double alpha = rz[s] / pq[s];
    const bool jacobi = rz_new != nullptr;
    for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < op.rows; i += gridDim.x * blockDim.y) {
      const CgPartial c = cg_update_solution_at(op, theta_s, alpha, p, q, x, r, at(i, s, batch.width), i, jacobi);
      acc[0] += c.rz;
      acc[1] += c.rr;
    }
  }
  double* const outs[2] = {rz_new, rr};
  reduce_to_columns<2>(acc, outs, s, valid);
}

__global__ void cg_update_directions_kernel(OperatorView op, BatchView batch, const double* beta,
                                            const double* __restrict__ r, const double* __restrict__ z,
                                            double* __restrict__ p) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  if (s >= batch.width || batch.state[s] != kActive) return;
  const double* theta_s = batch.theta + static_cast<size_t>(s) * op.terms;
  const double b = beta[s];
  for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < op.rows; i += gridDim.x * blockDim.y) {
    const size_t idx = at(i, s, batch.width);
    const double zi = z ? z[idx] : r[idx] * jacobi_inverse(op, theta_s, i);
    p[idx] = zi + b * p[idx];
  }
}

__global__ void cg_residual_kernel(int rows, int width, const double* __restrict__ b,
                                   double* __restrict__ r, double* rr, double* bb) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  const bool valid = s < width;
  double acc[2] = {0.0, 0.0};
  if (valid)
    for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < rows; i += gridDim.x * blockDim.y) {
      const size_t idx = at(i, s, width);
      const double res = b[idx] - r[idx];
      r[idx] = res;
      acc[0] += res * res;
      acc[1] += b[idx] * b[idx];
    }
  double* const outs[2] = {rr, bb};
  reduce_to_columns<2>(acc, outs, s, valid);
}

__global__ void dot_columns_kernel(int rows, BatchView batch, const double* __restrict__ a,
                                   const double* __restrict__ b, double* out) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  const bool valid = s < batch.width && batch.state[s] == kActive;
  double acc[1] = {0.0};
  if (valid)
    for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < rows; i += gridDim.x * blockDim.y) {
      const size_t idx = at(i, s, batch.width);
      acc[0] += a[idx] * b[idx];
    }
  double* const outs[1] = {out};
  reduce_to_columns<1>(acc, outs, s, valid);
}

__global__ void cg_check_kernel(int width, int iteration, double tol2, const double* pq,
                                const double* bb, const double* rr, int* state, int* iterations) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s < width) cg_check_at(s, iteration, tol2, pq, bb, rr, state, iterations);
}

__global__ void cg_start_kernel(int width, double tol2, double* bb, const double* rr, int* state,
                                int* iterations) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s < width) cg_start_at(s, tol2, bb, rr, state, iterations);
}

__global__ void cg_update_scalars_kernel(int width, int iteration, double tol2, double* pq,
                                         const double* bb, double* rr, double* rz, double* rz_new,
                                         double* beta, int* state, int* iterations) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s < width) cg_scalars_at(s, iteration, tol2, pq, bb, rr, rz, rz_new, beta, state, iterations);
}

template <class T>
__global__ void fill_kernel(T* x, size_t n, T value) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    x[i] = value;
}

__global__ void count_active_kernel(const int* state, int width, int* out) {
  __shared__ int partial[kThreads];
  int c = 0;
  for (int s = threadIdx.x; s < width; s += blockDim.x) c += state[s] == kActive ? 1 : 0;
  partial[threadIdx.x] = c;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = partial[0];
}

__global__ void gather_columns_kernel(int rows, const double* __restrict__ src, int ld_src,
                                      const int* cols, int count, double* __restrict__ dst) {
  const int j = blockIdx.y * blockDim.x + threadIdx.x;
  if (j >= count) return;
  const int c = cols[j];
  for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < rows; i += gridDim.x * blockDim.y)
    dst[at(i, j, count)] = src[at(i, c, ld_src)];
}

__global__ void scatter_columns_kernel(int rows, const double* __restrict__ src, int count,
                                       const int* cols, double* __restrict__ dst, int ld_dst) {
  const int j = blockIdx.y * blockDim.x + threadIdx.x;
  if (j >= count) return;
  const int c = cols[j];
  for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < rows; i += gridDim.x * blockDim.y)
    dst[at(i, c, ld_dst)] = src[at(i, j, count)];
}

__global__ void difference_norms_kernel(int rows, int width, const double* __restrict__ a,
                                        const double* __restrict__ b, double* dd, double* aa) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  const bool valid = s < width;
  double acc[2] = {0.0, 0.0};
  if (valid)
    for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < rows; i += gridDim.x * blockDim.y) {
      const size_t idx = at(i, s, width);
      const double d = a[idx] - b[idx];
      acc[0] += d * d;
      acc[1] += a[idx] * a[idx];
    }
  double* const outs[2] = {dd, aa};
  reduce_to_columns<2>(acc, outs, s, valid);
}

__global__ void axpby_kernel(size_t n, double a, const double* x, double b, const double* y, double* z) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    z[i] = a * x[i] + b * y[i];
}

__global__ void combine_values_kernel(size_t n, int terms, const double* __restrict__ values,
                                      const double* __restrict__ theta, double* __restrict__ out) {
  for (size_t j = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<size_t>(gridDim.x) * blockDim.x) {
    double v = 0.0;
    for (int k = 0; k < terms; ++k) v += theta[k] * values[static_cast<size_t>(k) * n + j];
    out[j] = v;
  }
}

size_t shared_bytes(const Layout& l, int accumulators) {
  return static_cast<size_t>(l.block.x) * l.block.y * sizeof(double) * static_cast<size_t>(accumulators);
}

}  // namespace

void fill(const Executor& exec, double* x, size_t n, double value) {
  const Layout l = layout_1d(n);
  if (n) DOPPEL_CUDA_LAUNCH(as_cuda(exec), l.grid, l.block, 0, fill_kernel<double>, x, n, value);
}

void fill(const Executor& exec, int* x, size_t n, int value) {
  const Layout l = layout_1d(n);
  if (n) DOPPEL_CUDA_LAUNCH(as_cuda(exec), l.grid, l.block, 0, fill_kernel<int>, x, n, value);
}

void affine_apply(const Executor& exec, const OperatorView& op, const BatchView& batch,
                  const double* x, double* y, double* xy) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, op.rows, batch.width);
  const size_t sm = shared_bytes(l, 1);
  switch (op.terms) {
    case 1: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<1>, op, batch, x, y, xy); break;
    case 2: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<2>, op, batch, x, y, xy); break;
    case 3: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<3>, op, batch, x, y, xy); break;
    case 4: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<4>, op, batch, x, y, xy); break;
    case 5: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<5>, op, batch, x, y, xy); break;
    case 6: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<6>, op, batch, x, y, xy); break;
    case 7: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<7>, op, batch, x, y, xy); break;
    case 8: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<8>, op, batch, x, y, xy); break;
    default: DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, sm, apply_affine_operator<0>, op, batch, x, y, xy); break;
  }
}

void cg_initialize(const Executor& exec, const OperatorView& op, const BatchView& batch,
                   const double* b, double* r, double* p, double* rz, double* rr, double* bb) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, op.rows, batch.width);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, shared_bytes(l, 3), cg_initialize_kernel, op, batch, b, r, p, rz, rr, bb);
}

void cg_start(const Executor& exec, int width, double tol2, double* bb, const double* rr,
              int* state, int* iterations) {
  const Layout l = layout_1d(static_cast<size_t>(width));
  DOPPEL_CUDA_LAUNCH(as_cuda(exec), l.grid, l.block, 0, cg_start_kernel, width, tol2, bb, rr, state, iterations);
}

void cg_update_solution(const Executor& exec, const OperatorView& op, const BatchView& batch,
                        const double* pq, const double* rz, const double* p, const double* q,
                        double* x, double* r, double* rz_new, double* rr) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, op.rows, batch.width);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, shared_bytes(l, 2), cg_update_solution_kernel, op, batch, pq, rz, p, q,
         x, r, rz_new, rr);
}

void cg_update_scalars(const Executor& exec, int width, int iteration, double tol2, double* pq,
                       const double* bb, double* rr, double* rz, double* rz_new, double* beta,
                       int* state, int* iterations) {
  const Layout l = layout_1d(static_cast<size_t>(width));
  DOPPEL_CUDA_LAUNCH(as_cuda(exec), l.grid, l.block, 0, cg_update_scalars_kernel, width, iteration, tol2, pq,
         bb, rr, rz, rz_new, beta, state, iterations);
}

void cg_update_directions(const Executor& exec, const OperatorView& op, const BatchView& batch,
                          const double* beta, const double* r, const double* z, double* p) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, op.rows, batch.width);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, 0, cg_update_directions_kernel, op, batch, beta, r, z, p);
}

void cg_residual(const Executor& exec, int rows, int width, const double* b, double* r, double* rr,
                 double* bb) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, rows, width);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, shared_bytes(l, 2), cg_residual_kernel, rows, width, b, r, rr, bb);
}

void cg_check(const Executor& exec, int width, int iteration, double tol2, const double* pq,
              const double* bb, const double* rr, int* state, int* iterations) {
  const Layout l = layout_1d(static_cast<size_t>(width));
  DOPPEL_CUDA_LAUNCH(as_cuda(exec), l.grid, l.block, 0, cg_check_kernel, width, iteration, tol2, pq, bb, rr,
                     state, iterations);
}

void dot_columns(const Executor& exec, int rows, const BatchView& batch, const double* a,
                 const double* b, double* out) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, rows, batch.width);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, shared_bytes(l, 1), dot_columns_kernel, rows, batch, a, b, out);
}

int count_active(const Executor& exec, const int* state, int width, int* count) {
  const CudaExecutor& e = as_cuda(exec);
  DOPPEL_CUDA_LAUNCH(e, dim3(1), dim3(kThreads), 0, count_active_kernel, state, width, count);
  int host = 0;
  e.copy_to_host(&host, count, sizeof(int));
  return host;
}

void gather_columns(const Executor& exec, int rows, const double* src, int ld_src, const int* cols,
                    int count, double* dst) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, rows, count);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, 0, gather_columns_kernel, rows, src, ld_src, cols, count, dst);
}

void scatter_columns(const Executor& exec, int rows, const double* src, int count, const int* cols,
                     double* dst, int ld_dst) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, rows, count);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, 0, scatter_columns_kernel, rows, src, count, cols, dst, ld_dst);
}

void difference_norms(const Executor& exec, int rows, int width, const double* a, const double* b,
                      double* dd, double* aa) {
  const CudaExecutor& e = as_cuda(exec);
  const Layout l = layout_2d(e, rows, width);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, shared_bytes(l, 2), difference_norms_kernel, rows, width, a, b, dd, aa);
}

void multiply_basis(const Executor& exec, int rows, int r, int width, const double* U,
                    const double* C, double* X) {
  const CudaExecutor& e = as_cuda(exec);
  // Row-major X (rows x width) is column-major X^T (width x rows) = C^T U^T, with C^T and U^T
  // the column-major views of row-major C and U.
  const double one = 1.0, zero = 0.0;
  if (rows == 0 || width == 0) return;
  if (r == 0) {
    fill(exec, X, static_cast<size_t>(rows) * static_cast<size_t>(width), 0.0);
    return;
  }
  DOPPEL_CUBLAS_CHECK(cublasDgemm(e.blas(), CUBLAS_OP_N, CUBLAS_OP_N, width, rows, r, &one, C, width,
                                  U, r, &zero, X, width));
}

void axpby(const Executor& exec, size_t n, double a, const double* x, double b, const double* y, double* z) {
  const CudaExecutor& e = as_cuda(exec);
  if (n == 0) return;
  const Layout l = layout_1d(n);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, 0, axpby_kernel, n, a, x, b, y, z);
}

void combine_terms(const Executor& exec, const OperatorView& op, const double* theta,
                   double* values, double* diagonal) {
  const CudaExecutor& e = as_cuda(exec);
  Layout l = layout_1d(op.nnz);
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, 0, combine_values_kernel, op.nnz, op.terms, op.values, theta, values);
  l = layout_1d(static_cast<size_t>(op.rows));
  DOPPEL_CUDA_LAUNCH(e, l.grid, l.block, 0, combine_values_kernel, static_cast<size_t>(op.rows), op.terms,
         op.diagonal, theta, diagonal);
}

}  // namespace doppel::cuda
