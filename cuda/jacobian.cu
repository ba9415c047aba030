// The Jacobian tile kernel's launcher; the kernel is cuda/jacobian_kernel.cuh, its phases cuda/tile_phases.cuh.
#include "cuda/jacobian.hpp"
#include "cuda/jacobian_kernel.cuh"  // jacobian_kernel
#include "cuda/launch.cuh"           // require
#include "cuda/tile_dispatch.cuh"    // launch_tile, Staged, Width

namespace pinntk {

// ---- launcher ----

template <class Real>
void launch_jacobian(const NetDesc& net, const Real* theta, DeviceRows<Real> rows, Real* r, Real* J, cudaStream_t s) {
  require(rows.n >= 0, "launch_jacobian", "negative number of rows");
  if (rows.n == 0) return;
  require(theta != nullptr && r != nullptr && J != nullptr, "launch_jacobian", "theta, r and J are needed");
  require(
      rows.x != nullptr && rows.alpha != nullptr && rows.beta != nullptr && rows.gamma != nullptr && rows.f != nullptr,
      "launch_jacobian", "the rows need x, alpha, beta, gamma and f");
  const TilePlan plan = plan_tiles<Real>(net, rows.n);
  const auto kernel_of = [](auto staged, auto width, auto dirs) {
    return jacobian_device::jacobian_kernel<Real, decltype(staged)::value, decltype(width)::value,
                                            decltype(dirs)::value>;
  };
  tile::launch_tile(plan, s, kernel_of, net, theta, rows, plan.T, r, J);
}

// ---- explicit instantiations ----
template void launch_jacobian<double>(const NetDesc&, const double*, DeviceRows<double>, double*, double*,
                                      cudaStream_t);
template void launch_jacobian<float>(const NetDesc&, const float*, DeviceRows<float>, float*, float*, cudaStream_t);

}  // namespace pinntk
