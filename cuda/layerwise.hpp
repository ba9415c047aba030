// The matrix-free products J u and J^T y (DESIGN.md section 8) a layer at a time: for a chunk of R rows every layer's
// jets of all rows and channels go through W^l as one GEMM (column-major jet blocks, cuda/layerwise_kernel.cuh), with
// elementwise kernels between the GEMMs. The tile kernels (cuda/matvec.cu, the seeded loss-gradient kernel) keep a
// point's whole pass in one block, which suits small networks; for wide ones (4x160: 0.7 M multiply-adds a row a
// product) the GEMMs run the arithmetic at the matrix rate (benchmarks/NOTES.md).
//
// Written once over an executor Exec, so that the same sequence runs on the device (cuBLAS and kernel launches,
// host/cuda/cuda_backend.cu) and on the CPU in the tests (CBLAS and tests/block_emulator.hpp):
//   ex.gemm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc)   C = op(A) op(B) + beta C, column-major, alpha 1
//   ex.gemv(m, n, A, lda, x, beta, y)                        y = A x + beta y, column-major
//   ex.run(kernel, elements, args...)                        a grid-stride launch of kernel(args...)
// The summation orders are the GEMMs' (fixed for a given size on a given device and library): the products agree
// with the CPU backend's per-point passes to rounding.
#pragma once

#include <algorithm>  // std::max, std::swap
#include <cstddef>    // size_t
#include <stdexcept>  // std::invalid_argument

#include "cuda/layerwise_kernel.cuh"  // the elementwise kernels
#include "cuda/tile_plan.hpp"         // NetDesc, DeviceRows

