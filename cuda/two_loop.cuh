// The two-loop recursion of L-BFGS in one launch (CudaLbfgsOps::two_loop, host/cuda/cuda_lbfgs.cu): one block per
// member, each pair's dot product a fixed-order block reduction. Device code only, with no CUDA header of its own,
// so that tests/block_emulator.hpp can run it on the CPU (each thread of a block a host thread) in pinntk_tests.
#pragma once

#include <cstddef>  // size_t

namespace pinntk::cudaimpl {

constexpr int kTwoLoopThreads = 512;

// The sum of v over the block in a fixed order (each warp's lanes by a shuffle tree, then the warps' sums in warp
// order by warp 0), returned to every thread. part: kThreads / 32 + 1 doubles of shared memory. Between two calls
// every thread has read the previous sum before warp 0 can write the next (the two barriers), so part is reused.
template <int kThreads>
__device__ double block_sum(double v, double* part) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, at most 32");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    double w = lane < kThreads / 32 ? part[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) w += __shfl_down_sync(0xffffffffu, w, o);
    if (lane == 0) part[kThreads / 32] = w;
  }
  __syncthreads();
  return part[kThreads / 32];
}

// What two_loop_kernel reads and writes: the members' d and g (B x P), the ring S, Y (B x m x P, member-major),
// newest[b], count[b] (0 for a masked-out member), gamma[b], rho[b m + j] by ring position, alpha (B x m, by depth
// i from the newest) and the mask.
template <class Real>
struct TwoLoopArgs {
  Real* d;
  const Real *g, *s, *y;
  const int *newest, *count, *mask;
  const double *gamma, *rho;
  double* alpha;
  int m;
  size_t P;
};

// d = -H g for member blockIdx.x by the two-loop recursion, the arithmetic of NewestToOldest, Masked<Scale>,
// OldestToNewest and Masked<Negate> in turn (dot products in double, element updates in Real). Each thread keeps to
// the entries p = threadIdx.x + k kThreads in every pass, so d needs no barrier beyond the reductions'.
template <class Real, int kThreads>
__global__ void __launch_bounds__(kThreads) two_loop_kernel(TwoLoopArgs<Real> a) {
  __shared__ double part[kThreads / 32 + 1];
  const size_t b = blockIdx.x;
  if (a.mask[b] == 0) return;  // the whole block: no barrier is left waiting
  const size_t P = a.P, slot = b * static_cast<size_t>(a.m);
  Real* d = a.d + b * P;
  const Real* g = a.g + b * P;
  const int count = a.count[b], newest = a.newest[b];
  for (size_t p = threadIdx.x; p < P; p += kThreads) d[p] = g[p];
  for (int i = 0; i < count; ++i) {  // newest to oldest
    const size_t j = static_cast<size_t>((newest - i + a.m) % a.m);
    const Real *sj = a.s + (slot + j) * P, *yj = a.y + (slot + j) * P;
    double t = 0.0;
    for (size_t p = threadIdx.x; p < P; p += kThreads) t += static_cast<double>(sj[p]) * static_cast<double>(d[p]);
    const double alpha = a.rho[slot + j] * block_sum<kThreads>(t, part);
    if (threadIdx.x == 0) a.alpha[slot + i] = alpha;
    const Real ar = static_cast<Real>(alpha);
    for (size_t p = threadIdx.x; p < P; p += kThreads) d[p] -= ar * yj[p];
  }
  const Real gamma = static_cast<Real>(a.gamma[b]);
  for (size_t p = threadIdx.x; p < P; p += kThreads) d[p] *= gamma;
  for (int i = count - 1; i >= 0; --i) {  // oldest to newest
    const size_t j = static_cast<size_t>((newest - i + a.m) % a.m);
    const Real *sj = a.s + (slot + j) * P, *yj = a.y + (slot + j) * P;
    double t = 0.0;
    for (size_t p = threadIdx.x; p < P; p += kThreads) t += static_cast<double>(yj[p]) * static_cast<double>(d[p]);
    // alpha[slot + i] is read only after this reduction's barriers: thread 0 wrote it before reaching them (for the
    // first loop's last pair, with no barrier in between otherwise), so every thread of the block sees it.
    const double yd = block_sum<kThreads>(t, part);
    const Real c = static_cast<Real>(a.alpha[slot + i] - a.rho[slot + j] * yd);
    for (size_t p = threadIdx.x; p < P; p += kThreads) d[p] += c * sj[p];
  }
  for (size_t p = threadIdx.x; p < P; p += kThreads) d[p] = -d[p];
}

}  // namespace pinntk::cudaimpl
