// The Adam update kernels' device code (launched by cuda/adam.cu): one thread per parameter from a gradient, or fused
// with the reduction phases of cuda/reduce_phases.cuh (row 0 of each reduction block updates its parameters). No CUDA
// header of its own: tests/block_emulator.hpp runs it on the CPU.
#pragma once

#include <cmath>    // pow
#include <cstddef>  // size_t

#include "common/adam_math.hpp"    // adam_update, AdamParams
#include "cuda/members.cuh"        // Members, member_of
#include "cuda/reduce_phases.cuh"  // reduce_partial_loss, reduce_partials, kReduceRows

namespace pinntk::adam_device {

using namespace reduce;  // NOLINT(google-build-using-namespace): the reduction phases, in this namespace only

// One parameter's update at step *step: adam_update with the bias corrections 1 - beta^t.
template <class Real>
__device__ inline void adam_step(Real& theta, Real& m, Real& v, Real g, const double* lr,
                                 const unsigned long long* step, AdamParams adam) {
  const double t = double(*step);
  adam_update(theta, m, v, g, *lr, adam, 1.0 - pow(adam.beta1, t), 1.0 - pow(adam.beta2, t));
}

constexpr int kAdamThreads = 256;

template <class Real>
__global__ void __launch_bounds__(kAdamThreads)
    adam_update_kernel(int P, const Real* __restrict__ grad, Real* __restrict__ theta, Real* __restrict__ m,
                       Real* __restrict__ v, const double* lr, const unsigned long long* step, AdamParams adam) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= P) return;
  adam_step(theta[p], m[p], v[p], grad[p], lr, step, adam);
}

// Member b = first + blockIdx.y of a batch (Members): its partials, loss, parameters, moments and step count at its
// offsets; the learning rate is every member's.
template <class Real>
__global__ void __launch_bounds__(32 * kReduceRows)
    reduce_gradient_adam_kernel(int P, int blocks, const Real* __restrict__ partial,
                                const Real* __restrict__ partial_loss, double* loss, Real* __restrict__ theta,
                                Real* __restrict__ m, Real* __restrict__ v, const double* lr,
                                const unsigned long long* step, AdamParams adam, Members mb) {
  const int b = member_of(mb);
  if (b < 0) return;  // uniform over the block, before the barrier of reduce_partials
  const size_t o = static_cast<size_t>(b) * P;
  partial += o * blocks;
  partial_loss += static_cast<size_t>(b) * blocks;
  loss += b;
  theta += o;
  m += o;
  v += o;
  step += b;
  reduce_partial_loss(blocks, partial_loss, loss);
  Real g;
  int p;
  if (!reduce_partials(P, blocks, partial, g, p)) return;
  adam_step(theta[p], m[p], v[p], g, lr, step, adam);
}

}  // namespace pinntk::adam_device
