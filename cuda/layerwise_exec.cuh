// The device executor of cuda/layerwise.hpp: cuBLAS GEMMs and GEMVs on the handle's stream (checked), and the
// elementwise kernels launched on that stream as grid-stride loops (launch-checked). For nvcc translation units only;
// the tests run the same sequence with a CBLAS executor (tests/test_layerwise_emulated.cpp).
#pragma once

#include <cublas_v2.h>     // cublasHandle_t
#include <cuda_runtime.h>  // cudaStream_t

#include <algorithm>  // std::min

#include "cuda/check.cuh"      // PINNTK_LAUNCH_CHECK
#include "cuda/linalg.cuh"     // PINNTK_CUBLAS_CHECK, linalg::gemm, linalg::gemv
#include "cuda/tile_plan.hpp"  // device_limits

namespace pinntk::layerwise {

template <class Real>
struct DeviceExec {
  cublasHandle_t blas;
  cudaStream_t stream;

  static cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }
  void gemm(bool ta, bool tb, long m, long n, long k, const Real* A, long lda, const Real* B, long ldb, Real beta,
            Real* C, long ldc) {
    PINNTK_CUBLAS_CHECK(linalg::gemm(blas, op(ta), op(tb), m, n, k, A, lda, B, ldb, beta, C, ldc));
  }
  void gemv(long m, long n, const Real* A, long lda, const Real* x, Real beta, Real* y) {
    PINNTK_CUBLAS_CHECK(linalg::gemv(blas, CUBLAS_OP_N, m, n, Real(1), A, lda, x, beta, y));
  }
  template <class... P, class... A>
  void run(void (*kernel)(P...), long elements, A... args) {
    if (elements <= 0) return;
    constexpr long kThreads = 256;
    const long blocks = std::min<long>((elements + kThreads - 1) / kThreads, 16L * device_limits().sms);
    kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(args...);
    PINNTK_LAUNCH_CHECK();
  }
};

}  // namespace pinntk::layerwise
