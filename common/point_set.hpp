// PointSet: the rows of the least-squares problem that every backend consumes (host vectors; the CUDA backend copies
// them to the device).
#pragma once

#include <vector>  // std::vector

namespace pinntk {

// Row k of a problem in n = dim coordinates (the paper's problem (3) along the coordinate axes, DESIGN.md section 7):
//   r_k = gamma_k u + sum_i (beta_ki D_i u + alpha_ki D_i^2 u) - f_k   at the point x_k (common/residual.hpp),
// loss L = 1/2 sum_k w_k r_k^2 (paper eq. 8). In 1-D (dim = 1) r_k = alpha_k u'' + beta_k u' + gamma_k u - f_k.
// Collocation rows first, then boundary rows. x, alpha and beta hold dim numbers per row (row-major N x dim);
// gamma, f and w one.
//
// Directions (a full coefficient tensor, DESIGN.md section 7): when dirs is not empty, row k's derivatives D_i are
// along its own dim directions v_i (dirs holds dim x dim numbers per row, v_i at dirs[(k * dim + i) * dim]: the
// eigenvectors of the row's tensor), and alpha_ki, beta_ki are the coefficients in that basis. Empty: the axes.
struct PointSet {
  int dim = 1;
  int nc = 0, nb = 0;
  std::vector<double> x, alpha, beta, gamma, f, w;
  std::vector<double> dirs;
  int size() const { return nc + nb; }
  bool has_directions() const { return !dirs.empty(); }
  // Row k's directions (dim x dim, row-major), or axes (the identity, dim x dim) when the rows have none.
  const double* directions(int k, const double* axes) const {
    return dirs.empty() ? axes : dirs.data() + static_cast<size_t>(k) * dim * dim;
  }
};

}  // namespace pinntk
