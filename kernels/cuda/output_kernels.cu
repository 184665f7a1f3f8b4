// CUDA implementation of the batched output kernels (kernels/fem/output_kernels.hpp).
//
// 2D blocks as in batched_cg_kernels.cu: threadIdx.x runs over scenarios (a warp reads 32
// consecutive scenarios of one row: coalesced), threadIdx.y over rows or sites. Reductions over
// an output's sites go in two passes: chunks of sites fold into partials per (output, chunk,
// scenario), then one thread per (output, scenario) merges its chunks, so a max over 10^5 nodes
// keeps every multiprocessor busy. The site functions and folds are the host's
// (kernels/fem/site_functions.hpp).
#include "kernels/fem/output_kernels.hpp"
#include "kernels/cuda/cuda_executor.cuh"

#include <algorithm>

#include "spec/errors.hpp"

namespace doppel::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kChunkSites = 1024;  // sites folded by one block of reduce_chunks

dim3 scenario_block(int width) {
  int bx = 1;
  while (bx < width && bx < 32) bx *= 2;
  return dim3(static_cast<unsigned>(bx), static_cast<unsigned>(kThreads / bx));
}

dim3 rows_grid(const CudaExecutor& exec, int rows, int width, dim3 block) {
  const long gy = (width + static_cast<long>(block.x) - 1) / block.x;
  const long row_blocks = (static_cast<long>(rows) + block.y - 1) / block.y;
  const long target = std::max<long>(1, static_cast<long>(exec.multiprocessors()) * 16 / std::max<long>(gy, 1));
  const long gx = std::max<long>(1, std::min(row_blocks, target));
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(std::min<long>(gy, 65535)));
}

__global__ void broadcast_rows_kernel(int rows, int width, const double* __restrict__ v, double* z, int ldz) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  if (s >= width) return;
  for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < rows; i += gridDim.x * blockDim.y)
    z[static_cast<size_t>(i) * ldz + s] = v[i];
}

__global__ void csr_multiply_add_kernel(CsrView A, int width, const double* __restrict__ x, int ldx, double* z,
                                        int ldz) {
  const int s = blockIdx.y * blockDim.x + threadIdx.x;
  if (s >= width) return;
  for (int i = blockIdx.x * blockDim.y + threadIdx.y; i < A.rows; i += gridDim.x * blockDim.y) {
    double sum = 0.0;
    const int end = A.row_ptr[i + 1];
    for (int k = A.row_ptr[i]; k < end; ++k) sum += A.values[k] * x[static_cast<size_t>(A.col[k]) * ldx + s];
    z[static_cast<size_t>(i) * ldz + s] += sum;
  }
}

// partial[(k * chunks + chunk) * width + s]: the fold of output k's sites in chunk `chunk`.
__global__ void reduce_chunks_kernel(const OutputReduction* __restrict__ specs, const double* __restrict__ weights,
                                     const double* __restrict__ z, int ldz, int width, double* partial) {
  extern __shared__ double shared[];
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  const int k = blockIdx.y, chunk = blockIdx.z, chunks = gridDim.z;
  const OutputReduction o = specs[k];
  const auto f = static_cast<SiteFunction>(o.function);
  const auto r = static_cast<SiteReduction>(o.reduce);
  double acc = reduction_start(r);
  if (s < width) {
    const int end = min(o.sites, (chunk + 1) * kChunkSites);
    for (int l = chunk * kChunkSites + threadIdx.y; l < end; l += blockDim.y) {
      const double w = r == SiteReduction::mean ? weights[o.weights + l] : 1.0;
      const double* row = z + (o.offset + static_cast<size_t>(l) * o.components) * ldz + s;
      acc = reduction_fold(r, acc, site_function_value(f, row, o.components, static_cast<size_t>(ldz)), w);
    }
  }
  const int tx = threadIdx.x, ty = threadIdx.y, bx = blockDim.x;
  shared[ty * bx + tx] = acc;
  __syncthreads();
  for (int stride = blockDim.y / 2; stride > 0; stride >>= 1) {
    if (ty < stride) shared[ty * bx + tx] = reduction_merge(r, shared[ty * bx + tx], shared[(ty + stride) * bx + tx]);
    __syncthreads();
  }
  if (ty == 0 && s < width) partial[(static_cast<size_t>(k) * chunks + chunk) * width + s] = shared[tx];
}

__global__ void reduce_finish_kernel(const OutputReduction* __restrict__ specs, int outputs, int chunks,
                                     int width, const double* __restrict__ partial, double* values) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(outputs) * width) return;
  const int k = static_cast<int>(idx / width), s = static_cast<int>(idx % width);
  const auto r = static_cast<SiteReduction>(specs[k].reduce);
  const double* p = partial + static_cast<size_t>(k) * chunks * width + s;
  double a = p[0];
  for (int c = 1; c < chunks; ++c) a = reduction_merge(r, a, p[static_cast<size_t>(c) * width]);
  values[idx] = reduction_finish(r, a, specs[k].weight_sum);
}

}  // namespace

void broadcast_rows(const Executor& exec, int rows, int width, const double* v, double* z, int ldz) {
  const CudaExecutor& e = as_cuda(exec);
  if (rows == 0 || width == 0) return;
  const dim3 block = scenario_block(width);
  DOPPEL_CUDA_LAUNCH(e, rows_grid(e, rows, width, block), block, 0, broadcast_rows_kernel, rows, width, v, z, ldz);
}

void csr_multiply_add(const Executor& exec, const CsrView& A, int width, const double* x, int ldx, double* z,
                      int ldz) {
  const CudaExecutor& e = as_cuda(exec);
  if (A.rows == 0 || width == 0) return;
  const dim3 block = scenario_block(width);
  DOPPEL_CUDA_LAUNCH(e, rows_grid(e, A.rows, width, block), block, 0, csr_multiply_add_kernel, A, width, x, ldx, z,
                     ldz);
}

void reduce_outputs(const Executor& exec, const OutputReduction* specs, int outputs, int max_sites,
                    const double* weights, const double* z, int ldz, int width, double* values) {
  const CudaExecutor& e = as_cuda(exec);
  if (outputs == 0 || width == 0) return;
  const int chunks = std::max(1, (max_sites + kChunkSites - 1) / kChunkSites);
  if (chunks > 65535) throw InvalidInput("outputs", "an output has more than 6.7e7 sites");
  const size_t partial_count = static_cast<size_t>(outputs) * static_cast<size_t>(chunks) * static_cast<size_t>(width);
  struct Scratch {  // freed on the stream after the kernels that use it
    const Executor& exec;
    double* data;
    ~Scratch() { exec.deallocate(data); }
  } partial{exec, static_cast<double*>(exec.allocate(partial_count * sizeof(double)))};
  const dim3 block = scenario_block(width);  // blockDim.y a power of two, for the tree in shared memory
  const dim3 grid(static_cast<unsigned>((width + block.x - 1) / block.x), static_cast<unsigned>(outputs),
                  static_cast<unsigned>(chunks));
  DOPPEL_CUDA_LAUNCH(e, grid, block, block.x * block.y * sizeof(double), reduce_chunks_kernel, specs, weights, z, ldz,
                     width, partial.data);
  const size_t n = static_cast<size_t>(outputs) * static_cast<size_t>(width);
  DOPPEL_CUDA_LAUNCH(e, dim3(static_cast<unsigned>((n + kThreads - 1) / kThreads)), dim3(kThreads), 0,
                     reduce_finish_kernel, specs, outputs, chunks, width, partial.data, values);
}

}  // namespace doppel::cuda
