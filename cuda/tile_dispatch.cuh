// From a TilePlan to a compiled tile kernel (tiny-cuda-nn style): the run-time width becomes a template parameter
// through the one switch below, the weight placement through one branch; launch_tile prepares and launches the
// variant the plan names on the plan's grid. Host code of the kernel files (cuda/eval.cu, cuda/jacobian.cu,
// cuda/loss_gradient.cu) and of cuda/tile_plan.cu.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <type_traits>  // std::integral_constant

#include "cuda/check.cuh"      // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"     // prepare_kernel
#include "cuda/tile_plan.hpp"  // TilePlan, device_limits

namespace pinntk::tile {

template <int W>
using Width = std::integral_constant<int, W>;
template <bool S>
using Staged = std::integral_constant<bool, S>;

// Calls f(Width<w>{}) where a kernel is compiled for width w (all hidden layers w wide), else f(Width<0>{}), the
// generic kernel. The single switch from the run-time width to a compiled kernel.
template <class F>
void dispatch_width(int w, F&& f) {
  switch (w) {
    case 40:
      return f(Width<40>{});
    case 50:
      return f(Width<50>{});
    case 60:
      return f(Width<60>{});
    case 64:
      return f(Width<64>{});
    case 128:
      return f(Width<128>{});
    default:
      return f(Width<0>{});
  }
}

// Calls f(Staged<s>{}, Width<w>{}) for the variant the plan names.
template <class F>
void dispatch_tile(const TilePlan& plan, F&& f) {
  dispatch_width(plan.width, [&](auto width) {
    if (plan.staged) {
      f(Staged<true>{}, width);
    } else {
      f(Staged<false>{}, width);
    }
  });
}

// Every tile kernel may use the device's whole opt-in shared memory (plan_tiles keeps within it).
inline int tile_smem_optin() { return static_cast<int>(device_limits().smem_optin + 1024); }

// Prepares the variant of kernel_of(Staged, Width) that the plan names (cuda/launch.cuh, prepare_kernel): plans
// whose launches a graph will capture call it when they are made.
template <class KernelOf>
void prepare_tile(const TilePlan& plan, KernelOf kernel_of) {
  dispatch_tile(plan, [&](auto staged, auto width) { prepare_kernel(kernel_of(staged, width), tile_smem_optin()); });
}

// Launches the variant of kernel_of(Staged, Width) that the plan names, on the plan's grid, with args; checks the
// launch. An empty plan (no points) launches nothing.
template <class KernelOf, class... Args>
void launch_tile(const TilePlan& plan, cudaStream_t s, KernelOf kernel_of, Args... args) {
  if (plan.blocks <= 0) return;
  dispatch_tile(plan, [&](auto staged, auto width) {
    const auto kernel = kernel_of(staged, width);
    prepare_kernel(kernel, tile_smem_optin());
    kernel<<<plan.blocks, plan.threads, plan.smem, s>>>(args...);
  });
  PINNTK_LAUNCH_CHECK();
}

}  // namespace pinntk::tile
