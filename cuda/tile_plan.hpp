// What every tile kernel (cuda/eval.cu, cuda/jacobian.cu, cuda/loss_gradient.cu) is launched with: the network's
// geometry (NetDesc), a problem's rows on the device (DeviceRows), and the cut of a launch into tiles of points
// (TilePlan, from plan_tiles), with the knobs that benchmarks and tests turn to choose another cut or variant.
#pragma once

#include <cstddef>  // size_t
#include <vector>   // std::vector

#include "common/hd.hpp"  // PINNTK_HD

namespace pinntk {

constexpr int kMaxWeightLayers = 16;
// The input coordinates the kernels take (layers[0] = n = 1 .. kMaxInputs): the n-dimensional problems of DESIGN.md
// section 7 along the coordinate axes, one Taylor direction per coordinate (common/problems_nd.hpp's kMaxDim).
constexpr int kMaxInputs = 3;

// A per-point stride in shared memory of n numbers, padded to n = 4 (mod 32): consecutive points' entries j then
// start in different banks (4 numbers, 8 banks for doubles; a multiple of 32 numbers, as 4x40's tape of 800 and
// adjoint sets of 240, would put them all in one), so a warp whose threads serve two points reads both points'
// broadcast values in one pass.
PINNTK_HD constexpr int bank_padded(int n) { return n + ((4 - n % 32) % 32 + 32) % 32; }

// Network geometry, passed by value to the kernels. With n = n_in() input coordinates (M = n directions, the tile
// kernels' template parameter) a hidden neuron keeps 1 + 4M tape entries (t, then h'_k, h''_k, z'_k, z''_k for
// every direction: layer l's block is t (d_l), h'_0 .. h'_{M-1}, h''_0 .., z'_0 .., z''_0 .., each d_l long; in 1-D
// t, h', h'', z', z'') and a point's reverse pass two sets of 1 + 2M adjoint vectors of maxw entries
// (common/mlp_math_nd.hpp's layout; 6 maxw in 1-D).
struct NetDesc {
  int nl = 0;                      // weight layers (hidden layers + 1)
  int d[kMaxWeightLayers + 1];     // widths, d[0] = n_in() (input coordinates), d[nl] = 1
  int woff[kMaxWeightLayers + 1];  // offset of W^l in theta; b^l follows at woff[l] + d[l] d[l-1]
  int toff[kMaxWeightLayers + 1];  // offset of hidden layer l in a point's tape ((1 + 4 d[0]) d_l entries)
  // Hidden-to-hidden weights (layers 2 .. nl-1) staged in shared memory as W^T with rows padded to d_l + 1
  // entries, so that both the forward pass (consecutive threads take consecutive i) and the adjoint pass
  // (consecutive j) read without bank conflicts. soff[l] is the offset of layer l's block. After the blocks, at
  // stail, the tail: the biases b^2 .. b^{nl-1}, then the output layer's W^nl and b^nl (the parameters the phases
  // would otherwise read from global memory in the middle of the pass; layer 1's are read while the rest is staged).
  int soff[kMaxWeightLayers + 1];
  int staged = 0;         // entries of all staged blocks and the tail (0: nothing staged, no hidden-to-hidden layer)
  int stail = 0;          // offset of the tail
  int uniform_width = 0;  // the hidden width when all hidden layers share it, else 0
  int P = 0, tape = 0, maxw = 0;
  // Host-side: the kernels take the input width as a template parameter (TilePlan::dirs), read from d[0] rather than
  // kept in a data member of its own.
  int n_in() const { return d[0]; }                      // input coordinates, 1 .. kMaxInputs
  int adj() const { return 2 * (1 + 2 * d[0]) * maxw; }  // adjoint entries per point
  // The tile kernels' per-point strides of the tape and of the adjoint sets in shared memory (bank_padded).
  int tape_stride() const { return bank_padded(tape); }
  int adj_stride() const { return bank_padded(adj()); }
};

// Throws std::invalid_argument for a shape the kernels do not take (no hidden layer, too deep, an input width
// outside 1 .. kMaxInputs, an output width other than 1), std::length_error for one whose counts would wrap.
NetDesc make_net_desc(const std::vector<int>& layers);

// The rows of a residual problem on the device: r_k = alpha_k u'' + beta_k u' + gamma_k u - f_k, weight w_k; in
// n = NetDesc::n_in() coordinates r_k = sum_i (alpha_ki D_i^2 u + beta_ki D_i u) + gamma_k u - f_k
// (common/residual.hpp's row_residual_nd), with x, alpha and beta n numbers per row (row-major, n_in() per row) and
// gamma, f, w one. The launchers take the rows' dimension from the NetDesc: the backend checks that they agree.
// dirs (n > 1 only): null for the coordinate axes, else each row's own n directions (n x n numbers per row, v_i at
// dirs[(k n + i) n], PointSet::dirs: a full coefficient tensor), alpha and beta being the coefficients in that basis.
template <class Real>
struct DeviceRows {
  const Real *x, *alpha, *beta, *gamma, *f, *w;
  int n;
  const Real* dirs = nullptr;
};

// Rows k0 .. k0 + count - 1 of rows in dim coordinates (w stays null where rows has none).
template <class Real>
inline DeviceRows<Real> slice_rows(const DeviceRows<Real>& rows, size_t k0, int count, int dim) {
  const size_t d = static_cast<size_t>(dim);
  return {rows.x + k0 * d,
          rows.alpha + k0 * d,
          rows.beta + k0 * d,
          rows.gamma + k0,
          rows.f + k0,
          rows.w != nullptr ? rows.w + k0 : nullptr,
          count,
          rows.dirs != nullptr ? rows.dirs + k0 * d * d : nullptr};
}

// How a launch is cut: T points per block of `threads` threads, `smem` bytes of dynamic shared memory, and which
// compiled variant runs it. Every choice is made here, once: a launch runs the plan it is given.
struct TilePlan {
  int T = 1, threads = 256, blocks = 0;
  size_t smem = 0;
  bool staged = false;  // weights staged in shared memory (when they fit)
  int width = 0;        // the compile-time width kernel (tile_dispatch.cuh's list for `dirs`), or 0 for the generic one
  int dirs = 1;         // the Taylor directions M = NetDesc::n_in() the kernel is compiled for (1 .. kMaxInputs)
  bool mma = false;     // the loss gradient by cuda/mma_gradient_kernel.cuh (8 points a block; plan_gradient's choice)
};
template <class Real>
TilePlan plan_tiles(const NetDesc& net, int n);
// For benchmarks: force T points per block (0 restores the automatic choice). Not thread-safe.
void set_tile_points_override(int points);
// For benchmarks and tests: stage hidden-layer weights in shared memory where they fit (the default) or not.
void set_weight_staging(bool on);
// For benchmarks and tests: use the compile-time width kernels (tile_dispatch.cuh: widths 40, 50, 60, 64, 128 in
// 1-D) where one is compiled (the default) or not.
void set_fast_paths(bool on);
// For benchmarks and tests: the loss gradient (and J^T y) of fp64 1-D networks whose hidden layers are all 40 wide
// by the tensor-core kernel (cuda/mma_gradient_kernel.cuh) where it fits, or by the tile kernel (the default until
// it has been measured on a GPU). Read when a GradientPlan is made. Not thread-safe.
void set_mma_gradient(bool on);
bool mma_gradient();

// The device's multiprocessors and the dynamic shared memory a block may opt in to (less room for the kernels'
// static shared memory), read once.
struct DeviceLimits {
  int sms = 0;
  size_t smem_optin = 0;
};
const DeviceLimits& device_limits();

}  // namespace pinntk
