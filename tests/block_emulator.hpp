// Device code of one CUDA block on the CPU, for tests: each thread of the block a host thread, __syncthreads a
// barrier of the block, __shfl_down_sync a barrier of the warp around an exchange array, __shared__ variables
// function statics (one block at a time shares them), the dynamic shared memory (PINNTK_DYNAMIC_SHARED) a buffer of
// the block followed by as many guard bytes (and 256 more) which the test can check. Blocks run one after another.
// Include it before the device code (headers with no CUDA include of their own: cuda/two_loop.cuh,
// cuda/jacobian_kernel.cuh), in a test that never links CUDA code.
#pragma once

#include <algorithm>           // std::min, std::max (CUDA's global min and max)
#include <atomic>              // std::atomic
#include <cmath>               // std::tanh (CUDA's global tanh)
#include <condition_variable>  // std::condition_variable
#include <cstddef>             // size_t
#include <cstdint>             // uintptr_t
#include <memory>              // std::unique_ptr, std::make_unique
#include <mutex>               // std::mutex, std::unique_lock
#include <thread>              // std::thread
#include <vector>              // std::vector

namespace pinntk::emu {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

// A reusable barrier of n threads (C++17 has no std::barrier).
class Barrier {
 public:
  explicit Barrier(unsigned n) : n_(n) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(m_);
    const unsigned long gen = generation_;
    if (++waiting_ == n_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  unsigned n_, waiting_ = 0;
  unsigned long generation_ = 0;
};

constexpr size_t kGuardBytes = 256;
constexpr unsigned char kGuard = 0xA5;

// What the threads of the running block share.
struct Block {
  Block(unsigned threads, size_t dynamic_bytes)
      : all(threads),
        exchange(threads),
        dynamic((2 * dynamic_bytes + kGuardBytes + 7) / 8),  // as many guard bytes as it has, and kGuardBytes more
        bytes(dynamic_bytes) {
    for (unsigned w = 0; w < (threads + 31) / 32; ++w) warps.push_back(std::make_unique<Barrier>(32));
    unsigned char* raw = dynamic_shared();
    // Poisoned (all bits set: a NaN as a double or a float), as a device leaves it unset: a read before a write shows.
    for (size_t i = 0; i < dynamic.size() * 8; ++i) raw[i] = i < bytes ? 0xFF : kGuard;
  }
  unsigned char* dynamic_shared() { return reinterpret_cast<unsigned char*>(dynamic.data()); }
  // Whether the bytes past the dynamic shared memory are as they were set.
  bool guard_intact() {
    const unsigned char* raw = dynamic_shared();
    for (size_t i = bytes; i < dynamic.size() * 8; ++i)
      if (raw[i] != kGuard) return false;
    return true;
  }
  // Whether p, a tile of a wmma load or store with leading dimension ldm (numbers of `size` bytes), keeps the API's
  // rules: ldm a multiple of 16 bytes, p 256-bit aligned (inside the dynamic shared memory: its offset from the
  // start, which the device aligns as the kernel declares). A breach is remembered (run_grid returns false).
  void check_fragment(const void* p, unsigned ldm, size_t size) {
    const auto a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(dynamic_shared());
    const uintptr_t offset = a >= base && a < base + bytes ? a - base : a;
    if ((ldm * size) % 16 != 0 || offset % 32 != 0) misaligned = true;
  }
  Barrier all;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<double> exchange;
  std::vector<double> dynamic;  // 8-byte aligned, as the device's dynamic shared memory
  size_t bytes;
  std::atomic<bool> misaligned{false};
};

inline thread_local Dim3 thread_index, block_index, block_dim, grid_dim;
inline thread_local Block* block = nullptr;

// f() on every thread of each block of the grid (x, then y) of block.x x block.y threads (whole warps, numbered
// x + y block.x as on the device) with `dynamic_bytes` of dynamic shared memory, block after block. Returns false if
// any block wrote past its dynamic shared memory or handed a misaligned tile to a fragment load or store.
template <class F>
bool run_grid(Dim3 grid, Dim3 block_shape, F f, size_t dynamic_bytes = 0) {
  bool intact = true;
  grid.y = grid.y == 0 ? 1 : grid.y;
  block_shape.y = block_shape.y == 0 ? 1 : block_shape.y;
  const unsigned threads = block_shape.x * block_shape.y;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      Block shared(threads, dynamic_bytes);
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t, bx, by] {
          thread_index = {t % block_shape.x, t / block_shape.x, 0};
          block_index = {bx, by, 0};
          block_dim = {block_shape.x, block_shape.y, 1};
          grid_dim = {grid.x, grid.y, 1};
          block = &shared;
          f();
        });
      for (std::thread& th : pool) th.join();
      intact = intact && shared.guard_intact() && !shared.misaligned;
    }
  return intact;
}

// A grid of `blocks` blocks in x of `threads` threads in x.
template <class F>
bool run_blocks(unsigned blocks, unsigned threads, F f, size_t dynamic_bytes = 0) {
  return run_grid(Dim3{blocks, 1, 1}, Dim3{threads, 1, 1}, f, dynamic_bytes);
}

// The thread's number within its block, as the device numbers warps' lanes.
inline unsigned linear_thread() { return thread_index.x + thread_index.y * block_dim.x; }

}  // namespace pinntk::emu

#define threadIdx (::pinntk::emu::thread_index)
#define blockIdx (::pinntk::emu::block_index)
#define blockDim (::pinntk::emu::block_dim)
#define gridDim (::pinntk::emu::grid_dim)
#define PINNTK_DYNAMIC_SHARED(name) unsigned char* name = ::pinntk::emu::block->dynamic_shared()
#define PINNTK_DYNAMIC_SHARED_ALIGNED(name, bytes) PINNTK_DYNAMIC_SHARED(name)  // the buffer is malloc-aligned (16)
#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

// CUDA's launch shape type, as the device code's helpers return it.
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// CUDA's integer min and max, found unqualified in device code.
using std::max;
using std::min;
using std::tanh;  // CUDA's tanh, found unqualified in device code

inline void __syncthreads() { ::pinntk::emu::block->all.arrive_and_wait(); }
// Every lane of the warp calls it (the device code's full-mask __syncwarp).
inline void __syncwarp(unsigned = 0xffffffffu) {
  ::pinntk::emu::block->warps[::pinntk::emu::linear_thread() >> 5]->arrive_and_wait();
}

// Every lane of the warp calls it, as the device code's full-mask shuffles do.
inline double __shfl_down_sync(unsigned, double v, int offset) {
  ::pinntk::emu::Block& b = *::pinntk::emu::block;
  const unsigned t = ::pinntk::emu::linear_thread(), lane = t & 31u;
  ::pinntk::emu::Barrier& warp = *b.warps[t >> 5];
  b.exchange[t] = v;
  warp.arrive_and_wait();
  const double r = lane + static_cast<unsigned>(offset) < 32u ? b.exchange[t + static_cast<unsigned>(offset)] : v;
  warp.arrive_and_wait();
  return r;
}
