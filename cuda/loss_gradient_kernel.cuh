// The loss-gradient tile kernel's device code (launched by cuda/loss_gradient.cu): forward pass, residuals and loss
// terms, then the reverse pass seeded with w r (gamma, beta, alpha) (DESIGN.md section 2; in n-D section 7, along the
// coordinate axes or each row's own directions), summing each parameter's derivative over the tile's points into the
// block's partial gradient. No CUDA header of its own: tests/block_emulator.hpp runs it on the CPU.
#pragma once

#include <cstddef>  // size_t

#include "common/mlp_math.hpp"     // weight_adjoint, first_layer_weight_adjoint
#include "common/mlp_math_nd.hpp"  // weight_adjoint_nd, first_layer_weight_adjoint_dirs
#include "common/residual.hpp"     // row_loss
#include "cuda/members.cuh"        // Members, member_of, member_rows
#include "cuda/tile_phases.cuh"    // tile_begin, tile_forward, tile_residual, tile_reverse, ...

namespace pinntk::gradient_device {

using namespace tile;  // NOLINT(google-build-using-namespace): the tile phases, in this namespace only

// The bias entries of layer L's partial: the adjoints of z^l summed over the tile's points.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void gradient_bias_partials(const Tile<Real, STAGED, WIDTH, M>& t, const ReverseLayer& L,
                                              Real* partial) {
  for (int q = t.tid; q < L.dout; q += t.nt) {
    Real acc = Real(0);
    for (int p = 0; p < t.tv; ++p) acc += t.adj[p * t.adj_stride + L.a_off + q];
    partial[static_cast<size_t>(blockIdx.x) * t.P + L.off + L.nw + q] = acc;
  }
}

// Parameter phase of layer L, fast path for a hidden-to-hidden layer of width W (HiddenRows): each thread sums its
// entries over the tile's points in registers, in chunks of at most 16 rows.
template <int W, class Real, bool STAGED, int M>
__device__ inline void gradient_hidden_partials(const Tile<Real, STAGED, W, M>& t, const ReverseLayer& L,
                                                Real* partial) {
  constexpr int RPT = HiddenRows<W>::RPT;
  constexpr int CH = RPT < 16 ? RPT : 16;
  const HiddenRows<W> m(t.tid);
  if (m.active()) {
    const int mw = t.mw;
    Real* part = partial + static_cast<size_t>(blockIdx.x) * t.P + L.off;
    for (int r0 = 0; r0 < RPT; r0 += CH) {
      Real acc[CH];
#pragma unroll
      for (int r = 0; r < CH; ++r) acc[r] = Real(0);
      for (int p = 0; p < t.tv; ++p) {
        const Real* A = t.adj + p * t.adj_stride + L.a_off;
        const Real* H = t.tape + p * t.tl + L.hoff;
        if constexpr (M == 1) {
          const Real h0 = H[m.j], h1 = H[W + m.j], h2 = H[2 * W + m.j];
#pragma unroll
          for (int r = 0; r < CH; ++r) {
            const int i = m.row(r0 + r);
            if (i < W) acc[r] += weight_adjoint(A[i], A[mw + i], A[2 * mw + i], h0, h1, h2);
          }
        } else {
          constexpr int C = 1 + 2 * M;
          Real h[C];  // the jet h_j, h'_kj, h''_kj of layer l-1, loaded once per point
#pragma unroll
          for (int c = 0; c < C; ++c) h[c] = H[c * W + m.j];
#pragma unroll
          for (int r = 0; r < CH; ++r) {
            const int i = m.row(r0 + r);
            if (i < W) acc[r] += weight_adjoint_nd<M>(A + i, mw, h, 1);
          }
        }
      }
#pragma unroll
      for (int r = 0; r < CH; ++r) {
        const int i = m.row(r0 + r);
        if (i < W) part[i * W + m.j] = acc[r];
      }
    }
  }
  gradient_bias_partials(t, L, partial);
}

