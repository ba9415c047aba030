// The loss-gradient tile kernel's plan and launchers; the kernel is cuda/loss_gradient_kernel.cuh, its phases
// cuda/tile_phases.cuh; with set_mma_gradient, the tensor-core kernel of cuda/mma_gradient_kernel.cuh.
#include <type_traits>  // std::is_same_v

#include "cuda/adam.hpp"    // prepare_adam_kernels
#include "cuda/check.cuh"   // PINNTK_LAUNCH_CHECK
#include "cuda/launch.cuh"  // require, prepare_kernel
#include "cuda/loss_gradient.hpp"
#include "cuda/loss_gradient_kernel.cuh"  // loss_gradient_kernel
#include "cuda/mma_gradient_kernel.cuh"   // mma_gradient_kernel, mma_layout
#include "cuda/reduce.hpp"                // prepare_reduce_kernels
#include "cuda/tile_dispatch.cuh"         // launch_tile_members, prepare_tile

namespace pinntk {
namespace {

template <class Real>
auto loss_gradient_variant() {
  return [](auto staged, auto width, auto dirs) {
    return gradient_device::loss_gradient_kernel<Real, decltype(staged)::value, decltype(width)::value,
                                                 decltype(dirs)::value>;
  };
}

// The tensor-core kernel's width (cuda/mma_gradient_kernel.cuh): compiled for 40.
constexpr int kMmaWidth = 40;

// The tensor-core plan for net and n points, when set_mma_gradient asks for it and it applies: fp64, one input, every
// hidden layer kMmaWidth wide, its shared memory within the device's.
template <class Real>
bool plan_mma(const NetDesc& net, int n, TilePlan& p) {
  if constexpr (!std::is_same_v<Real, double>) {
    return false;
  } else {
    if (!mma_gradient() || net.n_in() != 1 || net.uniform_width != kMmaWidth || n <= 0) return false;
    const size_t smem = static_cast<size_t>(mma_device::mma_layout(kMmaWidth, net.nl).size()) * sizeof(double);
    if (smem > device_limits().smem_optin) return false;
    p = TilePlan{};
    p.T = mma_device::kPoints;
    p.threads = mma_device::kThreads;
    p.blocks = (n + p.T - 1) / p.T;
    p.smem = smem;
    p.staged = true;
    p.width = kMmaWidth;
    p.dirs = 1;
    p.mma = true;
    prepare_kernel(mma_device::mma_gradient_kernel<kMmaWidth>, static_cast<int>(device_limits().smem_optin));
    return true;
  }
}

// The tensor-core kernel on the members' grid (fp64 only; plan.mma is never set for fp32).
template <class Real, class... A>
void launch_mma(const TilePlan& plan, int members, cudaStream_t s, A... args) {
  if constexpr (std::is_same_v<Real, double>) {
    prepare_kernel(mma_device::mma_gradient_kernel<kMmaWidth>, static_cast<int>(device_limits().smem_optin));
    mma_device::mma_gradient_kernel<kMmaWidth>
        <<<dim3(static_cast<unsigned>(plan.blocks), static_cast<unsigned>(members)), plan.threads, plan.smem, s>>>(
            args...);
    PINNTK_LAUNCH_CHECK();
  }
}

}  // namespace

// ---- plan and launcher ----

template <class Real>
GradientPlan plan_gradient(const NetDesc& net, int n) {
  require(n >= 0, "plan_gradient", "negative number of points");
  GradientPlan plan;
  plan.net = net;
  plan.n = n;
  if (!plan_mma<Real>(net, n, plan.tiles)) {
    plan.tiles = plan_tiles<Real>(net, n);
    if (n > 0) tile::prepare_tile(plan.tiles, loss_gradient_variant<Real>());
  }
  prepare_reduce_kernels<Real>();
  prepare_adam_kernels<Real>();
  return plan;
}

template <class Real>
void launch_gradient_partials(const Real* theta, DeviceRows<Real> rows, const GradientWorkspace<Real>& ws, Real* r,
                              unsigned long long* step, cudaStream_t s, const Members& mb) {
  const GradientPlan& plan = ws.plan();
  require(rows.n == plan.n, "launch_gradient_partials",
          "the workspace was planned for " + std::to_string(plan.n) + " rows, not " + std::to_string(rows.n));
  require_members(mb, ws.members(), "launch_gradient_partials");
  if (rows.n == 0) return;
  require(theta != nullptr, "launch_gradient_partials", "theta is needed");
  require(rows.x != nullptr && rows.alpha != nullptr && rows.beta != nullptr && rows.gamma != nullptr &&
              rows.f != nullptr && rows.w != nullptr,
          "launch_gradient_partials", "the rows need x, alpha, beta, gamma, f and w");
  if (plan.tiles.mma) {
    launch_mma<Real>(plan.tiles, mb.count, s, plan.net, theta, rows, ws.partial(), ws.partial_loss(), r, step, mb,
                     static_cast<const Real*>(nullptr));
    return;
  }
  tile::launch_tile_members(plan.tiles, mb.count, s, loss_gradient_variant<Real>(), plan.net, theta, rows, plan.tiles.T,
                            ws.partial(), ws.partial_loss(), r, step, mb, static_cast<const Real*>(nullptr));
}

template <class Real>
void launch_seeded_partials(const Real* theta, DeviceRows<Real> rows, const Real* seed,
                            const GradientWorkspace<Real>& ws, cudaStream_t s) {
  const GradientPlan& plan = ws.plan();
  require(rows.n == plan.n, "launch_seeded_partials",
          "the workspace was planned for " + std::to_string(plan.n) + " rows, not " + std::to_string(rows.n));
  if (rows.n == 0) return;
  require(theta != nullptr && seed != nullptr, "launch_seeded_partials", "theta and the seeds are needed");
  require(rows.x != nullptr && rows.alpha != nullptr && rows.beta != nullptr && rows.gamma != nullptr,
          "launch_seeded_partials", "the rows need x, alpha, beta and gamma");
  if (plan.tiles.mma) {
    launch_mma<Real>(plan.tiles, 1, s, plan.net, theta, rows, ws.partial(), ws.partial_loss(),
                     static_cast<Real*>(nullptr), static_cast<unsigned long long*>(nullptr), Members{}, seed);
    return;
  }
  tile::launch_tile_members(plan.tiles, 1, s, loss_gradient_variant<Real>(), plan.net, theta, rows, plan.tiles.T,
                            ws.partial(), ws.partial_loss(), static_cast<Real*>(nullptr),
                            static_cast<unsigned long long*>(nullptr), Members{}, seed);
}

// ---- explicit instantiations ----
#define PINNTK_INSTANTIATE(Real)                                                                                     \
  template GradientPlan plan_gradient<Real>(const NetDesc&, int);                                                    \
  template void launch_gradient_partials<Real>(const Real*, DeviceRows<Real>, const GradientWorkspace<Real>&, Real*, \
                                               unsigned long long*, cudaStream_t, const Members&);                   \
  template void launch_seeded_partials<Real>(const Real*, DeviceRows<Real>, const Real*,                             \
                                             const GradientWorkspace<Real>&, cudaStream_t);
PINNTK_INSTANTIATE(double)
PINNTK_INSTANTIATE(float)
#undef PINNTK_INSTANTIATE

}  // namespace pinntk
