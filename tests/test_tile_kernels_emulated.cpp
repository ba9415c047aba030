// The Jacobian tile kernel (cuda/jacobian_kernel.cuh, and through it every tile phase of cuda/tile_phases.cuh that
// the loss-gradient kernel shares) run on the CPU, each of its 256 threads a host thread (tests/block_emulator.hpp),
// against the CPU backend's residuals and Jacobian: weights staged in shared memory or read from global memory, the
// width-40 path and the generic one, 1-D and 2-D inputs, fp64 and fp32, a last block with fewer points than the others,
// and no write past the dynamic shared memory the launcher would give. What the GPU tests check on a device, checked in
// every CI run.
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::fabs
#include <string>     // std::string
#include <vector>     // std::vector

#include "tests/block_emulator.hpp"
// The emulator first: the device code is compiled against it.
#include "cuda/jacobian_kernel.cuh"  // jacobian_kernel
#include "cuda/tile_plan.hpp"        // make_net_desc, NetDesc, DeviceRows
#include "host/backend.hpp"          // make_cpu_backend
#include "host/mlp.hpp"              // init_mlp
#include "host/problem.hpp"          // problem_preset, build_points

namespace pinntk {
namespace {

template <class Real>
std::vector<Real> as(const std::vector<double>& v) {
  return std::vector<Real>(v.begin(), v.end());
}

// r and J of the kernel <Real, STAGED, WIDTH, M> on the rows, T points a block, 256 threads; false in `intact` if a
// block wrote past the dynamic shared memory plan_tiles would give it.
template <class Real, bool STAGED, int WIDTH, int M>
void run_jacobian(const Mlp& net, const PointSet& pts, int T, std::vector<double>& r, std::vector<double>& J,
                  bool& intact) {
  const NetDesc nd = make_net_desc(net.layers);
  const int n = pts.size();
  const std::vector<Real> theta = as<Real>(net.theta), x = as<Real>(pts.x), alpha = as<Real>(pts.alpha),
                          beta = as<Real>(pts.beta), gamma = as<Real>(pts.gamma), f = as<Real>(pts.f),
                          w = as<Real>(pts.w);
  const DeviceRows<Real> rows{x.data(), alpha.data(), beta.data(), gamma.data(), f.data(), w.data(), n};
  std::vector<Real> rr(n, Real(-7)), JJ(static_cast<size_t>(n) * nd.P, Real(-7));
  const size_t smem = (static_cast<size_t>(nd.tape) + static_cast<size_t>(nd.adj()) + 1) * sizeof(Real) * T +
                      (STAGED ? static_cast<size_t>(nd.staged) * sizeof(Real) : 0);
  const unsigned blocks = static_cast<unsigned>((n + T - 1) / T);
  intact = emu::run_blocks(
      blocks, 256,
      [&] {
        jacobian_device::jacobian_kernel<Real, STAGED, WIDTH, M>(nd, theta.data(), rows, T, rr.data(), JJ.data());
      },
      smem);
  r.assign(rr.begin(), rr.end());
  J.assign(JJ.begin(), JJ.end());
}

void expect_near(const std::vector<double>& a, const std::vector<double>& ref, double rtol, const std::string& what) {
  ASSERT_EQ(a.size(), ref.size()) << what;
  double scale = 0.0;
  for (double v : ref) scale = std::max(scale, std::fabs(v));
  size_t bad = 0, worst = 0;
  double worst_err = -1.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(a[i] - ref[i]);
    if (!(err <= rtol * scale)) ++bad;
    if (!(err <= worst_err)) worst_err = err, worst = i;
  }
  EXPECT_EQ(bad, 0u) << what << ": worst entry " << worst << ": " << a[worst] << " against " << ref[worst] << " (scale "
                     << scale << ")";
}

template <class Real, bool STAGED, int WIDTH, int M>
void check_case(const std::string& problem, const std::vector<int>& layers, int nc, int T) {
  ProblemSpec spec = problem_preset(problem);
  spec.nc = nc;
  if (spec.dim > 1) spec.nb = 8;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp(layers, "glorot-normal", 3);
  std::vector<double> r_ref(pts.size()), J_ref(static_cast<size_t>(pts.size()) * net.n_params());
  make_cpu_backend(1)->residuals_jacobian(net, pts, r_ref, J_ref);
  std::vector<double> r, J;
  bool intact = false;
  run_jacobian<Real, STAGED, WIDTH, M>(net, pts, T, r, J, intact);
  const std::string what = problem + (STAGED ? " staged" : " global") + (WIDTH ? " width-40" : " generic") +
                           (sizeof(Real) == 8 ? " fp64" : " fp32") + " T=" + std::to_string(T);
  const double rtol = sizeof(Real) == 8 ? 1e-12 : 2e-5;
  EXPECT_TRUE(intact) << what << ": a block wrote past its dynamic shared memory";
  expect_near(r, r_ref, rtol, what + " residuals");
  expect_near(J, J_ref, rtol, what + " Jacobian");
}

TEST(TileKernelsEmulated, JacobianMatchesTheCpuBackendInOneDimension) {
  const std::vector<int> wide = {1, 40, 40, 40, 1}, odd = {1, 7, 9, 1};
  check_case<double, true, 40, 1>("darcy-twoscale", wide, 9, 4);  // 11 rows: blocks of 4, 4, 3
  check_case<double, false, 40, 1>("darcy-twoscale", wide, 9, 4);
  check_case<double, true, 0, 1>("darcy-twoscale", wide, 9, 3);
  check_case<double, true, 0, 1>("poisson-twoscale", odd, 5, 2);
  check_case<float, true, 40, 1>("darcy-twoscale", wide, 9, 4);
}

TEST(TileKernelsEmulated, JacobianMatchesTheCpuBackendInTwoDimensions) {
  check_case<double, true, 40, 2>("darcy2d-twoscale", {2, 40, 40, 1}, 9, 4);
  check_case<double, false, 0, 2>("poisson2d-sines", {2, 10, 12, 1}, 9, 3);
}

}  // namespace
}  // namespace pinntk
