// The Adam update kernels: one thread per parameter from a gradient, or fused with the reduction phases of
// cuda/reduce_phases.cuh (row 0 of each reduction block updates its parameters).
#include <cmath>  // pow

#include "cuda/adam.hpp"
#include "cuda/check.cuh"          // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"         // require, prepare_kernel, grid_for
#include "cuda/members.cuh"        // member_of
#include "cuda/reduce_phases.cuh"  // reduce_partial_loss, reduce_partials, reduce_grid

namespace pinntk {
namespace {

using namespace reduce;  // NOLINT(google-build-using-namespace): the reduction phases

// ---- kernels ----

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

void require_adam_state(const char* launcher, const void* theta, const void* m, const void* v, const double* lr,
                        const unsigned long long* step) {
  require(theta != nullptr && m != nullptr && v != nullptr && lr != nullptr && step != nullptr, launcher,
          "the Adam update needs theta, m, v, lr and step");
}

}  // namespace

// ---- launchers ----

template <class Real>
void prepare_adam_kernels() {
  prepare_kernel(adam_update_kernel<Real>);
  prepare_kernel(reduce_gradient_adam_kernel<Real>);
}

template <class Real>
void launch_adam_update(int P, const Real* grad, Real* theta, Real* m, Real* v, const double* lr,
                        const unsigned long long* step, AdamParams adam, cudaStream_t s) {
  require(P >= 0, "launch_adam_update", "negative number of parameters");
  if (P == 0) return;
  require(grad != nullptr, "launch_adam_update", "grad is needed");
  require_adam_state("launch_adam_update", theta, m, v, lr, step);
  prepare_kernel(adam_update_kernel<Real>);
  adam_update_kernel<Real>
      <<<grid_for(static_cast<size_t>(P), kAdamThreads), kAdamThreads, 0, s>>>(P, grad, theta, m, v, lr, step, adam);
  PINNTK_LAUNCH_CHECK();
}

template <class Real>
void launch_reduce_gradient_adam(const GradientWorkspace<Real>& ws, double* loss, Real* theta, Real* m, Real* v,
                                 const double* lr, const unsigned long long* step, AdamParams adam, cudaStream_t s,
                                 const Members& mb) {
  const GradientPlan& plan = ws.plan();
  require(loss != nullptr, "launch_reduce_gradient_adam", "loss is needed");
  require_adam_state("launch_reduce_gradient_adam", theta, m, v, lr, step);
  require_members(mb, ws.members(), "launch_reduce_gradient_adam");
  prepare_kernel(reduce_gradient_adam_kernel<Real>);
  reduce_gradient_adam_kernel<Real><<<reduce_grid(plan.net.P, mb.count), reduce_threads(), 0, s>>>(
      plan.net.P, plan.tiles.blocks, ws.partial(), ws.partial_loss(), loss, theta, m, v, lr, step, adam, mb);
  PINNTK_LAUNCH_CHECK();
}

// ---- explicit instantiations ----
#define PINNTK_INSTANTIATE(Real)                                                                                      \
  template void prepare_adam_kernels<Real>();                                                                         \
  template void launch_adam_update<Real>(int, const Real*, Real*, Real*, Real*, const double*,                        \
                                         const unsigned long long*, AdamParams, cudaStream_t);                        \
  template void launch_reduce_gradient_adam<Real>(const GradientWorkspace<Real>&, double*, Real*, Real*, Real*,       \
                                                  const double*, const unsigned long long*, AdamParams, cudaStream_t, \
                                                  const Members&);
PINNTK_INSTANTIATE(double)
PINNTK_INSTANTIATE(float)
#undef PINNTK_INSTANTIATE

}  // namespace pinntk