namespace pinntk::layerwise {

// Numbers of scratch a row needs: J u holds the jets and tangents of two layers and the current layer's products
// (6 blocks of the widest layer); J^T y the jets H^l and products Z^l of every hidden layer, the input jets, two
// adjoint blocks and W^T A; both a 1 for the row's entry of the ones vector.
inline size_t scratch_per_row(const NetDesc& net) {
  const size_t C = 1 + 2 * static_cast<size_t>(net.n_in()), w = static_cast<size_t>(net.maxw);
  size_t hidden = 0;
  for (int l = 1; l < net.nl; ++l) hidden += static_cast<size_t>(net.d[l]);
  const size_t jvp = 6 * C * w, vjp = C * (2 * hidden + static_cast<size_t>(net.n_in()) + 3 * w);
  return std::max(jvp, vjp) + 1;
}

// Where a chunk of R rows keeps its blocks within one scratch array of R scratch_per_row(net) numbers.
template <class Real>
struct Scratch {
  Real* base;
  long R;
};

namespace detail {

template <class Real, int M, class Exec>
void jacobian_times(Exec& ex, const NetDesc& net, const Real* theta, const Real* dtheta, const DeviceRows<Real>& rows,
                    Scratch<Real> s, Real* out) {
  using namespace layerwise_device;  // NOLINT(google-build-using-namespace): the kernels
  constexpr int C = 1 + 2 * M;
  const long R = s.R, w = net.maxw, block = C * w * R;
  Real *H = s.base, *Hd = H + block, *G = Hd + block, *Gd = G + block, *Z = Gd + block, *Zd = Z + block;
  ex.run(input_jets_kernel<Real, M>, C * M * R, R, rows, H);
  for (int l = 1; l <= net.nl; ++l) {
    const long din = net.d[l - 1], dout = net.d[l];
    const Real* W = theta + net.woff[l];  // row-major dout x din: column-major din x dout
    const Real* Wd = dtheta + net.woff[l];
    const Real* b = W + dout * din;
    const Real* bd = Wd + dout * din;
    // Zd = Wd h + W hd (hd = 0 at the input), Z = W h: every channel and row at once.
    ex.gemm(true, false, dout, C * R, din, Wd, din, H, din, Real(0), Zd, dout);
    if (l > 1) ex.gemm(true, false, dout, C * R, din, W, din, Hd, din, Real(1), Zd, dout);
    if (l == net.nl) {
      ex.run(output_tangent_kernel<Real, M>, R, R, rows, Zd, bd, out);
      return;
    }
    ex.gemm(true, false, dout, C * R, din, W, din, H, din, Real(0), Z, dout);
    ex.run(tangent_kernel<Real, M>, dout * R, dout, R, b, bd, Z, Zd, G, Gd);
    std::swap(H, G);
    std::swap(Hd, Gd);
  }
}

template <class Real, int M, class Exec>
void jacobian_transpose_times(Exec& ex, const NetDesc& net, const Real* theta, const DeviceRows<Real>& rows,
                              const Real* y, Scratch<Real> s, Real beta, Real* out) {
  using namespace layerwise_device;  // NOLINT(google-build-using-namespace): the kernels
  constexpr int C = 1 + 2 * M;
  const long R = s.R, w = net.maxw, nl = net.nl;
  // H[l] (l = 0 .. nl-1) and Z[l] (l = 1 .. nl-1) one after the other, then two adjoint blocks, W^T A, the ones.
  Real* H[kMaxWeightLayers + 1];
  Real* Z[kMaxWeightLayers + 1];
  Real* p = s.base;
  H[0] = p;
  p += C * M * R;
  for (int l = 1; l < nl; ++l) {
    H[l] = p;
    p += C * net.d[l] * R;
    Z[l] = p;
    p += C * net.d[l] * R;
  }
  Real *A = p, *B = A + C * w * R, *HB = B + C * w * R, *ones = HB + C * w * R;
  ex.run(fill_kernel<Real>, R, R, Real(1), ones);
  ex.run(input_jets_kernel<Real, M>, C * M * R, R, rows, H[0]);
  for (int l = 1; l < nl; ++l) {
    const long din = net.d[l - 1], dout = net.d[l];
    const Real* W = theta + net.woff[l];
    ex.gemm(true, false, dout, C * R, din, W, din, H[l - 1], din, Real(0), Z[l], dout);
    ex.run(forward_kernel<Real, M>, dout * R, dout, R, W + dout * din, Z[l], H[l]);
  }
  ex.run(output_seed_kernel<Real, M>, R, R, rows, y, A);
  for (int l = static_cast<int>(nl); l >= 1; --l) {
    const long din = net.d[l - 1], dout = net.d[l];
    const Real* W = theta + net.woff[l];
    Real* gW = out + net.woff[l];
    // d/dW^l_ij = sum over rows and channels of A_c,i h_c,j: (W's entries row-major = column-major din x dout)
    // H^{l-1} A^T; d/db^l_i = sum over rows of A_0,i.
    ex.gemm(false, true, din, dout, C * R, H[l - 1], din, A, dout, beta, gW, din);
    ex.gemv(dout, R, A, dout, ones, beta, gW + dout * din);
    if (l == 1) break;
    ex.gemm(false, false, din, C * R, dout, W, din, A, dout, Real(0), HB, din);  // W^T A per channel and row
    ex.run(adjoint_kernel<Real, M>, din * R, din, R, HB, H[l - 1], Z[l - 1], B);
    std::swap(A, B);
  }
}

}  // namespace detail

// J u for the rows of one chunk (rows.n = s.R rows) into out[0 .. R): theta and dtheta are the parameters and the
// direction (P numbers each, on the executor's side).
template <class Real, class Exec>
void jacobian_times(Exec& ex, const NetDesc& net, const Real* theta, const Real* dtheta, const DeviceRows<Real>& rows,
                    Scratch<Real> s, Real* out) {
  switch (net.n_in()) {
    case 1:
      return detail::jacobian_times<Real, 1>(ex, net, theta, dtheta, rows, s, out);
    case 2:
      return detail::jacobian_times<Real, 2>(ex, net, theta, dtheta, rows, s, out);
    case 3:
      return detail::jacobian_times<Real, 3>(ex, net, theta, dtheta, rows, s, out);
    default:
      throw std::invalid_argument("layerwise::jacobian_times: 1 to 3 input coordinates");
  }
}

// out = J^T y + beta out for the rows of one chunk (y: R numbers): beta 0 for a chunk alone, 1 to add it to the sum of
// the chunks before.
template <class Real, class Exec>
void jacobian_transpose_times(Exec& ex, const NetDesc& net, const Real* theta, const DeviceRows<Real>& rows,
                              const Real* y, Scratch<Real> s, Real beta, Real* out) {
  switch (net.n_in()) {
    case 1:
      return detail::jacobian_transpose_times<Real, 1>(ex, net, theta, rows, y, s, beta, out);
    case 2:
      return detail::jacobian_transpose_times<Real, 2>(ex, net, theta, rows, y, s, beta, out);
    case 3:
      return detail::jacobian_transpose_times<Real, 3>(ex, net, theta, rows, y, s, beta, out);
    default:
      throw std::invalid_argument("layerwise::jacobian_transpose_times: 1 to 3 input coordinates");
  }
}

}  // namespace pinntk::layerwise
