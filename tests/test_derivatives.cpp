// The shared per-point math against finite differences (in x and in theta) and against the independent
// forward-mode implementation in reference_mlp.hpp.
#include <gtest/gtest.h>

#include <cmath>  // std::fabs

#include "host/backend.hpp"      // make_cpu_backend
#include "host/cpu_batched.hpp"  // batched_loss_gradient
#include "host/mlp.hpp"          // init_mlp
#include "tests/near.hpp"        // all_near, near: agreement to rounding across BLAS kernels
#include "tests/reference_mlp.hpp"

namespace pinntk {
namespace {

struct Point3 {
  double u, du, d2u;
};

Point3 eval(const Mlp& net, double x) {
  std::vector<double> tape(mlp_tape_size(net.shape()));
  double out[3];
  mlp_forward_point(net.shape(), net.theta.data(), x, tape.data(), out);
  return {out[0], out[1], out[2]};
}

std::vector<double> jac_row(const Mlp& net, double x, double a, double b, double g) {
  std::vector<double> tape(mlp_tape_size(net.shape())), adj(mlp_adjoint_size(net.shape()));
  std::vector<double> row(net.n_params(), -7.0);  // poisoned: every entry must be written
  double out[3];
  mlp_forward_point(net.shape(), net.theta.data(), x, tape.data(), out);
  mlp_reverse_point(net.shape(), net.theta.data(), x, tape.data(), a, b, g, row.data(), false, adj.data());
  return row;
}

const std::vector<std::vector<int>> kShapes = {{1, 1, 1}, {1, 7, 1}, {1, 50, 1}, {1, 5, 3, 1}, {1, 8, 6, 7, 5, 1}};

TEST(Derivatives, XDerivativesMatchFiniteDifferences) {
  for (const auto& layers : kShapes) {
    const Mlp net = init_mlp(layers, "glorot-normal", 11);
    for (double x : {-2.9, -0.7, 0.0, 0.3, 1.7}) {
      const double h = 1e-4;
      const Point3 p = eval(net, x), pp = eval(net, x + h), pm = eval(net, x - h);
      const double fd1 = (pp.u - pm.u) / (2 * h);
      const double fd2 = (pp.u - 2 * p.u + pm.u) / (h * h);
      const double fd2b = (pp.du - pm.du) / (2 * h);  // u'' from u' too
      EXPECT_NEAR(p.du, fd1, 1e-7 * (1 + std::fabs(p.du)));
      EXPECT_NEAR(p.d2u, fd2, 1e-5 * (1 + std::fabs(p.d2u)));
      EXPECT_NEAR(p.d2u, fd2b, 1e-7 * (1 + std::fabs(p.d2u)));
    }
  }
}

TEST(Derivatives, ForwardMatchesIndependentImplementation) {
  for (const auto& layers : kShapes) {
    const Mlp net = init_mlp(layers, "normal", 3);
    for (double x : {-3.1, -1.0, 0.2, 2.5}) {
      const Point3 p = eval(net, x);
      const testing::Taylor t = testing::reference_forward(layers, net.theta, x, -1);
      EXPECT_NEAR(p.u, t.c0.a, 1e-13 * (1 + std::fabs(t.c0.a)));
      EXPECT_NEAR(p.du, t.c1.a, 1e-13 * (1 + std::fabs(t.c1.a)));
      EXPECT_NEAR(p.d2u, t.c2.a, 1e-13 * (1 + std::fabs(t.c2.a)));
    }
  }
}

TEST(Derivatives, JacobianMatchesCentralDifferencesInTheta) {
  for (const auto& layers : kShapes) {
    Mlp net = init_mlp(layers, "glorot-uniform", 5);
    for (size_t i = 0; i < net.theta.size(); ++i) net.theta[i] += 0.05 * std::sin(1.0 + i);  // nonzero biases
    const double a = -0.8, b = 0.37, g = 1.3, x = 0.61;
    const std::vector<double> row = jac_row(net, x, a, b, g);
    for (size_t p = 0; p < net.theta.size(); ++p) {
      const double h = 1e-5;
      Mlp plus = net, minus = net;
      plus.theta[p] += h;
      minus.theta[p] -= h;
      const Point3 up = eval(plus, x), um = eval(minus, x);
      const double fd = (a * (up.d2u - um.d2u) + b * (up.du - um.du) + g * (up.u - um.u)) / (2 * h);
      EXPECT_NEAR(row[p], fd, 1e-7 * (1 + std::fabs(fd))) << "parameter " << p;
    }
  }
}

TEST(Derivatives, JacobianMatchesForwardModeInTheta) {
  for (const auto& layers : kShapes) {
    const Mlp net = init_mlp(layers, "normal", 9);
    for (double x : {-2.0, 0.45, 3.0}) {
      const double a = -0.44, b = 1.9, g = 0.7;
      const std::vector<double> row = jac_row(net, x, a, b, g);
      const std::vector<double> ref = testing::reference_jacobian_row(layers, net.theta, x, a, b, g);
      double scale = 0.0;
      for (double v : ref) scale = std::max(scale, std::fabs(v));
      for (size_t p = 0; p < row.size(); ++p) EXPECT_NEAR(row[p], ref[p], 1e-13 * scale) << "parameter " << p;
    }
  }
}

TEST(Derivatives, GradientEqualsJacobianTransposeTimesWeightedResiduals) {
  // residuals_jacobian is the per-point math; loss_gradient the batched one, whose contractions are OpenBLAS dgemm
  // and dgemv: another summation order, and one that depends on the kernel family (OPENBLAS_CORETYPE) and on where a
  // point falls in the kernel's register tiles. The two agree to rounding, not bit for bit (the SkylakeX kernels
  // differ from the per-point residuals in the 15th digit).
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 37;  // not a multiple of the reduction chunk
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 9, 6, 1}, "glorot-normal", 2);
  auto be = make_cpu_backend(0);
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * P), r2(n), grad(P);
  be->residuals_jacobian(net, pts, r, J);
  const double loss = be->loss_gradient(net, pts, r2, grad);
  EXPECT_TRUE(testing::all_near(r2, r));  // relative to max |r|
  double ref_loss = 0.0;
  for (int k = 0; k < n; ++k) ref_loss += 0.5 * pts.w[k] * r[k] * r[k];
  EXPECT_TRUE(testing::near(loss, ref_loss, ref_loss));  // a sum of non-negative terms: relative to itself
  for (int p = 0; p < P; ++p) {
    double g = 0.0, scale = 0.0;
    for (int k = 0; k < n; ++k) {
      g += J[static_cast<size_t>(k) * P + p] * pts.w[k] * r[k];
      scale += std::fabs(J[static_cast<size_t>(k) * P + p] * pts.w[k] * r[k]);
    }
    // Relative to the sum of the magnitudes of the terms (the condition of the sum), 1e-300 for all-zero terms.
    EXPECT_TRUE(testing::near(grad[p], g, scale, testing::kRoundingRtol, 1e-300)) << "parameter " << p;
  }
}

