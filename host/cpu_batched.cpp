#include "host/cpu_batched.hpp"

#include <cblas.h>  // cblas_dgemm, cblas_dgemv, cblas_dsyrk, openblas_get_num_threads, openblas_set_num_threads
#include <omp.h>    // omp_get_max_threads, omp_get_num_threads, omp_get_thread_num

#include <algorithm>  // std::fill, std::min, std::max, std::swap
#include <cmath>      // std::tanh, std::sqrt
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string

#include "common/mlp_math.hpp"  // first_layer_weight_adjoint, tanh_jet, tanh_jet_adjoint, tanh_jet_tangent
#include "common/residual.hpp"  // row_residual_nd, row_loss

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>  // __m256d, __m512d and their loads and stores
#define PINNTK_X86 1
#if defined(PINNTK_HAVE_LIBMVEC_TANH)
// glibc's vector tanh (libmvec, the x86-64 vector ABI names of tanh for AVX2 and AVX-512; about 1 ulp), called only
// from functions compiled for that instruction set. On a Zen 5 core it took 0.9 ns an element (max error 1.2 ulp)
// against 1.8 ns for SLEEF's Sleef_tanhd8_u10avx512f (0.5 ulp); no further library is needed.
extern "C" {
__m256d _ZGVdN4v_tanh(__m256d);
__m512d _ZGVeN8v_tanh(__m512d);
}
#endif
#endif

#define PINNTK_INLINE inline __attribute__((always_inline))

namespace pinntk {

namespace {

// The products of a layer: out (m x n, row stride ldo) = W X with W(i, k) = w[i * wsi + k * wsk] (W^l or its
// transpose) and X (k x n, row stride ldx); OpenBLAS dgemm.
struct BlasProducts {
  static void panel(int m, int n, int k, const double* w, int wsi, int wsk, const double* x, int ldx, double* out,
                    int ldo) {
    cblas_dgemm(CblasRowMajor, wsk == 1 ? CblasNoTrans : CblasTrans, CblasNoTrans, m, n, k, 1.0, w,
                wsk == 1 ? wsi : wsk, x, ldx, 0.0, out, ldo);
  }
  // out (m x k) += A H^T with A (m x n) and H (k x n), row strides lda, ldh: dRho/dW over the points.
  static void gram(int m, int k, int n, const double* a, int lda, const double* h, int ldh, double* out, int ldo) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0, a, lda, h, ldh, 1.0, out, ldo);
  }
};

// The instruction sets: each gives t[i] = tanh(z[i] + b) over an array and the layer's two products (panel, gram:
// OpenBLAS, or on AVX-512 the register-blocked kernels below, which ran the 4x40 step's products at about 100-130
// GFLOP/s on a Zen 5 core against 64 for OpenBLAS 0.3.21's Haswell kernels that it picks there); the rest of the
// elementwise code is the same source, vectorized by the compiler for the instruction set of the wrapper it is
// inlined into (chunk_avx2 ...).
struct Generic : BlasProducts {
  static PINNTK_INLINE void tanh_shift(const double* z, double b, double* t, int n) {
    for (int i = 0; i < n; ++i) t[i] = std::tanh(z[i] + b);
  }
};

#if PINNTK_X86
#define PINNTK_TARGET_AVX2 "avx2,fma"
#define PINNTK_TARGET_AVX512 "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,prefer-vector-width=512"

struct Avx2 : BlasProducts {
  __attribute__((target(PINNTK_TARGET_AVX2))) static void tanh_shift(const double* z, double b, double* t, int n) {
#if defined(PINNTK_HAVE_LIBMVEC_TANH)
    const __m256d vb = _mm256_set1_pd(b);
    int i = 0;
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(t + i, _ZGVdN4v_tanh(_mm256_add_pd(_mm256_loadu_pd(z + i), vb)));
    if (i < n) {  // the tail through the same vector function: a point's tanh does not depend on its position
      const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - i), _mm256_set_epi64x(3, 2, 1, 0));
      const __m256d v = _mm256_add_pd(_mm256_maskload_pd(z + i, mask), vb);
      _mm256_maskstore_pd(t + i, mask, _ZGVdN4v_tanh(v));
    }
#else
    Generic::tanh_shift(z, b, t, n);
#endif
  }
};

