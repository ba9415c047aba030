// cuBLAS and cuSOLVER: checked calls and the fp64/fp32 overloads the backend needs (syrk, syrk_add, gemm, nrm2, dot,
// syevd, and for Levenberg-Marquardt gemv, iamax, axpy, potrf, potrs). Every call goes through PINNTK_CUBLAS_CHECK or
// PINNTK_CUSOLVER_CHECK; the callers check devInfo. Sizes and counts are 64-bit throughout (cuBLAS's _64 API,
// cuSOLVER's cusolverDnX* API): an m x m Gram has more than 2^31 entries from m = 46341 on, which an int count
// would wrap (nrm2 of it silently 0).
#pragma once

#include <cublas_v2.h>   // cublasDsyrk_64, cublasSsyrk_64, ...
#include <cusolverDn.h>  // cusolverDnXsyevd, cusolverDnXpotrf, ...

#include <cstdint>    // int64_t
#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace pinntk {

inline void cublas_throw(cublasStatus_t s, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cublasGetStatusString(s));
}
inline void cusolver_throw(cusolverStatus_t s, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed with cusolverStatus " + std::to_string(static_cast<int>(s)));
}

}  // namespace pinntk

#define PINNTK_CUBLAS_CHECK(call)                                                                         \
  do {                                                                                                    \
    const cublasStatus_t pinntk_s_ = (call);                                                              \
    if (pinntk_s_ != CUBLAS_STATUS_SUCCESS) ::pinntk::cublas_throw(pinntk_s_, #call, __FILE__, __LINE__); \
  } while (0)

#define PINNTK_CUSOLVER_CHECK(call)                                                                           \
  do {                                                                                                        \
    const cusolverStatus_t pinntk_s_ = (call);                                                                \
    if (pinntk_s_ != CUSOLVER_STATUS_SUCCESS) ::pinntk::cusolver_throw(pinntk_s_, #call, __FILE__, __LINE__); \
  } while (0)

namespace pinntk::linalg {

// C = alpha op(A) op(A)^T + beta C on the lower triangle (column-major, as cuBLAS sees our row-major arrays).
inline cublasStatus_t syrk(cublasHandle_t h, cublasOperation_t op, int64_t n, int64_t k, const double* A, int64_t lda,
                           double* C, int64_t ldc) {
  const double one = 1.0, zero = 0.0;
  return cublasDsyrk_64(h, CUBLAS_FILL_MODE_LOWER, op, n, k, &one, A, lda, &zero, C, ldc);
}
inline cublasStatus_t syrk(cublasHandle_t h, cublasOperation_t op, int64_t n, int64_t k, const float* A, int64_t lda,
                           float* C, int64_t ldc) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSsyrk_64(h, CUBLAS_FILL_MODE_LOWER, op, n, k, &one, A, lda, &zero, C, ldc);
}
// C = alpha op(A) op(A)^T + C on the lower triangle: a Gram accumulated over chunks of rows.
inline cublasStatus_t syrk_add(cublasHandle_t h, cublasOperation_t op, int64_t n, int64_t k, const double* A,
                               int64_t lda, double* C, int64_t ldc) {
  const double one = 1.0;
  return cublasDsyrk_64(h, CUBLAS_FILL_MODE_LOWER, op, n, k, &one, A, lda, &one, C, ldc);
}
inline cublasStatus_t syrk_add(cublasHandle_t h, cublasOperation_t op, int64_t n, int64_t k, const float* A,
                               int64_t lda, float* C, int64_t ldc) {
  const float one = 1.0f;
  return cublasSsyrk_64(h, CUBLAS_FILL_MODE_LOWER, op, n, k, &one, A, lda, &one, C, ldc);
}
// C = op(A) op(B) + beta C (column-major; cuda/layerwise.hpp's GEMMs).
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                           int64_t k, const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
                           double* C, int64_t ldc) {
  const double one = 1.0;
  return cublasDgemm_64(h, ta, tb, m, n, k, &one, A, lda, B, ldb, &beta, C, ldc);
}
inline cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                           int64_t k, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                           int64_t ldc) {
  const float one = 1.0f;
  return cublasSgemm_64(h, ta, tb, m, n, k, &one, A, lda, B, ldb, &beta, C, ldc);
}
// C = A A^T for square n x n A (benchmarks' matrix-product ceiling).
inline cublasStatus_t gemm_nt(cublasHandle_t h, int64_t n, const double* A, double* C) {
  const double one = 1.0, zero = 0.0;
  return cublasDgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, &one, A, n, A, n, &zero, C, n);
}
inline cublasStatus_t gemm_nt(cublasHandle_t h, int64_t n, const float* A, float* C) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, &one, A, n, A, n, &zero, C, n);
}
inline cublasStatus_t nrm2(cublasHandle_t h, int64_t n, const double* x, double* r) {
  return cublasDnrm2_64(h, n, x, 1, r);
}
inline cublasStatus_t nrm2(cublasHandle_t h, int64_t n, const float* x, float* r) {
  return cublasSnrm2_64(h, n, x, 1, r);
}
inline cublasStatus_t dot(cublasHandle_t h, int64_t n, const double* x, const double* y, double* r) {
  return cublasDdot_64(h, n, x, 1, y, 1, r);
}
inline cublasStatus_t dot(cublasHandle_t h, int64_t n, const float* x, const float* y, float* r) {
  return cublasSdot_64(h, n, x, 1, y, 1, r);
}

