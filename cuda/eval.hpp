// The network and its first two derivatives at points (cuda/eval.cu): u, u', u'' by the Taylor-mode forward pass
// of DESIGN.md section 2 (in n-D along each axis, section 7), one tile kernel over all points.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "cuda/tile_plan.hpp"  // NetDesc

namespace pinntk {

// u, u', u'' at the n points x, tiled by plan_tiles at the call. For a network of m = net.n_in() inputs x holds
// n x m coordinates (row-major), u n values, du and d2u n x m: du[k m + i] = D_i u and d2u[k m + i] = D_i^2 u at
// point k (DESIGN.md section 7, along the axes).
template <class Real>
void launch_eval(const NetDesc& net, const Real* theta, const Real* x, int n, Real* u, Real* du, Real* d2u,
                 cudaStream_t s);

}  // namespace pinntk
