// An independent implementation of the network for the tests: forward-mode in theta (dual numbers) over
// truncated Taylor series in x, written from the definition of the MLP without the shared per-point math.
#pragma once

#include <algorithm>  // std::sort
#include <cmath>      // std::tanh, std::fabs, std::sqrt
#include <vector>     // std::vector

namespace pinntk::testing {

// a + b e with e^2 = 0: the derivative along one direction of theta.
struct Dual {
  double a = 0.0, b = 0.0;
};
inline Dual operator+(Dual x, Dual y) { return {x.a + y.a, x.b + y.b}; }
inline Dual operator-(Dual x, Dual y) { return {x.a - y.a, x.b - y.b}; }
inline Dual operator*(Dual x, Dual y) { return {x.a * y.a, x.a * y.b + x.b * y.a}; }
inline Dual operator*(double c, Dual y) { return {c * y.a, c * y.b}; }

// Truncated Taylor series in x: f(x + h) = c0 + c1 h + c2 h^2 / 2 (c1 = f', c2 = f'').
struct Taylor {
  Dual c0, c1, c2;
};
inline Taylor operator+(Taylor x, Taylor y) { return {x.c0 + y.c0, x.c1 + y.c1, x.c2 + y.c2}; }
inline Taylor mul(Dual w, Taylor x) { return {w * x.c0, w * x.c1, w * x.c2}; }
// g(f) for scalar g with g', g'' given at f.c0: (g o f)' = g' f', (g o f)'' = g'' f'^2 + g' f''.
inline Taylor compose(Dual g0, Dual g1, Dual g2, Taylor f) { return {g0, g1 * f.c1, g2 * f.c1 * f.c1 + g1 * f.c2}; }
inline Dual dual_tanh(Dual z) {
  const double t = std::tanh(z.a);
  return {t, (1.0 - t * t) * z.b};
}
inline Taylor taylor_tanh(Taylor z) {
  const Dual t = dual_tanh(z.c0);
  const Dual one{1.0, 0.0};
  const Dual s = one - t * t;      // tanh' = 1 - tanh^2
  const Dual s2 = -2.0 * (t * s);  // tanh'' = -2 tanh (1 - tanh^2)
  return compose(t, s, s2, z);
}
inline Dual operator-(Dual x) { return {-x.a, -x.b}; }

// u and its first two derivatives along the coordinate axis `axis` at the point x (layers[0] coordinates), with
// every parameter's tangent zero except theta[dir] (dir < 0: no tangent).
inline Taylor reference_forward_nd(const std::vector<int>& layers, const std::vector<double>& theta,
                                   const std::vector<double>& x, int axis, int dir) {
  std::vector<Taylor> h(x.size());
  for (size_t j = 0; j < x.size(); ++j)
    h[j] = {Dual{x[j], 0.0}, Dual{static_cast<int>(j) == axis ? 1.0 : 0.0, 0.0}, Dual{0.0, 0.0}};
  size_t off = 0;
  for (size_t l = 1; l < layers.size(); ++l) {
    const int din = layers[l - 1], dout = layers[l];
    std::vector<Taylor> z(dout);
    for (int i = 0; i < dout; ++i) {
      const size_t bi = off + static_cast<size_t>(dout) * din + i;
      Taylor acc{Dual{theta[bi], dir == static_cast<int>(bi) ? 1.0 : 0.0}, Dual{}, Dual{}};
      for (int j = 0; j < din; ++j) {
        const size_t wi = off + static_cast<size_t>(i) * din + j;
        acc = acc + mul(Dual{theta[wi], dir == static_cast<int>(wi) ? 1.0 : 0.0}, h[j]);
      }
      z[i] = acc;
    }
    off += static_cast<size_t>(dout) * din + dout;
    if (l + 1 == layers.size()) return z[0];
    h.assign(dout, Taylor{});
    for (int i = 0; i < dout; ++i) h[i] = taylor_tanh(z[i]);
  }
  return {};
}

// u, u', u'' at the scalar x (a network of one input).
inline Taylor reference_forward(const std::vector<int>& layers, const std::vector<double>& theta, double x, int dir) {
  return reference_forward_nd(layers, theta, {x}, 0, dir);
}

// Jacobian row of rho = sum_i (alpha_i D_i^2 u + beta_i D_i u) + gamma u at the point x (n = x.size() coordinates,
// alpha and beta n each) by forward mode, one pass per parameter and axis.
inline std::vector<double> reference_jacobian_row_nd(const std::vector<int>& layers, const std::vector<double>& theta,
                                                     const std::vector<double>& x, const double* alpha,
                                                     const double* beta, double gamma) {
  std::vector<double> row(theta.size());
  for (size_t p = 0; p < theta.size(); ++p) {
    double g = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      const Taylor t = reference_forward_nd(layers, theta, x, static_cast<int>(i), static_cast<int>(p));
      g += alpha[i] * t.c2.b + beta[i] * t.c1.b;
      if (i == 0) g += gamma * t.c0.b;
    }
    row[p] = g;
  }
  return row;
}

// Jacobian row of rho = alpha u'' + beta u' + gamma u (one input) by forward mode.
inline std::vector<double> reference_jacobian_row(const std::vector<int>& layers, const std::vector<double>& theta,
                                                  double x, double alpha, double beta, double gamma) {
  return reference_jacobian_row_nd(layers, theta, {x}, &alpha, &beta, gamma);
}

// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations (independent of LAPACK), descending.
inline std::vector<double> jacobi_eigenvalues(std::vector<double> A, int n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) (i == j ? diag : off) += A[i * n + j] * A[i * n + j];
    if (off <= 1e-32 * diag) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        const double apq = A[p * n + q];
        if (apq == 0.0) continue;
        const double theta = (A[q * n + q] - A[p * n + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
      }
  }
  std::vector<double> e(n);
  for (int i = 0; i < n; ++i) e[i] = A[i * n + i];
  std::sort(e.begin(), e.end(), [](double a, double b) { return a > b; });
  return e;
}

}  // namespace pinntk::testing
