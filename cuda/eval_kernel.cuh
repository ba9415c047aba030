// The evaluation tile kernel's device code (launched by cuda/eval.cu): the forward pass of cuda/tile_phases.cuh and
// the output layer, no reverse pass. Its tiles are those of the other tile kernels (plan_tiles), adjoint space
// included, so that all share one plan. In M coordinates it writes u and, per point, the M derivatives D_i u and
// D_i^2 u along the axes. No CUDA header of its own: tests/block_emulator.hpp runs it on the CPU.
#pragma once

#include <cstddef>  // size_t

#include "cuda/tile_phases.cuh"  // tile_begin, tile_forward, tile_output, tile_output_nd

namespace pinntk::eval_device {

using namespace tile;  // NOLINT(google-build-using-namespace): the tile phases, in this namespace only

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

}  // namespace pinntk::eval_device
