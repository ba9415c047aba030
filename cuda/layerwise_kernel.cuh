// The elementwise kernels of the layer-at-a-time matrix-free products (cuda/layerwise.hpp): between the GEMMs that
// carry every row's jets through a layer's weights, one thread per (neuron, row) applies the per-neuron rules of
// common/mlp_math.hpp and common/mlp_math_nd.hpp (tanh_jet, tanh_jet_tangent, tanh_jet_adjoint_nd) and
// common/residual.hpp (row_residual_nd) that the CPU backend's per-point passes apply. No CUDA header of its own:
// tests/block_emulator.hpp runs them on the CPU.
//
// Layout ("jet blocks"): the jets of a layer of width d over R rows in C = 1 + 2M channels are one column-major
// d x (C R) matrix, entry (c, i, k) at i + d (c R + k): channel 0 is h (or z), 1 + m the derivative along direction m,
// 1 + M + m the second derivative; a GEMM with W^l takes all channels and rows at once.
#pragma once

#include <cmath>    // tanh
#include <cstddef>  // size_t

#include "common/mlp_math.hpp"     // tanh_jet, tanh_jet_tangent
#include "common/mlp_math_nd.hpp"  // tanh_jet_adjoint_nd
#include "common/residual.hpp"     // row_residual_nd
#include "cuda/tile_plan.hpp"      // DeviceRows

namespace pinntk::layerwise_device {

// Entry (c, i, k) of a jet block of width d over R rows.
__device__ inline size_t jet_at(int c, long i, long k, long d, long R) {
  return static_cast<size_t>(i) + static_cast<size_t>(d) * (static_cast<size_t>(c) * R + k);
}

// The grid-stride loop over n elements every kernel here runs.
#define PINNTK_FOR_EACH(e, n)                                                      \
  for (long e = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; e < (n); \
       e += static_cast<long>(blockDim.x) * gridDim.x)

// v[0 .. n) = value.
template <class Real>
__global__ void fill_kernel(long n, Real value, Real* v) {
  PINNTK_FOR_EACH(e, n) v[e] = value;
}

// Layer 0's jets (width M): h = x, h'_m = e_m (the axes) or the row's own v_m (rows.dirs), h''_m = 0; every row of
// the block, element e = (c, j, k).
template <class Real, int M>
__global__ void input_jets_kernel(long R, DeviceRows<Real> rows, Real* H) {
  constexpr int C = 1 + 2 * M;
  PINNTK_FOR_EACH(e, C * M * R) {
    const long j = e % M, q = e / M, k = q % R;
    const int c = static_cast<int>(q / R);
    Real v = Real(0);
    if (c == 0) {
      v = rows.x[static_cast<size_t>(k) * M + j];
    } else if (c <= M) {
      v = rows.dirs != nullptr ? rows.dirs[(static_cast<size_t>(k) * M + (c - 1)) * M + j] : Real(c - 1 == j ? 1 : 0);
    }
    H[e] = v;
  }
}

// A hidden layer of width d: Z holds W h^{l-1} per channel (z - b, z'_m, z''_m); writes t = tanh(z) and the jet
// (h'_m, h''_m) = tanh_jet(t, z'_m, z''_m) to H (channel 0 t). Z keeps z'_m and z''_m for the reverse pass.
template <class Real, int M>
__global__ void forward_kernel(long d, long R, const Real* b, const Real* Z, Real* H) {
  PINNTK_FOR_EACH(e, d * R) {
    const long i = e % d, k = e / d;
    const Real t = tanh(Z[jet_at(0, i, k, d, R)] + b[i]);
    H[jet_at(0, i, k, d, R)] = t;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      Real h1, h2;
      tanh_jet(t, Z[jet_at(1 + m, i, k, d, R)], Z[jet_at(1 + M + m, i, k, d, R)], h1, h2);
      H[jet_at(1 + m, i, k, d, R)] = h1;
      H[jet_at(1 + M + m, i, k, d, R)] = h2;
    }
  }
}

