// The n-dimensional per-point pass (common/mlp_math_nd.hpp, DESIGN.md section 7): its 1-D case is the 1-D pass to
// the last bit, its directional derivatives match finite differences along the coordinate axes and mixed
// directions, its parameter gradient matches finite differences in theta, and its tangent pass along a parameter
// direction (DESIGN.md section 8) is each output channel's gradient dotted with that direction.
#include <gtest/gtest.h>

#include <cmath>   // std::sqrt, std::fabs
#include <vector>  // std::vector

#include "common/mlp_math_nd.hpp"  // mlp_forward_point_nd, mlp_reverse_point_nd, mlp_tangent_point_nd
#include "host/mlp.hpp"            // init_mlp
#include "host/rng.hpp"            // Rng

namespace pinntk {
namespace {

struct Pass {
  std::vector<double> out, tape, row;
};

// u and its directional jets at x, and d rho / d theta for rho = gamma u + sum_k (c_k D_k u + lambda_k D_k^2 u).
Pass run_nd(const Mlp& net, const std::vector<double>& x, int m, const std::vector<double>& v, double gamma,
            const std::vector<double>& c, const std::vector<double>& lambda) {
  const MlpShape s = net.shape();
  Pass r;
  r.out.assign(1 + 2 * m, 0.0);
  r.tape.assign(mlp_tape_size_nd(s, m), 0.0);
  r.row.assign(net.n_params(), 0.0);
  std::vector<double> adj(mlp_adjoint_size_nd(s, m));
  mlp_forward_point_nd(s, net.theta.data(), x.data(), m, v.data(), r.tape.data(), r.out.data());
  mlp_reverse_point_nd(s, net.theta.data(), x.data(), m, v.data(), r.tape.data(), gamma, c.data(), lambda.data(),
                       r.row.data(), false, adj.data());
  return r;
}

double u_at(const Mlp& net, const std::vector<double>& x) {
  const int n = static_cast<int>(x.size());
  std::vector<double> out(3), tape(mlp_tape_size_nd(net.shape(), 1)), v(n, 0.0);
  v[0] = 1.0;
  mlp_forward_point_nd(net.shape(), net.theta.data(), x.data(), 1, v.data(), tape.data(), out.data());
  return out[0];
}

TEST(DerivativesNd, TheOneDimensionalCaseIsTheOneDimensionalPassToTheLastBit) {
  // The same arithmetic in the same order on the same compiler: equal bits, not a tolerance.
  for (const std::vector<int>& layers : {std::vector<int>{1, 7, 1}, {1, 7, 5, 1}, {1, 4, 9, 3, 1}, {1, 1}}) {
    const Mlp net = init_mlp(layers, "normal", 11);
    const MlpShape s = net.shape();
    for (double x : {-2.5, -0.3, 0.0, 1.7}) {
      std::vector<double> out1(3), tape1(mlp_tape_size(s)), row1(net.n_params()), adj1(mlp_adjoint_size(s));
      mlp_forward_point(s, net.theta.data(), x, tape1.data(), out1.data());
      mlp_reverse_point(s, net.theta.data(), x, tape1.data(), -0.7, 1.3, 0.4, row1.data(), false, adj1.data());
      const Pass nd = run_nd(net, {x}, 1, {1.0}, 0.4, {1.3}, {-0.7});
      EXPECT_EQ(nd.out, out1) << "layers " << layers.size() << " x " << x;
      EXPECT_EQ(nd.tape, tape1);
      EXPECT_EQ(nd.row, row1);
    }
  }
}

// Unit directions: the coordinate axes and, for n > 1, a mixed one.
std::vector<std::vector<double>> directions(int n) {
  std::vector<std::vector<double>> d;
  for (int k = 0; k < n; ++k) {
    d.emplace_back(n, 0.0);
    d.back()[k] = 1.0;
  }
  if (n > 1) {
    std::vector<double> mixed(n);
    double norm = 0.0;
    for (int j = 0; j < n; ++j) norm += (mixed[j] = 0.3 + 0.5 * j) * mixed[j];
    for (double& e : mixed) e /= std::sqrt(norm);
    d.push_back(mixed);
  }
  return d;
}

TEST(DerivativesNd, DirectionalDerivativesMatchFiniteDifferences) {
  for (int n : {2, 3}) {
    const Mlp net = init_mlp({n, 6, 5, 1}, "glorot-normal", 3 + n);
    const auto dirs = directions(n);
    const int m = static_cast<int>(dirs.size());
    std::vector<double> v;
    for (const auto& d : dirs) v.insert(v.end(), d.begin(), d.end());
    std::vector<double> x(n);
    for (int j = 0; j < n; ++j) x[j] = 0.4 - 0.35 * j;
    const Pass p = run_nd(net, x, m, v, 1.0, std::vector<double>(m, 0.0), std::vector<double>(m, 0.0));
    for (int k = 0; k < m; ++k) {
      auto along = [&](double h) {
        std::vector<double> y = x;
        for (int j = 0; j < n; ++j) y[j] += h * dirs[k][j];
        return u_at(net, y);
      };
      const double h1 = 1e-5, h2 = 1e-4;
      const double d1 = (along(h1) - along(-h1)) / (2 * h1);
      const double d2 = (along(h2) - 2 * along(0.0) + along(-h2)) / (h2 * h2);
      EXPECT_NEAR(p.out[1 + k], d1, 1e-8 * (1 + std::fabs(d1))) << "n " << n << " direction " << k;
      EXPECT_NEAR(p.out[1 + m + k], d2, 1e-5 * (1 + std::fabs(d2))) << "n " << n << " direction " << k;
    }
  }
}

TEST(DerivativesNd, ParameterGradientMatchesFiniteDifferencesInTheta) {
  for (int n : {2, 3}) {
    Mlp net = init_mlp({n, 5, 4, 1}, "glorot-normal", 7);
    const auto dirs = directions(n);
    const int m = static_cast<int>(dirs.size());
    std::vector<double> v, c(m), lambda(m);
    for (const auto& d : dirs) v.insert(v.end(), d.begin(), d.end());
    Rng rng(5);
    for (int k = 0; k < m; ++k) {
      c[k] = rng.normal();
      lambda[k] = rng.normal();
    }
    const double gamma = 0.8;
    std::vector<double> x(n);
    for (int j = 0; j < n; ++j) x[j] = -0.6 + 0.5 * j;
    auto rho = [&](const Mlp& at) {
      const Pass p = run_nd(at, x, m, v, gamma, c, lambda);
      double r = gamma * p.out[0];
      for (int k = 0; k < m; ++k) r += c[k] * p.out[1 + k] + lambda[k] * p.out[1 + m + k];
      return r;
    };
    const Pass p = run_nd(net, x, m, v, gamma, c, lambda);
    double scale = 0.0;
    for (double g : p.row) scale = std::max(scale, std::fabs(g));
    for (int q = 0; q < net.n_params(); ++q) {
      const double h = 1e-6, keep = net.theta[q];
      net.theta[q] = keep + h;
      const double up = rho(net);
      net.theta[q] = keep - h;
      const double down = rho(net);
      net.theta[q] = keep;
      EXPECT_NEAR(p.row[q], (up - down) / (2 * h), 1e-7 * scale) << "n " << n << " parameter " << q;
    }
  }
}

TEST(DerivativesNd, ARowWithoutDerivativesHasTheGradientOfU) {
  // m = 0 (gamma u alone, a regression or boundary row): the gradient of u, as the 1-D pass seeded (1, 0, 0).
  const Mlp net = init_mlp({2, 6, 1}, "normal", 2);
  const std::vector<double> x = {0.3, -0.2};
  const Pass none = run_nd(net, x, 0, {}, 1.0, {}, {});
  const Pass axes = run_nd(net, x, 2, {1, 0, 0, 1}, 1.0, {0, 0}, {0, 0});
  ASSERT_EQ(none.row.size(), axes.row.size());
  for (size_t q = 0; q < none.row.size(); ++q) EXPECT_NEAR(none.row[q], axes.row[q], 1e-15) << q;
  EXPECT_EQ(none.out[0], axes.out[0]);
}

TEST(DerivativesNd, TangentPassIsEveryChannelsGradientAlongTheParameterDirection) {
  // mlp_tangent_point_nd (DESIGN.md section 8) against the reverse pass seeded with one channel (the channel's
  // gradient in theta, dotted with dtheta) and against a central difference in theta along dtheta; n = 1 is the 1-D
  // network, {n, 4, 1} a single hidden layer, {n, 1} none.
  for (int n : {1, 2, 3}) {
    for (const std::vector<int>& hidden : {std::vector<int>{6, 5}, std::vector<int>{4}, std::vector<int>{}}) {
      std::vector<int> layers = {n};
      layers.insert(layers.end(), hidden.begin(), hidden.end());
      layers.push_back(1);
      Mlp net = init_mlp(layers, "glorot-normal", 11 + n);
      const auto dirs = directions(n);
      const int m = static_cast<int>(dirs.size()), P = net.n_params();
      std::vector<double> v;
      for (const auto& d : dirs) v.insert(v.end(), d.begin(), d.end());
      std::vector<double> x(n), dtheta(P);
      for (int j = 0; j < n; ++j) x[j] = 0.45 - 0.4 * j;
      Rng rng(23);
      double dnorm = 0.0;
      for (double& e : dtheta) {
        e = rng.normal();
        dnorm += e * e;
      }
      dnorm = std::sqrt(dnorm);
      std::vector<double> tangent(1 + 2 * m), scratch(mlp_tangent_size_nd(net.shape(), m));
      mlp_tangent_point_nd(net.shape(), net.theta.data(), dtheta.data(), x.data(), m, v.data(), scratch.data(),
                           tangent.data());
      auto jet_at = [&](double h) {
        Mlp at = net;
        for (int q = 0; q < P; ++q) at.theta[q] += h * dtheta[q];
        return run_nd(at, x, m, v, 1.0, std::vector<double>(m, 0.0), std::vector<double>(m, 0.0)).out;
      };
      const double h = 1e-6;
      const std::vector<double> up = jet_at(h), down = jet_at(-h);
      for (int ch = 0; ch < 1 + 2 * m; ++ch) {
        std::vector<double> c(m, 0.0), lambda(m, 0.0);
        if (ch >= 1 && ch <= m) c[ch - 1] = 1.0;
        if (ch > m) lambda[ch - 1 - m] = 1.0;
        const Pass p = run_nd(net, x, m, v, ch == 0 ? 1.0 : 0.0, c, lambda);
        double dot = 0.0, rnorm = 0.0;
        for (int q = 0; q < P; ++q) {
          dot += p.row[q] * dtheta[q];
          rnorm += p.row[q] * p.row[q];
        }
        const double bound = std::sqrt(rnorm) * dnorm;
        EXPECT_NEAR(tangent[ch], dot, 1e-13 * bound) << "n " << n << " depth " << hidden.size() << " channel " << ch;
        EXPECT_NEAR(tangent[ch], (up[ch] - down[ch]) / (2 * h), 1e-7 * (1 + bound))
            << "n " << n << " depth " << hidden.size() << " channel " << ch;
      }
    }
  }
}

}  // namespace
}  // namespace pinntk
