// The phases every tile kernel is made of, as named device functions (tiny-cuda-nn's threadblock_* helpers): a
// block takes a tile of T points and runs the per-point math of DESIGN.md section 2 (common/mlp_math.hpp) for all
// of them, with its threads spread over points and neurons.
//   tile_begin          the block's view of its tile: the NetDesc in shared memory, the shared-memory layout
//   tile_stage_weights  hidden-to-hidden weights into shared memory as padded W^T, then the hidden biases and the
//                       output layer (STAGED)
//   tile_forward        the staged weights, then the Taylor-mode forward pass of the hidden layers into the tape
//   tile_output         u, u', u'' of one point (the linear output layer); tile_output_nd: u, D_k u, D_k^2 u
//   tile_residual       the residual of one point's row (common/residual.hpp)
//   tile_seed_adjoint   the reverse pass's seeds of one point (gamma, beta, alpha) times c
//   tile_reverse        for each layer from the top: the operation's parameter phase, then tile_adjoint (the
//                       adjoints of the layer below)
// and the thread mappings the operations' parameter phases share (EntryWalk, HiddenRows). The operations
// themselves are cuda/eval.cu, cuda/jacobian.cu and cuda/loss_gradient.cu.
//
// n-dimensional inputs (DESIGN.md section 7): every phase takes the number of input coordinates M = 1 .. 3 as a
// template parameter, the Taylor directions being the coordinate axes (common/mlp_math_nd.hpp along v = the
// identity; the rows' x, alpha, beta hold M numbers per point). M = 1 is the
// 1-D code of DESIGN.md section 2, the same operations in the same order (the `if constexpr (M == 1)` branches);
// M > 1 mirrors mlp_forward_point_nd and mlp_reverse_point_nd through the helpers of common/mlp_math_nd.hpp.
// Below, C = 1 + 2M is the number of jet channels: h, h'_k, h''_k forward; the adjoints of z, z'_k, z''_k backward.
//
// Shared memory of a block: the staged weights and the tail (STAGED), then per point the tape (1 + 4M entries per
// hidden neuron: layer l's block is t, h'_0 .. h'_{M-1}, h''_0 .., z'_0 .., z''_0 .., each d_l long; 5 in 1-D), two
// sets of C adjoint vectors of maxw entries (2 C maxw: 6, 10, 14 maxw for M = 1, 2, 3; channel c of a set at c maxw)
// and one loss slot; a point's tape and its adjoint sets each padded to a stride of 4 (mod 32) numbers
// (bank_padded); plan_tiles (cuda/tile_plan.cu) sizes it from the NetDesc.
#pragma once

#include <cstddef>  // size_t

#include "common/mlp_math.hpp"     // first_layer_jet, jet_dot, tanh_jet, tanh_jet_adjoint
#include "common/mlp_math_nd.hpp"  // jet_dot_nd, first_layer_z_nd, first_layer_dot_nd, tanh_jet_adjoint_nd
#include "common/residual.hpp"     // row_residual, row_residual_nd
#include "cuda/tile_plan.hpp"      // NetDesc, DeviceRows

// The block's dynamic shared memory as an array of bytes named `name`, aligned to 16 bytes (the widest copy into it,
// cp.async's, needs its destination aligned to its size), or to `bytes` (tests/block_emulator.hpp defines its own).
#ifndef PINNTK_DYNAMIC_SHARED
#define PINNTK_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#define PINNTK_DYNAMIC_SHARED_ALIGNED(name, bytes) \
  extern __shared__ __align__(bytes)               \
  unsigned char name[]
#endif

// Copies of one number from global to shared memory that do not wait for the load (cp.async on sm_80 and later:
// every thread issues all of its copies back to back), and the wait for all of a thread's copies; a barrier after the
// wait publishes them to the block. Elsewhere (older devices, tests/block_emulator.hpp) a plain copy.
#if defined(__CUDACC__)
#include <cuda_pipeline_primitives.h>  // __pipeline_memcpy_async, __pipeline_commit, __pipeline_wait_prior
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define PINNTK_ASYNC_COPY(dst, src) __pipeline_memcpy_async((dst), (src), sizeof(*(dst)))
#define PINNTK_ASYNC_WAIT()   \
  do {                        \
    __pipeline_commit();      \
    __pipeline_wait_prior(0); \
  } while (0)
