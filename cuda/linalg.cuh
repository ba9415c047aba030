// cuBLAS and cuSOLVER: checked calls, handles, and the fp64/fp32 overloads the backend needs (syrk, nrm2, dot,
// syevd, and for Levenberg-Marquardt gemv, iamax, axpy, potrf, potrs). Every call goes through PINNTK_CUBLAS_CHECK or PINNTK_CUSOLVER_CHECK; syevd also checks devInfo.
#pragma once

#include <cublas_v2.h>   // cublasDsyrk, cublasSsyrk, ...
#include <cusolverDn.h>  // cusolverDnDsyevd, ...

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

#define PINNTK_CUBLAS_CHECK(call)                                                                   \
  do {                                                                                              \
    const cublasStatus_t pinntk_s_ = (call);                                                        \
    if (pinntk_s_ != CUBLAS_STATUS_SUCCESS) ::pinntk::cublas_throw(pinntk_s_, #call, __FILE__, __LINE__); \
  } while (0)

#define PINNTK_CUSOLVER_CHECK(call)                                                                       \
  do {                                                                                                    \
    const cusolverStatus_t pinntk_s_ = (call);                                                            \
    if (pinntk_s_ != CUSOLVER_STATUS_SUCCESS) ::pinntk::cusolver_throw(pinntk_s_, #call, __FILE__, __LINE__); \
  } while (0)

namespace pinntk::linalg {

// C = alpha op(A) op(A)^T + beta C on the lower triangle (column-major, as cuBLAS sees our row-major arrays).
inline cublasStatus_t syrk(cublasHandle_t h, cublasOperation_t op, int n, int k, const double* A, int lda, double* C,
                           int ldc) {
  const double one = 1.0, zero = 0.0;
  return cublasDsyrk(h, CUBLAS_FILL_MODE_LOWER, op, n, k, &one, A, lda, &zero, C, ldc);
}
inline cublasStatus_t syrk(cublasHandle_t h, cublasOperation_t op, int n, int k, const float* A, int lda, float* C,
                           int ldc) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSsyrk(h, CUBLAS_FILL_MODE_LOWER, op, n, k, &one, A, lda, &zero, C, ldc);
}
// C = A A^T for square n x n A (benchmarks' matrix-product ceiling).
inline cublasStatus_t gemm_nt(cublasHandle_t h, int n, const double* A, double* C) {
  const double one = 1.0, zero = 0.0;
  return cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, &one, A, n, A, n, &zero, C, n);
}
inline cublasStatus_t gemm_nt(cublasHandle_t h, int n, const float* A, float* C) {
  const float one = 1.0f, zero = 0.0f;
  return cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, &one, A, n, A, n, &zero, C, n);
}
inline cublasStatus_t nrm2(cublasHandle_t h, int n, const double* x, double* r) { return cublasDnrm2(h, n, x, 1, r); }
inline cublasStatus_t nrm2(cublasHandle_t h, int n, const float* x, float* r) { return cublasSnrm2(h, n, x, 1, r); }
inline cublasStatus_t dot(cublasHandle_t h, int n, const double* x, const double* y, double* r) {
  return cublasDdot(h, n, x, 1, y, 1, r);
}
inline cublasStatus_t dot(cublasHandle_t h, int n, const float* x, const float* y, float* r) {
  return cublasSdot(h, n, x, 1, y, 1, r);
}
inline cusolverStatus_t syevd_buffer(cusolverDnHandle_t h, int n, const double* A, const double* W, int* lwork) {
  return cusolverDnDsyevd_bufferSize(h, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, A, n, W, lwork);
}
inline cusolverStatus_t syevd_buffer(cusolverDnHandle_t h, int n, const float* A, const float* W, int* lwork) {
  return cusolverDnSsyevd_bufferSize(h, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, A, n, W, lwork);
}
inline cusolverStatus_t syevd(cusolverDnHandle_t h, int n, double* A, double* W, double* work, int lwork, int* info) {
  return cusolverDnDsyevd(h, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, A, n, W, work, lwork, info);
}
inline cusolverStatus_t syevd(cusolverDnHandle_t h, int n, float* A, float* W, float* work, int lwork, int* info) {
  return cusolverDnSsyevd(h, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, A, n, W, work, lwork, info);
}

// y = alpha op(A) x + beta y, column-major A (m x n).
inline cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t op, int m, int n, double alpha, const double* A,
                           int lda, const double* x, double beta, double* y) {
  return cublasDgemv(h, op, m, n, &alpha, A, lda, x, 1, &beta, y, 1);
}
inline cublasStatus_t gemv(cublasHandle_t h, cublasOperation_t op, int m, int n, float alpha, const float* A, int lda,
                           const float* x, float beta, float* y) {
  return cublasSgemv(h, op, m, n, &alpha, A, lda, x, 1, &beta, y, 1);
}
// 1-based index of the largest |x_i| over n entries with stride inc.
inline cublasStatus_t iamax(cublasHandle_t h, int n, const double* x, int inc, int* i) {
  return cublasIdamax(h, n, x, inc, i);
}
inline cublasStatus_t iamax(cublasHandle_t h, int n, const float* x, int inc, int* i) {
  return cublasIsamax(h, n, x, inc, i);
}
inline cublasStatus_t axpy(cublasHandle_t h, int n, double alpha, const double* x, double* y) {
  return cublasDaxpy(h, n, &alpha, x, 1, y, 1);
}
inline cublasStatus_t axpy(cublasHandle_t h, int n, float alpha, const float* x, float* y) {
  return cublasSaxpy(h, n, &alpha, x, 1, y, 1);
}
// Cholesky A = L L^T of the lower triangle of the column-major n x n A; devInfo > 0 when A is not positive definite.
inline cusolverStatus_t potrf_buffer(cusolverDnHandle_t h, int n, double* A, int* lwork) {
  return cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, n, A, n, lwork);
}
inline cusolverStatus_t potrf_buffer(cusolverDnHandle_t h, int n, float* A, int* lwork) {
  return cusolverDnSpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, n, A, n, lwork);
}
inline cusolverStatus_t potrf(cusolverDnHandle_t h, int n, double* A, double* work, int lwork, int* info) {
  return cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, n, A, n, work, lwork, info);
}
inline cusolverStatus_t potrf(cusolverDnHandle_t h, int n, float* A, float* work, int lwork, int* info) {
  return cusolverDnSpotrf(h, CUBLAS_FILL_MODE_LOWER, n, A, n, work, lwork, info);
}
// Solves L L^T x = b in place of b (one right-hand side) with potrf's factor.
inline cusolverStatus_t potrs(cusolverDnHandle_t h, int n, const double* A, double* b, int* info) {
  return cusolverDnDpotrs(h, CUBLAS_FILL_MODE_LOWER, n, 1, A, n, b, n, info);
}
inline cusolverStatus_t potrs(cusolverDnHandle_t h, int n, const float* A, float* b, int* info) {
  return cusolverDnSpotrs(h, CUBLAS_FILL_MODE_LOWER, n, 1, A, n, b, n, info);
}

}  // namespace pinntk::linalg
