// The matrix-free product J u of the residual rows' Jacobian with a parameter direction (cuda/matvec.cu; DESIGN.md
// section 8): one forward pass per row carrying tangents along u, without forming J. Its transpose, J^T y, is the
// loss-gradient kernel seeded with y (launch_seeded_partials, cuda/loss_gradient.hpp).
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include "cuda/tile_plan.hpp"  // NetDesc, DeviceRows

namespace pinntk {

// out[k] = (J dtheta)_k = d rho_k / d theta . dtheta for the rows.n rows (dtheta: P numbers; rows in net.n_in()
// coordinates, of which x, alpha, beta and gamma are read). One warp per row, its jets in shared memory.
// std::invalid_argument when one row's jets do not fit in a block's shared memory.
template <class Real>
void launch_jacobian_times(const NetDesc& net, const Real* theta, const Real* dtheta, DeviceRows<Real> rows, Real* out,
                           cudaStream_t s);

}  // namespace pinntk