#else
#define PINNTK_ASYNC_COPY(dst, src) (*(dst) = *(src))
#define PINNTK_ASYNC_WAIT() \
  do {                      \
  } while (0)
#endif

namespace pinntk::tile {

// Layer geometry: read from the NetDesc (WIDTH == 0, any shape), or compile-time constants for networks whose hidden
// layers all have WIDTH neurons (the fast path: constant offsets and loop bounds, no indexed parameter arrays). M is
// the number of input coordinates (NetDesc::n_in(), the dispatch's choice).
template <int WIDTH, int M>
struct Geo {
  static_assert(M >= 1 && M <= kMaxInputs, "1 to kMaxInputs input coordinates");
  const NetDesc& n;
  __device__ int nl() const { return n.nl; }
  __device__ int d(int l) const {  // width of layer l (0 .. nl)
    if constexpr (WIDTH > 0) {
      if constexpr (M == 1) return (l == 0 || l == n.nl) ? 1 : WIDTH;
      return l == 0 ? M : (l == n.nl ? 1 : WIDTH);
    }
    return n.d[l];
  }
  __device__ int h(int l) const {  // width of hidden layer l (1 .. nl-1)
    if constexpr (WIDTH > 0) return WIDTH;
    return n.d[l];
  }
  __device__ int woff(int l) const {  // W^1 is WIDTH x M, then b^1 (WIDTH): (M + 1) WIDTH entries
    if constexpr (WIDTH > 0) return l == 1 ? 0 : (M + 1) * WIDTH + (l - 2) * (WIDTH * WIDTH + WIDTH);
    return n.woff[l];
  }
  __device__ int toff(int l) const {
    if constexpr (WIDTH > 0) return (1 + 4 * M) * WIDTH * (l - 1);
    return n.toff[l];
  }
  __device__ int soff(int l) const {
    if constexpr (WIDTH > 0) return (l - 2) * WIDTH * (WIDTH + 1);
    return n.soff[l];
  }
  __device__ int tape() const {  // a point's tape in shared memory: NetDesc::tape_stride
    if constexpr (WIDTH > 0) return bank_padded((1 + 4 * M) * WIDTH * (n.nl - 1));
    return bank_padded(n.tape);
  }
  __device__ int maxw() const {  // the fast widths (>= 40) exceed every input width (<= kMaxInputs)
    if constexpr (WIDTH > 0) return WIDTH;
    return n.maxw;
  }
  __device__ int staged() const {  // the W^T blocks and the tail (NetDesc::staged)
    if constexpr (WIDTH > 0) return stail() + (n.nl - 2) * WIDTH + WIDTH + 1;
    return n.staged;
  }
  __device__ int stail() const {  // the tail's offset in the staged entries
    if constexpr (WIDTH > 0) return (n.nl - 2) * WIDTH * (WIDTH + 1);
    return n.stail;
  }
  __device__ int tail_bias(int l) const {  // b^l (2 <= l <= nl - 1) in the tail; l = nl: the output layer's W^nl
    if constexpr (WIDTH > 0) return (l - 2) * WIDTH;
    int o = 0;
    for (int q = 2; q < l; ++q) o += n.d[q];
    return o;
  }
};

// A block's tile: its geometry, its shared memory and its points k0 .. k0 + tv - 1.
template <class Real, bool STAGED, int WIDTH, int M>
struct Tile {
  static constexpr int C = 1 + 2 * M;  // jet channels
  Geo<WIDTH, M> g;
  Real* Ws;         // staged W^T blocks and the tail (STAGED only)
  Real* tape;       // T tapes of tl entries
  Real* adj;        // T adjoint sets of 2 C mw entries every adj_stride: A at a_off, the layer below at b_off
  Real* loss_slot;  // T loss terms
  int tl, mw, adj_stride, nl, P, k0, tv, tid, nt;
};

// Call first, from every thread: copies the descriptor to shared memory (its arrays are indexed at run time: keep
// them in shared rather than in local memory) and lays out the dynamic shared memory for T points of n.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline Tile<Real, STAGED, WIDTH, M> tile_begin(const NetDesc& net, int n, int T) {
  __shared__ __align__(alignof(NetDesc)) unsigned char s_net_raw[sizeof(NetDesc)];
  NetDesc& s_net = *reinterpret_cast<NetDesc*>(s_net_raw);
  if (threadIdx.x == 0) s_net = net;
  __syncthreads();
  const Geo<WIDTH, M> g{s_net};
  PINNTK_DYNAMIC_SHARED(smem_raw);
  Real* Ws = reinterpret_cast<Real*>(smem_raw);
  Real* tape = Ws + (STAGED ? g.staged() : 0);
  const int tl = g.tape();
  const int mw = g.maxw();
  const int adj_stride = bank_padded(2 * (1 + 2 * M) * mw);  // NetDesc::adj_stride
  Real* adj = tape + static_cast<size_t>(T) * tl;
  Real* loss_slot = adj + static_cast<size_t>(T) * adj_stride;
  const int k0 = blockIdx.x * T;
  const int tv = min(T, n - k0);
  const int tid = threadIdx.x, nt = blockDim.x;
  return {g, Ws, tape, adj, loss_slot, tl, mw, adj_stride, g.nl(), s_net.P, k0, tv, tid, nt};
}

