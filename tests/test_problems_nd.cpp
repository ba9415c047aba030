// The n-dimensional problems' math (common/problems_nd.hpp): exact solutions against finite differences, the
// manufactured forcing against a finite-difference divergence of a grad u*, and the 1-D case against the 1-D
// Darcy preset.
#include <gtest/gtest.h>

#include <cmath>   // std::fabs, M_PI
#include <vector>  // std::vector

#include "common/problems_nd.hpp"  // exact_sines_nd, exact_twoscale_nd, darcy_nd_a, divergence_row
#include "host/problem.hpp"        // problem_preset, build_points

namespace pinntk {
namespace {

std::vector<double> moved(const std::vector<double>& x, int axis, double h) {
  std::vector<double> y = x;
  y[axis] += h;
  return y;
}

TEST(ProblemsNd, ExactSolutionsMatchFiniteDifferences) {
  for (int n : {2, 3}) {
    const std::vector<double> x = n == 2 ? std::vector<double>{0.31, 0.77} : std::vector<double>{0.21, 0.58, 0.9};
    const std::vector<double> y = n == 2 ? std::vector<double>{-1.3, 2.2} : std::vector<double>{-1.3, 0.4, 2.2};
    auto sines = [n](const std::vector<double>& p) { return exact_sines_nd(p.data(), n); };
    auto twoscale = [n](const std::vector<double>& p) { return exact_twoscale_nd(p.data(), n, 1.0 / 8); };
    for (int i = 0; i < n; ++i) {
      const double h1 = 1e-6, h2 = 1e-4;
      const auto s = sines(x), t = twoscale(y);
      EXPECT_NEAR(s.d1[i], (sines(moved(x, i, h1)).v - sines(moved(x, i, -h1)).v) / (2 * h1), 1e-8);
      EXPECT_NEAR(s.d2[i], (sines(moved(x, i, h2)).v - 2 * s.v + sines(moved(x, i, -h2)).v) / (h2 * h2), 1e-5);
      EXPECT_NEAR(t.d1[i], (twoscale(moved(y, i, h1)).v - twoscale(moved(y, i, -h1)).v) / (2 * h1), 1e-7);
      EXPECT_NEAR(t.d2[i], (twoscale(moved(y, i, h2)).v - 2 * t.v + twoscale(moved(y, i, -h2)).v) / (h2 * h2), 1e-4);
    }
  }
}

TEST(ProblemsNd, PoissonSinesForcingIsNPiSquaredU) {
  for (int n : {2, 3}) {
    const double x[3] = {0.13, 0.61, 0.37};
    const double grad0[3] = {0.0, 0.0, 0.0};
    const RowNd<double> row = divergence_row(1.0, grad0, n);  // -Laplace u
    const JetNd<double> u = exact_sines_nd(x, n);
    EXPECT_NEAR(manufactured_forcing(row, u, n), n * M_PI * M_PI * u.v, 1e-13) << n;
  }
}

TEST(ProblemsNd, DarcyForcingMatchesAFiniteDifferenceDivergence) {
  for (int n : {2, 3})
    for (double omega : {1.0, 2 * M_PI}) {
      const double eps = 1.0 / 8;
      const std::vector<double> x = {0.7, -1.9, 2.4};
      double grad[3];
      const double a = darcy_nd_a(x.data(), n, eps, omega, grad);
      const double f = manufactured_forcing(divergence_row(a, grad, n), exact_twoscale_nd(x.data(), n, eps), n);
      // -div(a grad u*) with the divergence by central differences of the flux a d_i u*.
      auto flux = [&](const std::vector<double>& p, int i) {
        double g[3];
        return darcy_nd_a(p.data(), n, eps, omega, g) * exact_twoscale_nd(p.data(), n, eps).d1[i];
      };
      double fd = 0.0;
      const double h = 1e-6;
      for (int i = 0; i < n; ++i) fd -= (flux(moved(x, i, h), i) - flux(moved(x, i, -h), i)) / (2 * h);
      EXPECT_NEAR(f, fd, 1e-6 * (1 + std::fabs(f))) << "n " << n << " omega " << omega;
      // and a's gradient itself
      for (int i = 0; i < n; ++i) {
        double g1[3], g2[3];
        const double up = darcy_nd_a(moved(x, i, h).data(), n, eps, omega, g1);
        const double down = darcy_nd_a(moved(x, i, -h).data(), n, eps, omega, g2);
        EXPECT_NEAR(grad[i], (up - down) / (2 * h), 1e-6 * (1 + std::fabs(grad[i])));
      }
    }
}

TEST(ProblemsNd, TheOneDimensionalCaseIsTheDarcyPreset) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 37;
  const PointSet pts = build_points(spec);
  for (int k = 0; k < spec.nc; ++k) {
    double grad[1];
    const double a = darcy_nd_a(&pts.x[k], 1, spec.eps, spec.omega, grad);
    const RowNd<double> row = divergence_row(a, grad, 1);
    const double f = manufactured_forcing(row, exact_twoscale_nd(&pts.x[k], 1, spec.eps), 1);
    // The same quantities as the 1-D preset, summed in another order: equal to rounding.
    EXPECT_NEAR(row.lambda[0], pts.alpha[k], 1e-15 * std::fabs(pts.alpha[k])) << k;
    EXPECT_NEAR(row.c[0], pts.beta[k], 1e-14 * (1 + std::fabs(pts.beta[k]))) << k;
    EXPECT_NEAR(f, pts.f[k], 1e-13 * (1 + std::fabs(pts.f[k]))) << k;
  }
}

}  // namespace
}  // namespace pinntk
