// Per-point math of a tanh MLP with a scalar input and a scalar output (DESIGN.md section 2):
// Taylor-mode forward pass carrying (h, h', h'') and the reverse pass that gives the gradient of
// rho = alpha u'' + beta u' + gamma u with respect to every weight and bias.
// One definition for both backends: the CPU loops over points with OpenMP, the kernels in cuda/ call the same code.
#pragma once

#include <cmath>  // tanh

#include "common/hd.hpp"  // PINNTK_HD

// The kernels unroll the dot products by 8 (benchmarks/NOTES.md, v4); the host compiler sees no pragma.
#if defined(__CUDA_ARCH__)
#define PINNTK_UNROLL_8 _Pragma("unroll 8")
#else
#define PINNTK_UNROLL_8
#endif

namespace pinntk {

// Network shape: layers[0] = 1 (input x), layers[1..nl-1] hidden widths, layers[nl] = 1 (output u).
// nl is the number of weight layers. Parameters are ordered W^1 (row-major d_1 x d_0), b^1, W^2, b^2, ...
struct MlpShape {
  const int* layers;
  int nl;
};

PINNTK_HD inline int mlp_param_count(MlpShape s) {
  int p = 0;
  for (int l = 1; l <= s.nl; ++l) p += s.layers[l] * s.layers[l - 1] + s.layers[l];
  return p;
}

PINNTK_HD inline int mlp_max_width(MlpShape s) {
  int w = 1;
  for (int l = 0; l <= s.nl; ++l) w = s.layers[l] > w ? s.layers[l] : w;
  return w;
}

// Tape entries per point: for each hidden neuron t, h', h'', z', z'' (five numbers).
PINNTK_HD inline int mlp_tape_size(MlpShape s) {
  int n = 0;
  for (int l = 1; l < s.nl; ++l) n += 5 * s.layers[l];
  return n;
}

// Scratch for the reverse pass: two sets of three adjoint vectors of the widest layer.
PINNTK_HD inline int mlp_adjoint_size(MlpShape s) { return 6 * mlp_max_width(s); }

// One tanh neuron in Taylor mode (DESIGN.md section 2): from (z', z'') and t = tanh z,
// h' = s z', h'' = s z'' - 2 t s z'^2 with s = 1 - t^2.
template <class T>
PINNTK_HD inline void tanh_jet(T t, T zp, T zpp, T& h1, T& h2) {
  const T s = T(1) - t * t;
  h1 = s * zp;
  h2 = s * zpp - T(2) * t * s * zp * zp;
}

// Adjoint through one tanh neuron (DESIGN.md section 2): given the adjoints (hb, hb', hb'') of (h, h', h''),
// returns those of (z, z', z'').
template <class T>
PINNTK_HD inline void tanh_jet_adjoint(T t, T zp, T zpp, T hb0, T hb1, T hb2, T& zb0, T& zb1, T& zb2) {
  const T s = T(1) - t * t;
  const T ts = t * s;
  zb0 = hb0 * s - T(2) * ts * zp * hb1 - (T(2) * ts * zpp + T(2) * zp * zp * (s * s - T(2) * t * ts)) * hb2;
  zb1 = hb1 * s - T(4) * ts * zp * hb2;
  zb2 = hb2 * s;
}

// Tangent of tanh_jet along a parameter direction (DESIGN.md section 8, dots = d/dtheta . u): given t = tanh z, the
// jet (z', z'') and the tangents (zd, z'd, z''d), returns those of (h, h', h''):
// td = s zd, sd = -2 t td, h'd = sd z' + s z'd, h''d = sd z'' + s z''d - 2 (td s + t sd) z'^2 - 4 t s z' z'd.
template <class T>
PINNTK_HD inline void tanh_jet_tangent(T t, T zp, T zpp, T zd, T zpd, T zppd, T& hd, T& h1d, T& h2d) {
  const T s = T(1) - t * t;
  const T td = s * zd;
  const T sd = T(-2) * t * td;
  hd = td;
  h1d = sd * zp + s * zpd;
  h2d = sd * zpp + s * zppd - T(2) * (td * s + t * sd) * zp * zp - T(4) * t * s * zp * zpd;
}

// The first hidden layer at one neuron (DESIGN.md section 2): it sees h^0 = x, h'^0 = 1, h''^0 = 0, so
// z = w x + b, z' = w, z'' = 0 (the caller's tape keeps z' = w and z'' = 0), and t = tanh z with its jet h', h''.
template <class T>
PINNTK_HD inline void first_layer_jet(T w, T b, T x, T& t, T& h1, T& h2) {
  t = tanh(w * x + b);
  tanh_jet(t, w, T(0), h1, h2);
}

// Three dot products sharing their weights: s_c += sum_j w[j ws] v[c vs + j] for the channels c = 0, 1, 2.
// The forward pass takes w a row of W^l and v the jet (h, h', h'') of layer l-1 (z = W h for each channel); the
// reverse pass takes w a column of W^l (ws = d_{l-1}) and v the adjoints (A, A', A'') of z^l (hb = W^T A).
// N > 0: a compile-time trip count (the kernels' width fast path), else n.
template <int N = 0, class T>
PINNTK_HD inline void jet_dot(int n_rt, const T* w, int ws, const T* v, int vs, T& s0, T& s1, T& s2) {
  const int n = N > 0 ? N : n_rt;
  PINNTK_UNROLL_8
  for (int j = 0; j < n; ++j) {
    const T x = w[j * ws];
    s0 += x * v[j];
    s1 += x * v[vs + j];
    s2 += x * v[2 * vs + j];
  }
}

// d rho / d W^l_ij (DESIGN.md section 2): the adjoints (a0, a1, a2) of (z_i, z'_i, z''_i) against the jet
// (h_j, h'_j, h''_j) of layer l-1.
template <class T>
PINNTK_HD inline T weight_adjoint(T a0, T a1, T a2, T h0, T h1, T h2) {
  return a0 * h0 + a1 * h1 + a2 * h2;
}
// The same for layer 1, whose input jet is (x, 1, 0).
template <class T>
PINNTK_HD inline T first_layer_weight_adjoint(T a0, T a1, T x) {
  return a0 * x + a1;
}

// Forward pass at x: returns u, u', u'' in out[0..2] and fills the tape for mlp_reverse_point.
template <class T>
PINNTK_HD inline void mlp_forward_point(MlpShape s, const T* theta, T x, T* tape, T* out) {
  const T* p = theta;
  out[0] = out[1] = out[2] = T(0);
  // Layer 1 sees h^0 = x, h'^0 = 1, h''^0 = 0 (first_layer_jet); without a hidden layer u = w x + b.
  const int d1 = s.layers[1];
  if (s.nl == 1) {
    out[0] = p[0] * x + p[1];
    out[1] = p[0];
    out[2] = T(0);
    return;
  }
  T* cur = tape;
  for (int i = 0; i < d1; ++i) {
    const T w = p[i];
    T t, h1, h2;
    first_layer_jet(w, p[d1 + i], x, t, h1, h2);
    cur[i] = t;
    cur[d1 + i] = h1;
    cur[2 * d1 + i] = h2;
    cur[3 * d1 + i] = w;
    cur[4 * d1 + i] = T(0);
  }
  p += 2 * d1;
  T* prev = cur;
  for (int l = 2; l <= s.nl; ++l) {
    const int din = s.layers[l - 1];
    const int dout = s.layers[l];
    const T* W = p;
    const T* b = p + dout * din;
    const bool output = (l == s.nl);
    T* next = output ? nullptr : prev + 5 * din;
    for (int i = 0; i < dout; ++i) {
      T z = b[i], zp = T(0), zpp = T(0);
      jet_dot(din, W + i * din, 1, prev, din, z, zp, zpp);
      if (output) {
        out[0] = z;
        out[1] = zp;
        out[2] = zpp;
      } else {
        const T t = tanh(z);
        T h1, h2;
        tanh_jet(t, zp, zpp, h1, h2);
        next[i] = t;
        next[dout + i] = h1;
        next[2 * dout + i] = h2;
        next[3 * dout + i] = zp;
        next[4 * dout + i] = zpp;
      }
    }
    p += dout * din + dout;
    prev = next;
  }
}

// Reverse pass for rho = alpha u'' + beta u' + gamma u at the point whose tape mlp_forward_point filled.
// Writes d rho / d theta into row[0..P) (or adds it when accumulate is true). adj holds mlp_adjoint_size(s).
// Seeding (gamma, beta, alpha) with w_k r_k times the coefficients gives the loss gradient (DESIGN.md section 2).
template <class T>
PINNTK_HD inline void mlp_reverse_point(MlpShape s, const T* theta, T x, const T* tape, T alpha, T beta, T gamma,
                                        T* row, bool accumulate, T* adj) {
  const int mw = mlp_max_width(s);
  T* A = adj;           // adjoints of z^l, z'^l, z''^l at A[0..d), A[mw..mw+d), A[2mw..2mw+d)
  T* B = adj + 3 * mw;  // the next layer down
  A[0] = gamma;
  A[mw] = beta;
  A[2 * mw] = alpha;
  // Tape offset of each hidden layer is the running sum of 5 d_k.
  int tape_end = mlp_tape_size(s);
  int off_end = mlp_param_count(s);
  for (int l = s.nl; l >= 1; --l) {
    const int dout = s.layers[l];
    const int din = s.layers[l - 1];
    const int off_b = off_end - dout;
    const int off_W = off_b - dout * din;
    const T* W = theta + off_W;
    const T* prev = (l > 1) ? tape + tape_end - 5 * din : nullptr;
    for (int i = 0; i < dout; ++i) {
      const T a0 = A[i], a1 = A[mw + i], a2 = A[2 * mw + i];
      T* gw = row + off_W + i * din;
      if (l == 1) {
        const T g = first_layer_weight_adjoint(a0, a1, x);
        gw[0] = accumulate ? gw[0] + g : g;
      } else {
        for (int j = 0; j < din; ++j) {
          const T g = weight_adjoint(a0, a1, a2, prev[j], prev[din + j], prev[2 * din + j]);
          gw[j] = accumulate ? gw[j] + g : g;
        }
      }
      row[off_b + i] = accumulate ? row[off_b + i] + a0 : a0;
    }
    if (l > 1) {
      for (int j = 0; j < din; ++j) {
        T hb0 = T(0), hb1 = T(0), hb2 = T(0);
        jet_dot(dout, W + j, din, A, mw, hb0, hb1, hb2);
        tanh_jet_adjoint(prev[j], prev[3 * din + j], prev[4 * din + j], hb0, hb1, hb2, B[j], B[mw + j], B[2 * mw + j]);
      }
      T* tmp = A;
      A = B;
      B = tmp;
      tape_end -= 5 * din;
    }
    off_end = off_W;
  }
}

}  // namespace pinntk