TEST(Derivatives, GradientAgreesAcrossThreadCounts) {
  // The batched gradient's products run in OpenBLAS, whose partition of the work may change the rounding with the
  // thread count: the results agree to rounding, not bit for bit.
  const PointSet pts = build_points(problem_preset("poisson-twoscale"));
  const Mlp net = init_mlp({1, 16, 16, 1}, "glorot-normal", 4);
  std::vector<double> r1(pts.size()), r2(pts.size()), g1(net.n_params()), g2(net.n_params());
  const double l1 = make_cpu_backend(1)->loss_gradient(net, pts, r1, g1);
  const double l2 = make_cpu_backend(2)->loss_gradient(net, pts, r2, g2);
  EXPECT_TRUE(testing::near(l2, l1, l1));
  EXPECT_TRUE(testing::all_near(r2, r1));
  EXPECT_TRUE(testing::all_near(g2, g1));  // relative to max |g|
}

TEST(Derivatives, BatchedGradientChunksAgree) {
  // Points taken in chunks of 37 (partial last chunk) or all at once give the same gradient and residuals to
  // rounding. Not bit for bit: with 3 x 37 or 3 x 303 columns per product, a point's column lands in another
  // place of OpenBLAS's register tiling (full or edge tile of dgemm, vector body or tail of dgemv), whose
  // accumulation order differs. Which entries change depends on the kernel family: here the residuals differ under
  // Haswell and Zen but not SkylakeX, Sandybridge or Prescott, and the gradients under all five.
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 301;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 9, 7, 1}, "glorot-normal", 3);
  std::vector<double> r1(pts.size()), r2(pts.size()), g1(net.n_params()), g2(net.n_params());
  BatchedWorkspace ws;
  const double l1 = batched_loss_gradient(net, pts, r1, g1, ws, 37);
  const double l2 = batched_loss_gradient(net, pts, r2, g2, ws, 4096);
  EXPECT_TRUE(testing::near(l1, l2, l2));
  EXPECT_TRUE(testing::all_near(g1, g2));  // relative to max |g|
  EXPECT_TRUE(testing::all_near(r1, r2));  // relative to max |r|
  // The same call twice (same chunk, kernel and thread count) is bit for bit the same.
  std::vector<double> r3(pts.size()), g3(net.n_params());
  const double l3 = batched_loss_gradient(net, pts, r3, g3, ws, 37);
  EXPECT_EQ(l3, l1);
  EXPECT_EQ(r3, r1);
  EXPECT_EQ(g3, g1);
}

}  // namespace
}  // namespace pinntk
