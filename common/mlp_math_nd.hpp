// Per-point math of a tanh MLP on n inputs in Taylor mode along m directions (DESIGN.md section 7, the paper's
// problem (3) in R^n): the forward pass carries h and, per direction v_k, (h'_k, h''_k) = (D_k h, D_k^2 h); the
// reverse pass gives the gradient of rho = gamma u + sum_k (c_k D_k u + lambda_k D_k^2 u) with respect to every
// weight and bias. Each direction follows the 1-D rules of common/mlp_math.hpp (tanh_jet, tanh_jet_adjoint); the
// directions share only t = tanh z. With n = m = 1 and v = 1 it is the 1-D pass, to the last bit.
//
// The CPU backend calls it per point (host/cpu_backend.cpp); the CUDA tile kernels (cuda/tile_phases.cuh) use the
// helpers at the end of this file.
#pragma once

#include <cmath>  // tanh

#include "common/hd.hpp"        // PINNTK_HD
#include "common/mlp_math.hpp"  // MlpShape, mlp_param_count, mlp_max_width, tanh_jet, tanh_jet_adjoint

namespace pinntk {

// Tape entries per point for m directions: per hidden neuron t, then h'_k, h''_k, z'_k, z''_k for every k
// (1 + 4m numbers; 5 in 1-D, in the same order as mlp_tape_size's).
PINNTK_HD inline int mlp_tape_size_nd(MlpShape s, int m) {
  int n = 0;
  for (int l = 1; l < s.nl; ++l) n += (1 + 4 * m) * s.layers[l];
  return n;
}

// Scratch of the reverse pass: two sets of 1 + 2m adjoint vectors of the widest layer.
PINNTK_HD inline int mlp_adjoint_size_nd(MlpShape s, int m) { return 2 * (1 + 2 * m) * mlp_max_width(s); }

// Forward pass at x (layers[0] = n coordinates) along the m directions v (m x n, row-major): out[0] = u,
// out[1 + k] = D_k u, out[1 + m + k] = D_k^2 u. Fills the tape for mlp_reverse_point_nd.
template <class T>
PINNTK_HD inline void mlp_forward_point_nd(MlpShape s, const T* theta, const T* x, int m, const T* v, T* tape, T* out) {
  const int n = s.layers[0];
  const T* p = theta;
  // Layer 1 sees h^0 = x, h'^0_k = v_k, h''^0_k = 0: z = W x + b, z'_k = W v_k, z''_k = 0.
  const int d1 = s.layers[1];
  T* cur = tape;
  for (int i = 0; i < d1; ++i) {
    const T* wi = p + i * n;
    T wx = T(0);
    for (int j = 0; j < n; ++j) wx += wi[j] * x[j];
    const T z = wx + p[d1 * n + i];
    if (s.nl == 1) {  // no hidden layer: u is affine in x
      out[0] = z;
      for (int k = 0; k < m; ++k) {
        T zp = T(0);
        for (int j = 0; j < n; ++j) zp += wi[j] * v[k * n + j];
        out[1 + k] = zp;
        out[1 + m + k] = T(0);
      }
      return;
    }
    const T t = tanh(z);
    cur[i] = t;
    for (int k = 0; k < m; ++k) {
      T zp = T(0);
      for (int j = 0; j < n; ++j) zp += wi[j] * v[k * n + j];
      T h1, h2;
      tanh_jet(t, zp, T(0), h1, h2);
      cur[(1 + k) * d1 + i] = h1;
      cur[(1 + m + k) * d1 + i] = h2;
      cur[(1 + 2 * m + k) * d1 + i] = zp;
      cur[(1 + 3 * m + k) * d1 + i] = T(0);
    }
  }
  p += d1 * n + d1;
  T* prev = cur;
  for (int l = 2; l <= s.nl; ++l) {
    const int din = s.layers[l - 1], dout = s.layers[l];
    const T* W = p;
    const T* b = p + dout * din;
    const bool output = l == s.nl;
    T* next = output ? nullptr : prev + (1 + 4 * m) * din;
    for (int i = 0; i < dout; ++i) {
      const T* wi = W + i * din;
      T z = b[i];
      for (int j = 0; j < din; ++j) z += wi[j] * prev[j];
      const T t = output ? z : tanh(z);
      if (output) {
        out[0] = z;
      } else {
        next[i] = t;
      }
      for (int k = 0; k < m; ++k) {
        T zp = T(0), zpp = T(0);
        for (int j = 0; j < din; ++j) {
          zp += wi[j] * prev[(1 + k) * din + j];
          zpp += wi[j] * prev[(1 + m + k) * din + j];
        }
        if (output) {
          out[1 + k] = zp;
          out[1 + m + k] = zpp;
        } else {
          T h1, h2;
          tanh_jet(t, zp, zpp, h1, h2);
          next[(1 + k) * dout + i] = h1;
          next[(1 + m + k) * dout + i] = h2;
          next[(1 + 2 * m + k) * dout + i] = zp;
          next[(1 + 3 * m + k) * dout + i] = zpp;
        }
      }
    }
    p += dout * din + dout;
    prev = next;
  }
}

// Reverse pass for rho = gamma u + sum_k (c_k D_k u + lambda_k D_k^2 u) at the point whose tape
// mlp_forward_point_nd filled: d rho / d theta into row[0..P) (added when accumulate). adj holds
// mlp_adjoint_size_nd(s, m).
template <class T>
PINNTK_HD inline void mlp_reverse_point_nd(MlpShape s, const T* theta, const T* x, int m, const T* v, const T* tape,
                                           T gamma, const T* c, const T* lambda, T* row, bool accumulate, T* adj) {
  const int n = s.layers[0], mw = mlp_max_width(s), set = (1 + 2 * m) * mw;
  // Adjoints of z^l at A[0..d), of z'^l_k at A[(1 + k) mw ..), of z''^l_k at A[(1 + m + k) mw ..).
  T* A = adj;
  T* B = adj + set;
  A[0] = gamma;
  for (int k = 0; k < m; ++k) {
    A[(1 + k) * mw] = c[k];
    A[(1 + m + k) * mw] = lambda[k];
  }
  int tape_end = mlp_tape_size_nd(s, m);
  int off_end = mlp_param_count(s);
  for (int l = s.nl; l >= 1; --l) {
    const int dout = s.layers[l], din = s.layers[l - 1];
    const int off_b = off_end - dout, off_W = off_b - dout * din;
    const T* W = theta + off_W;
    const T* prev = l > 1 ? tape + tape_end - (1 + 4 * m) * din : nullptr;
    for (int i = 0; i < dout; ++i) {
      T* gw = row + off_W + i * din;
      for (int j = 0; j < din; ++j) {
        // dRho/dW_ij = zb h_j + sum_k (zb'_k h'_kj + zb''_k h''_kj); layer 1's jet is (x, v_k, 0).
        T g = A[i] * (l > 1 ? prev[j] : x[j]);
        for (int k = 0; k < m; ++k) {
          g += A[(1 + k) * mw + i] * (l > 1 ? prev[(1 + k) * din + j] : v[k * n + j]);
          if (l > 1) g += A[(1 + m + k) * mw + i] * prev[(1 + m + k) * din + j];
        }
        gw[j] = accumulate ? gw[j] + g : g;
      }
      row[off_b + i] = accumulate ? row[off_b + i] + A[i] : A[i];
    }
    if (l == 1) break;
    for (int j = 0; j < din; ++j) {
      // hb = W^T A per channel, then through the tanh neuron direction by direction: the directions share t,
      // so z's adjoint sums theirs (the first one also carries hb s).
      T hb0 = T(0);
      for (int i = 0; i < dout; ++i) hb0 += W[i * din + j] * A[i];
      T zb = T(0);
      if (m == 0) {  // gamma u alone (a regression row): only h's adjoint
        T zb1, zb2;
        tanh_jet_adjoint(prev[j], T(0), T(0), hb0, T(0), T(0), zb, zb1, zb2);
      }
      for (int k = 0; k < m; ++k) {
        T hb1 = T(0), hb2 = T(0);
        for (int i = 0; i < dout; ++i) {
          hb1 += W[i * din + j] * A[(1 + k) * mw + i];
          hb2 += W[i * din + j] * A[(1 + m + k) * mw + i];
        }
        T zb0, zb1, zb2;
        tanh_jet_adjoint(prev[j], prev[(1 + 2 * m + k) * din + j], prev[(1 + 3 * m + k) * din + j], k == 0 ? hb0 : T(0),
                         hb1, hb2, zb0, zb1, zb2);
        zb = k == 0 ? zb0 : zb + zb0;
        B[(1 + k) * mw + j] = zb1;
        B[(1 + m + k) * mw + j] = zb2;
      }
      B[j] = zb;
    }
    T* tmp = A;
    A = B;
    B = tmp;
    tape_end -= (1 + 4 * m) * din;
    off_end = off_W;
  }
}

// Scratch of the tangent pass: the jet (h, h'_k, h''_k) and its tangent of two adjacent layers.
PINNTK_HD inline int mlp_tangent_size_nd(MlpShape s, int m) { return 4 * (1 + 2 * m) * mlp_max_width(s); }

// Forward pass at x along the m directions v (as mlp_forward_point_nd) carrying tangents along the parameter
// direction dtheta (P numbers; DESIGN.md section 8): with dots = d/dtheta . dtheta,
// zd = Wd h + W hd + bd, z'd_k = Wd h'_k + W h'd_k, z''d_k = Wd h''_k + W h''d_k, then tanh_jet_tangent per neuron.
// out[0] = ud, out[1 + k] = (D_k u)d, out[1 + m + k] = (D_k^2 u)d; the row's J dtheta is the residual's linear part
// applied to them (row_residual_nd with f = 0). m >= 1; the 1-D network is the case n = m = 1, v = 1. scratch holds
// mlp_tangent_size_nd(s, m); no tape is kept.
template <class T>
PINNTK_HD inline void mlp_tangent_point_nd(MlpShape s, const T* theta, const T* dtheta, const T* x, int m, const T* v,
                                           T* scratch, T* out) {
  const int n = s.layers[0], mw = mlp_max_width(s), set = (1 + 2 * m) * mw;
  // Channel 0 is h, 1 + k is h'_k, 1 + m + k is h''_k, each of mw entries; H/Hd layer l-1, G/Gd layer l.
  T* H = scratch;
  T* Hd = scratch + set;
  T* G = scratch + 2 * set;
  T* Gd = scratch + 3 * set;
  const T* p = theta;
  const T* pd = dtheta;
  for (int l = 1; l <= s.nl; ++l) {
    const int din = s.layers[l - 1], dout = s.layers[l];
    const bool output = l == s.nl;
    for (int i = 0; i < dout; ++i) {
      const T* wi = p + i * din;
      const T* wdi = pd + i * din;
      T z = p[dout * din + i], zd = pd[dout * din + i];
      // Layer 1 sees h^0 = x, h'^0_k = v_k, h''^0_k = 0, none of them depending on theta.
      for (int j = 0; j < din; ++j) {
        const T h = l > 1 ? H[j] : x[j];
        z += wi[j] * h;
        zd += wdi[j] * h;
        if (l > 1) zd += wi[j] * Hd[j];
      }
      const T t = output ? z : tanh(z);
      if (output) {
        out[0] = zd;
      } else {
        G[i] = t;
      }
      for (int k = 0; k < m; ++k) {
        T zp = T(0), zpp = T(0), zpd = T(0), zppd = T(0);
        for (int j = 0; j < din; ++j) {
          const T h1 = l > 1 ? H[(1 + k) * mw + j] : v[k * n + j];
          zp += wi[j] * h1;
          zpd += wdi[j] * h1;
          if (l > 1) {
            const T h2 = H[(1 + m + k) * mw + j];
            zpp += wi[j] * h2;
            zpd += wi[j] * Hd[(1 + k) * mw + j];
            zppd += wdi[j] * h2 + wi[j] * Hd[(1 + m + k) * mw + j];
          }
        }
        if (output) {
          out[1 + k] = zpd;
          out[1 + m + k] = zppd;
        } else {
          T hd;
          tanh_jet(t, zp, zpp, G[(1 + k) * mw + i], G[(1 + m + k) * mw + i]);
          tanh_jet_tangent(t, zp, zpp, zd, zpd, zppd, hd, Gd[(1 + k) * mw + i], Gd[(1 + m + k) * mw + i]);
          Gd[i] = hd;
        }
      }
    }
    p += dout * din + dout;
    pd += dout * din + dout;
    T* tmp = H;
    H = G;
    G = tmp;
    tmp = Hd;
    Hd = Gd;
    Gd = tmp;
  }
}

}  // namespace pinntk

