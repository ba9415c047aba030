// What the CUDA backend's translation units share: the stream, memory pool and library handles, and the Gram and
// spectrum steps of the NTK pipeline (cuBLAS syrk, cuSOLVER syevd); points on the device and copies come from
// device_points.hpp.
#pragma once

#include <algorithm>  // std::max, std::min
#include <climits>    // INT_MAX
#include <cstdint>    // int64_t, std::uint64_t
#include <stdexcept>  // std::runtime_error, std::length_error
#include <string>     // std::to_string
#include <vector>     // std::vector

#include "common/errors.hpp"       // NumericalError, UsageError
#include "common/point_set.hpp"    // PointSet
#include "cuda/check.cuh"          // PINNTK_CUDA_CHECK
#include "cuda/device_buffer.cuh"  // DeviceBuffer, StreamOrder
#include "cuda/device_points.hpp"  // DevicePoints, to_device, to_host, enqueue_loss_gradient
#include "cuda/handles.cuh"        // UniqueStream, UniqueMemPool, UniqueBlas, UniqueSolver, make_*
#include "cuda/linalg.cuh"         // linalg::syrk, linalg::syevd
#include "cuda/matrix_ops.hpp"     // launch_fill_upper
#include "cuda/nvtx.cuh"           // NvtxRange
#include "cuda/tile_plan.hpp"      // NetDesc, make_net_desc

namespace pinntk::cudaimpl {

// n as an int, for the kernels and launchers that count points in int; a clear refusal beyond.
inline int int_count(size_t n, const char* what) {
  if (n > static_cast<size_t>(INT_MAX))
    throw std::length_error(std::string("CUDA backend: ") + what + " has " + std::to_string(n) +
                            " entries, more than the 2^31 - 1 it takes");
  return static_cast<int>(n);
}

// A PointSet the kernels can read for a network of n_in inputs: its dimension is the network's input width (the
// kernels take it from the NetDesc) and x, alpha, beta hold dim numbers per row, gamma and f one, w one where the
// operation reads the weights (the loss and its gradient), and dirs (when given) dim x dim numbers per row in 2 or 3
// coordinates. std::invalid_argument naming the operation otherwise:
// a short array would be read past its end on the device.
inline void check_points(const PointSet& p, int n_in, bool weights, const char* op) {
  const std::string where = std::string("CUDA backend ") + op + ": ";
  if (p.dim != n_in)
    throw std::invalid_argument(where + "the points have " + std::to_string(p.dim) +
                                " coordinates, the network takes " + std::to_string(n_in) + " (layers[0])");
  if (p.nc < 0 || p.nb < 0) throw std::invalid_argument(where + "negative number of rows");
  if (p.has_directions() && n_in < 2)
    throw std::invalid_argument(where + "rows with their own Taylor directions need 2 or 3 coordinates, not " +
                                std::to_string(n_in));
  const size_t n = static_cast<size_t>(int_count(static_cast<size_t>(p.nc) + static_cast<size_t>(p.nb), "the rows"));
  const size_t nx = n * static_cast<size_t>(n_in);
  const auto need = [&](const std::vector<double>& v, size_t len, const char* name) {
    if (v.size() != len)
      throw std::invalid_argument(where + name + " has " + std::to_string(v.size()) + " numbers, the " +
                                  std::to_string(n) + " rows in " + std::to_string(n_in) + " coordinates need " +
                                  std::to_string(len));
  };
  need(p.x, nx, "x");
  need(p.alpha, nx, "alpha");
  need(p.beta, nx, "beta");
  need(p.gamma, n, "gamma");
  need(p.f, n, "f");
  if (weights) need(p.w, n, "w");
  if (p.has_directions()) need(p.dirs, nx * static_cast<size_t>(n_in), "dirs");
}

// The network's descriptor (make_net_desc refuses a shape the kernels do not take, an input width outside
// 1 .. kMaxInputs included) after checking the points against it (check_points).
inline NetDesc net_for_points(const std::vector<int>& layers, const PointSet& p, bool weights, const char* op) {
  const NetDesc nd = make_net_desc(layers);
  check_points(p, nd.n_in(), weights, op);
  return nd;
}

// One backend's non-blocking stream, memory pool and library handles (cuda/handles.cuh says why each is so). Every
// member owns its handle, so a failed creation releases those made before it. The sessions share the context with
// their backend (std::shared_ptr): a session may outlive the backend that made it.
class CudaContext {
 public:
  CudaContext()
      : stream_(make_stream()),
        pool_(make_mem_pool()),
        blas_(make_blas(stream_.get())),
        solver_(make_solver(stream_.get())),
        params_(make_solver_params()) {}
  // The frees still queued on the stream complete before the pool goes; no throw from a destructor.
  ~CudaContext() {
    if (cudaStreamSynchronize(stream_.get()) != cudaSuccess) static_cast<void>(cudaGetLastError());
  }
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  cudaStream_t stream() const { return stream_.get(); }
  cublasHandle_t blas() const { return blas_.get(); }
  cusolverDnHandle_t solver() const { return solver_.get(); }
  cusolverDnParams_t params() const { return params_.get(); }
  // Where this backend's DeviceBuffers live: allocated, copied and freed on its stream, from its pool.
  StreamOrder order() const { return {stream_.get(), pool_.get()}; }
  void sync() const { PINNTK_CUDA_CHECK(cudaStreamSynchronize(stream_.get())); }

