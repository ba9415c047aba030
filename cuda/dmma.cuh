// Warp-wide fp64 matrix products on the tensor cores (DMMA, sm_80 and later) through CUDA's wmma API, 8 x 8 x 4 in
// double: FragA (8 x 4), FragB (4 x 8) and the accumulator FragC (8 x 8), loaded from and stored to memory with a
// leading dimension in row- or column-major order. Every lane of the warp calls each function (they are warp-wide),
// tiles start 32-byte aligned and ldm is even. Compiled by a host compiler (tests/block_emulator.hpp) the same names
// give the API's documented semantics with plain arithmetic: every lane holds the whole fragment, mma adds the four
// products of an entry in k order, lane 0 stores; a __syncwarp after each store makes the tile the warp's in both.
// The emulation also checks each tile's alignment and ldm against the API's rules (emu::Block::check_fragment).
#pragma once

#if defined(__CUDACC__)
#include <mma.h>  // nvcuda::wmma
#else
#include <type_traits>  // std::is_same_v
#endif

namespace pinntk::dmma {

#if defined(__CUDACC__)

using RowMajor = nvcuda::wmma::row_major;
using ColMajor = nvcuda::wmma::col_major;
template <class L>
using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 8, 8, 4, double, L>;
template <class L>
using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 8, 8, 4, double, L>;
using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 8, 8, 4, double>;

__device__ inline void zero(FragC& c) { nvcuda::wmma::fill_fragment(c, 0.0); }
template <class F>
__device__ inline void load(F& f, const double* p, unsigned ldm) {
  nvcuda::wmma::load_matrix_sync(f, p, ldm);
}
template <class LA, class LB>
__device__ inline void mma(FragC& d, const FragA<LA>& a, const FragB<LB>& b) {
  nvcuda::wmma::mma_sync(d, a, b, d);
}
// Entry (r, n) of the tile to p[n ldm + r] (column-major) or p[r ldm + n] (row-major).
__device__ inline void store_col_major(double* p, const FragC& c, unsigned ldm) {
  nvcuda::wmma::store_matrix_sync(p, c, ldm, nvcuda::wmma::mem_col_major);
  __syncwarp();
}
__device__ inline void store_row_major(double* p, const FragC& c, unsigned ldm) {
  nvcuda::wmma::store_matrix_sync(p, c, ldm, nvcuda::wmma::mem_row_major);
  __syncwarp();
}

#else  // the host compiler: tests/block_emulator.hpp's threads, one fragment copy a lane

struct RowMajor {};
struct ColMajor {};
template <class L>
struct FragA {
  double v[8][4];
};
template <class L>
struct FragB {
  double v[4][8];
};
struct FragC {
  double v[8][8];
};

inline void zero(FragC& c) {
  for (auto& row : c.v)
    for (double& e : row) e = 0.0;
}
template <class L>
inline void load(FragA<L>& f, const double* p, unsigned ldm) {
  ::pinntk::emu::block->check_fragment(p, ldm, sizeof(double));
  for (unsigned r = 0; r < 8; ++r)
    for (unsigned k = 0; k < 4; ++k) f.v[r][k] = std::is_same_v<L, RowMajor> ? p[r * ldm + k] : p[k * ldm + r];
}
template <class L>
inline void load(FragB<L>& f, const double* p, unsigned ldm) {
  ::pinntk::emu::block->check_fragment(p, ldm, sizeof(double));
  for (unsigned k = 0; k < 4; ++k)
    for (unsigned n = 0; n < 8; ++n) f.v[k][n] = std::is_same_v<L, RowMajor> ? p[k * ldm + n] : p[n * ldm + k];
}
template <class LA, class LB>
inline void mma(FragC& d, const FragA<LA>& a, const FragB<LB>& b) {
  for (int r = 0; r < 8; ++r)
    for (int n = 0; n < 8; ++n) {
      double s = d.v[r][n];
      for (int k = 0; k < 4; ++k) s += a.v[r][k] * b.v[k][n];
      d.v[r][n] = s;
    }
}
inline void store_col_major(double* p, const FragC& c, unsigned ldm) {
  ::pinntk::emu::block->check_fragment(p, ldm, sizeof(double));
  if (::pinntk::emu::linear_thread() % 32 == 0)
    for (unsigned r = 0; r < 8; ++r)
      for (unsigned n = 0; n < 8; ++n) p[n * ldm + r] = c.v[r][n];
  __syncwarp();
}
inline void store_row_major(double* p, const FragC& c, unsigned ldm) {
  ::pinntk::emu::block->check_fragment(p, ldm, sizeof(double));
  if (::pinntk::emu::linear_thread() % 32 == 0)
    for (unsigned r = 0; r < 8; ++r)
      for (unsigned n = 0; n < 8; ++n) p[r * ldm + n] = c.v[r][n];
  __syncwarp();
}

#endif

}  // namespace pinntk::dmma