// y = alpha op(A) x + beta y, column-major A (m x n).
inline cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t op, int64_t m, int64_t n, double alpha, const double* A,
                           int64_t lda, const double* x, double beta, double* y) {
  return cublasDgemv_64(h, op, m, n, &alpha, A, lda, x, 1, &beta, y, 1);
}
inline cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t op, int64_t m, int64_t n, float alpha, const float* A,
                           int64_t lda, const float* x, float beta, float* y) {
  return cublasSgemv_64(h, op, m, n, &alpha, A, lda, x, 1, &beta, y, 1);
}
// 1-based index of the largest |x_i| over n entries with stride inc.
inline cublasStatus_t iamax(cublasHandle_t h, int64_t n, const double* x, int64_t inc, int64_t* i) {
  return cublasIdamax_64(h, n, x, inc, i);
}
inline cublasStatus_t iamax(cublasHandle_t h, int64_t n, const float* x, int64_t inc, int64_t* i) {
  return cublasIsamax_64(h, n, x, inc, i);
}
inline cublasStatus_t axpy(cublasHandle_t h, int64_t n, double alpha, const double* x, double* y) {
  return cublasDaxpy_64(h, n, &alpha, x, 1, y, 1);
}
inline cublasStatus_t axpy(cublasHandle_t h, int64_t n, float alpha, const float* x, float* y) {
  return cublasSaxpy_64(h, n, &alpha, x, 1, y, 1);
}

// ---- cuSOLVER, 64-bit API: workspaces in bytes, on the device and on the host ----

template <class Real>
constexpr cudaDataType kDataType = sizeof(Real) == 8 ? CUDA_R_64F : CUDA_R_32F;

// Eigenvalues only (W, ascending) of the symmetric column-major n x n A from its lower triangle; A is destroyed.
template <class Real>
cusolverStatus_t syevd_buffer(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n, const Real* A, const Real* W,
                              size_t* device_bytes, size_t* host_bytes) {
  return cusolverDnXsyevd_bufferSize(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, kDataType<Real>, A, n,
                                     kDataType<Real>, W, kDataType<Real>, device_bytes, host_bytes);
}
template <class Real>
cusolverStatus_t syevd(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n, Real* A, Real* W, void* device_work,
                       size_t device_bytes, void* host_work, size_t host_bytes, int* info) {
  return cusolverDnXsyevd(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, kDataType<Real>, A, n,
                          kDataType<Real>, W, kDataType<Real>, device_work, device_bytes, host_work, host_bytes, info);
}
// Cholesky A = L L^T of the lower triangle of the column-major n x n A; devInfo > 0 when A is not positive definite.
template <class Real>
cusolverStatus_t potrf_buffer(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n, const Real* A,
                              size_t* device_bytes, size_t* host_bytes) {
  return cusolverDnXpotrf_bufferSize(h, p, CUBLAS_FILL_MODE_LOWER, n, kDataType<Real>, A, n, kDataType<Real>,
                                     device_bytes, host_bytes);
}
template <class Real>
cusolverStatus_t potrf(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n, Real* A, void* device_work,
                       size_t device_bytes, void* host_work, size_t host_bytes, int* info) {
  return cusolverDnXpotrf(h, p, CUBLAS_FILL_MODE_LOWER, n, kDataType<Real>, A, n, kDataType<Real>, device_work,
                          device_bytes, host_work, host_bytes, info);
}
// Solves L L^T x = b in place of b (one right-hand side) with potrf's factor.
template <class Real>
cusolverStatus_t potrs(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n, const Real* A, Real* b, int* info) {
  return cusolverDnXpotrs(h, p, CUBLAS_FILL_MODE_LOWER, n, 1, kDataType<Real>, A, n, kDataType<Real>, b, n, info);
}

}  // namespace pinntk::linalg