// Hidden-to-hidden weights into shared memory as W^T, rows padded to d_l + 1 (NetDesc::soff), then the tail (the
// hidden biases, W^nl and b^nl, NetDesc::stail): coalesced reads, issued as copies that do not wait for their loads
// (PINNTK_ASYNC_COPY), waited for and visible after the barrier that ends layer 1 of tile_forward.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void tile_stage_weights(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta) {
  if constexpr (STAGED) {
    Real* tail = t.Ws + t.g.stail();
    for (int l = 2; l < t.nl; ++l) {
      const int din = t.g.h(l - 1), dout = t.g.h(l), ld = dout + 1;
      const Real* W = theta + t.g.woff(l);
      Real* S = t.Ws + t.g.soff(l);
      for (int idx = t.tid; idx < dout * din; idx += t.nt) {
        const int i = idx / din, j = idx - i * din;
        PINNTK_ASYNC_COPY(S + j * ld + i, W + idx);
      }
      for (int i = t.tid; i < dout; i += t.nt) PINNTK_ASYNC_COPY(tail + t.g.tail_bias(l) + i, W + dout * din + i);
    }
    const int dtop = t.g.h(t.nl - 1);  // W^nl (1 x dtop), then b^nl
    const Real* Wout = theta + t.g.woff(t.nl);
    for (int j = t.tid; j <= dtop; j += t.nt) PINNTK_ASYNC_COPY(tail + t.g.tail_bias(t.nl) + j, Wout + j);
  }
}

// The output layer's W^nl (b^nl after it): staged in the tail, or in theta.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline const Real* tile_output_weights(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta) {
  if constexpr (STAGED) return t.Ws + t.g.stail() + t.g.tail_bias(t.nl);
  return theta + t.g.woff(t.nl);
}

