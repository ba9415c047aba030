// The reduction of a loss gradient's per-block partials (cuda/reduce.cu): the gradient and the loss, summed in a
// fixed order (deterministic). With an Adam update in the same kernel: launch_reduce_gradient_adam (cuda/adam.hpp).
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "cuda/loss_gradient.hpp"  // GradientWorkspace

namespace pinntk {

// grad (P) and *loss from the partials that launch_gradient_partials wrote into ws; for the members mb of a batch,
// each member's at its offsets (Members, cuda/loss_gradient.hpp).
template <class Real>
void launch_reduce_gradient(const GradientWorkspace<Real>& ws, Real* grad, double* loss, cudaStream_t s,
                            const Members& mb = Members{});

// Loads the reduction kernel; plan_gradient calls it, before any graph capture of a launch.
template <class Real>
void prepare_reduce_kernels();

}  // namespace pinntk
