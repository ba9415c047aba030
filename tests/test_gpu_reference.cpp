// The reference CUDA kernel (shared per-point math, one thread per point) against the CPU backend.
#include <gtest/gtest.h>

#include <cmath>  // std::fabs

#include "cuda/reference_kernels.hpp"  // cuda_ref::residuals_jacobian
#include "host/backend.hpp"            // make_cpu_backend

namespace pinntk {
namespace {

TEST(GpuReference, JacobianMatchesCpu) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device answers";
  for (const auto& layers :
       std::vector<std::vector<int>>{{1, 1, 1}, {1, 7, 1}, {1, 33, 5, 1}, {1, 40, 40, 40, 40, 1}}) {
    ProblemSpec spec = problem_preset("darcy-twoscale");
    spec.nc = 301;  // not a multiple of the block
    const PointSet pts = build_points(spec);
    const Mlp net = init_mlp(layers, "glorot-normal", 21);
    const int n = pts.size(), P = net.n_params();
    std::vector<double> r(n), J(static_cast<size_t>(n) * P);
    make_cpu_backend(0)->residuals_jacobian(net, pts, r, J);
    std::vector<double> rg(n, NAN), Jg(J.size(), NAN);
    cuda_ref::residuals_jacobian(layers, net.theta, {pts.x, pts.alpha, pts.beta, pts.gamma, pts.f}, rg, Jg);
    ASSERT_EQ(Jg.size(), J.size());
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < J.size(); ++i) {
      ASSERT_TRUE(std::isfinite(Jg[i])) << i;
      num += (Jg[i] - J[i]) * (Jg[i] - J[i]);
      den += J[i] * J[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-12);
    for (int k = 0; k < n; ++k) EXPECT_NEAR(rg[k], r[k], 1e-11 * (1 + std::fabs(r[k])));
  }
}

}  // namespace
}  // namespace pinntk
