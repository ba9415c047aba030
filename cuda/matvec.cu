// J u without J (DESIGN.md section 8): the launcher; the kernel is cuda/matvec_kernel.cuh.
#include <algorithm>  // std::min, std::max
#include <string>     // std::to_string

#include "cuda/check.cuh"   // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"  // require, grid_for, prepare_kernel
#include "cuda/matvec.hpp"
#include "cuda/matvec_kernel.cuh"  // jacobian_times_kernel, row_entries, kMaxWarps, kSmemTarget
#include "cuda/tile_dispatch.cuh"  // dispatch_dirs, tile_smem_optin
#include "cuda/tile_plan.hpp"      // NetDesc, DeviceRows, device_limits

namespace pinntk {
namespace {

using namespace matvec_device;  // NOLINT(google-build-using-namespace): the kernel and its sizes

}  // namespace

// ---- launcher ----

template <class Real>
void launch_jacobian_times(const NetDesc& net, const Real* theta, const Real* dtheta, DeviceRows<Real> rows, Real* out,
                           cudaStream_t s) {
  require(rows.n >= 0, "launch_jacobian_times", "negative number of rows");
  if (rows.n == 0) return;
  require(theta != nullptr && dtheta != nullptr && out != nullptr, "launch_jacobian_times",
          "theta, the direction and out are needed");
  require(rows.x != nullptr && rows.alpha != nullptr && rows.beta != nullptr && rows.gamma != nullptr,
          "launch_jacobian_times", "the rows need x, alpha, beta and gamma");
  const size_t per_row = row_entries(net) * sizeof(Real);
  const size_t optin = device_limits().smem_optin;
  require(per_row <= optin, "launch_jacobian_times",
          "one row's jets need " + std::to_string(per_row) + " bytes of shared memory, the device has " +
              std::to_string(optin));
  const int warps =
      static_cast<int>(std::max<size_t>(1, std::min<size_t>(kMaxWarps, std::min(kSmemTarget, optin) / per_row)));
  const size_t smem = per_row * static_cast<size_t>(warps);
  const unsigned blocks = grid_for(static_cast<size_t>(rows.n), warps);
  tile::dispatch_dirs(net.n_in(), [&](auto dirs) {
    const auto kernel = jacobian_times_kernel<Real, decltype(dirs)::value>;
    prepare_kernel(kernel, tile::tile_smem_optin());
    kernel<<<blocks, 32 * warps, smem, s>>>(net, theta, dtheta, rows, out);
  });
  PINNTK_LAUNCH_CHECK();
}

// ---- explicit instantiations ----
#define PINNTK_INSTANTIATE(Real)                                                                               \
  template void launch_jacobian_times<Real>(const NetDesc&, const Real*, const Real*, DeviceRows<Real>, Real*, \
                                            cudaStream_t);
PINNTK_INSTANTIATE(double)
PINNTK_INSTANTIATE(float)
#undef PINNTK_INSTANTIATE

}  // namespace pinntk
