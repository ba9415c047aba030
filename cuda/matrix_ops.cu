// Elementwise matrix kernels, one thread per entry (memory-bound: nothing to tile), and their launchers.
#include <cstddef>  // size_t

#include "cuda/check.cuh"   // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"  // require, grid_for
#include "cuda/matrix_ops.hpp"

namespace pinntk {
namespace {

constexpr int kThreads = 256;

// ---- kernels ----

template <class Real>
__global__ void fill_upper_kernel(Real* C, int n) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n) * n) return;
  const int i = static_cast<int>(idx % n), j = static_cast<int>(idx / n);
  if (i < j) C[idx] = C[j + static_cast<size_t>(i) * n];
}

template <class Real>
__global__ void scale_rows_kernel(Real* A, int n, int k, const Real* s, bool sqrt_of_s) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n) * k) return;
  const Real f = s[idx / k];
  A[idx] *= sqrt_of_s ? sqrt(f) : f;
}

template <class Real>
__global__ void scale_cols_kernel(Real* C, int n, const Real* d) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n) * n) return;
  C[idx] *= d[idx / n];
}

template <class Real>
__global__ void damped_copy_kernel(Real* A, const Real* G, int m, Real mu) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(m) * m) return;
  const Real g = G[idx];
  A[idx] = idx % (static_cast<size_t>(m) + 1) == 0 ? g + mu : g;
}

// Entries of an n x k matrix; an empty one launches nothing.
size_t entries(const char* launcher, int n, int k) {
  require(n >= 0 && k >= 0, launcher, "negative matrix size");
  return static_cast<size_t>(n) * static_cast<size_t>(k);
}

}  // namespace

// ---- launchers ----

template <class Real>
void launch_fill_upper(Real* C, int n, cudaStream_t s) {
  const size_t e = entries("launch_fill_upper", n, n);
  if (e == 0) return;
  require(C != nullptr, "launch_fill_upper", "C is needed");
  fill_upper_kernel<<<grid_for(e, kThreads), kThreads, 0, s>>>(C, n);
  PINNTK_LAUNCH_CHECK();
}

template <class Real>
void launch_scale_rows(Real* A, int n, int k, const Real* s, bool sqrt_of_s, cudaStream_t stream) {
  const size_t e = entries("launch_scale_rows", n, k);
  if (e == 0) return;
  require(A != nullptr && s != nullptr, "launch_scale_rows", "A and s are needed");
  scale_rows_kernel<<<grid_for(e, kThreads), kThreads, 0, stream>>>(A, n, k, s, sqrt_of_s);
  PINNTK_LAUNCH_CHECK();
}

template <class Real>
void launch_scale_cols(Real* C, int n, const Real* d, cudaStream_t s) {
  const size_t e = entries("launch_scale_cols", n, n);
  if (e == 0) return;
  require(C != nullptr && d != nullptr, "launch_scale_cols", "C and d are needed");
  scale_cols_kernel<<<grid_for(e, kThreads), kThreads, 0, s>>>(C, n, d);
  PINNTK_LAUNCH_CHECK();
}

template <class Real>
void launch_damped_copy(Real* A, const Real* G, int m, Real mu, cudaStream_t s) {
  const size_t e = entries("launch_damped_copy", m, m);
  if (e == 0) return;
  require(A != nullptr && G != nullptr, "launch_damped_copy", "A and G are needed");
  damped_copy_kernel<<<grid_for(e, kThreads), kThreads, 0, s>>>(A, G, m, mu);
  PINNTK_LAUNCH_CHECK();
}

// ---- explicit instantiations ----
#define PINNTK_INSTANTIATE(Real)                                                           \
  template void launch_fill_upper<Real>(Real*, int, cudaStream_t);                         \
  template void launch_scale_rows<Real>(Real*, int, int, const Real*, bool, cudaStream_t); \
  template void launch_scale_cols<Real>(Real*, int, const Real*, cudaStream_t);            \
  template void launch_damped_copy<Real>(Real*, const Real*, int, Real, cudaStream_t);
PINNTK_INSTANTIATE(double)
PINNTK_INSTANTIATE(float)
#undef PINNTK_INSTANTIATE

}  // namespace pinntk
