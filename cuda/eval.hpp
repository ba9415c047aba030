// The network and its first two derivatives at points (cuda/eval.cu): u, u', u'' by the Taylor-mode forward pass
// of DESIGN.md section 2, one tile kernel over all points.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "cuda/tile_plan.hpp"  // NetDesc

namespace pinntk {

// u, u', u'' at the n points x, tiled by plan_tiles at the call.
template <class Real>
void launch_eval(const NetDesc& net, const Real* theta, const Real* x, int n, Real* u, Real* du, Real* d2u,
                 cudaStream_t s);

}  // namespace pinntk
