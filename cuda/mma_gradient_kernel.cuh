// The loss-gradient kernel with the hidden layers on the fp64 tensor cores (benchmarks/NOTES.md, "the hidden
// layers' products on the tensor cores"): for 1-D networks whose hidden layers all have W neurons (W a multiple of 8),
// a block of 256 threads takes 8 points, and the three GEMM-shaped phases of each hidden layer run as warp-wide
// 8 x 8 x 4 products (cuda/dmma.cuh):
//   forward   Z_c = W^l h_c^{l-1}            (W x W by W x 24: the 3 channels h, h', h'' of the 8 points)
//   adjoint   hb_c = (W^l)^T A_c             (the adjoints A of z, z', z'' of layer l)
//   partials  dW^l = sum_c A_c (h_c^{l-1})^T (W x 24 by 24 x W)
// with the per-neuron rules between them elementwise (first_layer_jet, tanh_jet, tanh_jet_adjoint; DESIGN.md section
// 2) and the output layer, residuals and seeds as in cuda/loss_gradient_kernel.cuh. It writes the same per-block
// partial gradients and losses (blocks of 8 points), which the fixed-order reductions sum. Sums run in other orders
// than the tile kernel's: the gradient agrees with it and with the CPU backend to rounding. fp64 only (the tensor
// cores' fp32 form is TF32, which the project does not use). No CUDA header of its own: tests/block_emulator.hpp runs
// it on the CPU, with cuda/dmma.cuh's plain-arithmetic fragments.
#pragma once

#include <cstddef>      // size_t
#include <type_traits>  // std::is_same_v

#include "common/hd.hpp"         // PINNTK_HD
#include "common/mlp_math.hpp"   // first_layer_jet, tanh_jet, tanh_jet_adjoint, weight_adjoint, ...
#include "common/residual.hpp"   // row_residual, row_loss
#include "cuda/dmma.cuh"         // dmma::FragA, FragB, FragC, load, mma, store_*
#include "cuda/members.cuh"      // Members, member_of, member_rows
#include "cuda/tile_phases.cuh"  // PINNTK_DYNAMIC_SHARED_ALIGNED, PINNTK_ASYNC_COPY, PINNTK_ASYNC_WAIT
#include "cuda/tile_plan.hpp"    // NetDesc, DeviceRows