 private:
  UniqueStream stream_;  // declared first: destroyed last
  UniqueMemPool pool_;
  UniqueBlas blas_;
  UniqueSolver solver_;
  UniqueSolverParams params_;
};

// Bytes of device memory the context can still have: the device's free memory and what its pool holds unused (the
// pool keeps what it frees).
inline double available_device_bytes(const CudaContext& c) {
  size_t free_bytes = 0, total = 0;
  PINNTK_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  std::uint64_t reserved = 0, used = 0;
  PINNTK_CUDA_CHECK(cudaMemPoolGetAttribute(c.order().pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  PINNTK_CUDA_CHECK(cudaMemPoolGetAttribute(c.order().pool, cudaMemPoolAttrUsedMemCurrent, &used));
  return static_cast<double>(free_bytes) + static_cast<double>(reserved - std::min(used, reserved));
}

// Gram of the row-major rows Ah (n x p) on the device: Ah Ah^T when `rows`, else Ah^T Ah (m x m, both triangles).
// G is reallocated only when its size changes.
template <class Real>
int device_gram(const CudaContext& c, const Real* Ah, int n, int p, DeviceBuffer<Real>& G, bool rows) {
  NvtxRange r("syrk");
  const int m = rows ? n : p;
  if (G.size() != static_cast<size_t>(m) * m) G = DeviceBuffer<Real>(static_cast<size_t>(m) * m, c.order());
  if (rows) {
    PINNTK_CUBLAS_CHECK(linalg::syrk(c.blas(), CUBLAS_OP_T, n, p, Ah, p, G.data(), n));
  } else {
    PINNTK_CUBLAS_CHECK(linalg::syrk(c.blas(), CUBLAS_OP_N, p, n, Ah, p, G.data(), p));
  }
  launch_fill_upper(G.data(), m, c.stream());
  return m;
}
// The smaller of the two Grams: Ah Ah^T when n <= p, else Ah^T Ah.
template <class Real>
int device_gram(const CudaContext& c, const Real* Ah, int n, int p, DeviceBuffer<Real>& G) {
  return device_gram(c, Ah, n, p, G, n <= p);
}

// Eigenvalues of the symmetric m x m device matrix A (destroyed), descending, on the host. The 64-bit cuSOLVER API
// sizes its workspace in bytes (size_t), where the 32-bit one's int element count could wrap for the largest Grams.
template <class Real>
std::vector<double> device_eigenvalues(const CudaContext& c, Real* A, int m) {
  NvtxRange r("syevd");
  if (m == 0) return {};
  DeviceBuffer<Real> W(m, c.order());
  DeviceBuffer<int> info(1, c.order());
  size_t device_bytes = 0, host_bytes = 0;
  PINNTK_CUSOLVER_CHECK(linalg::syevd_buffer(c.solver(), c.params(), m, A, W.data(), &device_bytes, &host_bytes));
  DeviceBuffer<unsigned char> work(std::max<size_t>(device_bytes, 1), c.order());
  std::vector<unsigned char> host_work(std::max<size_t>(host_bytes, 1));
  PINNTK_CUSOLVER_CHECK(linalg::syevd(c.solver(), c.params(), m, A, W.data(), work.data(), device_bytes,
                                      host_work.data(), host_bytes, info.data()));
  std::vector<int> h_info;
  info.download(h_info);  // after the stream's work: host_work stays alive until here
  if (h_info[0] > 0)      // as LAPACK's dsyevd on the CPU backend: the user's input, not a bug
    throw NumericalError("the symmetric eigensolver (cuSOLVER syevd) did not converge (devInfo " +
                         std::to_string(h_info[0]) + "): the kernel is too ill-scaled for the precision");
  if (h_info[0] < 0)
    throw std::runtime_error("cusolverDnXsyevd: argument " + std::to_string(-h_info[0]) + " is invalid");
  std::vector<Real> w;
  W.download(w);
  std::vector<double> out(w.rbegin(), w.rend());
  return out;
}

template <class Real>
Real device_nrm2(const CudaContext& c, const Real* x, size_t n) {
  Real r = 0;
  PINNTK_CUBLAS_CHECK(linalg::nrm2(c.blas(), static_cast<int64_t>(n), x, &r));
  return r;
}

template <class Real>
Real device_dot(const CudaContext& c, const Real* x, const Real* y, size_t n) {
  Real r = 0;
  PINNTK_CUBLAS_CHECK(linalg::dot(c.blas(), static_cast<int64_t>(n), x, y, &r));
  return r;
}

}  // namespace pinntk::cudaimpl
