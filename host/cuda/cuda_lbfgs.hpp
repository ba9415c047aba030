// The batched L-BFGS's vector operations on the device (LbfgsOps, host/optim/lbfgs_batched.hpp): the five B x P
// vectors and the S/Y history stay in device memory in the backend's precision, the per-member reductions are CUB
// segmented reductions, the vector updates Thrust loops on the backend's stream, and evaluate() is one batched
// loss-gradient launch (cuda/loss_gradient.hpp) at the members' trial points. Only arrays of B numbers (and the
// ring's B x m coefficients) cross between host and device.
#pragma once

#include <memory>  // std::unique_ptr, std::shared_ptr

#include "cuda/loss_gradient.hpp"        // GradientWorkspace
#include "cuda/tile_plan.hpp"            // DeviceRows
#include "host/optim/lbfgs_batched.hpp"  // LbfgsOps

namespace pinntk::cudaimpl {

class CudaContext;

// What evaluate() launches: the loss-gradient kernels of a batch (CudaBatchTrainSession) with its workspace (planned
// for at least B members), member 0's rows and whether every member reads them (Members::shared_rows). Without a
// workspace the ops hold the vector algebra alone and evaluate() throws std::logic_error.
template <class Real>
struct LbfgsEvaluation {
  const GradientWorkspace<Real>* ws = nullptr;
  DeviceRows<Real> rows{};
  bool shared_rows = false;
};

// LbfgsOps on the context's stream and pool for B = members networks of P = params parameters with a history of
// m = history pairs; the ops keep ctx alive, and the workspace and rows of `eval` must outlive them.
// std::invalid_argument unless members >= 1, params >= 1, history lies in [1, kMaxHistory] and params is the
// workspace's parameter count and members at most its members; std::length_error when the (5 + 2 m) B P numbers do
// not fit in the device's free memory (nothing is allocated then).
template <class Real>
std::unique_ptr<LbfgsOps> make_cuda_lbfgs_ops(std::shared_ptr<const CudaContext> ctx, int members, int params,
                                              int history, const LbfgsEvaluation<Real>& eval = {});

// The two-loop recursion in one launch (on, the default) or as 4 m + 3 launches of CUB and Thrust (off): for
// pinntk-bench's comparison and the tests of both. Read when two_loop runs; not thread-safe.
void set_fused_two_loop(bool on);

}  // namespace pinntk::cudaimpl
