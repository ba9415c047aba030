// The evaluation tile kernel: the forward pass of cuda/tile_phases.cuh and the output layer, no reverse pass. Its
// tiles are those of the other tile kernels (plan_tiles), adjoint space included, so that all share one plan. In M
// coordinates it writes u and, per point, the M derivatives D_i u and D_i^2 u along the axes.
#include "cuda/eval.hpp"
#include "cuda/launch.cuh"         // require
#include "cuda/tile_dispatch.cuh"  // launch_tile
#include "cuda/tile_phases.cuh"    // tile_begin, tile_forward, tile_output, tile_output_nd

namespace pinntk {
namespace {

using namespace tile;  // NOLINT(google-build-using-namespace): the tile phases

// ---- kernel ----

template <class Real, bool STAGED, int WIDTH, int M>
__global__ void __launch_bounds__(256)
    eval_kernel(NetDesc net, const Real* __restrict__ theta, const Real* x, int n, int T, Real* __restrict__ u,
                Real* __restrict__ du, Real* __restrict__ d2u) {
  const Tile<Real, STAGED, WIDTH, M> t = tile_begin<Real, STAGED, WIDTH, M>(net, n, T);
  tile_forward(t, theta, x);
  for (int p = t.tid; p < t.tv; p += t.nt) {
    if constexpr (M == 1) {
      Real u0, u1, u2;
      tile_output(t, theta, p, u0, u1, u2);
      const int k = t.k0 + p;
      u[k] = u0;
      du[k] = u1;
      d2u[k] = u2;
    } else {
      Real s[1 + 2 * M];
      tile_output_nd(t, theta, p, s);
      const int k = t.k0 + p;
      const size_t o = static_cast<size_t>(k) * M;
      u[k] = s[0];
#pragma unroll
      for (int i = 0; i < M; ++i) {
        du[o + i] = s[1 + i];
        d2u[o + i] = s[1 + M + i];
      }
    }
  }
}

}  // namespace

// ---- launcher ----

template <class Real>
void launch_eval(const NetDesc& net, const Real* theta, const Real* x, int n, Real* u, Real* du, Real* d2u,
                 cudaStream_t s) {
  require(n >= 0, "launch_eval", "negative number of points");
  if (n == 0) return;
  require(theta != nullptr && x != nullptr, "launch_eval", "theta and x are needed");
  require(u != nullptr && du != nullptr && d2u != nullptr, "launch_eval", "u, du and d2u are needed");
  const TilePlan plan = plan_tiles<Real>(net, n);
  const auto kernel_of = [](auto staged, auto width, auto dirs) {
    return eval_kernel<Real, decltype(staged)::value, decltype(width)::value, decltype(dirs)::value>;
  };
  launch_tile(plan, s, kernel_of, net, theta, x, n, plan.T, u, du, d2u);
}

// ---- explicit instantiations ----
template void launch_eval<double>(const NetDesc&, const double*, const double*, int, double*, double*, double*,
                                  cudaStream_t);
template void launch_eval<float>(const NetDesc&, const float*, const float*, int, float*, float*, float*, cudaStream_t);

}  // namespace pinntk
