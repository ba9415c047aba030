// The Jacobian tile kernel's device code (launched by cuda/jacobian.cu): forward pass, residuals, then the reverse
// pass seeded with (gamma, beta, alpha) writes every point's row d rho_k / d theta (DESIGN.md section 2; in n-D
// section 7, along the coordinate axes or each row's own directions). No CUDA header of its own:
// tests/block_emulator.hpp runs it on the CPU.
#pragma once

#include <cstddef>  // size_t

#include "common/mlp_math.hpp"     // weight_adjoint, first_layer_weight_adjoint
#include "common/mlp_math_nd.hpp"  // weight_adjoint_nd, first_layer_weight_adjoint_dirs
#include "cuda/tile_phases.cuh"    // tile_begin, tile_forward, tile_residual, tile_reverse, ...

namespace pinntk::jacobian_device {

using namespace tile;  // NOLINT(google-build-using-namespace): the tile phases, in this namespace only

// Parameter phase of layer L, fast path for a hidden-to-hidden layer of width W (HiddenRows): the weight entries of
// every point's row, then its bias entries (the adjoints of z^l themselves).
template <int W, class Real, bool STAGED, int M>
__device__ inline void jacobian_hidden_rows(const Tile<Real, STAGED, W, M>& t, const ReverseLayer& L, Real* J) {
  const HiddenRows<W> m(t.tid);
  if (m.active()) {
    const int mw = t.mw;
    for (int p = 0; p < t.tv; ++p) {
      const Real* A = t.adj + p * t.adj_stride + L.a_off;
      const Real* H = t.tape + p * t.tl + L.hoff;
      if constexpr (M == 1) {
        const Real h0 = H[m.j], h1 = H[W + m.j], h2 = H[2 * W + m.j];
        Real* row = J + static_cast<size_t>(t.k0 + p) * t.P + L.off;
#pragma unroll 4
        for (int r = 0; r < HiddenRows<W>::RPT; ++r) {
          const int i = m.row(r);
          if (i < W) row[i * W + m.j] = weight_adjoint(A[i], A[mw + i], A[2 * mw + i], h0, h1, h2);
        }
      } else {
        constexpr int C = 1 + 2 * M;
        Real h[C];  // the jet h_j, h'_kj, h''_kj of layer l-1, loaded once per point
#pragma unroll
        for (int c = 0; c < C; ++c) h[c] = H[c * W + m.j];
        Real* row = J + static_cast<size_t>(t.k0 + p) * t.P + L.off;
#pragma unroll 4
        for (int r = 0; r < HiddenRows<W>::RPT; ++r) {
          const int i = m.row(r);
          if (i < W) row[i * W + m.j] = weight_adjoint_nd<M>(A + i, mw, h, 1);
        }
      }
    }
  }
  for (int q = t.tid; q < L.dout; q += t.nt) {
    for (int p = 0; p < t.tv; ++p)
      J[static_cast<size_t>(t.k0 + p) * t.P + L.off + L.nw + q] = t.adj[p * t.adj_stride + L.a_off + q];
  }
}

// Parameter phase of layer L, any shape: thread tid takes entries tid, tid + nt, ... of every point's row. In M > 1
// coordinates entry (i, j) of W^1 pairs x_j with the adjoint of z'_j (the j-th axis: z'_k = W^1_ik), or with dirs
// (each row's own directions) with every z'_k's adjoint times v_kj.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void jacobian_rows(const Tile<Real, STAGED, WIDTH, M>& t, const ReverseLayer& L, const Real* x,
                                     const Real* dirs, Real* J) {
  const int din = L.din, mw = t.mw;
  const EntryWalk start(t.tid, t.nt, din);
  for (int p = 0; p < t.tv; ++p) {
    const Real* A = t.adj + p * t.adj_stride + L.a_off;
    const Real* H = t.tape + p * t.tl + L.hoff;
    if constexpr (M == 1) {
      const Real xp = x[t.k0 + p];
      Real* row = J + static_cast<size_t>(t.k0 + p) * t.P + L.off;
      EntryWalk e = start;
      for (int q = t.tid; q < L.nw; q += t.nt) {
        const int i = e.i, j = e.j;
        row[q] = (L.l == 1) ? first_layer_weight_adjoint(A[i], A[mw + i], xp)
                            : weight_adjoint(A[i], A[mw + i], A[2 * mw + i], H[j], H[din + j], H[2 * din + j]);
        e.next();
      }
      for (int q = t.tid; q < L.dout; q += t.nt) row[L.nw + q] = A[q];
    } else {
      const Real* xp = x + static_cast<size_t>(t.k0 + p) * M;
      const Real* vp = dirs != nullptr ? dirs + static_cast<size_t>(t.k0 + p) * M * M : nullptr;
      Real* row = J + static_cast<size_t>(t.k0 + p) * t.P + L.off;
      EntryWalk e = start;
      for (int q = t.tid; q < L.nw; q += t.nt) {
        const int i = e.i, j = e.j;
        if (L.l > 1) {
          row[q] = weight_adjoint_nd<M>(A + i, mw, H + j, din);
        } else {
          row[q] = vp == nullptr ? first_layer_weight_adjoint(A[i], A[(1 + j) * mw + i], xp[j])
                                 : first_layer_weight_adjoint_dirs<M>(A + i, mw, xp[j], vp + j);
        }
        e.next();
      }
      for (int q = t.tid; q < L.dout; q += t.nt) row[L.nw + q] = A[q];
    }
  }
}

template <class Real, bool STAGED, int WIDTH, int M>
__global__ void __launch_bounds__(256)
    jacobian_kernel(NetDesc net, const Real* __restrict__ theta, DeviceRows<Real> rows, int T, Real* __restrict__ r,
                    Real* __restrict__ J) {
  const Tile<Real, STAGED, WIDTH, M> t = tile_begin<Real, STAGED, WIDTH, M>(net, rows.n, T);
  tile_forward(t, theta, rows.x, rows.dirs);
  for (int p = t.tid; p < t.tv; p += t.nt) {
    r[t.k0 + p] = tile_residual(t, theta, rows, p);
    tile_seed_adjoint(t, p, Real(1), rows, t.k0 + p);  // d rho / d theta
  }
  __syncthreads();
  tile_reverse(t, theta, [&](const ReverseLayer& L) {
    if constexpr (WIDTH > 0) {
      if (L.l > 1 && L.l < t.nl) return jacobian_hidden_rows(t, L, J);
    }
    jacobian_rows(t, L, rows.x, rows.dirs, J);
  });
}

}  // namespace pinntk::jacobian_device
