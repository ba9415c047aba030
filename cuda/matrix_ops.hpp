// Elementwise kernels on dense device matrices for the NTK pipeline and Levenberg-Marquardt (cuda/matrix_ops.cu):
// the upper triangle of a Gram from its lower one, row and column scalings (D^1/2 J, G D), and G + mu I.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

namespace pinntk {

// Column-major n x n C: the upper triangle copied from the lower one (what syrk leaves out).
template <class Real>
void launch_fill_upper(Real* C, int n, cudaStream_t s);

// Row-major A (n x k): row i times s[i], or times sqrt(s[i]) when sqrt_of_s.
template <class Real>
void launch_scale_rows(Real* A, int n, int k, const Real* s, bool sqrt_of_s, cudaStream_t stream);

// Column-major n x n C: column j times d[j] (K = G D, Lemma 3.1).
template <class Real>
void launch_scale_cols(Real* C, int n, const Real* d, cudaStream_t s);

// Column-major m x m: A = G + mu I.
template <class Real>
void launch_damped_copy(Real* A, const Real* G, int m, Real mu, cudaStream_t s);

}  // namespace pinntk