// The kernels unroll the loops over the directions and channels completely (their accumulators stay in registers);
// the host compiler sees no pragma.
#if defined(__CUDA_ARCH__)
#define PINNTK_UNROLL_ALL _Pragma("unroll")
#else
#define PINNTK_UNROLL_ALL
#endif

namespace pinntk {

// ---- The same pass split by neuron for the CUDA tile kernels (cuda/tile_phases.cuh) ----
// Along the n coordinate axes (v = the identity, m = n = M directions) and with the tape and adjoint layouts of
// mlp_forward_point_nd and mlp_reverse_point_nd: channel 0 is h (or z's adjoint), channel 1 + k the k-th first
// derivative's, channel 1 + M + k the k-th second derivative's. The kernels' 1-D instance (M = 1) keeps the
// helpers of common/mlp_math.hpp.

// C dot products sharing their weights: s[c] += sum_j w[j ws] v[c vs + j] for the channels c = 0 .. C-1, each summed
// over j in order (jet_dot for C channels). The forward pass takes w a row of W^l and v the jet of layer l-1
// (C = 1 + 2M: z = W h, z'_k = W h'_k, z''_k = W h''_k); the reverse pass takes w a column of W^l (ws = d_{l-1}) and
// v the adjoints of z^l (hb = W^T A per channel). N > 0: a compile-time trip count, else n_rt.
template <int C, int N = 0, class T>
PINNTK_HD inline void jet_dot_nd(int n_rt, const T* w, int ws, const T* v, int vs, T* s) {
  const int n = N > 0 ? N : n_rt;
  PINNTK_UNROLL_8
  for (int j = 0; j < n; ++j) {
    const T x = w[j * ws];
    PINNTK_UNROLL_ALL
    for (int c = 0; c < C; ++c) s[c] += x * v[c * vs + j];
  }
}

// w . x of a first-layer neuron's row w of W^1 with N numbers, summed over j in order as mlp_forward_point_nd does.
template <int N, class T>
PINNTK_HD inline T first_layer_dot_nd(const T* w, const T* x) {
  T wx = T(0);
  PINNTK_UNROLL_ALL
  for (int j = 0; j < N; ++j) wx += w[j] * x[j];
  return wx;
}

// z = w . x + b of a first-layer neuron on the N coordinates x. Along the axes its directional derivatives are
// z'_k = w_k and z''_k = 0 exactly (the other products with v are zeros); along a row's own direction v_k (a full
// coefficient tensor) z'_k = w . v_k (first_layer_dot_nd) and z''_k = 0.
template <int N, class T>
PINNTK_HD inline T first_layer_z_nd(const T* w, const T* x, T b) {
  return first_layer_dot_nd<N>(w, x) + b;
}

// d rho / d W^1_ij along a row's own M directions (mlp_reverse_point_nd's order): a[c as] the adjoints of z_i
// (c = 0) and z'_ki (1 + k), x_j the coordinate, v[k M] the j-th component of direction v_k (v = the row's
// directions + j). Along the axes it is first_layer_weight_adjoint(a[0], a[(1 + j) as], x_j).
template <int M, class T>
PINNTK_HD inline T first_layer_weight_adjoint_dirs(const T* a, int as, T x, const T* v) {
  T g = a[0] * x;
  PINNTK_UNROLL_ALL
  for (int k = 0; k < M; ++k) g += a[(1 + k) * as] * v[k * M];
  return g;
}

// d rho / d W^l_ij along M directions, the terms in mlp_reverse_point_nd's order: a[c as] the adjoints of z_i
// (c = 0), z'_ki (1 + k) and z''_ki (1 + M + k); h[c hs] the jet h_j, h'_kj, h''_kj of layer l-1 (l > 1).
template <int M, class T>
PINNTK_HD inline T weight_adjoint_nd(const T* a, int as, const T* h, int hs) {
  T g = a[0] * h[0];
  PINNTK_UNROLL_ALL
  for (int k = 0; k < M; ++k) {
    g += a[(1 + k) * as] * h[(1 + k) * hs];
    g += a[(1 + M + k) * as] * h[(1 + M + k) * hs];
  }
  return g;
}

// Adjoint through one tanh neuron along M directions (mlp_reverse_point_nd): t = tanh z; zd[k zs] = z'_k and
// zd[(M + k) zs] = z''_k (the tape's entries of the neuron); hb[c] the adjoints of h (c = 0), h'_k (1 + k) and
// h''_k (1 + M + k). Writes those of z, z'_k, z''_k to zb[c bs]. The directions share t: z's adjoint sums theirs,
// the first one carrying hb s.
template <int M, class T>
PINNTK_HD inline void tanh_jet_adjoint_nd(T t, const T* zd, int zs, const T* hb, T* zb, int bs) {
  T z = T(0);
  PINNTK_UNROLL_ALL
  for (int k = 0; k < M; ++k) {
    T zb0, zb1, zb2;
    tanh_jet_adjoint(t, zd[k * zs], zd[(M + k) * zs], k == 0 ? hb[0] : T(0), hb[1 + k], hb[1 + M + k], zb0, zb1, zb2);
    z = k == 0 ? zb0 : z + zb0;
    zb[(1 + k) * bs] = zb1;
    zb[(1 + M + k) * bs] = zb2;
  }
  zb[0] = z;
}

}  // namespace pinntk
