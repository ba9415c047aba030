// From a TilePlan to a compiled tile kernel (tiny-cuda-nn style): the run-time input width (the Taylor directions M)
// and hidden width become template parameters through the two switches below, the weight placement through one
// branch; launch_tile prepares and launches the variant the plan names on the plan's grid. Host code of the kernel
// files (cuda/eval.cu, cuda/jacobian.cu, cuda/loss_gradient.cu) and of cuda/tile_plan.cu.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <stdexcept>    // std::invalid_argument
#include <string>       // std::to_string
#include <type_traits>  // std::integral_constant

#include "cuda/check.cuh"      // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"     // prepare_kernel
#include "cuda/tile_plan.hpp"  // TilePlan, device_limits

namespace pinntk::tile {

template <int W>
using Width = std::integral_constant<int, W>;
template <bool S>
using Staged = std::integral_constant<bool, S>;
template <int M>
using Dirs = std::integral_constant<int, M>;

// Calls f(Dirs<m>{}) for the m = 1 .. kMaxInputs input coordinates (Taylor directions) a kernel is compiled for; the
// single switch from the run-time input width to a compiled kernel. Throws std::invalid_argument beyond.
template <class F>
void dispatch_dirs(int m, F&& f) {
  static_assert(kMaxInputs == 3, "one case per input width");
  switch (m) {
    case 1:
      return f(Dirs<1>{});
    case 2:
      return f(Dirs<2>{});
    case 3:
      return f(Dirs<3>{});
    default:
      throw std::invalid_argument("CUDA tile kernels take 1 to " + std::to_string(kMaxInputs) +
                                  " input coordinates, not " + std::to_string(m));
  }
}

// Calls f(Width<w>{}) where a kernel of M directions is compiled for width w (all hidden layers w wide), else
// f(Width<0>{}), the generic kernel. The single switch from the run-time width to a compiled kernel. In 1-D the
// widths 40, 50, 60, 64, 128; for M = 2, 3 only 40 (the paper's 4x40 network). Every width for every M (2 precisions
// x 3 operations x 2 placements x 6 widths x 3 M kernels, two architectures) made the kernel files take 3.5 times as
// long to compile; this list 1.75 times (nvcc CPU seconds for eval.cu, jacobian.cu and loss_gradient.cu: 26.5 s
// before the n-D kernels, 46 s with them).
template <int M, class F>
void dispatch_width(int w, F&& f) {
  if constexpr (M > 1) {
    if (w == 40) return f(Width<40>{});
    return f(Width<0>{});
  } else {
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
}

// Calls f(Staged<s>{}, Width<w>{}, Dirs<m>{}) for the variant the plan names.
template <class F>
void dispatch_tile(const TilePlan& plan, F&& f) {
  dispatch_dirs(plan.dirs, [&](auto dirs) {
    dispatch_width<decltype(dirs)::value>(plan.width, [&](auto width) {
      if (plan.staged) {
        f(Staged<true>{}, width, dirs);
      } else {
        f(Staged<false>{}, width, dirs);
      }
    });
  });
}

// Every tile kernel may use the device's whole opt-in shared memory (plan_tiles keeps within it).
inline int tile_smem_optin() { return static_cast<int>(device_limits().smem_optin + 1024); }

// Prepares the variant of kernel_of(Staged, Width, Dirs) that the plan names (cuda/launch.cuh, prepare_kernel): plans
// whose launches a graph will capture call it when they are made.
template <class KernelOf>
void prepare_tile(const TilePlan& plan, KernelOf kernel_of) {
  dispatch_tile(plan, [&](auto staged, auto width, auto dirs) {
    prepare_kernel(kernel_of(staged, width, dirs), tile_smem_optin());
  });
}

// Launches the variant of kernel_of(Staged, Width, Dirs) that the plan names, on the plan's grid times `members` in
// y (the members of a batch, cuda/members.cuh), with args; checks the launch. An empty plan (no points) launches
// nothing.
template <class KernelOf, class... Args>
void launch_tile_members(const TilePlan& plan, int members, cudaStream_t s, KernelOf kernel_of, Args... args) {
  if (plan.blocks <= 0) return;
  const dim3 grid(static_cast<unsigned>(plan.blocks), static_cast<unsigned>(members));
  dispatch_tile(plan, [&](auto staged, auto width, auto dirs) {
    const auto kernel = kernel_of(staged, width, dirs);
    prepare_kernel(kernel, tile_smem_optin());
    kernel<<<grid, plan.threads, plan.smem, s>>>(args...);
  });
  PINNTK_LAUNCH_CHECK();
}

// One network: the plan's grid.
template <class KernelOf, class... Args>
void launch_tile(const TilePlan& plan, cudaStream_t s, KernelOf kernel_of, Args... args) {
  launch_tile_members(plan, 1, s, kernel_of, args...);
}

}  // namespace pinntk::tile
