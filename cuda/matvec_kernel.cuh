// J u without J (DESIGN.md section 8), the kernel's device code (launched by cuda/matvec.cu): the tangent pass of
// mlp_tangent_point_nd (common/mlp_math_nd.hpp) along the parameter direction u, split by neuron over the lanes of one
// warp per row: lane i of the warp takes neurons i, i + 32, ... of each layer, with the per-neuron helpers tanh_jet
// and tanh_jet_tangent (common/mlp_math.hpp); the jets (h, h'_k, h''_k) of two adjacent layers and their tangents
// live in the warp's slice of shared memory. Each accumulator sums over the inputs j in mlp_tangent_point_nd's order,
// so the rows agree with the CPU backend's to rounding (FMA contraction aside). The 1-D network is the case M = 1
// (v = 1). No CUDA header of its own: tests/block_emulator.hpp runs it on the CPU.
#pragma once

#include <cstddef>  // size_t

#include "common/mlp_math.hpp"   // tanh_jet, tanh_jet_tangent
#include "common/residual.hpp"   // row_residual_nd
#include "cuda/tile_phases.cuh"  // PINNTK_DYNAMIC_SHARED_ALIGNED
#include "cuda/tile_plan.hpp"    // NetDesc, DeviceRows

namespace pinntk::matvec_device {

constexpr int kMaxWarps = 8;               // rows per block
constexpr size_t kSmemTarget = 48 * 1024;  // a block's jets: several blocks per multiprocessor

// Shared entries of one row: the jets and their tangents of two layers, 1 + 2M channels of maxw each (what
// mlp_tangent_size_nd counts).
inline size_t row_entries(const NetDesc& net) {
  return 4 * static_cast<size_t>(1 + 2 * net.n_in()) * static_cast<size_t>(net.maxw);
}

// ---- kernel ----

// Row k = blockIdx.x warps + warp. Channel c of a jet set holds maxw entries (h at c = 0, h'_k at 1 + k, h''_k at
// 1 + M + k, as mlp_tangent_point_nd's scratch); H/Hd are layer l-1's jet and tangent, G/Gd layer l's. A warp past the
// last row returns whole: the only barriers are the warp's own.
template <class Real, int M>
__global__ void __launch_bounds__(32 * kMaxWarps)
    jacobian_times_kernel(NetDesc net, const Real* __restrict__ theta, const Real* __restrict__ dtheta,
                          DeviceRows<Real> rows, Real* __restrict__ out) {
  constexpr int C = 1 + 2 * M;
  PINNTK_DYNAMIC_SHARED_ALIGNED(smem_raw, 16);
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  const long long row = static_cast<long long>(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (row >= rows.n) return;
  const int k = static_cast<int>(row);
  const int mw = net.maxw, set = C * mw;
  Real* H = reinterpret_cast<Real*>(smem_raw) + static_cast<size_t>(warp) * 4 * set;
  Real* Hd = H + set;
  Real* G = H + 2 * set;
  Real* Gd = H + 3 * set;
  const size_t o = static_cast<size_t>(k) * M;
  // Layer 0: h = x, h'_k = e_k (the axes) or the row's own v_k (rows.dirs), h''_k = 0, none of them depending on
  // theta. The extra zero terms these give layer 1's sums (w 0, wd 0) leave them as mlp_tangent_point_nd's.
  for (int e = lane; e < set; e += 32) {
    const int c = e / mw, j = e - c * mw;
    Real v = Real(0);
    if (j < M) {
      if (c == 0) {
        v = rows.x[o + j];
      } else if (c <= M) {
        v = rows.dirs != nullptr ? rows.dirs[(o + c - 1) * M + j] : Real(c - 1 == j ? 1 : 0);
      }
    }
    H[e] = v;
    Hd[e] = Real(0);
  }
  __syncwarp();
  const Real* p = theta;
  const Real* pd = dtheta;
  for (int l = 1; l <= net.nl; ++l) {
    const int din = net.d[l - 1], dout = net.d[l];
    const bool output = l == net.nl;
    for (int i = lane; i < dout; i += 32) {
      const Real* wi = p + static_cast<size_t>(i) * din;
      const Real* wdi = pd + static_cast<size_t>(i) * din;
      Real z = p[dout * din + i], zd = pd[dout * din + i];
      Real zp[M], zpp[M], zpd[M], zppd[M];
#pragma unroll
      for (int c = 0; c < M; ++c) zp[c] = zpp[c] = zpd[c] = zppd[c] = Real(0);
      for (int j = 0; j < din; ++j) {
        const Real w = wi[j], wd = wdi[j], h = H[j];
        // zd = Wd h + W hd + bd, z'd_k = Wd h'_k + W h'd_k, z''d_k = Wd h''_k + W h''d_k (DESIGN.md section 8).
        z += w * h;
        zd += wd * h;
        zd += w * Hd[j];
#pragma unroll
        for (int c = 0; c < M; ++c) {
          const Real h1 = H[(1 + c) * mw + j], h2 = H[(1 + M + c) * mw + j];
          zp[c] += w * h1;
          zpd[c] += wd * h1;
          zpp[c] += w * h2;
          zpd[c] += w * Hd[(1 + c) * mw + j];
          zppd[c] += wd * h2 + w * Hd[(1 + M + c) * mw + j];
        }
      }
      if (output) {  // dout = 1: lane 0 alone; the row's linear part applied to (ud, u'd_k, u''d_k)
        out[k] = row_residual_nd(M, rows.alpha + o, rows.beta + o, rows.gamma[k], Real(0), zd, zpd, zppd);
      } else {
        const Real t = tanh(z);
        G[i] = t;
        Real hd = Real(0);
#pragma unroll
        for (int c = 0; c < M; ++c) {
          tanh_jet(t, zp[c], zpp[c], G[(1 + c) * mw + i], G[(1 + M + c) * mw + i]);
          tanh_jet_tangent(t, zp[c], zpp[c], zd, zpd[c], zppd[c], hd, Gd[(1 + c) * mw + i], Gd[(1 + M + c) * mw + i]);
        }
        Gd[i] = hd;
      }
    }
    // Layer l's jets are written and layer l-1's read by every lane before the next layer overwrites H.
    __syncwarp();
    p += static_cast<size_t>(dout) * din + dout;
    pd += static_cast<size_t>(dout) * din + dout;
    Real* tmp = H;
    H = G;
    G = tmp;
    tmp = Hd;
    Hd = Gd;
    Gd = tmp;
  }
}

}  // namespace pinntk::matvec_device
