// The Adam update kernels' launchers; the kernels are cuda/adam_kernel.cuh.
#include "cuda/adam.hpp"
#include "cuda/adam_kernel.cuh"    // adam_update_kernel, reduce_gradient_adam_kernel, kAdamThreads
#include "cuda/check.cuh"          // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"         // require, prepare_kernel, grid_for
#include "cuda/reduce_phases.cuh"  // reduce_grid, reduce_threads

namespace pinntk {
namespace {

using namespace adam_device;  // NOLINT(google-build-using-namespace): the kernels

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
  reduce_gradient_adam_kernel<Real><<<reduce::reduce_grid(plan.net.P, mb.count), reduce::reduce_threads(), 0, s>>>(
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