// The forward pass of the hidden layers for the tile's points at x[k0 M ..]: each neuron's t, h', h'', z', z'' (per
// direction in n-D) into the point's tape (DESIGN.md sections 2 and 7), after staging the weights
// (tile_stage_weights). In n-D the directions are the axes, or with dirs each row's own (DeviceRows::dirs, a full
// coefficient tensor): they enter through layer 1 alone (z'_k = W^1 v_k). Ends with a barrier.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void tile_forward(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta, const Real* x,
                                    const Real* dirs = nullptr) {
  tile_stage_weights(t, theta);
  const Geo<WIDTH, M>& g = t.g;
  {
    const int d1 = g.h(1);
    for (int idx = t.tid; idx < t.tv * d1; idx += t.nt) {
      const int p = idx / d1, i = idx - p * d1;
      if constexpr (M == 1) {
        const Real w = theta[i];
        Real th, h1, h2;
        first_layer_jet(w, theta[d1 + i], x[t.k0 + p], th, h1, h2);
        Real* L = t.tape + p * t.tl;
        L[i] = th;
        L[d1 + i] = h1;
        L[2 * d1 + i] = h2;
        L[3 * d1 + i] = w;
        L[4 * d1 + i] = Real(0);
      } else {
        // Row i of W^1 (d1 x M) and b^1 after W^1; along axis k, z'_k = W^1_ik, along the row's v_k z'_k = W^1_i v_k;
        // z''_k = 0.
        const Real* w = theta + i * M;
        const size_t k = static_cast<size_t>(t.k0 + p);
        const Real th = tanh(first_layer_z_nd<M>(w, x + k * M, theta[d1 * M + i]));
        Real* L = t.tape + p * t.tl;
        L[i] = th;
#pragma unroll
        for (int c = 0; c < M; ++c) {
          const Real zp = dirs == nullptr ? w[c] : first_layer_dot_nd<M>(w, dirs + (k * M + c) * M);
          Real h1, h2;
          tanh_jet(th, zp, Real(0), h1, h2);
          L[(1 + c) * d1 + i] = h1;
          L[(1 + M + c) * d1 + i] = h2;
          L[(1 + 2 * M + c) * d1 + i] = zp;
          L[(1 + 3 * M + c) * d1 + i] = Real(0);
        }
      }
    }
  }
  PINNTK_ASYNC_WAIT();  // this thread's staged copies; the barrier publishes everyone's
  __syncthreads();
  for (int l = 2; l < t.nl; ++l) {
    const int din = g.h(l - 1), dout = g.h(l);
    const Real* W = theta + g.woff(l);
    const Real* b = STAGED ? t.Ws + g.stail() + g.tail_bias(l) : W + dout * din;
    for (int idx = t.tid; idx < t.tv * dout; idx += t.nt) {
      const int p = idx / dout, i = idx - p * dout;
      const Real* H = t.tape + p * t.tl + g.toff(l - 1);
      if constexpr (M == 1) {
        Real z = b[i], zp = Real(0), zpp = Real(0);
        if (STAGED) {
          jet_dot<WIDTH>(din, t.Ws + g.soff(l) + i, dout + 1, H, din, z, zp, zpp);
        } else {
          jet_dot<WIDTH>(din, W + i * din, 1, H, din, z, zp, zpp);
        }
        const Real th = tanh(z);
        Real h1, h2;
        tanh_jet(th, zp, zpp, h1, h2);
        Real* L = t.tape + p * t.tl + g.toff(l);
        L[i] = th;
        L[dout + i] = h1;
        L[2 * dout + i] = h2;
        L[3 * dout + i] = zp;
        L[4 * dout + i] = zpp;
      } else {
        constexpr int C = 1 + 2 * M;
        Real s[C];  // z, z'_k, z''_k
        s[0] = b[i];
#pragma unroll
        for (int c = 1; c < C; ++c) s[c] = Real(0);
        if (STAGED) {
          jet_dot_nd<C, WIDTH>(din, t.Ws + g.soff(l) + i, dout + 1, H, din, s);
        } else {
          jet_dot_nd<C, WIDTH>(din, W + i * din, 1, H, din, s);
        }
        const Real th = tanh(s[0]);
        Real* L = t.tape + p * t.tl + g.toff(l);
        L[i] = th;
#pragma unroll
        for (int k = 0; k < M; ++k) {
          Real h1, h2;
          tanh_jet(th, s[1 + k], s[1 + M + k], h1, h2);
          L[(1 + k) * dout + i] = h1;
          L[(1 + M + k) * dout + i] = h2;
          L[(1 + 2 * M + k) * dout + i] = s[1 + k];
          L[(1 + 3 * M + k) * dout + i] = s[1 + M + k];
        }
      }
    }
    __syncthreads();
  }
}

// u, u', u'' of the tile's point p: the linear output layer on the top hidden layer's jet (M = 1).
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void tile_output(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta, int p, Real& u, Real& u1,
                                   Real& u2) {
  static_assert(M == 1, "n-dimensional inputs: tile_output_nd");
  const int din = t.g.h(t.nl - 1);
  const Real* W = tile_output_weights(t, theta);
  const Real* H = t.tape + p * t.tl + t.g.toff(t.nl - 1);
  u = W[din];
  u1 = Real(0);
  u2 = Real(0);
  jet_dot<WIDTH>(din, W, 1, H, din, u, u1, u2);
}

