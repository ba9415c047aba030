// The reduction kernel of the loss gradient: the phases of cuda/reduce_phases.cuh, writing the gradient and the loss.
#include "cuda/check.cuh"    // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"   // require, prepare_kernel
#include "cuda/members.cuh"  // member_of
#include "cuda/reduce.hpp"
#include "cuda/reduce_phases.cuh"  // reduce_partial_loss, reduce_partials, reduce_grid

namespace pinntk {
namespace {

using namespace reduce;  // NOLINT(google-build-using-namespace): the reduction phases

// ---- kernel ----

// Member b = first + blockIdx.y of a batch (Members): its partials, gradient and loss at its offsets.
template <class Real>
__global__ void __launch_bounds__(32 * kReduceRows)
    reduce_gradient_kernel(int P, int blocks, const Real* __restrict__ partial, const Real* __restrict__ partial_loss,
                           Real* __restrict__ grad, double* loss, Members mb) {
  const int b = member_of(mb);
  if (b < 0) return;  // uniform over the block, before the barrier of reduce_partials
  partial += static_cast<size_t>(b) * blocks * P;
  partial_loss += static_cast<size_t>(b) * blocks;
  grad += static_cast<size_t>(b) * P;
  loss += b;
  reduce_partial_loss(blocks, partial_loss, loss);
  Real g;
  int p;
  if (!reduce_partials(P, blocks, partial, g, p)) return;
  grad[p] = g;
}

}  // namespace

// ---- launcher ----

template <class Real>
void prepare_reduce_kernels() {
  prepare_kernel(reduce_gradient_kernel<Real>);
}

template <class Real>
void launch_reduce_gradient(const GradientWorkspace<Real>& ws, Real* grad, double* loss, cudaStream_t s,
                            const Members& mb) {
  const GradientPlan& plan = ws.plan();
  require(grad != nullptr && loss != nullptr, "launch_reduce_gradient", "grad and loss are needed");
  require_members(mb, ws.members(), "launch_reduce_gradient");
  prepare_kernel(reduce_gradient_kernel<Real>);
  reduce_gradient_kernel<Real><<<reduce_grid(plan.net.P, mb.count), reduce_threads(), 0, s>>>(
      plan.net.P, plan.tiles.blocks, ws.partial(), ws.partial_loss(), grad, loss, mb);
  PINNTK_LAUNCH_CHECK();
}

// ---- explicit instantiations ----
#define PINNTK_INSTANTIATE(Real)                                                                           \
  template void prepare_reduce_kernels<Real>();                                                            \
  template void launch_reduce_gradient<Real>(const GradientWorkspace<Real>&, Real*, double*, cudaStream_t, \
                                             const Members&);
PINNTK_INSTANTIATE(double)
PINNTK_INSTANTIATE(float)
#undef PINNTK_INSTANTIATE

}  // namespace pinntk
