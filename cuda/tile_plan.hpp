// What every tile kernel (cuda/eval.cu, cuda/jacobian.cu, cuda/loss_gradient.cu) is launched with: the network's
// geometry (NetDesc), a problem's rows on the device (DeviceRows), and the cut of a launch into tiles of points
// (TilePlan, from plan_tiles), with the knobs that benchmarks and tests turn to choose another cut or variant.
#pragma once

#include <cstddef>  // size_t
#include <vector>   // std::vector

namespace pinntk {

constexpr int kMaxWeightLayers = 16;

// Network geometry, passed by value to the kernels.
struct NetDesc {
  int nl = 0;                      // weight layers (hidden layers + 1)
  int d[kMaxWeightLayers + 1];     // widths, d[0] = d[nl] = 1
  int woff[kMaxWeightLayers + 1];  // offset of W^l in theta; b^l follows at woff[l] + d[l] d[l-1]
  int toff[kMaxWeightLayers + 1];  // offset of hidden layer l in a point's tape (5 d_l entries: t, h', h'', z', z'')
  // Hidden-to-hidden weights (layers 2 .. nl-1) staged in shared memory as W^T with rows padded to d_l + 1
  // entries, so that both the forward pass (consecutive threads take consecutive i) and the adjoint pass
  // (consecutive j) read without bank conflicts. soff[l] is the offset of layer l's block.
  int soff[kMaxWeightLayers + 1];
  int staged = 0;         // entries of all staged blocks
  int uniform_width = 0;  // the hidden width when all hidden layers share it, else 0
  int P = 0, tape = 0, maxw = 0;
};

// Throws std::invalid_argument for a shape the kernels do not take (no hidden layer, too deep).
NetDesc make_net_desc(const std::vector<int>& layers);

// The rows of a residual problem on the device: r_k = alpha_k u'' + beta_k u' + gamma_k u - f_k, weight w_k.
template <class Real>
struct DeviceRows {
  const Real *x, *alpha, *beta, *gamma, *f, *w;
  int n;
};

// How a launch is cut: T points per block of `threads` threads, `smem` bytes of dynamic shared memory, and which
// compiled variant runs it. Every choice is made here, once: a launch runs the plan it is given.
struct TilePlan {
  int T = 1, threads = 256, blocks = 0;
  size_t smem = 0;
  bool staged = false;  // weights staged in shared memory (when they fit)
  int width = 0;        // the compile-time width kernel (40, 50, 60, 64, 128), or 0 for the generic one
};
template <class Real>
TilePlan plan_tiles(const NetDesc& net, int n);
// For benchmarks: force T points per block (0 restores the automatic choice). Not thread-safe.
void set_tile_points_override(int points);
// For benchmarks and tests: stage hidden-layer weights in shared memory where they fit (the default) or not.
void set_weight_staging(bool on);
// For benchmarks and tests: use the compile-time width kernels for widths 40, 50, 60, 64, 128 (the default) or not.
void set_fast_paths(bool on);

// The device's multiprocessors and the dynamic shared memory a block may opt in to (less room for the kernels'
// static shared memory), read once.
struct DeviceLimits {
  int sms = 0;
  size_t smem_optin = 0;
};
const DeviceLimits& device_limits();

}  // namespace pinntk
