// RAII owners of the CUDA backend's stream, cuBLAS and cuSOLVER handles, memory pool, graphs and (for timing) events,
// and the capture of a CUDA graph. Several host threads may each drive a backend of their own on one device (reproduce
// --concurrent-trials: each worker captures its Adam step while the others copy, free and destroy), so:
//  - streams are non-blocking: a blocking stream synchronizes with the legacy default stream, and while it captures,
//    any legacy-stream operation of another thread fails (cudaErrorStreamCaptureImplicit) and breaks the capture;
//  - graphs are captured in cudaStreamCaptureModeThreadLocal: only the capturing thread's own potentially unsafe
//    calls (cudaMalloc, ...) invalidate its capture, not those of the other threads (cudaStreamCaptureModeGlobal
//    would prohibit them in every thread; Relaxed would let the capturing thread's own slip through);
//  - calls that may synchronize the whole device (cublasDestroy is documented to; creating or destroying streams,
//    handles, pools and graphs may) are reported to break a capture on the same device from another thread whatever
//    its mode, so they and every capture hold one process-wide mutex. A capture is two kernel launches and these
//    calls happen once per backend or session: the lock costs nothing measurable.
// Device memory comes from DeviceBuffer (cuda/device_buffer.cuh), stream-ordered, and needs no lock.
#pragma once

#include <cublas_v2.h>     // cublasCreate, cublasDestroy
#include <cuda_runtime.h>  // cudaStreamCreateWithFlags, cudaMemPoolCreate, cudaStreamBeginCapture, ...
#include <cusolverDn.h>    // cusolverDnCreate, cusolverDnCreateParams

#include <cstdint>      // std::uint64_t
#include <limits>       // std::numeric_limits
#include <memory>       // std::unique_ptr
#include <mutex>        // std::mutex, std::lock_guard
#include <stdexcept>    // std::runtime_error
#include <string>       // std::to_string
#include <type_traits>  // std::remove_pointer_t

#include "cuda/check.cuh"   // PINNTK_CUDA_CHECK
#include "cuda/linalg.cuh"  // PINNTK_CUBLAS_CHECK, PINNTK_CUSOLVER_CHECK

namespace pinntk::cudaimpl {

// Held by every capture and every call that may synchronize the device (see above).
inline std::mutex& device_sync_mutex() {
  static std::mutex m;
  return m;
}

// unique_ptr deleter: Destroy(h) under the mutex. No throw from a destructor: a failure is dropped and taken off
// the thread's last-error slot, where the next launch check would otherwise report it as its own.
template <class Handle, auto Destroy>
struct LockedDestroy {
  void operator()(Handle h) const {
    const std::lock_guard<std::mutex> lock(device_sync_mutex());
    static_cast<void>(Destroy(h));
    static_cast<void>(cudaGetLastError());
  }
};
template <class Handle, auto Destroy>
using Unique = std::unique_ptr<std::remove_pointer_t<Handle>, LockedDestroy<Handle, Destroy>>;

using UniqueStream = Unique<cudaStream_t, &cudaStreamDestroy>;
using UniqueMemPool = Unique<cudaMemPool_t, &cudaMemPoolDestroy>;
using UniqueBlas = Unique<cublasHandle_t, &cublasDestroy>;
using UniqueSolver = Unique<cusolverDnHandle_t, &cusolverDnDestroy>;
using UniqueSolverParams = Unique<cusolverDnParams_t, &cusolverDnDestroyParams>;
using UniqueGraph = Unique<cudaGraph_t, &cudaGraphDestroy>;
using UniqueGraphExec = Unique<cudaGraphExec_t, &cudaGraphExecDestroy>;
using UniqueEvent = Unique<cudaEvent_t, &cudaEventDestroy>;

// Each make_* creates under the mutex and hands the handle to its owner before anything else can throw.

inline UniqueStream make_stream() {
  cudaStream_t s = nullptr;
  const std::lock_guard<std::mutex> lock(device_sync_mutex());
  PINNTK_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return UniqueStream(s);
}

// A pool of the current device for DeviceBuffer's stream-ordered allocations. It keeps what is freed (release
// threshold: everything) instead of returning it to the system at every stream synchronization, and gives it all
// back when destroyed with its backend.
inline UniqueMemPool make_mem_pool() {
  int dev = 0, supported = 0;
  PINNTK_CUDA_CHECK(cudaGetDevice(&dev));
  PINNTK_CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, dev));
  if (supported == 0)
    throw std::runtime_error("the CUDA backend needs stream-ordered memory pools (cudaMallocAsync), which device " +
                             std::to_string(dev) + " does not support");
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = dev;
  cudaMemPool_t raw = nullptr;
  {
    const std::lock_guard<std::mutex> lock(device_sync_mutex());
    PINNTK_CUDA_CHECK(cudaMemPoolCreate(&raw, &props));
  }
  UniqueMemPool pool(raw);
  std::uint64_t keep = std::numeric_limits<std::uint64_t>::max();
  PINNTK_CUDA_CHECK(cudaMemPoolSetAttribute(pool.get(), cudaMemPoolAttrReleaseThreshold, &keep));
  return pool;
}

