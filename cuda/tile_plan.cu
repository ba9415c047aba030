// The network descriptor of the tile kernels and the cut of a launch into tiles (plan_tiles): points per block,
// shared memory, weight placement and compiled variant, chosen once per plan.
#include <algorithm>  // std::min, std::max
#include <string>     // std::to_string

#include "common/errors.hpp"       // UsageError
#include "common/problems_nd.hpp"  // kMaxDim
#include "cuda/check.cuh"          // PINNTK_CUDA_CHECK
#include "cuda/tile_dispatch.cuh"  // dispatch_dirs, dispatch_width
#include "cuda/tile_plan.hpp"

namespace pinntk {

static_assert(kMaxInputs == kMaxDim, "the kernels take every dimension of the n-dimensional problems");

const DeviceLimits& device_limits() {
  static const DeviceLimits lim = [] {
    DeviceLimits l;
    int dev = 0, v = 0;
    PINNTK_CUDA_CHECK(cudaGetDevice(&dev));
    PINNTK_CUDA_CHECK(cudaDeviceGetAttribute(&l.sms, cudaDevAttrMultiProcessorCount, dev));
    PINNTK_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    l.smem_optin = static_cast<size_t>(v) - 1024;  // room for the kernels' static shared memory
    return l;
  }();
  return lim;
}

namespace {
int g_tile_points = 0;        // 0: choose by the rule below
bool g_stage_weights = true;  // stage hidden weights in shared memory where they fit
bool g_fast_paths = true;     // tests and benchmarks can force the generic path
bool g_mma_gradient = false;  // the tensor-core loss gradient where it applies
}  // namespace

void set_tile_points_override(int points) { g_tile_points = points; }
void set_weight_staging(bool on) { g_stage_weights = on; }
void set_fast_paths(bool on) { g_fast_paths = on; }
void set_mma_gradient(bool on) { g_mma_gradient = on; }
bool mma_gradient() { return g_mma_gradient; }

template <class Real>
TilePlan plan_tiles(const NetDesc& net, int n) {
  const DeviceLimits& lim = device_limits();
  // A point's tape, its two adjoint sets (6 maxw in 1-D) and its loss slot.
  const size_t per_point =
      (static_cast<size_t>(net.tape_stride()) + static_cast<size_t>(net.adj_stride()) + 1) * sizeof(Real);
  // Keep two blocks per multiprocessor possible, and aim for two waves of blocks over the chip.
  const size_t budget = std::min<size_t>(lim.smem_optin, 100 * 1024);
  if (per_point > lim.smem_optin)
    throw UsageError("network too large for the CUDA tile kernel: one point needs " + std::to_string(per_point) +
                     " bytes of shared memory, the device has " + std::to_string(lim.smem_optin) +
                     "; use narrower layers or --device cpu");
  const int tmax = static_cast<int>(std::max<size_t>(1, std::min<size_t>(32, budget / per_point)));
  // Four points per block measured best for the 4x40 network on an H200 (benchmarks/RESULTS.md), for both the
  // Jacobian at 65536 points and the gradient at 1024; fewer when there are too few points to fill the chip twice.
  const int want =
      static_cast<int>(std::min<long long>(4, (static_cast<long long>(n) + 2 * lim.sms - 1) / (2 * lim.sms)));
  TilePlan p;
  p.dirs = net.n_in();
  p.T = std::max(1, std::min(tmax, g_tile_points > 0 ? g_tile_points : want));
  p.threads = 256;
  p.blocks = static_cast<int>((static_cast<long long>(n) + p.T - 1) / p.T);
  p.smem = per_point * p.T;
  const size_t staged_bytes = static_cast<size_t>(net.staged) * sizeof(Real);
  p.staged = g_stage_weights && net.staged > 0 && p.smem + staged_bytes <= lim.smem_optin;
  if (p.staged) p.smem += staged_bytes;
  // The compile-time width kernel where one is compiled for the network's width and input width (the switches of
  // tile_dispatch.cuh, which also refuse an input width without kernels).
  tile::dispatch_dirs(net.n_in(), [&](auto dirs) {
    if (g_fast_paths)
      tile::dispatch_width<decltype(dirs)::value>(net.uniform_width,
                                                  [&](auto width) { p.width = decltype(width)::value; });
  });
  return p;
}

template TilePlan plan_tiles<double>(const NetDesc&, int);
template TilePlan plan_tiles<float>(const NetDesc&, int);

}  // namespace pinntk
