// DeviceBuffer<T>: RAII owner of a device array whose allocation, copies and free are all ordered on one stream
// (cudaMallocAsync, cudaMemcpyAsync, cudaFreeAsync). Nothing in it touches the legacy default stream or
// synchronizes the whole device, as cudaMalloc/cudaFree/cudaMemcpy may: host threads that each drive a stream of
// their own (reproduce --concurrent-trials, cuda/handles.cuh) neither wait for nor break each other's work.
#pragma once

#include <cuda_runtime.h>  // cudaMallocAsync, cudaMallocFromPoolAsync, cudaMemcpyAsync, cudaFreeAsync

#include <cstdint>    // SIZE_MAX
#include <stdexcept>  // std::invalid_argument, std::length_error
#include <string>     // std::to_string
#include <vector>     // std::vector

#include "cuda/check.cuh"  // PINNTK_CUDA_CHECK

namespace pinntk {

// Where a buffer lives: the stream its allocation, copies and free are ordered on, and the pool its bytes come from.
struct StreamOrder {
  cudaStream_t stream = nullptr;  // null: the legacy default stream (single-threaded tests and benchmarks)
  cudaMemPool_t pool = nullptr;   // null: the device's default pool
};
// For code that runs its kernels on the legacy default stream and is never one of several host threads.
inline constexpr StreamOrder kLegacyStream{};

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t n, StreamOrder o) : n_(n), o_(o) {
    if (n_ == 0) return;
    if (n_ > SIZE_MAX / sizeof(T)) throw std::length_error("DeviceBuffer: " + std::to_string(n_) + " elements");
    void* p = nullptr;
    if (o_.pool != nullptr) {
      PINNTK_CUDA_CHECK(cudaMallocFromPoolAsync(&p, n_ * sizeof(T), o_.pool, o_.stream));
    } else {
      PINNTK_CUDA_CHECK(cudaMallocAsync(&p, n_ * sizeof(T), o_.stream));
    }
    p_ = static_cast<T*>(p);
  }
  DeviceBuffer(const std::vector<T>& host, StreamOrder o) : DeviceBuffer(host.size(), o) { upload(host); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_), o_(o.o_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = o.p_;
      n_ = o.n_;
      o_ = o.o_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }

  // Copies all of host (of the buffer's size) in, and returns once the copy is done: host may be a temporary.
  void upload(const std::vector<T>& host) {
    if (host.size() != n_)
      throw std::invalid_argument("DeviceBuffer::upload: " + std::to_string(host.size()) + " values into a buffer of " +
                                  std::to_string(n_));
    if (n_ == 0) return;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice, o_.stream));
    PINNTK_CUDA_CHECK(cudaStreamSynchronize(o_.stream));
  }
  // Waits for the stream's work before this call, then returns the buffer's contents.
  void download(std::vector<T>& host) const {
    host.resize(n_);
    if (n_ == 0) return;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost, o_.stream));
    PINNTK_CUDA_CHECK(cudaStreamSynchronize(o_.stream));
  }
  T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  // Freed in stream order: the work already queued on the stream may still read the bytes. No throw from a
  // destructor; a failure is also taken off the thread's last-error slot, where the next launch check would
  // otherwise report it as its own.
  void release() noexcept {
    if (p_ != nullptr && cudaFreeAsync(p_, o_.stream) != cudaSuccess) static_cast<void>(cudaGetLastError());
    p_ = nullptr;
    n_ = 0;
  }

  T* p_ = nullptr;
  size_t n_ = 0;
  StreamOrder o_;
};

}  // namespace pinntk
