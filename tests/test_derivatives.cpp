// The shared per-point math against finite differences (in x and in theta) and against the independent
// forward-mode implementation in reference_mlp.hpp.
#include <gtest/gtest.h>

#include <cmath>  // std::fabs

#include "host/backend.hpp"      // make_cpu_backend
#include "host/cpu_batched.hpp"  // batched_loss_gradient
#include "host/mlp.hpp"      // init_mlp
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
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 37;  // not a multiple of the reduction chunk
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 9, 6, 1}, "glorot-normal", 2);
  auto be = make_cpu_backend(0);
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * P), r2(n), grad(P);
  be->residuals_jacobian(net, pts, r, J);
  const double loss = be->loss_gradient(net, pts, r2, grad);
  double ref_loss = 0.0;
  for (int k = 0; k < n; ++k) {
    EXPECT_DOUBLE_EQ(r[k], r2[k]);
    ref_loss += 0.5 * pts.w[k] * r[k] * r[k];
  }
  EXPECT_NEAR(loss, ref_loss, 1e-14 * ref_loss);
  for (int p = 0; p < P; ++p) {
    double g = 0.0, scale = 0.0;
    for (int k = 0; k < n; ++k) {
      g += J[static_cast<size_t>(k) * P + p] * pts.w[k] * r[k];
      scale += std::fabs(J[static_cast<size_t>(k) * P + p] * pts.w[k] * r[k]);
    }
    EXPECT_NEAR(grad[p], g, 1e-13 * (scale + 1e-300));
  }
}

TEST(Derivatives, GradientAgreesAcrossThreadCounts) {
  // The batched gradient's products run in OpenBLAS, whose partition of the work may change the rounding with the
  // thread count: the results agree to rounding, not bit for bit.
  const PointSet pts = build_points(problem_preset("poisson-twoscale"));
  const Mlp net = init_mlp({1, 16, 16, 1}, "glorot-normal", 4);
  std::vector<double> r(pts.size()), g1(net.n_params()), g2(net.n_params());
  make_cpu_backend(1)->loss_gradient(net, pts, r, g1);
  make_cpu_backend(2)->loss_gradient(net, pts, r, g2);
  double scale = 0.0;
  for (double g : g1) scale = std::max(scale, std::fabs(g));
  for (size_t p = 0; p < g1.size(); ++p) EXPECT_NEAR(g1[p], g2[p], 1e-14 * scale);
}

TEST(Derivatives, BatchedGradientChunksAgree) {
  // Points taken in chunks of 37 (partial last chunk) or all at once give the same gradient.
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 301;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 9, 7, 1}, "glorot-normal", 3);
  std::vector<double> r1(pts.size()), r2(pts.size()), g1(net.n_params()), g2(net.n_params());
  BatchedWorkspace ws;
  const double l1 = batched_loss_gradient(net, pts, r1, g1, ws, 37);
  const double l2 = batched_loss_gradient(net, pts, r2, g2, ws, 4096);
  EXPECT_NEAR(l1, l2, 1e-13 * l2);
  double scale = 0.0;
  for (double g : g2) scale = std::max(scale, std::fabs(g));
  for (size_t p = 0; p < g1.size(); ++p) EXPECT_NEAR(g1[p], g2[p], 1e-13 * scale);
  for (size_t k = 0; k < r1.size(); ++k) EXPECT_EQ(r1[k], r2[k]);
}

}  // namespace
}  // namespace pinntk
