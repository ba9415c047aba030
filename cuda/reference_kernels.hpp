// Reference CUDA kernels: the shared per-point math (common/mlp_math.hpp) run one thread per point, with the tape
// in global memory. Simple and slow on purpose: the yardstick the tuned kernels are checked against on the GPU.
#pragma once

#include <vector>  // std::vector

namespace pinntk::cuda_ref {

// The rows of a residual problem, as host arrays of equal length N.
struct Rows {
  std::vector<double> x, alpha, beta, gamma, f;
};

// r_k = alpha_k u'' + beta_k u' + gamma_k u - f_k and J (N x P row-major) = d rho_k / d theta, on the GPU.
void residuals_jacobian(const std::vector<int>& layers, const std::vector<double>& theta, const Rows& rows,
                        std::vector<double>& r, std::vector<double>& J);

}  // namespace pinntk::cuda_ref
