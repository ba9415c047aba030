// The residual of one row and its loss term (paper eq. 8, DESIGN.md section 1), one definition for every path:
// the CPU per-point and batched paths, the CUDA kernels, training history and Levenberg-Marquardt.
#pragma once

#include "common/hd.hpp"  // PINNTK_HD

namespace pinntk {

// r = alpha u'' + beta u' + gamma u - f: the operator applied to the network at one row, minus its target.
template <class T>
PINNTK_HD inline T row_residual(T alpha, T beta, T gamma, T f, T u, T du, T d2u) {
  return alpha * d2u + beta * du + gamma * u - f;
}

// The row's term of L = 1/2 sum_k w_k r_k^2.
template <class T>
PINNTK_HD inline T row_loss(T w, T r) {
  return T(0.5) * w * r * r;
}

}  // namespace pinntk