// Parameter phase of layer L, any shape: thread tid sums entries tid, tid + nt, ... over the tile's points. In M > 1
// coordinates entry (i, j) of W^1 pairs x_j with the adjoint of z'_j (the j-th axis: z'_k = W^1_ik), or with dirs
// (each row's own directions) with every z'_k's adjoint times v_kj.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void gradient_partials(const Tile<Real, STAGED, WIDTH, M>& t, const ReverseLayer& L, const Real* x,
                                         const Real* dirs, Real* partial) {
  const int din = L.din, mw = t.mw;
  Real* part = partial + static_cast<size_t>(blockIdx.x) * t.P + L.off;
  EntryWalk e(t.tid, t.nt, din);
  for (int q = t.tid; q < L.nw; q += t.nt) {
    const int i = e.i, j = e.j;
    Real acc = Real(0);
    for (int p = 0; p < t.tv; ++p) {
      const Real* A = t.adj + p * t.adj_stride + L.a_off;
      if constexpr (M == 1) {
        if (L.l == 1) {
          acc += first_layer_weight_adjoint(A[i], A[mw + i], x[t.k0 + p]);
        } else {
          const Real* H = t.tape + p * t.tl + L.hoff;
          acc += weight_adjoint(A[i], A[mw + i], A[2 * mw + i], H[j], H[din + j], H[2 * din + j]);
        }
      } else {
        if (L.l == 1) {
          const size_t k = static_cast<size_t>(t.k0 + p);
          acc += dirs == nullptr ? first_layer_weight_adjoint(A[i], A[(1 + j) * mw + i], x[k * M + j])
                                 : first_layer_weight_adjoint_dirs<M>(A + i, mw, x[k * M + j], dirs + k * M * M + j);
        } else {
          const Real* H = t.tape + p * t.tl + L.hoff;
          acc += weight_adjoint_nd<M>(A + i, mw, H + j, din);
        }
      }
    }
    part[q] = acc;
    e.next();
  }
  gradient_bias_partials(t, L, partial);
}

// Member b = first + blockIdx.y of a batch (Members): its parameters, rows, partials, residuals and step count at
// its offsets, then the single network's kernel (for member 0 alone every offset is 0). The partials of a member are
// gridDim.x blocks of P. With a seed array (one network; the matrix-free J^T y of DESIGN.md section 8) row k's reverse
// pass is seeded with seed[k] instead of w_k r_k: no residual, weight or loss is read or written (the partial losses
// are zeros), and the partials sum to J^T seed.
template <class Real, bool STAGED, int WIDTH, int M>
__global__ void __launch_bounds__(256)
    loss_gradient_kernel(NetDesc net, const Real* __restrict__ theta, DeviceRows<Real> rows, int T,
                         Real* __restrict__ partial, Real* __restrict__ partial_loss, Real* __restrict__ r,
                         unsigned long long* __restrict__ step, Members mb, const Real* __restrict__ seed) {
  const int b = member_of(mb);
  if (b < 0) return;  // uniform over the block, before any barrier
  theta += static_cast<size_t>(b) * net.P;
  rows = member_rows(rows, mb, b, M);
  partial += static_cast<size_t>(b) * gridDim.x * net.P;
  partial_loss += static_cast<size_t>(b) * gridDim.x;
  if (r != nullptr) r += static_cast<size_t>(b) * rows.n;
  if (step != nullptr) step += b;
  const Tile<Real, STAGED, WIDTH, M> t = tile_begin<Real, STAGED, WIDTH, M>(net, rows.n, T);
  tile_forward(t, theta, rows.x, rows.dirs);
  for (int p = t.tid; p < t.tv; p += t.nt) {
    const int k = t.k0 + p;
    if (seed != nullptr) {
      t.loss_slot[p] = Real(0);
      tile_seed_adjoint(t, p, seed[k], rows, k);
      continue;
    }
    const Real res = tile_residual(t, theta, rows, p);
    const Real c = rows.w[k] * res;  // d/dtheta of 1/2 w r^2 is w r d rho/d theta
    t.loss_slot[p] = row_loss(rows.w[k], res);
    if (r != nullptr) r[k] = res;
    tile_seed_adjoint(t, p, c, rows, k);
  }
  __syncthreads();
  if (t.tid == 0) {
    Real sum = Real(0);
    for (int p = 0; p < t.tv; ++p) sum += t.loss_slot[p];
    partial_loss[blockIdx.x] = sum;
    if (step != nullptr && blockIdx.x == 0) *step += 1;
  }
  tile_reverse(t, theta, [&](const ReverseLayer& L) {
    if constexpr (WIDTH > 0) {
      if (L.l > 1 && L.l < t.nl) return gradient_hidden_partials(t, L, partial);
    }
    gradient_partials(t, L, rows.x, rows.dirs, partial);
  });
}

}  // namespace pinntk::gradient_device
