// The evaluation tile kernel's launcher; the kernel is cuda/eval_kernel.cuh.
#include "cuda/eval.hpp"
#include "cuda/eval_kernel.cuh"    // eval_kernel
#include "cuda/launch.cuh"         // require
#include "cuda/tile_dispatch.cuh"  // launch_tile

namespace pinntk {

// ---- launcher ----

template <class Real>
void launch_eval(const NetDesc& net, const Real* theta, const Real* x, int n, Real* u, Real* du, Real* d2u,
                 cudaStream_t s) {
  require(n >= 0, "launch_eval", "negative number of points");
  if (n == 0) return;
  require(theta != nullptr && x != nullptr, "launch_eval", "theta and x are needed");
  require(u != nullptr && du != nullptr && d2u != nullptr, "launch_eval", "u, du and d2u are needed");
  const TilePlan plan = plan_tiles<Real>(net, n);
  const auto kernel_of = [](auto staged, auto width, auto dirs) {
    return eval_device::eval_kernel<Real, decltype(staged)::value, decltype(width)::value, decltype(dirs)::value>;
  };
  tile::launch_tile(plan, s, kernel_of, net, theta, x, n, plan.T, u, du, d2u);
}

// ---- explicit instantiations ----
template void launch_eval<double>(const NetDesc&, const double*, const double*, int, double*, double*, double*,
                                  cudaStream_t);
template void launch_eval<float>(const NetDesc&, const float*, const float*, int, float*, float*, float*, cudaStream_t);

}  // namespace pinntk
