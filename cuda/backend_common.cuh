// What the CUDA backend's translation units share: the stream and library handles and the Gram and spectrum steps
// of the NTK pipeline (cuBLAS syrk, cuSOLVER syevd); points on the device and copies come from device_points.hpp.
#pragma once

#include <algorithm>  // std::copy, std::max
#include <stdexcept>  // std::runtime_error
#include <string>     // std::to_string
#include <vector>     // std::vector

#include "cuda/check.cuh"          // PINNTK_CUDA_CHECK
#include "cuda/device_buffer.cuh"  // DeviceBuffer
#include "cuda/device_points.hpp"  // DevicePoints, to_device, to_host, enqueue_loss_gradient
#include "cuda/linalg.cuh"         // linalg::syrk, linalg::syevd
#include "cuda/nvtx.cuh"           // NvtxRange

namespace pinntk::cudaimpl {

// ---- small kernels of the NTK pipeline ----

// Column-major n x n: copy the lower triangle into the upper one.
template <class Real>
__global__ void fill_upper_kernel(Real* C, int n) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n) * n) return;
  const int i = static_cast<int>(idx % n), j = static_cast<int>(idx / n);
  if (i < j) C[idx] = C[j + static_cast<size_t>(i) * n];
}

// Row-major A (n x k): row i times s[i]^power (power 1 or 1/2).
template <class Real>
__global__ void scale_rows_kernel(Real* A, int n, int k, const Real* s, bool sqrt_of_s) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n) * k) return;
  const Real f = s[idx / k];
  A[idx] *= sqrt_of_s ? sqrt(f) : f;
}

// Column-major n x n: column j times d[j] (K = G D, Lemma 3.1).
template <class Real>
__global__ void scale_cols_kernel(Real* C, int n, const Real* d) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n) * n) return;
  C[idx] *= d[idx / n];
}

inline unsigned grid_for(size_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// Stream and library handles, created once per backend.
struct CudaContext {
  CudaContext() {
    // A blocking stream: plain cudaMemcpy (DeviceBuffer::download) on the legacy stream waits for its work.
    PINNTK_CUDA_CHECK(cudaStreamCreate(&stream));
    PINNTK_CUBLAS_CHECK(cublasCreate(&blas));
    PINNTK_CUBLAS_CHECK(cublasSetStream(blas, stream));
    // Default math: no TF32 for fp32 routines (that needs CUBLAS_TF32_TENSOR_OP_MATH), exact fp64.
    PINNTK_CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
    PINNTK_CUBLAS_CHECK(cublasSetPointerMode(blas, CUBLAS_POINTER_MODE_HOST));
    PINNTK_CUSOLVER_CHECK(cusolverDnCreate(&solver));
    PINNTK_CUSOLVER_CHECK(cusolverDnSetStream(solver, stream));
  }
  ~CudaContext() {
    cusolverDnDestroy(solver);
    cublasDestroy(blas);
    cudaStreamDestroy(stream);
  }
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  void sync() const { PINNTK_CUDA_CHECK(cudaStreamSynchronize(stream)); }
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
};

// Gram of the row-major rows Ah (n x p) on the device: Ah Ah^T when `rows`, else Ah^T Ah (m x m, both triangles).
// G is reallocated only when its size changes.
template <class Real>
int device_gram(CudaContext& c, const Real* Ah, int n, int p, DeviceBuffer<Real>& G, bool rows) {
  NvtxRange r("syrk");
  const int m = rows ? n : p;
  if (G.size() != static_cast<size_t>(m) * m) G = DeviceBuffer<Real>(static_cast<size_t>(m) * m);
  if (rows) {
    PINNTK_CUBLAS_CHECK(linalg::syrk(c.blas, CUBLAS_OP_T, n, p, Ah, p, G.data(), n));
  } else {
    PINNTK_CUBLAS_CHECK(linalg::syrk(c.blas, CUBLAS_OP_N, p, n, Ah, p, G.data(), p));
  }
  fill_upper_kernel<<<grid_for(G.size(), 256), 256, 0, c.stream>>>(G.data(), m);
  PINNTK_LAUNCH_CHECK();
  return m;
}
// The smaller of the two Grams: Ah Ah^T when n <= p, else Ah^T Ah.
template <class Real>
int device_gram(CudaContext& c, const Real* Ah, int n, int p, DeviceBuffer<Real>& G) {
  return device_gram(c, Ah, n, p, G, n <= p);
}

// Eigenvalues of the symmetric m x m device matrix A (destroyed), descending, on the host.
template <class Real>
std::vector<double> device_eigenvalues(CudaContext& c, Real* A, int m) {
  NvtxRange r("syevd");
  DeviceBuffer<Real> W(m);
  DeviceBuffer<int> info(1);
  int lwork = 0;
  PINNTK_CUSOLVER_CHECK(linalg::syevd_buffer(c.solver, m, A, W.data(), &lwork));
  DeviceBuffer<Real> work(static_cast<size_t>(std::max(lwork, 1)));
  PINNTK_CUSOLVER_CHECK(linalg::syevd(c.solver, m, A, W.data(), work.data(), lwork, info.data()));
  c.sync();
  std::vector<int> h_info;
  info.download(h_info);
  if (h_info[0] != 0) throw std::runtime_error("cusolverDn syevd failed: devInfo = " + std::to_string(h_info[0]));
  std::vector<Real> w;
  W.download(w);
  std::vector<double> out(w.rbegin(), w.rend());
  return out;
}

template <class Real>
Real device_nrm2(CudaContext& c, const Real* x, size_t n) {
  Real r = 0;
  PINNTK_CUBLAS_CHECK(linalg::nrm2(c.blas, static_cast<int>(n), x, &r));
  return r;
}

}  // namespace pinntk::cudaimpl
