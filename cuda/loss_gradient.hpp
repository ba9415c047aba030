// The loss L = 1/2 sum_k w_k r_k^2 and its gradient without forming J (cuda/loss_gradient.cu): a tile kernel writes
// per-block partial gradients and losses, which launch_reduce_gradient (cuda/reduce.hpp) or the fused
// launch_reduce_gradient_adam (cuda/adam.hpp) sums in a fixed order. A GradientPlan fixes the tiling once, and the
// GradientWorkspace allocated from it carries it to every launch: the knobs of cuda/tile_plan.hpp changing after
// the allocation cannot make the partial buffers and the grid disagree.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t

#include "cuda/device_buffer.cuh"  // DeviceBuffer, StreamOrder
#include "cuda/tile_plan.hpp"      // NetDesc, DeviceRows, TilePlan

namespace pinntk {

// The tiling of the loss-gradient launches for a network and n points, and the sizes of their partial buffers.
struct GradientPlan {
  NetDesc net;
  TilePlan tiles;
  int n = 0;
  size_t partial_size() const { return static_cast<size_t>(tiles.blocks) * net.P; }  // blocks x P gradients
  size_t partial_loss_size() const { return static_cast<size_t>(tiles.blocks); }     // blocks losses
};

// Plans with plan_tiles and prepares every kernel launched with the plan (the loss-gradient variant it names, the
// reductions, the fused reduction and Adam update), so that a graph may capture their first launches.
template <class Real>
GradientPlan plan_gradient(const NetDesc& net, int n);

// A GradientPlan and the partial buffers allocated for it.
template <class Real>
class GradientWorkspace {
 public:
  GradientWorkspace(const NetDesc& net, int n, StreamOrder o)
      : plan_(plan_gradient<Real>(net, n)),
        partial_(plan_.partial_size(), o),
        partial_loss_(plan_.partial_loss_size(), o) {}

  const GradientPlan& plan() const { return plan_; }
  Real* partial() const { return partial_.data(); }            // plan().tiles.blocks x P, row-major
  Real* partial_loss() const { return partial_loss_.data(); }  // plan().tiles.blocks

 private:
  GradientPlan plan_;
  DeviceBuffer<Real> partial_, partial_loss_;
};

// The per-block partial gradients and losses of L at theta into ws, for the rows ws was planned for; the residuals
// into r when r is not null. Block 0 increments *step when step is not null (the Adam step count the update reads).
template <class Real>
void launch_gradient_partials(const Real* theta, DeviceRows<Real> rows, const GradientWorkspace<Real>& ws, Real* r,
                              unsigned long long* step, cudaStream_t s);

}  // namespace pinntk
