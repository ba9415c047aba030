#include <stdexcept>  // std::invalid_argument

#include "common/mlp_math.hpp"     // mlp_forward_point, mlp_reverse_point
#include "common/residual.hpp"     // row_residual
#include "cuda/check.cuh"          // PINNTK_CUDA_CHECK, PINNTK_LAUNCH_CHECK
#include "cuda/device_buffer.cuh"  // DeviceBuffer, kLegacyStream
#include "cuda/reference_kernels.hpp"

namespace pinntk::cuda_ref {
namespace {

// ---- kernels ----

__global__ void residuals_jacobian_kernel(MlpShape s, const double* theta, int n, const double* x, const double* alpha,
                                          const double* beta, const double* gamma, const double* f, double* r,
                                          double* J, double* scratch, int scratch_per) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= n) return;
  const int P = mlp_param_count(s);
  double* tape = scratch + static_cast<size_t>(k) * scratch_per;
  double* adj = tape + mlp_tape_size(s);
  double out[3];
  mlp_forward_point(s, theta, x[k], tape, out);
  r[k] = row_residual(alpha[k], beta[k], gamma[k], f[k], out[0], out[1], out[2]);
  mlp_reverse_point(s, theta, x[k], tape, alpha[k], beta[k], gamma[k], J + static_cast<size_t>(k) * P, false, adj);
}

}  // namespace

// ---- launchers ----

void residuals_jacobian(const std::vector<int>& layers, const std::vector<double>& theta, const Rows& rows,
                        std::vector<double>& r, std::vector<double>& J) {
  const int n = static_cast<int>(rows.x.size());
  if (layers.size() < 2 || rows.alpha.size() != rows.x.size() || rows.beta.size() != rows.x.size() ||
      rows.gamma.size() != rows.x.size() || rows.f.size() != rows.x.size())
    throw std::invalid_argument("cuda_ref::residuals_jacobian: inconsistent shapes");
  DeviceBuffer<int> d_layers(layers, kLegacyStream);  // one thread, the legacy default stream
  const MlpShape host_shape{layers.data(), static_cast<int>(layers.size()) - 1};
  const int P = mlp_param_count(host_shape);
  if (static_cast<int>(theta.size()) != P) throw std::invalid_argument("cuda_ref::residuals_jacobian: theta size");
  const int scratch_per = mlp_tape_size(host_shape) + mlp_adjoint_size(host_shape);
  DeviceBuffer<double> d_theta(theta, kLegacyStream), d_x(rows.x, kLegacyStream), d_a(rows.alpha, kLegacyStream),
      d_b(rows.beta, kLegacyStream), d_g(rows.gamma, kLegacyStream), d_f(rows.f, kLegacyStream);
  DeviceBuffer<double> d_r(n, kLegacyStream), d_J(static_cast<size_t>(n) * P, kLegacyStream),
      d_scratch(static_cast<size_t>(n) * scratch_per, kLegacyStream);
  if (n > 0) {
    const int block = 128;
    const MlpShape dev_shape{d_layers.data(), host_shape.nl};
    residuals_jacobian_kernel<<<(n + block - 1) / block, block>>>(dev_shape, d_theta.data(), n, d_x.data(), d_a.data(),
                                                                  d_b.data(), d_g.data(), d_f.data(), d_r.data(),
                                                                  d_J.data(), d_scratch.data(), scratch_per);
    PINNTK_LAUNCH_CHECK();
    PINNTK_CUDA_CHECK(cudaDeviceSynchronize());
  }
  d_r.download(r);
  d_J.download(J);
}

}  // namespace pinntk::cuda_ref