// The same in M coordinates (M > 1): s[0] = u, s[1 + k] = D_k u, s[1 + M + k] = D_k^2 u.
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void tile_output_nd(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta, int p,
                                      Real (&s)[1 + 2 * M]) {
  const int din = t.g.h(t.nl - 1);
  const Real* W = tile_output_weights(t, theta);
  const Real* H = t.tape + p * t.tl + t.g.toff(t.nl - 1);
  s[0] = W[din];
#pragma unroll
  for (int c = 1; c < 1 + 2 * M; ++c) s[c] = Real(0);
  jet_dot_nd<1 + 2 * M, WIDTH>(din, W, 1, H, din, s);
}

// The residual r = alpha u'' + beta u' + gamma u - f of the tile's point p, row k0 + p (in M coordinates
// r = sum_i (alpha_i D_i^2 u + beta_i D_i u) + gamma u - f, common/residual.hpp).
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline Real tile_residual(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta,
                                     const DeviceRows<Real>& rows, int p) {
  if constexpr (M == 1) {
    Real u, u1, u2;
    tile_output(t, theta, p, u, u1, u2);
    const int k = t.k0 + p;
    return row_residual(rows.alpha[k], rows.beta[k], rows.gamma[k], rows.f[k], u, u1, u2);
  } else {
    Real s[1 + 2 * M];
    tile_output_nd(t, theta, p, s);
    const int k = t.k0 + p;
    const size_t o = static_cast<size_t>(k) * M;
    return row_residual_nd(M, rows.alpha + o, rows.beta + o, rows.gamma[k], rows.f[k], s[0], s + 1, s + 1 + M);
  }
}

// The reverse pass's seeds of point p (row k): the adjoints of (u, u', u'') are c (gamma, beta, alpha), c = 1 for
// d rho / d theta and c = w r for the gradient of 1/2 w r^2 (DESIGN.md section 2); in M coordinates those of
// (u, D_i u, D_i^2 u) are c (gamma, beta_i, alpha_i) (section 7).
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void tile_seed_adjoint(const Tile<Real, STAGED, WIDTH, M>& t, int p, Real c,
                                         const DeviceRows<Real>& rows, int k) {
  Real* A = t.adj + p * t.adj_stride;
  if constexpr (M == 1) {
    A[0] = c * rows.gamma[k];
    A[t.mw] = c * rows.beta[k];
    A[2 * t.mw] = c * rows.alpha[k];
  } else {
    const size_t o = static_cast<size_t>(k) * M;
    A[0] = c * rows.gamma[k];
#pragma unroll
    for (int i = 0; i < M; ++i) {
      A[(1 + i) * t.mw] = c * rows.beta[o + i];
      A[(1 + M + i) * t.mw] = c * rows.alpha[o + i];
    }
  }
}

// Weight layer l of the reverse pass: its shape and parameters, and where its adjoints A (of z^l, z'^l, z''^l; in
// n-D of z^l, z'^l_k, z''^l_k) are in every point's adjoint set.
struct ReverseLayer {
  int l, din, dout;
  int off;   // W^l in theta (and in a Jacobian row or a partial gradient); b^l follows at off + nw
  int hoff;  // layer l-1's jet in the tape (l > 1)
  int nw;    // dout din weights
  int a_off;
};

