// PointSet: the rows of the least-squares problem that every backend consumes (host vectors; the CUDA backend copies
// them to the device).
#pragma once

#include <vector>  // std::vector

namespace pinntk {

// Residual r_k = alpha_k u'' + beta_k u' + gamma_k u - f_k at x_k (common/residual.hpp), loss L = 1/2 sum_k w_k r_k^2
// (paper eq. 8). Collocation rows first, then boundary rows.
struct PointSet {
  int nc = 0, nb = 0;
  std::vector<double> x, alpha, beta, gamma, f, w;
  int size() const { return nc + nb; }
};

}  // namespace pinntk
