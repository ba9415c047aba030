// The Adam update on the device (cuda/adam.cu; the per-parameter formula is common/adam_math.hpp): on its own, from
// a gradient, or fused with the reduction of the loss gradient's partials. The fused variant is the Adam session's
// default: one kernel less in each step its CUDA graph captures (benchmarks/NOTES.md, RESULTS.md).
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "common/adam_math.hpp"    // AdamParams
#include "cuda/loss_gradient.hpp"  // GradientWorkspace

namespace pinntk {

// theta, m, v (P each) updated from grad at learning rate *lr and step *step (t = 1, 2, ...: the bias corrections).
template <class Real>
void launch_adam_update(int P, const Real* grad, Real* theta, Real* m, Real* v, const double* lr,
                        const unsigned long long* step, AdamParams adam, cudaStream_t s);

// The fused variant: the reduction of launch_reduce_gradient (the loss into *loss, the same gradient, not stored)
// and the update of launch_adam_update in one kernel, bit for bit the result of the two. For the members mb of a
// batch, each member's at its offsets (Members, cuda/loss_gradient.hpp), all at the one learning rate *lr.
template <class Real>
void launch_reduce_gradient_adam(const GradientWorkspace<Real>& ws, double* loss, Real* theta, Real* m, Real* v,
                                 const double* lr, const unsigned long long* step, AdamParams adam, cudaStream_t s,
                                 const Members& mb = Members{});

// Loads the update kernels; plan_gradient calls it, before any graph capture of a launch.
template <class Real>
void prepare_adam_kernels();

}  // namespace pinntk