// The adjoints of z^{l-1} (into b_off of every point's adjoint set) from those of z^l at L.a_off: hb = W^T A
// (jet_dot), then through the tanh jet (tanh_jet_adjoint; in n-D jet_dot_nd and tanh_jet_adjoint_nd).
template <class Real, bool STAGED, int WIDTH, int M>
__device__ inline void tile_adjoint(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta, const ReverseLayer& L,
                                    int b_off) {
  const int din = L.din, dout = L.dout, mw = t.mw;
  const Real* W = L.l == t.nl ? tile_output_weights(t, theta) : theta + L.off;
  const bool from_smem = STAGED && L.l < t.nl;
  for (int idx = t.tid; idx < t.tv * din; idx += t.nt) {
    const int p = idx / din, j = idx - p * din;
    const Real* A = t.adj + p * t.adj_stride + L.a_off;
    Real* B = t.adj + p * t.adj_stride + b_off;
    if constexpr (M == 1) {
      Real hb0 = Real(0), hb1 = Real(0), hb2 = Real(0);
      if (from_smem) {
        jet_dot<WIDTH>(dout, t.Ws + t.g.soff(L.l) + j * (dout + 1), 1, A, mw, hb0, hb1, hb2);
      } else if (WIDTH > 0 && L.l < t.nl) {
        jet_dot<WIDTH>(dout, W + j, din, A, mw, hb0, hb1, hb2);
      } else {
        jet_dot<0>(dout, W + j, din, A, mw, hb0, hb1, hb2);
      }
      const Real* H = t.tape + p * t.tl + L.hoff;
      tanh_jet_adjoint(H[j], H[3 * din + j], H[4 * din + j], hb0, hb1, hb2, B[j], B[mw + j], B[2 * mw + j]);
    } else {
      constexpr int C = 1 + 2 * M;
      Real hb[C];  // adjoints of h, h'_k, h''_k of layer l-1 at neuron j
#pragma unroll
      for (int c = 0; c < C; ++c) hb[c] = Real(0);
      if (from_smem) {
        jet_dot_nd<C, WIDTH>(dout, t.Ws + t.g.soff(L.l) + j * (dout + 1), 1, A, mw, hb);
      } else if (WIDTH > 0 && L.l < t.nl) {
        jet_dot_nd<C, WIDTH>(dout, W + j, din, A, mw, hb);
      } else {
        jet_dot_nd<C, 0>(dout, W + j, din, A, mw, hb);
      }
      const Real* H = t.tape + p * t.tl + L.hoff;
      tanh_jet_adjoint_nd<M>(H[j], H + (1 + 2 * M) * din + j, din, hb, B + j, mw);
    }
  }
}

// The reverse pass (DESIGN.md section 2), after the seeds and a barrier: for l = nl .. 1, params(ReverseLayer) —
// the operation's parameter phase, from the adjoints of z^l — then the adjoints of z^{l-1}; a barrier per layer.
template <class Real, bool STAGED, int WIDTH, int M, class ParamPhase>
__device__ inline void tile_reverse(const Tile<Real, STAGED, WIDTH, M>& t, const Real* theta, ParamPhase params) {
  int a_off = 0, b_off = (1 + 2 * M) * t.mw;
  for (int l = t.nl; l >= 1; --l) {
    const ReverseLayer L{
        l, t.g.d(l - 1), t.g.d(l), t.g.woff(l), l > 1 ? t.g.toff(l - 1) : 0, t.g.d(l) * t.g.d(l - 1), a_off};
    params(L);
    if (l > 1) {
      tile_adjoint(t, theta, L, b_off);
      const int tmp = a_off;
      a_off = b_off;
      b_off = tmp;
    }
    __syncthreads();
  }
}

// Generic parameter phase: thread tid starts at weight entry q = tid, i.e. row i = tid / din, column j = tid % din,
// and advances by nt entries (di rows and dj columns) per step: no division in the loops.
struct EntryWalk {
  int i, j, di, dj, din;
  __device__ EntryWalk(int tid, int nt, int d)
      : i(tid / d), j(tid - (tid / d) * d), di(nt / d), dj(nt - (nt / d) * d), din(d) {}
  __device__ void next() {
    i += di;
    j += dj;
    if (j >= din) {
      j -= din;
      ++i;
    }
  }
};

// Fast-path parameter phase of a hidden-to-hidden layer of width W (blockDim 256): thread (grp, j) covers column j
// of rows grp, grp + G, ... (G = 256 / W groups), so it loads H_c[p][j] once per point and reuses it for all its
// rows (A_c[p][i] is a broadcast): half the shared-memory traffic of one entry per thread.
template <int W>
struct HiddenRows {
  static constexpr int G = 256 / W > 0 ? 256 / W : 1;
  static constexpr int RPT = (W + G - 1) / G;  // rows per thread
  int grp, j;
  __device__ explicit HiddenRows(int tid) : grp(tid / W), j(tid - (tid / W) * W) {}
  __device__ bool active() const { return grp < G; }
  __device__ int row(int r) const { return grp + G * r; }
};

}  // namespace pinntk::tile
