// Launchers of the tile kernels (cuda/mlp_tile.cu): a block takes a tile of points, runs the shared per-point math
// (cuda/mlp_math.cuh) for all of them with its threads spread over neurons and parameters, and writes u, u', u''
// (evaluation), the residuals and Jacobian rows, or the per-block partial loss gradient. The launcher owns grid,
// block and shared-memory sizes, checks its preconditions and the launch.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <vector>  // std::vector

#include "common/adam_math.hpp"  // AdamParams

namespace pinntk {

constexpr int kMaxWeightLayers = 16;

// Network geometry, passed by value to the kernels.
struct NetDesc {
  int nl = 0;                    // weight layers (hidden layers + 1)
  int d[kMaxWeightLayers + 1];   // widths, d[0] = d[nl] = 1
  int woff[kMaxWeightLayers + 1];  // offset of W^l in theta; b^l follows at woff[l] + d[l] d[l-1]
  int toff[kMaxWeightLayers + 1];  // offset of hidden layer l in a point's tape (5 d_l entries: t, h', h'', z', z'')
  // Hidden-to-hidden weights (layers 2 .. nl-1) staged in shared memory as W^T with rows padded to d_l + 1
  // entries, so that both the forward pass (consecutive threads take consecutive i) and the adjoint pass
  // (consecutive j) read without bank conflicts. soff[l] is the offset of layer l's block.
  int soff[kMaxWeightLayers + 1];
  int staged = 0;  // entries of all staged blocks
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

// How a launch is cut: T points per block of `threads` threads, `smem` bytes of dynamic shared memory.
struct TilePlan {
  int T = 1, threads = 256, blocks = 0;
  size_t smem = 0;
  bool staged = false;  // weights staged in shared memory (when they fit)
};
template <class Real>
TilePlan plan_tiles(const NetDesc& net, int n);
// For benchmarks: force T points per block (0 restores the automatic choice). Not thread-safe.
void set_tile_points_override(int points);
// For benchmarks and tests: stage hidden-layer weights in shared memory where they fit (the default) or not.
void set_weight_staging(bool on);
// For benchmarks and tests: use the compile-time width kernels for widths 40, 50, 60, 64, 128 (the default) or not.
void set_fast_paths(bool on);

// Sets the kernels' shared-memory limits; call before capturing launches in a CUDA graph.
template <class Real>
void prepare_tile_kernels();

// u, u', u'' at n points.
template <class Real>
void launch_eval(const NetDesc& net, const Real* theta, const Real* x, int n, Real* u, Real* du, Real* d2u,
                 cudaStream_t s);

// Residuals r (n) and the Jacobian J (n x P row-major: cuBLAS reads it as a column-major P x n matrix).
template <class Real>
void launch_jacobian(const NetDesc& net, const Real* theta, DeviceRows<Real> rows, Real* r, Real* J, cudaStream_t s);

// Per-block partial gradients of L = 1/2 sum w r^2 (partial: plan.blocks x P) and partial losses (plan.blocks),
// without forming J; r (n) is written when not null. Block 0 increments *step when step is not null (the Adam
// step count the update kernel reads).
template <class Real>
void launch_gradient(const NetDesc& net, const Real* theta, DeviceRows<Real> rows, Real* partial, Real* partial_loss,
                     Real* r, unsigned long long* step, cudaStream_t s);

// Sums the partials in block order (deterministic): loss into *loss, the gradient into grad when not null, and
// when m and v are not null, the Adam update of theta at learning rate *lr and step *step.
template <class Real>
void launch_reduce_adam(int P, int blocks, const Real* partial, const Real* partial_loss, Real* grad, double* loss,
                        Real* theta, Real* m, Real* v, const double* lr, const unsigned long long* step,
                        AdamParams adam, cudaStream_t s);

}  // namespace pinntk
