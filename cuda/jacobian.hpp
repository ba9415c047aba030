// The residuals and the Jacobian of a residual problem (cuda/jacobian.cu): r_k = alpha_k u'' + beta_k u' +
// gamma_k u - f_k and J_k = d r_k / d theta, one tile kernel over all rows.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "cuda/tile_plan.hpp"  // NetDesc, DeviceRows

namespace pinntk {

// Residuals r (rows.n) and the Jacobian J (rows.n x P row-major: cuBLAS reads it as a column-major P x n matrix),
// tiled by plan_tiles at the call. The rows are in net.n_in() coordinates (DeviceRows).
template <class Real>
void launch_jacobian(const NetDesc& net, const Real* theta, DeviceRows<Real> rows, Real* r, Real* J, cudaStream_t s);

}  // namespace pinntk
