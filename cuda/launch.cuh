// What every launcher in cuda/ shares (llm.c style: the launcher owns the grid, asserts its preconditions and checks
// the launch): require() for a precondition, grid_for() for a one-dimensional grid, and prepare_kernel() for the
// one-time setup of a kernel that must be done before a graph capture can contain its launch.
#pragma once

#include <cuda_runtime.h>  // cudaFuncGetAttributes, cudaFuncSetAttribute

#include <climits>    // INT_MAX
#include <mutex>      // std::mutex, std::lock_guard
#include <set>        // std::set
#include <stdexcept>  // std::invalid_argument, std::length_error
#include <string>     // std::string, std::to_string

#include "cuda/check.cuh"  // PINNTK_CUDA_CHECK

namespace pinntk {

// A launcher's precondition: std::invalid_argument naming the launcher and what is wrong.
inline void require(bool ok, const char* launcher, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(launcher) + ": " + what);
}

// Blocks of `threads` for n elements; a grid's x dimension holds at most 2^31 - 1 blocks.
inline unsigned grid_for(size_t n, int threads) {
  const size_t blocks = (n + threads - 1) / threads;
  if (blocks > static_cast<size_t>(INT_MAX))
    throw std::length_error("CUDA launch: " + std::to_string(n) + " elements exceed one kernel grid");
  return static_cast<unsigned>(blocks);
}

// Loads `kernel` (lazy loading would otherwise load it at its first launch, which may be inside a graph capture)
// and, when smem_optin > 0, raises its dynamic shared-memory limit to smem_optin bytes less its static shared
// memory. Once per kernel: neither is a stream operation, so neither may first happen inside a capture; the plans
// that a capture launches with call it up front, and every launcher calls it before launching.
template <class Kernel>
void prepare_kernel(Kernel kernel, int smem_optin = 0) {
  static std::mutex mutex;
  static std::set<const void*> done;
  const std::lock_guard<std::mutex> lock(mutex);
  const void* key = reinterpret_cast<const void*>(kernel);
  if (done.count(key) != 0) return;
  cudaFuncAttributes a;
  PINNTK_CUDA_CHECK(cudaFuncGetAttributes(&a, kernel));
  if (smem_optin > 0)
    PINNTK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           smem_optin - static_cast<int>(a.sharedSizeBytes)));
  done.insert(key);
}

}  // namespace pinntk
