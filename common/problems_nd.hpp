// The n-dimensional problems (the paper's problem (3), -div(a^eps grad u) = f, DESIGN.md section 7) as per-point
// math shared by host and device: exact solutions with their gradients and the diagonal of their Hessians, the
// isotropic two-scale Darcy coefficient and its gradient, and one row's coefficients in the form the n-D pass
// takes, rho = gamma u + sum_k (c_k D_k u + lambda_k D_k^2 u) along the coordinate axes, with the manufactured
// forcing f = rho(u*).
//
// Used by the n-dimensional presets (host/problem.cpp).
#pragma once

#include <cmath>  // sin, cos

#include "common/coefficients.hpp"  // exact_twoscale, Jet3
#include "common/hd.hpp"            // PINNTK_HD
#include "common/residual.hpp"      // row_residual_nd

namespace pinntk {

constexpr int kMaxDim = 3;

// u, its gradient and the diagonal of its Hessian at one point (the operators here are axis-aligned).
template <class T>
struct JetNd {
  T v;
  T d1[kMaxDim], d2[kMaxDim];
};

// prod_i sin(pi x_i): -Laplace u = n pi^2 u (the 2-D benchmark of Mueller & Zeinhofer and Dangel et al., and 3-D).
template <class T>
PINNTK_HD inline JetNd<T> exact_sines_nd(const T* x, int n) {
  const T pi = T(3.14159265358979323846);
  JetNd<T> u{T(1), {}, {}};
  for (int i = 0; i < n; ++i) u.v *= sin(pi * x[i]);
  for (int i = 0; i < n; ++i) {
    T rest = T(1);
    for (int j = 0; j < n; ++j)
      if (j != i) rest *= sin(pi * x[j]);
    u.d1[i] = pi * cos(pi * x[i]) * rest;
    u.d2[i] = -pi * pi * sin(pi * x[i]) * rest;
  }
  return u;
}

// prod_i v(x_i) with v the two-scale solution of eq. (26): zero on the boundary of [-pi, pi]^n.
template <class T>
PINNTK_HD inline JetNd<T> exact_twoscale_nd(const T* x, int n, T eps) {
  Jet3<T> v[kMaxDim];
  for (int i = 0; i < n; ++i) v[i] = exact_twoscale(x[i], eps);
  JetNd<T> u{T(1), {}, {}};
  for (int i = 0; i < n; ++i) u.v *= v[i].v;
  for (int i = 0; i < n; ++i) {
    T rest = T(1);
    for (int j = 0; j < n; ++j)
      if (j != i) rest *= v[j].v;
    u.d1[i] = v[i].d1 * rest;
    u.d2[i] = v[i].d2 * rest;
  }
  return u;
}

// The isotropic Darcy coefficient a(y) = 1 / (2.1 + (2/n) sum_i sin(omega y_i)) at y = x/eps (in 2-D
// 1/(2.1 + sin(omega y1) + sin(omega y2)); in 1-D the paper's 1/(2.1 + 2 sin(omega y)): the same range), and
// its gradient in x.
template <class T>
PINNTK_HD inline T darcy_nd_a(const T* x, int n, T eps, T omega, T* grad) {
  T d = T(2.1);
  for (int i = 0; i < n; ++i) d += T(2) / T(n) * sin(omega * (x[i] / eps));
  for (int i = 0; i < n; ++i) grad[i] = -(T(2) / T(n)) * omega * cos(omega * (x[i] / eps)) / eps / (d * d);
  return T(1) / d;
}

// One row along the coordinate axes: rho = gamma u + sum_k (c_k d_k u + lambda_k d_k^2 u).
template <class T>
struct RowNd {
  T gamma, c[kMaxDim], lambda[kMaxDim];
};

// -div(a grad u) = -a Laplace u - grad a . grad u: lambda_k = -a, c_k = -d_k a (DESIGN.md section 7 with A = a I).
template <class T>
PINNTK_HD inline RowNd<T> divergence_row(T a, const T* grad_a, int n) {
  RowNd<T> r{T(0), {}, {}};
  for (int k = 0; k < n; ++k) {
    r.lambda[k] = -a;
    r.c[k] = -grad_a[k];
  }
  return r;
}

// The manufactured forcing f = rho(u*): the row's residual at u* against a zero target (row_residual_nd, the
// formula build_points applies).
template <class T>
PINNTK_HD inline T manufactured_forcing(const RowNd<T>& r, const JetNd<T>& u, int n) {
  return row_residual_nd(n, r.lambda, r.c, r.gamma, T(0), u.v, u.d1, u.d2);
}

}  // namespace pinntk
