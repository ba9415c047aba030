// The loss L = 1/2 sum_k w_k r_k^2 and its gradient without forming J (cuda/loss_gradient.cu): a tile kernel writes
// per-block partial gradients and losses, which launch_reduce_gradient (cuda/reduce.hpp) or the fused
// launch_reduce_gradient_adam (cuda/adam.hpp) sums in a fixed order. A GradientPlan fixes the tiling once, and the
// GradientWorkspace allocated from it carries it to every launch: the knobs of cuda/tile_plan.hpp changing after
// the allocation cannot make the partial buffers and the grid disagree. Every launcher serves a batch of networks of
// one shape too (Members): one slice of the grid's y dimension per member, the same kernels at other offsets.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <cstddef>  // size_t
#include <string>   // std::to_string

#include "cuda/device_buffer.cuh"  // DeviceBuffer, StreamOrder
#include "cuda/launch.cuh"         // require
#include "cuda/members.hpp"        // Members
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

// A launch's members within a workspace of `members` (std::invalid_argument naming the launcher otherwise): a grid's
// y dimension holds at most 65535 blocks.
inline void require_members(const Members& mb, int members, const char* launcher) {
  require(mb.first >= 0 && mb.count >= 1 && mb.count <= 65535 && mb.first <= members - mb.count, launcher,
          "members " + std::to_string(mb.first) + " .. " + std::to_string(mb.first + mb.count - 1) +
              " of a workspace for " + std::to_string(members));
}

// Plans with plan_tiles and prepares every kernel launched with the plan (the loss-gradient variant it names, the
// reductions, the fused reduction and Adam update), so that a graph may capture their first launches.
template <class Real>
GradientPlan plan_gradient(const NetDesc& net, int n);

// A GradientPlan and the partial buffers allocated for it, for `members` networks (Members) of n rows each.
template <class Real>
class GradientWorkspace {
 public:
  GradientWorkspace(const NetDesc& net, int n, StreamOrder o, int members = 1)
      : plan_(plan_gradient<Real>(net, n)),
        members_(checked_members(members)),
        partial_(plan_.partial_size() * members_, o),
        partial_loss_(plan_.partial_loss_size() * members_, o) {}

  const GradientPlan& plan() const { return plan_; }
  int members() const { return members_; }
  Real* partial() const { return partial_.data(); }            // members x plan().tiles.blocks x P, row-major
  Real* partial_loss() const { return partial_loss_.data(); }  // members x plan().tiles.blocks

 private:
  static int checked_members(int members) {
    require(members >= 1, "GradientWorkspace", "a workspace serves at least one network");
    return members;
  }

  GradientPlan plan_;
  int members_;
  DeviceBuffer<Real> partial_, partial_loss_;
};

// The per-block partial gradients and losses of L at theta into ws, for the rows ws was planned for; the residuals
// into r when r is not null. Block 0 increments *step when step is not null (the Adam step count the update reads).
// For the members mb of a batch, each member's at its offsets (Members).
template <class Real>
void launch_gradient_partials(const Real* theta, DeviceRows<Real> rows, const GradientWorkspace<Real>& ws, Real* r,
                              unsigned long long* step, cudaStream_t s, const Members& mb = Members{});

// J^T seed's per-block partials into ws (rows.n = ws's rows, one network): the same kernel with row k's reverse pass
// seeded by seed[k] (rows.n numbers) instead of w_k r_k (DESIGN.md section 8); launch_reduce_gradient then sums them
// in its fixed order into J^T seed (its loss is 0). f and w are not read.
template <class Real>
void launch_seeded_partials(const Real* theta, DeviceRows<Real> rows, const Real* seed,
                            const GradientWorkspace<Real>& ws, cudaStream_t s);

}  // namespace pinntk