// A cuBLAS handle on stream s: host pointer mode, default math (no TF32 for fp32 routines, which needs
// CUBLAS_TF32_TENSOR_OP_MATH; exact fp64).
inline UniqueBlas make_blas(cudaStream_t s) {
  cublasHandle_t raw = nullptr;
  {
    const std::lock_guard<std::mutex> lock(device_sync_mutex());
    PINNTK_CUBLAS_CHECK(cublasCreate(&raw));
  }
  UniqueBlas h(raw);
  PINNTK_CUBLAS_CHECK(cublasSetStream(h.get(), s));
  PINNTK_CUBLAS_CHECK(cublasSetMathMode(h.get(), CUBLAS_DEFAULT_MATH));
  PINNTK_CUBLAS_CHECK(cublasSetPointerMode(h.get(), CUBLAS_POINTER_MODE_HOST));
  return h;
}

inline UniqueSolver make_solver(cudaStream_t s) {
  cusolverDnHandle_t raw = nullptr;
  {
    const std::lock_guard<std::mutex> lock(device_sync_mutex());
    PINNTK_CUSOLVER_CHECK(cusolverDnCreate(&raw));
  }
  UniqueSolver h(raw);
  PINNTK_CUSOLVER_CHECK(cusolverDnSetStream(h.get(), s));
  return h;
}

// The options of cuSOLVER's 64-bit API (cusolverDnX*): the defaults.
inline UniqueSolverParams make_solver_params() {
  cusolverDnParams_t raw = nullptr;
  PINNTK_CUSOLVER_CHECK(cusolverDnCreateParams(&raw));
  return UniqueSolverParams(raw);
}

// An event for timing (benchmarks/bench.cpp).
inline UniqueEvent make_event() {
  cudaEvent_t raw = nullptr;
  const std::lock_guard<std::mutex> lock(device_sync_mutex());
  PINNTK_CUDA_CHECK(cudaEventCreate(&raw));
  return UniqueEvent(raw);
}

// Captures into a graph what enqueue() puts on stream s. When enqueue throws, the capture is ended and its partial
// graph destroyed before the exception goes on, so that s is not left capturing.
template <class Enqueue>
UniqueGraph capture_graph(cudaStream_t s, Enqueue&& enqueue) {
  cudaGraph_t raw = nullptr;
  {
    const std::lock_guard<std::mutex> lock(device_sync_mutex());
    PINNTK_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue();
    } catch (...) {
      cudaGraph_t partial = nullptr;
      if (cudaStreamEndCapture(s, &partial) == cudaSuccess && partial != nullptr)
        static_cast<void>(cudaGraphDestroy(partial));
      static_cast<void>(cudaGetLastError());  // an invalidated capture's error belongs to the exception in flight
      throw;
    }
    PINNTK_CUDA_CHECK(cudaStreamEndCapture(s, &raw));
  }
  return UniqueGraph(raw);
}

inline UniqueGraphExec instantiate(const UniqueGraph& g) {
  cudaGraphExec_t raw = nullptr;
  const std::lock_guard<std::mutex> lock(device_sync_mutex());
  PINNTK_CUDA_CHECK(cudaGraphInstantiate(&raw, g.get(), 0));
  return UniqueGraphExec(raw);
}

}  // namespace pinntk::cudaimpl
