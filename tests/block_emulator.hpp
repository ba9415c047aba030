// Device code of one CUDA block on the CPU, for tests: each thread of the block a host thread, __syncthreads a
// barrier of the block, __shfl_down_sync a barrier of the warp around an exchange array, __shared__ variables
// function statics (one block at a time shares them). Blocks run one after another. Include it before the device
// code (a header with no CUDA include of its own, e.g. cuda/two_loop.cuh), in a test that never links CUDA code.
#pragma once

#include <condition_variable>  // std::condition_variable
#include <cstddef>             // size_t
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

// What the threads of the running block share.
struct Block {
  explicit Block(unsigned threads) : all(threads), exchange(threads) {
    for (unsigned w = 0; w < (threads + 31) / 32; ++w) warps.push_back(std::make_unique<Barrier>(32));
  }
  Barrier all;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<double> exchange;
};

inline thread_local Dim3 thread_index, block_index;
inline thread_local Block* block = nullptr;

// f() on every thread of each of `blocks` blocks of `threads` threads (a multiple of 32), block after block.
template <class F>
void run_blocks(unsigned blocks, unsigned threads, F f) {
  for (unsigned b = 0; b < blocks; ++b) {
    Block shared(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t, b] {
        thread_index.x = t;
        block_index.x = b;
        block = &shared;
        f();
      });
    for (std::thread& th : pool) th.join();
  }
}

}  // namespace pinntk::emu

#define threadIdx (::pinntk::emu::thread_index)
#define blockIdx (::pinntk::emu::block_index)
#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)

inline void __syncthreads() { ::pinntk::emu::block->all.arrive_and_wait(); }

// Every lane of the warp calls it, as the device code's full-mask shuffles do.
inline double __shfl_down_sync(unsigned, double v, int offset) {
  ::pinntk::emu::Block& b = *::pinntk::emu::block;
  const unsigned t = threadIdx.x, lane = t & 31u;
  ::pinntk::emu::Barrier& warp = *b.warps[t >> 5];
  b.exchange[t] = v;
  warp.arrive_and_wait();
  const double r = lane + static_cast<unsigned>(offset) < 32u ? b.exchange[t + static_cast<unsigned>(offset)] : v;
  warp.arrive_and_wait();
  return r;
}