namespace pinntk::mma_device {

constexpr int kPoints = 8;     // points a block: 3 channels x 8 points = 24 columns, three 8-wide tiles
constexpr int kThreads = 256;  // 8 warps
constexpr int kWarps = kThreads / 32;

// The block's shared memory for width W and nl weight layers, in doubles. Every region starts at a multiple of 4
// (32-byte aligned tiles). A block of 3 channels x 8 points holds column (c, p) at (c 8 + p) ld, its entry i at + i.
// Each hidden layer keeps its tape (t, z', z''); the jets (h, h', h'') that a GEMM reads are made from it in one
// block, hbuf, when needed (tanh_jet): 110 KB at 4x40, two blocks a multiprocessor.
struct Layout {
  int W, ld, nl;
  PINNTK_HD int wst(int l) const { return (l - 2) * W * ld; }                   // W^l row-major, rows of ld (l >= 2)
  PINNTK_HD int bias0() const { return (nl - 2) * W * ld; }                     // b^1 .. b^{nl-1}, W^1, W^nl, b^nl
  PINNTK_HD int bias(int l) const { return bias0() + (l - 1) * W; }             // b^l, 1 <= l <= nl - 1
  PINNTK_HD int w1() const { return bias0() + (nl - 1) * W; }                   // W^1 (W x 1)
  PINNTK_HD int wout() const { return bias0() + nl * W; }                       // W^nl (1 x W), then b^nl
  PINNTK_HD int x() const { return bias0() + ((nl + 1) * W + 1 + 3) / 4 * 4; }  // the 8 points' x
  PINNTK_HD int seeds() const { return x() + 8; }                               // the output's adjoint seeds, 3 x 8
  PINNTK_HD int loss() const { return x() + 32; }                               // 8 loss terms
  PINNTK_HD int tape(int l) const { return x() + 40 + (l - 1) * 24 * ld; }      // t, z', z'' of hidden layer l
  PINNTK_HD int hbuf() const { return tape(nl); }                               // the jets a GEMM reads
  PINNTK_HD int adj(int s) const { return hbuf() + (1 + s) * 24 * ld; }         // adjoint sets 0, 1; scratch 2
  PINNTK_HD int size() const { return adj(3); }
};
PINNTK_HD inline Layout mma_layout(int W, int nl) { return {W, W + 4, nl}; }

// Offset of W^l in theta for a 1-D network whose hidden layers have W neurons: W^1 and b^1 (2W), then W x W + W
// per hidden-to-hidden layer; l = nl: the output layer. NetDesc::woff holds the same numbers, but an array of a
// kernel parameter indexed at run time goes to local memory (the tile kernels copy the descriptor to shared memory
// for that); with W fixed the offsets are arithmetic.
__device__ inline int mma_woff(int W, int l) { return l == 1 ? 0 : 2 * W + (l - 2) * (W * W + W); }

// Z (column-major, stride ld) = op(A) B over the 24 columns of a jet block: A is W^l (row-major, RowMajor: W^l
// itself; ColMajor: its transpose), B a jet block; each warp takes output tiles warp, warp + 8, ...
template <int W, class LA>
__device__ inline void gemm_jets(const double* A, const double* B, double* Z, int ld, int warp) {
  constexpr int mt = W / 8;
  for (int tile = warp; tile < mt * 3; tile += kWarps) {
    const int i0 = (tile % mt) * 8, n0 = (tile / mt) * 8;
    dmma::FragC acc;
    dmma::zero(acc);
    for (int k0 = 0; k0 < W; k0 += 4) {
      dmma::FragA<LA> a;
      dmma::FragB<dmma::ColMajor> b;
      // Row-major W^l: entry (i, k) at i ld + k; its transpose as column-major: entry (i, k) = W_ki at k ld + i.
      dmma::load(a, std::is_same_v<LA, dmma::RowMajor> ? A + i0 * ld + k0 : A + k0 * ld + i0, ld);
      dmma::load(b, B + n0 * ld + k0, ld);
      dmma::mma(acc, a, b);
    }
    dmma::store_col_major(Z + n0 * ld + i0, acc, ld);
  }
}

// Member b = first + blockIdx.y of a batch (Members) at its offsets, as loss_gradient_kernel; with a seed array (one
// network) the partials sum to J^T seed and no residual, loss or step is written (the partial losses are zeros).
template <int W>
__global__ void __launch_bounds__(kThreads)
    mma_gradient_kernel(NetDesc net, const double* __restrict__ theta, DeviceRows<double> rows,
                        double* __restrict__ partial, double* __restrict__ partial_loss, double* __restrict__ r,
                        unsigned long long* __restrict__ step, Members mb, const double* __restrict__ seed) {
  static_assert(W % 8 == 0, "the width must be a multiple of 8");
  constexpr int T = kPoints;
  const int b = member_of(mb);
  if (b < 0) return;  // uniform over the block, before any barrier
  const int nl = net.nl, P = net.P;
  theta += static_cast<size_t>(b) * P;
  rows = member_rows(rows, mb, b, 1);
  partial += static_cast<size_t>(b) * gridDim.x * P;
  partial_loss += static_cast<size_t>(b) * gridDim.x;
  if (r != nullptr) r += static_cast<size_t>(b) * rows.n;
  if (step != nullptr) step += b;
  PINNTK_DYNAMIC_SHARED_ALIGNED(smem_raw, 32);
  double* sm = reinterpret_cast<double*>(smem_raw);
  const Layout L = mma_layout(W, nl);
  const int ld = L.ld;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int k0 = blockIdx.x * T, tv = min(T, rows.n - k0);
  double* part = partial + static_cast<size_t>(blockIdx.x) * P;
  const auto at = [ld](int c, int p, int i) { return (c * T + p) * ld + i; };  // entry i of column (c, p)

  // Staging: the hidden weights row-major, the biases, W^1, W^nl and b^nl by copies that do not wait for their loads;
  // the points' x.
  for (int l = 2; l < nl; ++l) {
    const double* Wl = theta + mma_woff(W, l);
    for (int idx = tid; idx < W * W; idx += kThreads) {
      const int i = idx / W, j = idx - i * W;
      PINNTK_ASYNC_COPY(sm + L.wst(l) + i * ld + j, Wl + idx);
    }
  }
  for (int l = 1; l < nl; ++l) {
    const double* bl = theta + mma_woff(W, l) + (l == 1 ? W : W * W);
    for (int i = tid; i < W; i += kThreads) PINNTK_ASYNC_COPY(sm + L.bias(l) + i, bl + i);
  }
  for (int i = tid; i < W; i += kThreads) PINNTK_ASYNC_COPY(sm + L.w1() + i, theta + i);
  for (int j = tid; j <= W; j += kThreads) PINNTK_ASYNC_COPY(sm + L.wout() + j, theta + mma_woff(W, nl) + j);
  if (tid < T) sm[L.x() + tid] = tid < tv ? rows.x[k0 + tid] : 0.0;
  PINNTK_ASYNC_WAIT();
  __syncthreads();

  // Layer 1: h = x, h' = 1, h'' = 0 through the first layer's neurons (first_layer_jet): the tape keeps t, z' = w,
  // z'' = 0, hbuf the jets. Points past the rows get zeros (their seeds are zero: they add nothing).
  double* Hb = sm + L.hbuf();
  {
    double* Tp = sm + L.tape(1);
    for (int idx = tid; idx < T * W; idx += kThreads) {
      const int p = idx / W, i = idx - p * W;
      double th = 0.0, h1 = 0.0, h2 = 0.0, w = 0.0;
      if (p < tv) {
        w = sm[L.w1() + i];
        first_layer_jet(w, sm[L.bias(1) + i], sm[L.x() + p], th, h1, h2);
      }
      Tp[at(0, p, i)] = th;
      Tp[at(1, p, i)] = w;
      Tp[at(2, p, i)] = 0.0;
      Hb[at(0, p, i)] = th;
      Hb[at(1, p, i)] = h1;
      Hb[at(2, p, i)] = h2;
    }
  }
  __syncthreads();

  // Hidden layers 2 .. nl-1: Z_c = W^l h_c^{l-1} on the tensor cores (into S), then t = tanh(z + b) and the jet: the
  // tape (t, z', z'') and the next GEMM's jets in hbuf (read by the GEMM before the barrier).
  double* S = sm + L.adj(2);
  for (int l = 2; l < nl; ++l) {
    gemm_jets<W, dmma::RowMajor>(sm + L.wst(l), Hb, S, ld, warp);
    __syncthreads();
    double* Tp = sm + L.tape(l);
    const double* bl = sm + L.bias(l);
    for (int idx = tid; idx < T * W; idx += kThreads) {
      const int p = idx / W, i = idx - p * W;
      const double zp = S[at(1, p, i)], zpp = S[at(2, p, i)];
      const double th = tanh(S[at(0, p, i)] + bl[i]);
      double h1, h2;
      tanh_jet(th, zp, zpp, h1, h2);
      Tp[at(0, p, i)] = th;
      Tp[at(1, p, i)] = zp;
      Tp[at(2, p, i)] = zpp;
      Hb[at(0, p, i)] = th;
      Hb[at(1, p, i)] = h1;
      Hb[at(2, p, i)] = h2;
    }
    __syncthreads();
  }

  // The output layer (u, u', u'' of each point; 24 dot products of W with the top layer's jets in hbuf), the
  // residuals, losses and seeds.
  const double* wout = sm + L.wout();
  double* seeds = sm + L.seeds();
  if (tid < 3 * T) {
    const int c = tid / T, p = tid - c * T;
    double s = c == 0 ? wout[W] : 0.0;
    for (int j = 0; j < W; ++j) s += wout[j] * Hb[at(c, p, j)];
    S[tid] = s;  // u, u', u'' of point p in channel c
  }
  __syncthreads();
  if (tid < T) {
    const int p = tid, k = k0 + p;
    double c = 0.0, loss = 0.0;
    if (p < tv) {
      if (seed != nullptr) {
        c = seed[k];
      } else {
        const double res =
            row_residual(rows.alpha[k], rows.beta[k], rows.gamma[k], rows.f[k], S[p], S[T + p], S[2 * T + p]);
        c = rows.w[k] * res;  // d/dtheta of 1/2 w r^2 is w r d rho/d theta
        loss = row_loss(rows.w[k], res);
        if (r != nullptr) r[k] = res;
      }
    }
    sm[L.loss() + p] = loss;
    seeds[p] = p < tv ? c * rows.gamma[k] : 0.0;
    seeds[T + p] = p < tv ? c * rows.beta[k] : 0.0;
    seeds[2 * T + p] = p < tv ? c * rows.alpha[k] : 0.0;
  }
  __syncthreads();
  if (tid == 0) {
    double sum = 0.0;
    for (int p = 0; p < T; ++p) sum += sm[L.loss() + p];
    partial_loss[blockIdx.x] = sum;
    if (step != nullptr && blockIdx.x == 0) *step += 1;
  }

  // The output layer's partials, and the adjoints of layer nl-1's z, z', z'' (hb_c = w_j seed_c, then the tanh jet).
  const int off_out = mma_woff(W, nl);
  double* A = sm + L.adj(0);
  double* B = sm + L.adj(1);
  for (int j = tid; j <= W; j += kThreads) {
    double acc = 0.0;
    for (int p = 0; p < T; ++p)
      acc += j < W ? weight_adjoint(seeds[p], seeds[T + p], seeds[2 * T + p], Hb[at(0, p, j)], Hb[at(1, p, j)],
                                    Hb[at(2, p, j)])
                   : seeds[p];
    part[off_out + j] = acc;
  }
  {
    const double* Tp = sm + L.tape(nl - 1);
    for (int idx = tid; idx < T * W; idx += kThreads) {
      const int p = idx / W, j = idx - p * W;
      const double w = wout[j];
      tanh_jet_adjoint(Tp[at(0, p, j)], Tp[at(1, p, j)], Tp[at(2, p, j)], w * seeds[p], w * seeds[T + p],
                       w * seeds[2 * T + p], A[at(0, p, j)], A[at(1, p, j)], A[at(2, p, j)]);
    }
  }
  __syncthreads();

  // Hidden layers nl-1 .. 2: the jets of layer l-1 made again from its tape (tanh_jet, the forward pass's values),
  // dW^l = sum_c A_c (h_c^{l-1})^T on the tensor cores and db^l in order, then hb_c = (W^l)^T A_c and the adjoints of
  // layer l-1 (tanh_jet_adjoint).
  double* tile = S + warp * 64;  // a warp's 8 x 8 tile of dW; S is free until the hb GEMM (a barrier between)
  for (int l = nl - 1; l >= 2; --l) {
    const double* Tprev = sm + L.tape(l - 1);
    for (int idx = tid; idx < T * W; idx += kThreads) {
      const int p = idx / W, j = idx - p * W;
      const double th = Tprev[at(0, p, j)];
      double h1, h2;
      tanh_jet(th, Tprev[at(1, p, j)], Tprev[at(2, p, j)], h1, h2);
      Hb[at(0, p, j)] = th;
      Hb[at(1, p, j)] = h1;
      Hb[at(2, p, j)] = h2;
    }
    __syncthreads();
    const int off = mma_woff(W, l);
    constexpr int mt = W / 8;
    for (int t = warp; t < mt * mt; t += kWarps) {
      const int i0 = (t % mt) * 8, j0 = (t / mt) * 8;
      dmma::FragC acc;
      dmma::zero(acc);
      for (int q0 = 0; q0 < 3 * T; q0 += 4) {
        dmma::FragA<dmma::ColMajor> a;  // A: entry (i, q) at q ld + i
        dmma::FragB<dmma::RowMajor> h;  // h^T: entry (q, j) = h_j of column q, at q ld + j
        dmma::load(a, A + q0 * ld + i0, ld);
        dmma::load(h, Hb + q0 * ld + j0, ld);
        dmma::mma(acc, a, h);
      }
      dmma::store_row_major(tile, acc, 8);
      for (int e = lane; e < 64; e += 32) part[off + (i0 + e / 8) * W + j0 + e % 8] = tile[e];
      __syncwarp();  // the tile is read before the warp's next one overwrites it
    }
    for (int i = tid; i < W; i += kThreads) {
      double acc = 0.0;
      for (int p = 0; p < T; ++p) acc += A[at(0, p, i)];
      part[off + W * W + i] = acc;
    }
    __syncthreads();  // every warp's tiles read before the hb GEMM writes S
    gemm_jets<W, dmma::ColMajor>(sm + L.wst(l), A, S, ld, warp);
    __syncthreads();
    for (int idx = tid; idx < T * W; idx += kThreads) {
      const int p = idx / W, j = idx - p * W;
      tanh_jet_adjoint(Tprev[at(0, p, j)], Tprev[at(1, p, j)], Tprev[at(2, p, j)], S[at(0, p, j)], S[at(1, p, j)],
                       S[at(2, p, j)], B[at(0, p, j)], B[at(1, p, j)], B[at(2, p, j)]);
    }
    __syncthreads();
    double* swap = A;
    A = B;
    B = swap;
  }

  // Layer 1: W^1's entries pair x with the adjoints of z and z' (first_layer_weight_adjoint), b^1's are z's.
  for (int i = tid; i < W; i += kThreads) {
    double gw = 0.0, gb = 0.0;
    for (int p = 0; p < T; ++p) {
      gw += first_layer_weight_adjoint(A[at(0, p, i)], A[at(1, p, i)], sm[L.x() + p]);
      gb += A[at(0, p, i)];
    }
    part[i] = gw;
    part[W + i] = gb;
  }
}

}  // namespace pinntk::mma_device