// The AVX-512 panel product: R rows of out by 24 columns (3 vectors) at a time, the accumulators in registers,
// the k loop reading a 24-wide strip of X (in L1 for all row blocks) and broadcasting W's entries. Partial column
// blocks through masked loads and stores.
template <int R>
__attribute__((target(PINNTK_TARGET_AVX512))) PINNTK_INLINE void panel_block(int k, const double* w, int wsi, int wsk,
                                                                             const double* x, int ldx, double* out,
                                                                             int ldo, const __mmask8* mask) {
  __m512d acc[R][3];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 3; ++v) acc[r][v] = _mm512_setzero_pd();
  for (int j = 0; j < k; ++j) {
    const double* xj = x + static_cast<size_t>(j) * ldx;
    const __m512d x0 = _mm512_maskz_loadu_pd(mask[0], xj), x1 = _mm512_maskz_loadu_pd(mask[1], xj + 8),
                  x2 = _mm512_maskz_loadu_pd(mask[2], xj + 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512d b = _mm512_set1_pd(w[r * wsi + j * wsk]);
      acc[r][0] = _mm512_fmadd_pd(b, x0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_pd(b, x1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_pd(b, x2, acc[r][2]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 3; ++v) _mm512_mask_storeu_pd(out + static_cast<size_t>(r) * ldo + 8 * v, mask[v], acc[r][v]);
}

// The sum of a vector's 8 entries. The masked forms with all lanes set: GCC 12's unmasked shuffles (and
// _mm512_reduce_add_pd) start from an undefined vector and trip -Wmaybe-uninitialized.
__attribute__((target(PINNTK_TARGET_AVX512))) PINNTK_INLINE double sum8(__m512d v) {
  v = _mm512_add_pd(v, _mm512_mask_shuffle_f64x2(v, 0xFF, v, v, 0x4E));  // + the other 256-bit half
  v = _mm512_add_pd(v, _mm512_mask_shuffle_f64x2(v, 0xFF, v, v, 0xB1));  // + the neighbouring 128-bit lane
  v = _mm512_add_pd(v, _mm512_mask_permute_pd(v, 0xFF, v, 0x55));        // + the other entry of the lane
  return _mm512_cvtsd_f64(v);
}

// The AVX-512 gram product: RI x RJ entries of out at a time, each a vector of partial sums over the points
// (registers: RI * RJ accumulators, RI rows of A and one of H), added up at the end.
template <int RI, int RJ>
__attribute__((target(PINNTK_TARGET_AVX512))) PINNTK_INLINE void gram_block(int n, const double* a, int lda,
                                                                            const double* h, int ldh, double* out,
                                                                            int ldo) {
  __m512d acc[RI][RJ];
#pragma GCC unroll 8
  for (int i = 0; i < RI; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < RJ; ++j) acc[i][j] = _mm512_setzero_pd();
  for (int q = 0; q < n; q += 8) {
    const __mmask8 mask = n - q >= 8 ? 0xFF : static_cast<__mmask8>((1u << (n - q)) - 1u);
    __m512d av[RI];
#pragma GCC unroll 8
    for (int i = 0; i < RI; ++i) av[i] = _mm512_maskz_loadu_pd(mask, a + static_cast<size_t>(i) * lda + q);
#pragma GCC unroll 8
    for (int j = 0; j < RJ; ++j) {
      const __m512d hv = _mm512_maskz_loadu_pd(mask, h + static_cast<size_t>(j) * ldh + q);
#pragma GCC unroll 8
      for (int i = 0; i < RI; ++i) acc[i][j] = _mm512_fmadd_pd(av[i], hv, acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RI; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < RJ; ++j) out[i * ldo + j] += sum8(acc[i][j]);
}

// The k columns of out in blocks of RJ, the rest in smaller ones.
template <int RI, int RJ>
__attribute__((target(PINNTK_TARGET_AVX512))) void gram_cols(int k, int n, const double* a, int lda, const double* h,
                                                             int ldh, double* out, int ldo) {
  int j = 0;
  for (; j + RJ <= k; j += RJ) gram_block<RI, RJ>(n, a, lda, h + static_cast<size_t>(j) * ldh, ldh, out + j, ldo);
  if constexpr (RJ > 1)
    if (j < k) gram_cols<RI, RJ - 1>(k - j, n, a, lda, h + static_cast<size_t>(j) * ldh, ldh, out + j, ldo);
}

// The m rows of out in blocks of RI, the rest in smaller ones.
template <int RI>
__attribute__((target(PINNTK_TARGET_AVX512))) void gram_rows(int m, int k, int n, const double* a, int lda,
                                                             const double* h, int ldh, double* out, int ldo) {
  int i = 0;
  for (; i + RI <= m; i += RI)
    gram_cols<RI, 6>(k, n, a + static_cast<size_t>(i) * lda, lda, h, ldh, out + i * ldo, ldo);
  if constexpr (RI > 1)
    if (i < m) gram_rows<RI - 1>(m - i, k, n, a + static_cast<size_t>(i) * lda, lda, h, ldh, out + i * ldo, ldo);
}

// The m rows of a 24-column strip of out in blocks of R, the rest in smaller ones.
template <int R>
__attribute__((target(PINNTK_TARGET_AVX512))) void panel_rows(int m, int k, const double* w, int wsi, int wsk,
                                                              const double* x, int ldx, double* out, int ldo,
                                                              const __mmask8* mask) {
  int i = 0;
  for (; i + R <= m; i += R)
    panel_block<R>(k, w + i * wsi, wsi, wsk, x, ldx, out + static_cast<size_t>(i) * ldo, ldo, mask);
  if constexpr (R > 1)
    if (i < m)
      panel_rows<R - 1>(m - i, k, w + i * wsi, wsi, wsk, x, ldx, out + static_cast<size_t>(i) * ldo, ldo, mask);
}

struct Avx512 {
  __attribute__((target(PINNTK_TARGET_AVX512))) static void gram(int m, int k, int n, const double* a, int lda,
                                                                 const double* h, int ldh, double* out, int ldo) {
    gram_rows<4>(m, k, n, a, lda, h, ldh, out, ldo);
  }

  __attribute__((target(PINNTK_TARGET_AVX512))) static void panel(int m, int n, int k, const double* w, int wsi,
                                                                  int wsk, const double* x, int ldx, double* out,
                                                                  int ldo) {
    for (int q = 0; q < n; q += 24) {
      __mmask8 mask[3];
      for (int v = 0; v < 3; ++v) {
        const int left = n - q - 8 * v;
        mask[v] = left >= 8 ? 0xFF : left <= 0 ? 0 : static_cast<__mmask8>((1u << left) - 1u);
      }
      panel_rows<8>(m, k, w, wsi, wsk, x + q, ldx, out + q, ldo, mask);
    }
  }

  __attribute__((target(PINNTK_TARGET_AVX512))) static void tanh_shift(const double* z, double b, double* t, int n) {
#if defined(PINNTK_HAVE_LIBMVEC_TANH)
    const __m512d vb = _mm512_set1_pd(b);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(t + i, _ZGVeN8v_tanh(_mm512_add_pd(_mm512_loadu_pd(z + i), vb)));
    if (i < n) {
      const __mmask8 mask = static_cast<__mmask8>((1u << (n - i)) - 1u);
      const __m512d v = _mm512_add_pd(_mm512_maskz_loadu_pd(mask, z + i), vb);
      _mm512_mask_storeu_pd(t + i, mask, _ZGVeN8v_tanh(v));
    }
#else
    Generic::tanh_shift(z, b, t, n);
#endif
  }
};
#endif

// The channels a row of derivative order O carries with M directions: h; h'_k if O >= 1; h''_k if O = 2.
constexpr int channel_count(int M, int O) { return 1 + (O >= 1 ? M : 0) + (O >= 2 ? M : 0); }

// One chunk of B rows that all need the same derivative order. Buffers (row-major, row stride C*B, channel c of a
// row at c*B): H[l], Z[l] (l = 1 .. nl-1; Z[1] only with directions) the layers' h and z channels, A and HB the
// adjoints (widest layer x C*B), U the output channels, S the output adjoints, X the inputs by axis (X[j*B + p]), V the
// rows' own directions when they have them (V[(k*M + j)*B + p], component j of direction k; Z[1] then holds layer 1's
// z'_k).
struct ChunkArgs {
  const Mlp* net;
  const int* woff;  // woff[l]: offset of W^l in theta
  const PointSet* pts;
  const int* idx;  // the chunk's rows
  int B;
  double* const* H;
  double* const* Z;
  double *A, *HB, *U, *S, *X, *V;
  double* r;     // the rows' residuals (the gradient pass) or entries of J u (the tangent pass)
  double* grad;  // the gradient pass adds its gradient here
  // The gradient pass seeds the output adjoints with seed[k] instead of w_k r_k when seed is set: it adds J^T seed
  // to grad (DESIGN.md section 8). The tangent pass: the parameter direction u, and a third block like A.
  const double* seed = nullptr;
  const double* dtheta = nullptr;
  double* Td = nullptr;
  // The sample Gram's pass (batched_sample_gram): every weight layer's adjoint channels and input channels of each
  // row, written instead of summed into grad (unused then). cap_a[l] holds row k's channel c at row k cap_c + c,
  // d_l numbers (the adjoints of z^l, z'^l, z''^l); cap_h[l] the same rows, d_{l-1} numbers (h^{l-1} and its
  // derivatives; layer 1: x, the directions, 0). Channels a chunk does not carry stay as they were (zero).
  double* const* cap_a = nullptr;
  double* const* cap_h = nullptr;
  int cap_c = 0;
  // The evaluation pass (batched_evaluate): row k's u into eval_u[k], its M first and M second derivatives into
  // eval_du and eval_d2u at k M; nothing else (the rows need all channels).
  double *eval_u = nullptr, *eval_du = nullptr, *eval_d2u = nullptr;
  // The Jacobian pass (batched_residuals_jacobian, seeded with 1 for every row): each weight layer's block of row k
  // of J (jac + k jac_ld) written instead of summed into grad (unused then).
  double* jac = nullptr;
  size_t jac_ld = 0;
};

// Channels 0 .. C-1 of the chunk's rows of a block X (w rows of C*B numbers: channel c of point p at c*B + p) into
// the rows idx[p] cap_c + c of the capture matrix cap (w numbers a row).
PINNTK_INLINE void capture_channels(const ChunkArgs& a, const double* X, int w, int C, double* cap) {
  const int B = a.B;
  const size_t CB = static_cast<size_t>(C) * B;
  for (int p = 0; p < B; ++p)
    for (int c = 0; c < C; ++c) {
      double* dst = cap + (static_cast<size_t>(a.idx[p]) * a.cap_c + c) * w;
      const double* src = X + static_cast<size_t>(c) * B + p;
      for (int i = 0; i < w; ++i) dst[i] = src[i * CB];
    }
}

// One weight layer's block of a row of J (row-major dout x din, then the dout biases) from its C channels: the
// adjoints ta (channel c at c dout) and the inputs th (channel c at c din), sum_c a_c h_c^T and the biases a_0. Each
// entry is stored once (the row is usually not in the cache: a store per channel cost twice the time).
template <int C>
PINNTK_INLINE void jacobian_outer(const double* ta, int dout, const double* th, int din, double* row) {
  for (int i = 0; i < dout; ++i) {
    double* ri = row + static_cast<size_t>(i) * din;
    double ac[C];
    for (int c = 0; c < C; ++c) ac[c] = ta[c * dout + i];
#pragma omp simd
    for (int j = 0; j < din; ++j) {
      double v = ac[0] * th[j];
      for (int c = 1; c < C; ++c) v += ac[c] * th[c * din + j];
      ri[j] = v;
    }
  }
  for (int i = 0; i < dout; ++i) row[static_cast<size_t>(dout) * din + i] = ta[i];
}

// The Jacobian pass's block of weight layer l (W^l at offset off) for each of the chunk's rows: the adjoints are the
// columns c B + p of Ad (dout rows of C B numbers), the inputs those of Hd (din rows), gathered row by row into t
// (C (dout + din) numbers) and multiplied out by jacobian_outer. (Gathering 8 rows at a time, a cache line of each
// channel row, was measured no faster: the stores into J bound the pass.)
template <int C>
PINNTK_INLINE void jacobian_block(const ChunkArgs& a, const double* Ad, int dout, const double* Hd, int din, int off,
                                  double* t) {
  const int B = a.B;
  const size_t CB = static_cast<size_t>(C) * B;
  double *ta = t, *th = t + static_cast<size_t>(C) * dout;
  for (int p = 0; p < B; ++p) {
    for (int c = 0; c < C; ++c) {
      const double* ac = Ad + static_cast<size_t>(c) * B + p;
      const double* hc = Hd + static_cast<size_t>(c) * B + p;
      for (int i = 0; i < dout; ++i) ta[c * dout + i] = ac[i * CB];
      for (int j = 0; j < din; ++j) th[c * din + j] = hc[j * CB];
    }
    jacobian_outer<C>(ta, dout, th, din, a.jac + static_cast<size_t>(a.idx[p]) * a.jac_ld + off);
  }
}

// Through the tanh of one neuron (a row of the layer), direction by direction as mlp_reverse_point_nd: from the
// adjoints sc * hb of (h, h'_k, h''_k) to out = those of (z, z'_k, z''_k). The directions share t, so z's adjoint
// sums theirs, the first one carrying h's adjoint. Layer 1 (First) has z'_k = w1[k] (input jet (x, e_k, 0)), or
// with the rows' own directions (Dir) z'_k = W^1 v_k from z, and z''_k = 0; hb and out may be the same row.
template <int M, int O, bool First, bool Dir = false>
PINNTK_INLINE void tanh_adjoint_row(const double* h, const double* z, const double* w1, double sc, const double* hb,
                                    double* out, int B) {
#pragma omp simd
  for (int p = 0; p < B; ++p) {
    const double t = h[p];
    if constexpr (O == 0) {
      out[p] = sc * hb[p] * (1.0 - t * t);  // tanh_jet_adjoint with hb' = hb'' = 0
    } else {
      double zb = 0.0;
      for (int k = 0; k < M; ++k) {
        const double zp = First && !Dir ? w1[k] : z[(1 + k) * B + p];
        const double zpp = (First || O < 2) ? 0.0 : z[(1 + M + k) * B + p];
        const double hb2 = O == 2 ? sc * hb[(1 + M + k) * B + p] : 0.0;
        double zb0, zb1, zb2;
        tanh_jet_adjoint(t, zp, zpp, k == 0 ? sc * hb[p] : 0.0, sc * hb[(1 + k) * B + p], hb2, zb0, zb1, zb2);
        zb = k == 0 ? zb0 : zb + zb0;
        out[(1 + k) * B + p] = zb1;
        if constexpr (O == 2) out[(1 + M + k) * B + p] = zb2;
      }
      out[p] = zb;
    }
  }
}

PINNTK_INLINE double row_sum(const double* v, int B) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int p = 0; p < B; ++p) s += v[p];
  return s;
}

// The chunk's forward pass through the hidden layers: the inputs gathered into X (and the rows' own directions into
// V), every hidden layer's channels into H[l] and, from layer 2 (layer 1 with Dir), its products into Z[l]. M: the
// directions (the coordinate axes, DESIGN.md section 7, or with Dir each row's own, pts.dirs), O: the derivative
// order the rows need (channels h; h'_k if O >= 1; h''_k if O = 2).
template <int M, int O, class Isa, bool Dir = false>
PINNTK_INLINE void chunk_forward(const ChunkArgs& a) {
  constexpr int C = channel_count(M, O);
  const int* d = a.net->layers.data();
  const int nl = static_cast<int>(a.net->layers.size()) - 1;  // weight layers, >= 2
  const int B = a.B, CB = C * B;
  const double* theta = a.net->theta.data();
  const PointSet& pts = *a.pts;
  const int* idx = a.idx;
  double* X = a.X;
  for (int p = 0; p < B; ++p)
    for (int j = 0; j < M; ++j) X[j * B + p] = pts.x[static_cast<size_t>(idx[p]) * M + j];
  double* V = a.V;
  if constexpr (Dir)
    for (int p = 0; p < B; ++p)
      for (int q = 0; q < M * M; ++q) V[q * B + p] = pts.dirs[static_cast<size_t>(idx[p]) * M * M + q];

  // Forward, layer 1: z = W x + b, z'_k = W_ik (with Dir z'_k = sum_j W_ij v_kj, kept in Z[1]), z''_k = 0
  // (first_layer_jet).
  const double* W1 = theta + a.woff[1];
  {
    const int d1 = d[1];
    const double* b1 = W1 + d1 * M;
    for (int i = 0; i < d1; ++i) {
      double* h = a.H[1] + static_cast<size_t>(i) * CB;
      const double* w = W1 + i * M;
#pragma omp simd
      for (int p = 0; p < B; ++p) {
        double wx = w[0] * X[p];
        for (int j = 1; j < M; ++j) wx += w[j] * X[j * B + p];
        h[p] = wx;
      }
      Isa::tanh_shift(h, b1[i], h, B);
      if constexpr (O >= 1 && Dir) {
        double* z1 = a.Z[1] + static_cast<size_t>(i) * CB;
        for (int k = 0; k < M; ++k) {
          const double* vk = V + k * M * B;
#pragma omp simd
          for (int p = 0; p < B; ++p) {
            double zp = w[0] * vk[p];
            for (int j = 1; j < M; ++j) zp += w[j] * vk[j * B + p];
            z1[(1 + k) * B + p] = zp;
            double h1, h2;
            tanh_jet(h[p], zp, 0.0, h1, h2);
            h[(1 + k) * B + p] = h1;
            if constexpr (O == 2) h[(1 + M + k) * B + p] = h2;
          }
        }
      } else if constexpr (O >= 1) {
        for (int k = 0; k < M; ++k) {
          const double wk = w[k];
#pragma omp simd
          for (int p = 0; p < B; ++p) {
            double h1, h2;
            tanh_jet(h[p], wk, 0.0, h1, h2);
            h[(1 + k) * B + p] = h1;
            if constexpr (O == 2) h[(1 + M + k) * B + p] = h2;
          }
        }
      }
    }
  }
  // Hidden layers: all channels of z = W [h; h'_k; h''_k] for all points in one product, then the tanh jets.
  for (int l = 2; l < nl; ++l) {
    const int din = d[l - 1], dout = d[l];
    const double* W = theta + a.woff[l];
    const double* b = W + dout * din;
    double *Z = a.Z[l], *H = a.H[l];
    Isa::panel(dout, CB, din, W, din, 1, a.H[l - 1], CB, Z, CB);
    for (int i = 0; i < dout; ++i) {
      const double* z = Z + static_cast<size_t>(i) * CB;
      double* h = H + static_cast<size_t>(i) * CB;
      Isa::tanh_shift(z, b[i], h, B);
      if constexpr (O >= 1) {
        for (int k = 0; k < M; ++k) {
#pragma omp simd
          for (int p = 0; p < B; ++p) {
            const double zpp = O == 2 ? z[(1 + M + k) * B + p] : 0.0;
            double h1, h2;
            tanh_jet(h[p], z[(1 + k) * B + p], zpp, h1, h2);
            h[(1 + k) * B + p] = h1;
            if constexpr (O == 2) h[(1 + M + k) * B + p] = h2;
          }
        }
      }
    }
  }
}

// The chunk's forward pass, residuals, loss and reverse pass (gradient added to a.grad; J^T a.seed with a seed).
template <int M, int O, class Isa, bool Dir = false>
PINNTK_INLINE double chunk_pass(const ChunkArgs& a) {
  constexpr int C = channel_count(M, O);
  const int* d = a.net->layers.data();
  const int nl = static_cast<int>(a.net->layers.size()) - 1;  // weight layers, >= 2
  const int B = a.B, CB = C * B;
  const double* theta = a.net->theta.data();
  const PointSet& pts = *a.pts;
  const int* idx = a.idx;
  const double* X = a.X;
  [[maybe_unused]] const double* V = a.V;
  const double* W1 = theta + a.woff[1];
  chunk_forward<M, O, Isa, Dir>(a);
  // Output layer: [u; D_k u; D_k^2 u] = w^T [h; h'_k; h''_k] + [b; 0; 0].
  const int dl = d[nl - 1];
  const double* Wo = theta + a.woff[nl];
  const double* HL = a.H[nl - 1];
  double *U = a.U, *S = a.S;
  cblas_dgemv(CblasRowMajor, CblasTrans, dl, CB, 1.0, HL, CB, Wo, 1, 0.0, U, 1);
  if (a.eval_u != nullptr) {  // the evaluation pass
    for (int p = 0; p < B; ++p) {
      const size_t k = static_cast<size_t>(idx[p]);
      a.eval_u[k] = U[p] + Wo[dl];
      for (int i = 0; i < M; ++i) {
        a.eval_du[k * M + i] = O >= 1 ? U[(1 + i) * B + p] : 0.0;
        a.eval_d2u[k * M + i] = O == 2 ? U[(1 + M + i) * B + p] : 0.0;
      }
    }
    return 0.0;
  }
  // Residuals and the output adjoints S seeded with w r (gamma, beta_k, alpha_k), DESIGN.md sections 2 and 7.
  double loss = 0.0;
  for (int p = 0; p < B; ++p) {
    const int k = idx[p];
    double du[M], d2u[M];
    for (int i = 0; i < M; ++i) {
      du[i] = O >= 1 ? U[(1 + i) * B + p] : 0.0;
      d2u[i] = O == 2 ? U[(1 + M + i) * B + p] : 0.0;
    }
    const double* al = pts.alpha.data() + static_cast<size_t>(k) * M;
    const double* be = pts.beta.data() + static_cast<size_t>(k) * M;
    const double rk = row_residual_nd(M, al, be, pts.gamma[k], pts.f[k], U[p] + Wo[dl], du, d2u);
    a.r[k] = rk;
    loss += row_loss(pts.w[k], rk);
    const double c = a.seed != nullptr ? a.seed[k] : pts.w[k] * rk;
    S[p] = c * pts.gamma[k];
    for (int i = 0; i < M; ++i) {
      if constexpr (O >= 1) S[(1 + i) * B + p] = c * be[i];
      if constexpr (O == 2) S[(1 + M + i) * B + p] = c * al[i];
    }
  }
  const bool capture = a.cap_a != nullptr, jac = a.jac != nullptr;
  if (a.grad == nullptr && !capture && !jac) return loss;  // the loss pass
  // The Jacobian pass's gathered channels of a row: C (widest layer + widest input) numbers.
  std::vector<double> jt;
  if (jac) {
    int w = 1;
    for (int l = 0; l <= nl; ++l) w = std::max(w, d[l]);
    jt.resize(2 * static_cast<size_t>(C) * w);
  }
  // Reverse, output layer: dRho/dw = sum over points and channels of S_c h_c, then through the last tanh layer with
  // h's adjoints w_j S.
  {
    if (capture) {
      capture_channels(a, S, 1, C, a.cap_a[nl]);
      capture_channels(a, HL, dl, C, a.cap_h[nl]);
    } else if (jac) {
      jacobian_block<C>(a, S, 1, HL, dl, a.woff[nl], jt.data());
    } else {
      double* gWo = a.grad + a.woff[nl];
      gWo[dl] += row_sum(S, B);
      cblas_dgemv(CblasRowMajor, CblasNoTrans, dl, CB, 1.0, HL, CB, S, 1, 1.0, gWo, 1);
    }
    for (int j = 0; j < dl; ++j) {
      const size_t o = static_cast<size_t>(j) * CB;
      if (nl - 1 == 1)
        tanh_adjoint_row<M, O, true, Dir>(HL + o, Dir ? a.Z[1] + o : nullptr, W1 + j * M, Wo[j], S, a.A + o, B);
      else
        tanh_adjoint_row<M, O, false>(HL + o, a.Z[nl - 1] + o, nullptr, Wo[j], S, a.A + o, B);
    }
  }
  // Hidden layers l: the parameters from the adjoints A (dout x CB), then the adjoints of layer l-1.
  double *A = a.A, *HB = a.HB;
  for (int l = nl - 1; l >= 2; --l) {
    const int din = d[l - 1], dout = d[l];
    const double* W = theta + a.woff[l];
    const double* Hp = a.H[l - 1];
    if (capture) {
      capture_channels(a, A, dout, C, a.cap_a[l]);
      capture_channels(a, Hp, din, C, a.cap_h[l]);
    } else if (jac) {
      jacobian_block<C>(a, A, dout, Hp, din, a.woff[l], jt.data());
    } else {
      double* gW = a.grad + a.woff[l];
      double* gb = gW + dout * din;
      for (int i = 0; i < dout; ++i) gb[i] += row_sum(A + static_cast<size_t>(i) * CB, B);
      // dRho/dW = sum over points and channels of A_c h_c^T: one product over the CB columns. The contractions are
      // matrix products here, not the per-point weight_adjoint and jet_dot of common/mlp_math.hpp: sharing those
      // would give up the blocked products (and their summation order).
      Isa::gram(dout, din, CB, A, CB, Hp, CB, gW, din);
    }
    Isa::panel(din, CB, dout, W, 1, din, A, CB, HB, CB);
    for (int j = 0; j < din; ++j) {
      const size_t o = static_cast<size_t>(j) * CB;
      if (l - 1 == 1)
        tanh_adjoint_row<M, O, true, Dir>(Hp + o, Dir ? a.Z[1] + o : nullptr, W1 + j * M, 1.0, HB + o, HB + o, B);
      else
        tanh_adjoint_row<M, O, false>(Hp + o, a.Z[l - 1] + o, nullptr, 1.0, HB + o, HB + o, B);
    }
    std::swap(A, HB);
  }
  // Layer 1: dRho/db = zb, dRho/dW_ij = zb x_j + zb'_j (the direction e_j's jet of layer 0 is (x, e_j, 0)); with Dir
  // dRho/dW_ij = zb x_j + sum_k zb'_k v_kj.
  if (capture) {
    // Layer 1's inputs by channel: x; along direction k the axis e_k (with Dir the row's v_k); 0 for z''_k.
    capture_channels(a, A, d[1], C, a.cap_a[1]);
    for (int p = 0; p < B; ++p) {
      double* h = a.cap_h[1] + static_cast<size_t>(idx[p]) * a.cap_c * M;
      for (int j = 0; j < M; ++j) h[j] = X[j * B + p];
      if constexpr (O >= 1)
        for (int k = 0; k < M; ++k)
          for (int j = 0; j < M; ++j) h[(1 + k) * M + j] = Dir ? V[(k * M + j) * B + p] : (j == k ? 1.0 : 0.0);
    }
  } else if (jac) {
    // Layer 1's inputs by channel as in the capture above; the channels of z''_k have input 0 and add nothing.
    constexpr int C1 = std::min(C, 1 + M);
    const int d1 = d[1];
    const size_t CB1 = static_cast<size_t>(C) * B;
    double *ta = jt.data(), *th = ta + static_cast<size_t>(C) * d1;
    for (int p = 0; p < B; ++p) {
      for (int c = 0; c < C1; ++c)
        for (int i = 0; i < d1; ++i) ta[c * d1 + i] = A[i * CB1 + static_cast<size_t>(c) * B + p];
      for (int j = 0; j < M; ++j) th[j] = X[j * B + p];
      if constexpr (O >= 1)
        for (int k = 0; k < M; ++k)
          for (int j = 0; j < M; ++j) th[(1 + k) * M + j] = Dir ? V[(k * M + j) * B + p] : (j == k ? 1.0 : 0.0);
      jacobian_outer<C1>(ta, d1, th, M, a.jac + static_cast<size_t>(idx[p]) * a.jac_ld + a.woff[1]);
    }
  } else {
    const int d1 = d[1];
    double* gW = a.grad + a.woff[1];
    double* gb = gW + d1 * M;
    for (int i = 0; i < d1; ++i) {
      const double* ai = A + static_cast<size_t>(i) * CB;
      gb[i] += row_sum(ai, B);
      for (int j = 0; j < M; ++j) {
        double s = 0.0;
        if constexpr (Dir && O >= 1) {
#pragma omp simd reduction(+ : s)
          for (int p = 0; p < B; ++p) {
            double t = ai[p] * X[j * B + p];
            for (int k = 0; k < M; ++k) t += ai[(1 + k) * B + p] * V[(k * M + j) * B + p];
            s += t;
          }
        } else {
#pragma omp simd reduction(+ : s)
          for (int p = 0; p < B; ++p)
            s += first_layer_weight_adjoint(ai[p], O >= 1 ? ai[(1 + j) * B + p] : 0.0, X[j * B + p]);
        }
        gW[i * M + j] += s;
      }
    }
  }
  return loss;
}

// J u of the chunk's rows into a.r (DESIGN.md section 8): the forward pass, then the tangents along u = a.dtheta layer
// by layer, dZ = dW h + W dh (+ db on channel 0) for every channel in two products, through each tanh neuron by
// tanh_jet_tangent, and the rows' linear part of the output's tangents (row_residual_nd with f = 0). The tangents
// of layer l-1 and l alternate between A and HB; Td holds W dh.
template <int M, int O, class Isa, bool Dir = false>
PINNTK_INLINE double chunk_tangent(const ChunkArgs& a) {
  constexpr int C = channel_count(M, O);
  const int* d = a.net->layers.data();
  const int nl = static_cast<int>(a.net->layers.size()) - 1;  // weight layers, >= 2
  const int B = a.B, CB = C * B;
  const double* theta = a.net->theta.data();
  const double* dtheta = a.dtheta;
  const PointSet& pts = *a.pts;
  const int* idx = a.idx;
  const double* X = a.X;
  [[maybe_unused]] const double* V = a.V;
  chunk_forward<M, O, Isa, Dir>(a);
  double *Hd = a.A, *G = a.HB;
  // Layer 1: dz = dW x + db, dz'_k = dW_ik (with Dir dW v_k), dz''_k = 0; z'_k = W_ik (with Dir Z[1]), z''_k = 0.
  {
    const int d1 = d[1];
    const double* W1 = theta + a.woff[1];
    const double* dW1 = dtheta + a.woff[1];
    const double* db1 = dW1 + d1 * M;
    for (int i = 0; i < d1; ++i) {
      const double* t = a.H[1] + static_cast<size_t>(i) * CB;
      [[maybe_unused]] const double* z1 = Dir ? a.Z[1] + static_cast<size_t>(i) * CB : nullptr;
      double* hd = Hd + static_cast<size_t>(i) * CB;
      const double* w = W1 + i * M;
      const double* dw = dW1 + i * M;
#pragma omp simd
      for (int p = 0; p < B; ++p) {
        double zd = db1[i];
        for (int j = 0; j < M; ++j) zd += dw[j] * X[j * B + p];
        double tdot = 0.0, h1d = 0.0, h2d = 0.0;
        if constexpr (O == 0) {
          tanh_jet_tangent(t[p], 0.0, 0.0, zd, 0.0, 0.0, tdot, h1d, h2d);
        } else {
          for (int k = 0; k < M; ++k) {
            double zp, zpd;
            if constexpr (Dir) {
              zp = z1[(1 + k) * B + p];
              zpd = 0.0;
              for (int j = 0; j < M; ++j) zpd += dw[j] * V[(k * M + j) * B + p];
            } else {
              zp = w[k];
              zpd = dw[k];
            }
            tanh_jet_tangent(t[p], zp, 0.0, zd, zpd, 0.0, tdot, h1d, h2d);
            hd[(1 + k) * B + p] = h1d;
            if constexpr (O == 2) hd[(1 + M + k) * B + p] = h2d;
          }
        }
        hd[p] = tdot;
      }
    }
  }
  // Hidden layers: G = dW h, Td = W dh over every channel, then through the tanh jets (G becomes layer l's dh).
  for (int l = 2; l < nl; ++l) {
    const int din = d[l - 1], dout = d[l];
    const double* W = theta + a.woff[l];
    const double* dW = dtheta + a.woff[l];
    const double* db = dW + dout * din;
    Isa::panel(dout, CB, din, dW, din, 1, a.H[l - 1], CB, G, CB);
    Isa::panel(dout, CB, din, W, din, 1, Hd, CB, a.Td, CB);
    for (int i = 0; i < dout; ++i) {
      const size_t o = static_cast<size_t>(i) * CB;
      const double* t = a.H[l] + o;
      [[maybe_unused]] const double* z = a.Z[l] + o;
      const double* tw = a.Td + o;
      double* g = G + o;
#pragma omp simd
      for (int p = 0; p < B; ++p) {
        const double zd = g[p] + tw[p] + db[i];
        double tdot = 0.0, h1d = 0.0, h2d = 0.0;
        if constexpr (O == 0) {
          tanh_jet_tangent(t[p], 0.0, 0.0, zd, 0.0, 0.0, tdot, h1d, h2d);
        } else {
          for (int k = 0; k < M; ++k) {
            const int c1 = (1 + k) * B + p, c2 = (1 + M + k) * B + p;
            const double zpp = O == 2 ? z[c2] : 0.0, zppd = O == 2 ? g[c2] + tw[c2] : 0.0;
            tanh_jet_tangent(t[p], z[c1], zpp, zd, g[c1] + tw[c1], zppd, tdot, h1d, h2d);
            g[c1] = h1d;
            if constexpr (O == 2) g[c2] = h2d;
          }
        }
        g[p] = tdot;
      }
    }
    std::swap(Hd, G);
  }
  // Output layer: the tangents of [u; D_k u; D_k^2 u] = dw^T [h; h'_k; h''_k] + w^T [dh; dh'_k; dh''_k] + [db; 0; 0].
  const int dl = d[nl - 1];
  const double* Wo = theta + a.woff[nl];
  const double* dWo = dtheta + a.woff[nl];
  double* U = a.U;
  cblas_dgemv(CblasRowMajor, CblasTrans, dl, CB, 1.0, a.H[nl - 1], CB, dWo, 1, 0.0, U, 1);
  cblas_dgemv(CblasRowMajor, CblasTrans, dl, CB, 1.0, Hd, CB, Wo, 1, 1.0, U, 1);
  for (int p = 0; p < B; ++p) {
    const int k = idx[p];
    double du[M], d2u[M];
    for (int i = 0; i < M; ++i) {
      du[i] = O >= 1 ? U[(1 + i) * B + p] : 0.0;
      d2u[i] = O == 2 ? U[(1 + M + i) * B + p] : 0.0;
    }
    const size_t o = static_cast<size_t>(k) * M;
    a.r[k] = row_residual_nd(M, pts.alpha.data() + o, pts.beta.data() + o, pts.gamma[k], 0.0, U[p] + dWo[dl], du, d2u);
  }
  return 0.0;
}

using ChunkFn = double (*)(const ChunkArgs&);

// The passes over a chunk: the gradient (or J^T y), the tangent (J u) and the loss alone (the gradient pass's
// forward half: chunk_pass stops after the residuals when it has no gradient to add to and nothing to capture).
enum class Pass { kGradient, kTangent, kLoss };

template <Pass K, int M, int O, class Isa, bool Dir>
PINNTK_INLINE double chunk_run(const ChunkArgs& a) {
  if constexpr (K != Pass::kTangent)
    return chunk_pass<M, O, Isa, Dir>(a);
  else
    return chunk_tangent<M, O, Isa, Dir>(a);
}

template <Pass K, int M, int O, bool Dir>
double chunk_generic(const ChunkArgs& a) {
  return chunk_run<K, M, O, Generic, Dir>(a);
}
#if PINNTK_X86
template <Pass K, int M, int O, bool Dir>
__attribute__((target(PINNTK_TARGET_AVX2))) double chunk_avx2(const ChunkArgs& a) {
  return chunk_run<K, M, O, Avx2, Dir>(a);
}
template <Pass K, int M, int O, bool Dir>
__attribute__((target(PINNTK_TARGET_AVX512))) double chunk_avx512(const ChunkArgs& a) {
  return chunk_run<K, M, O, Avx512, Dir>(a);
}
#endif

// Rows of order 0 (h alone) never see their directions: they take the axis code.
template <Pass K, int M, bool Dir>
ChunkFn chunk_fn_m(BatchedIsa isa, int order) {
#if PINNTK_X86
  if (isa == BatchedIsa::kAvx512)
    return order == 0   ? &chunk_avx512<K, M, 0, false>
           : order == 1 ? &chunk_avx512<K, M, 1, Dir>
                        : &chunk_avx512<K, M, 2, Dir>;
  if (isa == BatchedIsa::kAvx2)
    return order == 0   ? &chunk_avx2<K, M, 0, false>
           : order == 1 ? &chunk_avx2<K, M, 1, Dir>
                        : &chunk_avx2<K, M, 2, Dir>;
#endif
  (void)isa;
  return order == 0   ? &chunk_generic<K, M, 0, false>
         : order == 1 ? &chunk_generic<K, M, 1, Dir>
                      : &chunk_generic<K, M, 2, Dir>;
}

// dir: the rows carry their own directions (pts.dirs; dimension 2 or 3 only).
template <Pass K>
ChunkFn chunk_fn(BatchedIsa isa, int m, int order, bool dir) {
  if (m == 1) return chunk_fn_m<K, 1, false>(isa, order);
  if (m == 2) return dir ? chunk_fn_m<K, 2, true>(isa, order) : chunk_fn_m<K, 2, false>(isa, order);
  return dir ? chunk_fn_m<K, 3, true>(isa, order) : chunk_fn_m<K, 3, false>(isa, order);
}

// The derivative order row k needs: 2 if some alpha != 0, else 1 if some beta != 0, else 0.
int row_order(const PointSet& pts, int k, int m) {
  int o = 0;
  for (int i = 0; i < m; ++i) {
    if (pts.alpha[static_cast<size_t>(k) * m + i] != 0.0) return 2;
    if (pts.beta[static_cast<size_t>(k) * m + i] != 0.0) o = 1;
  }
  return o;
}

}  // namespace

bool batched_isa_available(BatchedIsa isa) {
  switch (isa) {
    case BatchedIsa::kAuto:
    case BatchedIsa::kGeneric:
      return true;
#if PINNTK_X86
    case BatchedIsa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case BatchedIsa::kAvx512:
      return batched_isa_available(BatchedIsa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw");
#endif
    default:
      return false;
  }
}

BatchedIsa batched_isa_auto() {
  static const BatchedIsa best = batched_isa_available(BatchedIsa::kAvx512) ? BatchedIsa::kAvx512
                                 : batched_isa_available(BatchedIsa::kAvx2) ? BatchedIsa::kAvx2
                                                                            : BatchedIsa::kGeneric;
  return best;
}

namespace {

// The adjoint-sized blocks of a thread's buffers: A and HB, and Td for the tangent pass.
constexpr size_t adjoint_blocks(bool tangent) { return tangent ? 3 : 2; }

// Numbers of one thread's chunk buffers for at most B rows of at most C channels (layout in run_chunks): each hidden
// layer's H and Z, the adjoint blocks A and HB (and Td for the tangents), U, S, the inputs X and the directions V.
size_t chunk_buffer_numbers(const std::vector<int>& d, int m, bool dir, int C, int B, bool tangent) {
  const size_t CB = static_cast<size_t>(C) * B;
  const int nl = static_cast<int>(d.size()) - 1;
  size_t maxw = 1, per_layer = 0;
  for (int l = 1; l < nl; ++l) {
    maxw = std::max(maxw, static_cast<size_t>(d[l]));
    per_layer += 2 * static_cast<size_t>(d[l]) * CB;
  }
  return per_layer + adjoint_blocks(tangent) * maxw * CB + 2 * CB + static_cast<size_t>(m) * B +
         (dir ? static_cast<size_t>(m) * m * B : 0);
}

// The number of threads that share the rows: at most the OpenMP count, and 8 rows a thread or more.
int row_threads(int max_threads, int n) { return std::max(1, std::min(max_threads, n / 8)); }

// The rows in chunks of one derivative order over the threads (each its contiguous share of about equal weight, a
// row weighing its channels) for either pass. The gradient pass: residuals into r, the loss returned, the gradient
// (J^T seed with a seed) into grad, the threads' partial sums added in thread order. The loss pass: the residuals
// and the loss alone. The tangent pass: J dtheta into r; grad unused.
template <Pass K>
double run_chunks(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad, BatchedWorkspace& ws,
                  int chunk, const double* seed, const double* dtheta, const char* who, double* const* cap_a = nullptr,
                  double* const* cap_h = nullptr, int cap_c = 0, double* const* eval = nullptr, double* jac = nullptr) {
  const int m = pts.dim;
  const std::string name(who);
  if (m < 1 || m > 3) throw std::invalid_argument(name + ": the rows' dimension must be 1, 2 or 3");
  const bool dir = pts.has_directions();
  if (dir && (m < 2 || pts.dirs.size() != static_cast<size_t>(pts.size()) * m * m))
    throw std::invalid_argument(name + ": rows with directions need dimension 2 or 3 and dim^2 numbers per row");
  const std::vector<int>& d = net.layers;
  const int nl = static_cast<int>(d.size()) - 1;
  if (nl < 2 || d[0] != m || d[nl] != 1)
    throw std::invalid_argument(name + ": the network must read n, hidden widths..., 1");
  const BatchedIsa isa = ws.isa == BatchedIsa::kAuto ? batched_isa_auto() : ws.isa;
  if (!batched_isa_available(isa)) throw std::invalid_argument(name + ": this CPU lacks the instruction set asked for");
  const int n = pts.size();
  chunk = std::max(chunk, 1);
  constexpr bool kGrad = K == Pass::kGradient, kTangent = K == Pass::kTangent;
  if (kGrad) std::fill(grad.begin(), grad.end(), 0.0);
  if (n == 0) return 0.0;
  // The rows grouped by order (0, 1, 2), each group in the points' order.
  int count[3] = {0, 0, 0};
  std::vector<int>& rows = ws.rows;
  rows.resize(n);
  // The order, for now; the evaluation pass wants every channel of every row, whatever its coefficients.
  const bool all = ws.all_channels || eval != nullptr;
  for (int k = 0; k < n; ++k) rows[k] = all ? 2 : row_order(pts, k, m);
  for (int k = 0; k < n; ++k) ++count[rows[k]];
  int start[4] = {0, count[0], count[0] + count[1], n};
  {
    int next[3] = {start[0], start[1], start[2]};
    std::vector<int> order(rows);
    for (int k = 0; k < n; ++k) rows[next[order[k]]++] = k;
  }
  const int top = count[2] > 0 ? 2 : count[1] > 0 ? 1 : 0;

  // The threads' shares: contiguous ranges of the grouped rows, of about equal weight (a row weighs its channels).
  const int T = row_threads(omp_get_max_threads(), n);
  auto weight_before = [&](int i) {  // the weight of the grouped rows [0, i)
    long long w = 0;
    for (int o = 0; o < 3; ++o)
      w += static_cast<long long>(std::max(0, std::min(i, start[o + 1]) - start[o])) * (1 + o * m);
    return w;
  };
  const long long total = weight_before(n);
  std::vector<int> bound(T + 1, n);
  bound[0] = 0;
  for (int t = 1, i = 0; t < T; ++t) {
    while (i < n && weight_before(i) * T < total * t) ++i;
    bound[t] = i;
  }

  // Buffers: each thread's chunk has at most Bmax rows of at most Cmax channels.
  const int Bmax = std::min(chunk, n), Cmax = channel_count(m, top);
  const size_t CBmax = static_cast<size_t>(Cmax) * Bmax;
  int maxw = 1;
  for (int l = 1; l < nl; ++l) maxw = std::max(maxw, d[l]);
  const size_t buf_size = chunk_buffer_numbers(d, m, dir, Cmax, Bmax, kTangent);
  if (static_cast<int>(ws.threads.size()) < T) ws.threads.resize(T);
  std::vector<int> woff(nl + 1, 0);
  for (int l = 1; l <= nl; ++l) woff[l] = weight_offset(d, l);
  const size_t P = grad.size();
  for (int t = 0; t < T; ++t) {
    // Exactly buf_size when it grows (resize would keep up to twice that): batched_workspace_bytes counts it.
    if (ws.threads[t].buf.size() < buf_size) std::vector<double>(buf_size).swap(ws.threads[t].buf);
    if (kGrad && T > 1) ws.threads[t].grad.assign(P, 0.0);
  }
  const ChunkFn fn[3] = {chunk_fn<K>(isa, m, 0, dir), chunk_fn<K>(isa, m, 1, dir), chunk_fn<K>(isa, m, 2, dir)};

  // Each thread runs single-threaded products; OpenBLAS's own threads would compete with the OpenMP ones.
  const int blas_threads = T > 1 ? openblas_get_num_threads() : 1;
  if (blas_threads != 1) openblas_set_num_threads(1);
  std::vector<double> losses(T, 0.0);
#pragma omp parallel num_threads(T)
  {
    // A share per virtual thread v, whatever number of threads the runtime gives: the results depend on T only.
    for (int v = omp_get_thread_num(); v < T; v += omp_get_num_threads()) {
      double* buf = ws.threads[v].buf.data();
      std::vector<double*> H(nl), Z(nl);
      for (int l = 1; l < nl; ++l) {
        H[l] = buf;
        Z[l] = buf + static_cast<size_t>(d[l]) * CBmax;
        buf += 2 * static_cast<size_t>(d[l]) * CBmax;
      }
      const size_t blocks = adjoint_blocks(kTangent) * maxw * CBmax;
      ChunkArgs a{&net,
                  woff.data(),
                  &pts,
                  nullptr,
                  0,
                  H.data(),
                  Z.data(),
                  buf,
                  buf + maxw * CBmax,
                  buf + blocks,
                  buf + blocks + CBmax,
                  buf + blocks + 2 * CBmax,
                  buf + blocks + 2 * CBmax + m * Bmax,
                  r.data(),
                  !kGrad  ? nullptr
                  : T > 1 ? ws.threads[v].grad.data()
                          : grad.data(),
                  seed,
                  dtheta,
                  kTangent ? buf + 2 * maxw * CBmax : nullptr};
      a.cap_a = cap_a;
      a.cap_h = cap_h;
      a.cap_c = cap_c;
      a.jac = jac;
      a.jac_ld = net.theta.size();
      if (eval != nullptr) {
        a.eval_u = eval[0];
        a.eval_du = eval[1];
        a.eval_d2u = eval[2];
      }
      double loss = 0.0;
      for (int o = 0; o < 3; ++o) {
        const int lo = std::max(bound[v], start[o]), hi = std::min(bound[v + 1], start[o + 1]);
        for (int k0 = lo; k0 < hi; k0 += chunk) {
          a.idx = rows.data() + k0;
          a.B = std::min(chunk, hi - k0);
          loss += fn[o](a);
        }
      }
      losses[v] = loss;
    }
  }
  if (blas_threads != 1) openblas_set_num_threads(blas_threads);
  double loss = losses[0];
  for (int t = 1; t < T; ++t) loss += losses[t];
  if (kGrad && T > 1) {
    for (size_t p = 0; p < P; ++p) {
      double s = ws.threads[0].grad[p];
      for (int t = 1; t < T; ++t) s += ws.threads[t].grad[p];
      grad[p] = s;
    }
  }
  return loss;
}

}  // namespace

double batched_workspace_bytes(const Mlp& net, const PointSet& pts, int threads, int chunk) {
  const int n = pts.size(), m = pts.dim;
  if (n == 0) return 0.0;
  const int T = row_threads(threads > 0 ? threads : omp_get_max_threads(), n);
  const size_t per_thread = chunk_buffer_numbers(net.layers, m, pts.has_directions(), channel_count(m, 2),
                                                 std::min(std::max(chunk, 1), n), true) +
                            (T > 1 ? net.theta.size() : 0);
  return 8.0 * (static_cast<double>(T) * static_cast<double>(per_thread) + n) + 4.0 * n;  // and the row indices
}

double batched_loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                             BatchedWorkspace& ws, int chunk) {
  return run_chunks<Pass::kGradient>(net, pts, r, grad, ws, chunk, nullptr, nullptr, "batched_loss_gradient");
}

bool batched_evaluation_fits(const Mlp& net) {
  const std::vector<int>& d = net.layers;
  return d.size() >= 3 && d.front() >= 1 && d.front() <= 3 && d.back() == 1;
}

void batched_evaluate(const Mlp& net, const PointSet& rows, span<double> u, span<double> du, span<double> d2u,
                      BatchedWorkspace& ws, int chunk) {
  const size_t n = static_cast<size_t>(rows.size()), m = static_cast<size_t>(rows.dim);
  if (rows.x.size() != n * m || u.size() != n || du.size() != n * m || d2u.size() != n * m)
    throw std::invalid_argument("batched_evaluate: x, du and d2u need dim numbers per row, u one");
  double* const eval[3] = {u.data(), du.data(), d2u.data()};
  run_chunks<Pass::kLoss>(net, rows, {}, {}, ws, chunk, nullptr, nullptr, "batched_evaluate", nullptr, nullptr, 0,
                          eval);
}

double batched_loss(const Mlp& net, const PointSet& pts, span<double> r, BatchedWorkspace& ws, int chunk) {
  if (r.size() != static_cast<size_t>(pts.size()))
    throw std::invalid_argument("batched_loss: r needs a number per row");
  return run_chunks<Pass::kLoss>(net, pts, r, {}, ws, chunk, nullptr, nullptr, "batched_loss");
}

void batched_jacobian_transpose_times(const Mlp& net, const PointSet& pts, span<const double> y, span<double> out,
                                      BatchedWorkspace& ws, int chunk) {
  if (y.size() != static_cast<size_t>(pts.size()) || out.size() != net.theta.size())
    throw std::invalid_argument("batched_jacobian_transpose_times: y needs a number per row, out one per parameter");
  ws.residuals.resize(static_cast<size_t>(pts.size()));
  run_chunks<Pass::kGradient>(net, pts, ws.residuals, out, ws, chunk, y.data(), nullptr,
                              "batched_jacobian_transpose_times");
}

void batched_residuals_jacobian(const Mlp& net, const PointSet& pts, span<double> r, span<double> J,
                                BatchedWorkspace& ws, int chunk) {
  const size_t n = static_cast<size_t>(pts.size());
  if (r.size() != n || J.size() != n * net.theta.size())
    throw std::invalid_argument("batched_residuals_jacobian: r needs a number per row, J one per row and parameter");
  const std::vector<double> ones(n, 1.0);  // the seeds: row k's output adjoints are dr_k/du's coefficients
  run_chunks<Pass::kGradient>(net, pts, r, {}, ws, chunk, ones.data(), nullptr, "batched_residuals_jacobian", nullptr,
                              nullptr, 0, nullptr, J.data());
}

void batched_jacobian_times(const Mlp& net, const PointSet& pts, span<const double> u, span<double> out,
                            BatchedWorkspace& ws, int chunk) {
  if (u.size() != net.theta.size() || out.size() != static_cast<size_t>(pts.size()))
    throw std::invalid_argument("batched_jacobian_times: u needs a number per parameter, out one per row");
  run_chunks<Pass::kTangent>(net, pts, out, {}, ws, chunk, nullptr, u.data(), "batched_jacobian_times");
}

namespace {

// The sample Gram's rows a block of its factored form takes: about 1024 channel rows.
int sample_gram_block_rows(int cc) { return std::max(1, 1024 / cc); }

// Whether layer l (d_{l-1} inputs, d_l outputs) of batched_sample_gram takes the direct form (its columns of Jh
// formed, one syrk): when that costs less than the factored form and its columns take at most 256 MB. The costs
// in multiply-adds, the factored form's also counting each entry of its two channel Grams as 64 (measured on 2
// cores: its products have inner dimensions of tens to hundreds, writing an entry every d multiply-adds, and the
// entries are read again; the two forms take the same time for 40 x 40 layers in 1-D and 64 x 64 in 2-D).
bool sample_gram_direct(int n, int cc, int din, int dout, int form = 0) {
  if (form != 0) return form == 1;
  const double nb = static_cast<double>(dout) * din + dout, N = n, NC = static_cast<double>(n) * cc;
  const double direct = NC * dout * din + 0.5 * N * N * nb;
  const double factored = 0.5 * NC * NC * (din + dout + 2 * 64);
  return direct <= factored && 8.0 * N * nb <= 256.0 * (1 << 20);
}

}  // namespace

bool batched_sample_gram_pays(const Mlp& net, const PointSet& pts) {
  const std::vector<int>& d = net.layers;
  if (pts.dim < 1 || pts.dim > 3 || d.size() < 3) return false;  // the batched passes' shapes
  for (size_t l = 1; l < d.size(); ++l)
    if (!sample_gram_direct(pts.size(), 1 + 2 * pts.dim, d[l - 1], d[l])) return true;
  return false;
}

double batched_sample_gram_bytes(const Mlp& net, const PointSet& pts) {
  const int n = pts.size(), cc = 1 + 2 * pts.dim, nl = static_cast<int>(net.layers.size()) - 1;
  const std::vector<int>& d = net.layers;
  double channels = 0.0, direct = 0.0;
  for (int l = 1; l <= nl; ++l) {
    channels += static_cast<double>(n) * cc * (d[l] + d[l - 1]);
    if (sample_gram_direct(n, cc, d[l - 1], d[l]))
      direct = std::max(direct, static_cast<double>(n) * (static_cast<double>(d[l]) * d[l - 1] + d[l]));
  }
  const double rc = static_cast<double>(std::min(n, sample_gram_block_rows(cc))) * cc;
  return 8.0 * (channels + 2.0 * rc * rc + direct + n);  // and the seeds
}

void batched_sample_gram(const Mlp& net, const PointSet& pts, span<const double> d_rows, span<double> r, span<double> K,
                         BatchedWorkspace& ws, int chunk) {
  const int n = pts.size(), m = pts.dim, cc = 1 + 2 * m;
  const std::vector<int>& d = net.layers;
  const int nl = static_cast<int>(d.size()) - 1;
  if (r.size() != static_cast<size_t>(n) || d_rows.size() != static_cast<size_t>(n) ||
      K.size() != static_cast<size_t>(n) * n)
    throw std::invalid_argument("batched_sample_gram: d and r need a number per row, K n x n");
  std::fill(K.begin(), K.end(), 0.0);
  if (n == 0) return;
  // Every layer's adjoint and input channels of every row (channels a row does not need stay zero: their adjoints
  // are zero in the full pass too), from the gradient pass seeded with sqrt(d_k).
  std::vector<std::vector<double>> cap_a(nl + 1), cap_h(nl + 1);
  std::vector<double*> pa(nl + 1, nullptr), ph(nl + 1, nullptr);
  for (int l = 1; l <= nl; ++l) {
    cap_a[l].assign(static_cast<size_t>(n) * cc * d[l], 0.0);
    cap_h[l].assign(static_cast<size_t>(n) * cc * d[l - 1], 0.0);
    pa[l] = cap_a[l].data();
    ph[l] = cap_h[l].data();
  }
  std::vector<double> seed(n);
  for (int k = 0; k < n; ++k) {
    if (!(d_rows[k] >= 0.0)) throw std::invalid_argument("batched_sample_gram: the row weights must be >= 0");
    seed[k] = std::sqrt(d_rows[k]);
  }
  run_chunks<Pass::kGradient>(net, pts, r, {}, ws, chunk, seed.data(), nullptr, "batched_sample_gram", pa.data(),
                              ph.data(), cc);

  const int R = ws.gram_block_rows > 0 ? ws.gram_block_rows : sample_gram_block_rows(cc);
  std::vector<double> ga, gh, jl;
  for (int l = 1; l <= nl; ++l) {
    const int din = d[l - 1], dout = d[l];
    const double* A = cap_a[l].data();
    const double* H = cap_h[l].data();
    if (sample_gram_direct(n, cc, din, dout, ws.gram_form)) {
      // This layer's columns of Jh: row k is sum_c a_kc h_kc^T (row-major dout x din), then the biases a_k0.
      const size_t nb = static_cast<size_t>(dout) * din + dout;
      jl.assign(static_cast<size_t>(n) * nb, 0.0);
#pragma omp parallel for schedule(static) if (n >= 64)
      for (int k = 0; k < n; ++k) {
        double* row = jl.data() + static_cast<size_t>(k) * nb;
        for (int c = 0; c < cc; ++c) {
          const double* a = A + (static_cast<size_t>(k) * cc + c) * dout;
          const double* h = H + (static_cast<size_t>(k) * cc + c) * din;
          for (int i = 0; i < dout; ++i) {
            const double ai = a[i];
            double* ri = row + static_cast<size_t>(i) * din;
#pragma omp simd
            for (int j = 0; j < din; ++j) ri[j] += ai * h[j];
          }
        }
        const double* a0 = A + static_cast<size_t>(k) * cc * dout;
        for (int i = 0; i < dout; ++i) row[static_cast<size_t>(dout) * din + i] = a0[i];
      }
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, static_cast<int>(nb), 1.0, jl.data(),
                  static_cast<int>(nb), 1.0, K.data(), n);
      continue;
    }
    // Factored: for each pair of row blocks I <= J, the channel Grams A_I A_J^T and H_I H_J^T (on the diagonal
    // I = J their upper triangles, by syrk: an entry (k, m > k) reads only those), then every entry (k, m >= k) adds
    // sum_{c,c'} of their products and the biases' term.
    for (int i0 = 0; i0 < n; i0 += R) {
      const int ri = std::min(R, n - i0);
      for (int j0 = i0; j0 < n; j0 += R) {
        const int rj = std::min(R, n - j0), ci = ri * cc, cj = rj * cc;
        const bool diagonal = i0 == j0;
        ga.resize(static_cast<size_t>(ci) * cj);
        gh.resize(static_cast<size_t>(ci) * cj);
        const double *Ai = A + static_cast<size_t>(i0) * cc * dout, *Hi = H + static_cast<size_t>(i0) * cc * din;
        if (diagonal) {
          cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, ci, dout, 1.0, Ai, dout, 0.0, ga.data(), cj);
          cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, ci, din, 1.0, Hi, din, 0.0, gh.data(), cj);
        } else {
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ci, cj, dout, 1.0, Ai, dout,
                      A + static_cast<size_t>(j0) * cc * dout, dout, 0.0, ga.data(), cj);
          cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ci, cj, din, 1.0, Hi, din,
                      H + static_cast<size_t>(j0) * cc * din, din, 0.0, gh.data(), cj);
        }
#pragma omp parallel for schedule(static) if (ri >= 64)
        for (int p = 0; p < ri; ++p) {
          const int k = i0 + p;
          for (int q = (diagonal ? p : 0); q < rj; ++q) {
            double s = 0.0;
            if (diagonal && q == p) {  // a row with itself: the channel pairs (c, c' < c) from the upper triangle
              const size_t o = static_cast<size_t>(p) * cc;
              for (int c = 0; c < cc; ++c)
                for (int c2 = 0; c2 < cc; ++c2) {
                  const size_t e = (o + std::min(c, c2)) * cj + o + std::max(c, c2);
                  s += ga[e] * gh[e];
                }
            } else {
              for (int c = 0; c < cc; ++c) {
                const size_t o = (static_cast<size_t>(p) * cc + c) * cj + static_cast<size_t>(q) * cc;
                for (int c2 = 0; c2 < cc; ++c2) s += ga[o + c2] * gh[o + c2];
              }
            }
            s += ga[static_cast<size_t>(p) * cc * cj + static_cast<size_t>(q) * cc];  // the biases: a_k0 . a_m0
            K[static_cast<size_t>(k) * n + j0 + q] += s;
          }
        }
      }
    }
  }
  for (int k = 0; k < n; ++k)  // the lower triangle from the upper
    for (int q = 0; q < k; ++q) K[static_cast<size_t>(k) * n + q] = K[static_cast<size_t>(q) * n + k];
}

}  // namespace pinntk