// The same with the tangents along a parameter direction (DESIGN.md section 8): Zd holds Wd h + W hd per channel
// (without bd); writes the jet to H and its tangent (hd, h'd_m, h''d_m) = tanh_jet_tangent to Hd.
template <class Real, int M>
__global__ void tangent_kernel(long d, long R, const Real* b, const Real* bd, const Real* Z, const Real* Zd, Real* H,
                               Real* Hd) {
  PINNTK_FOR_EACH(e, d * R) {
    const long i = e % d, k = e / d;
    const Real t = tanh(Z[jet_at(0, i, k, d, R)] + b[i]);
    const Real zd = Zd[jet_at(0, i, k, d, R)] + bd[i];
    H[jet_at(0, i, k, d, R)] = t;
    Real hd = Real(0);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const Real zp = Z[jet_at(1 + m, i, k, d, R)], zpp = Z[jet_at(1 + M + m, i, k, d, R)];
      tanh_jet(t, zp, zpp, H[jet_at(1 + m, i, k, d, R)], H[jet_at(1 + M + m, i, k, d, R)]);
      tanh_jet_tangent(t, zp, zpp, zd, Zd[jet_at(1 + m, i, k, d, R)], Zd[jet_at(1 + M + m, i, k, d, R)], hd,
                       Hd[jet_at(1 + m, i, k, d, R)], Hd[jet_at(1 + M + m, i, k, d, R)]);
    }
    Hd[jet_at(0, i, k, d, R)] = hd;
  }
}

// J u's rows from the output layer's tangents (width 1: Zd holds Wd h + W hd per channel, bd[0] the output bias's
// tangent): the row's linear part applied to (ud, u'd_m, u''d_m) (row_residual_nd with f = 0).
template <class Real, int M>
__global__ void output_tangent_kernel(long R, DeviceRows<Real> rows, const Real* Zd, const Real* bd, Real* out) {
  PINNTK_FOR_EACH(k, R) {
    Real d1[M], d2[M];
#pragma unroll
    for (int m = 0; m < M; ++m) {
      d1[m] = Zd[jet_at(1 + m, 0, k, 1, R)];
      d2[m] = Zd[jet_at(1 + M + m, 0, k, 1, R)];
    }
    const size_t o = static_cast<size_t>(k) * M;
    out[k] = row_residual_nd(M, rows.alpha + o, rows.beta + o, rows.gamma[k], Real(0),
                             Zd[jet_at(0, 0, k, 1, R)] + bd[0], d1, d2);
  }
}

// The reverse pass's seeds at the output (width 1) for J^T y: the adjoints of (u, D_m u, D_m^2 u) are
// y_k (gamma_k, beta_km, alpha_km) (DESIGN.md sections 2, 7 and 8).
template <class Real, int M>
__global__ void output_seed_kernel(long R, DeviceRows<Real> rows, const Real* y, Real* A) {
  PINNTK_FOR_EACH(k, R) {
    const Real c = y[k];
    const size_t o = static_cast<size_t>(k) * M;
    A[jet_at(0, 0, k, 1, R)] = c * rows.gamma[k];
#pragma unroll
    for (int m = 0; m < M; ++m) {
      A[jet_at(1 + m, 0, k, 1, R)] = c * rows.beta[o + m];
      A[jet_at(1 + M + m, 0, k, 1, R)] = c * rows.alpha[o + m];
    }
  }
}

// Through a hidden layer of width d backwards: HB holds W^T A per channel (the adjoints of h, h'_m, h''_m), H the
// layer's t (channel 0) and Z its z'_m, z''_m; writes the adjoints of z, z'_m, z''_m to B (tanh_jet_adjoint_nd).
template <class Real, int M>
__global__ void adjoint_kernel(long d, long R, const Real* HB, const Real* H, const Real* Z, Real* B) {
  constexpr int C = 1 + 2 * M;
  PINNTK_FOR_EACH(e, d * R) {
    const long i = e % d, k = e / d;
    Real hb[C];
#pragma unroll
    for (int c = 0; c < C; ++c) hb[c] = HB[jet_at(c, i, k, d, R)];
    const long stride = d * R;  // from one channel to the next
    tanh_jet_adjoint_nd<M>(H[jet_at(0, i, k, d, R)], Z + jet_at(1, i, k, d, R), static_cast<int>(stride), hb,
                           B + jet_at(0, i, k, d, R), static_cast<int>(stride));
  }
}

#undef PINNTK_FOR_EACH

}  // namespace pinntk::layerwise_device
