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

// The n-dimensional row (DESIGN.md section 7): r = sum_i (alpha_i D_i^2 u + beta_i D_i u) + gamma u - f along the
// n coordinate axes. With n = 1 it is row_residual, to the last bit (the same operations in the same order).
template <class T>
PINNTK_HD inline T row_residual_nd(int n, const T* alpha, const T* beta, T gamma, T f, T u, const T* du, const T* d2u) {
  T s = alpha[0] * d2u[0] + beta[0] * du[0];
  for (int i = 1; i < n; ++i) s += alpha[i] * d2u[i] + beta[i] * du[i];
  return s + gamma * u - f;
}

// The row's term of L = 1/2 sum_k w_k r_k^2.
template <class T>
PINNTK_HD inline T row_loss(T w, T r) {
  return T(0.5) * w * r * r;
}

}  // namespace pinntk
