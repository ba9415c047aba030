// The tile kernels (cuda/jacobian_kernel.cuh, cuda/loss_gradient_kernel.cuh and their phases, cuda/tile_phases.cuh)
// run on the CPU, each of their 256 threads a host thread (tests/block_emulator.hpp), against the CPU backend: the
// residuals and Jacobian; the loss, the gradient (the blocks' partials summed) and the residuals, for one network and
// for a batch of two members on rows of their own (grid y); the partials seeded with y, J^T y. Weights staged in shared
// memory or read from global memory, the width-40 path and the generic one, 1-D and 2-D inputs, fp64 and fp32, a last
// block with fewer points than the others, and no write past the dynamic shared memory the launcher would give. What
// the GPU tests check on a device, checked in every CI run.
#include <gtest/gtest.h>

#include <cmath>     // std::cos, std::sin, std::pow
#include <cstdint>   // uint64_t
#include <optional>  // std::optional
#include <random>    // std::mt19937
#include <string>    // std::string
#include <utility>   // std::pair
#include <vector>    // std::vector

#include "tests/block_emulator.hpp"
// The emulator first: the device code is compiled against it.
#include "cuda/adam_kernel.cuh"           // reduce_gradient_adam_kernel
#include "cuda/eval_kernel.cuh"           // eval_kernel
#include "cuda/jacobian_kernel.cuh"       // jacobian_kernel
#include "cuda/loss_gradient_kernel.cuh"  // loss_gradient_kernel
#include "cuda/matvec_kernel.cuh"         // jacobian_times_kernel, row_entries
#include "cuda/mma_gradient_kernel.cuh"   // mma_gradient_kernel, mma_layout
#include "cuda/tile_plan.hpp"             // make_net_desc, NetDesc, DeviceRows
#include "host/backend.hpp"               // make_cpu_backend
#include "host/mlp.hpp"                   // init_mlp
#include "host/problem.hpp"               // problem_preset, build_points
#include "tests/near.hpp"                 // all_near
#include "tests/random_net.hpp"           // random_net

namespace pinntk {
namespace {

using testing::all_near;

template <class Real>
std::vector<Real> as(const std::vector<double>& v) {
  return std::vector<Real>(v.begin(), v.end());
}

// The tolerance of a kernel's result against the CPU backend's: rounding in fp64, fp32's unit roundoff times the
// few hundred terms of a sum in fp32.
template <class Real>
constexpr double kernel_rtol() {
  return sizeof(Real) == 8 ? 1e-12 : 2e-5;
}

// A small problem's rows: nc collocation points, 4 boundary points a face in n-D (a 2 x 2 grid on each face in 3-D),
// eps where given. With dirs (n-D) every row takes dim random directions of its own (PointSet::dirs, what a full
// coefficient tensor gives; the kernels need no orthonormal basis), alpha and beta read as coefficients along them.
PointSet small_rows(const std::string& problem, int nc, std::optional<double> eps = std::nullopt, bool dirs = false) {
  ProblemSpec spec = problem_preset(problem);
  spec.nc = nc;
  if (eps) spec.eps = *eps;
  if (spec.dim > 1) spec.nb = 8 * spec.dim;
  PointSet pts = build_points(spec);
  if (dirs) {
    std::mt19937 gen(static_cast<unsigned>(nc) + 29u);
    std::normal_distribution<double> g(0.0, 1.0);
    pts.dirs.resize(static_cast<size_t>(pts.size()) * pts.dim * pts.dim);
    for (double& v : pts.dirs) v = g(gen);
  }
  return pts;
}

// A PointSet's rows in Real and the kernels' view of them (what DevicePoints holds on a device).
template <class Real>
struct HostRows {
  explicit HostRows(const PointSet& p)
      : x(as<Real>(p.x)),
        alpha(as<Real>(p.alpha)),
        beta(as<Real>(p.beta)),
        gamma(as<Real>(p.gamma)),
        f(as<Real>(p.f)),
        w(as<Real>(p.w)),
        dirs(as<Real>(p.dirs)),
        n(p.size()) {}
  DeviceRows<Real> view() const {
    return {x.data(), alpha.data(), beta.data(), gamma.data(),
            f.data(), w.data(),     n,           dirs.empty() ? nullptr : dirs.data()};
  }
  std::vector<Real> x, alpha, beta, gamma, f, w, dirs;
  int n;
};

// The dynamic shared memory plan_tiles gives a kernel of T points.
template <class Real, bool STAGED>
size_t tile_smem(const NetDesc& nd, int T) {
  return (static_cast<size_t>(nd.tape_stride()) + static_cast<size_t>(nd.adj_stride()) + 1) * sizeof(Real) * T +
         (STAGED ? static_cast<size_t>(nd.staged) * sizeof(Real) : 0);
}

// A tile kernel variant's name in failure messages.
template <class Real, bool STAGED, int WIDTH>
std::string variant_name(const std::string& problem, int T, bool dirs = false) {
  return problem + (STAGED ? " staged" : " global") + (WIDTH ? " width-40" : " generic") +
         (sizeof(Real) == 8 ? " fp64" : " fp32") + " T=" + std::to_string(T) + (dirs ? " own directions" : "");
}

// r and J of the kernel <Real, STAGED, WIDTH, M> on the rows, T points a block, 256 threads; false in `intact` if a
// block wrote past the dynamic shared memory plan_tiles would give it.
template <class Real, bool STAGED, int WIDTH, int M>
void run_jacobian(const Mlp& net, const PointSet& pts, int T, std::vector<double>& r, std::vector<double>& J,
                  bool& intact) {
  const NetDesc nd = make_net_desc(net.layers);
  const int n = pts.size();
  const std::vector<Real> theta = as<Real>(net.theta);
  const HostRows<Real> rows(pts);
  std::vector<Real> rr(n, Real(-7)), JJ(static_cast<size_t>(n) * nd.P, Real(-7));
  intact = emu::run_blocks(
      static_cast<unsigned>((n + T - 1) / T), 256,
      [&] {
        jacobian_device::jacobian_kernel<Real, STAGED, WIDTH, M>(nd, theta.data(), rows.view(), T, rr.data(),
                                                                 JJ.data());
      },
      tile_smem<Real, STAGED>(nd, T));
  r.assign(rr.begin(), rr.end());
  J.assign(JJ.begin(), JJ.end());
}

template <class Real, bool STAGED, int WIDTH, int M>
void check_case(const std::string& problem, const std::vector<int>& layers, int nc, int T, bool dirs = false) {
  const PointSet pts = small_rows(problem, nc, std::nullopt, dirs);
  const Mlp net = testing::random_net(layers, 3);
  std::vector<double> r_ref(pts.size()), J_ref(static_cast<size_t>(pts.size()) * net.n_params());
  make_cpu_backend(1)->residuals_jacobian(net, pts, r_ref, J_ref);
  std::vector<double> r, J;
  bool intact = false;
  run_jacobian<Real, STAGED, WIDTH, M>(net, pts, T, r, J, intact);
  const std::string what = variant_name<Real, STAGED, WIDTH>(problem, T, dirs);
  EXPECT_TRUE(intact) << what << ": a block wrote past its dynamic shared memory";
  EXPECT_TRUE(all_near(r, r_ref, kernel_rtol<Real>())) << what << " residuals";
  EXPECT_TRUE(all_near(J, J_ref, kernel_rtol<Real>())) << what << " Jacobian";
}

// The loss-gradient kernel on B members (each its own network and rows, concatenated; grid y = B) or, with a seed,
// on one network: per member the loss (partial losses summed), the gradient (partials summed over the blocks in
// order) and the residuals.
template <class Real, bool STAGED, int WIDTH, int M, bool MMA = false>
void run_gradient(const std::vector<Mlp>& nets, const std::vector<PointSet>& pts, int T,
                  const std::vector<double>* seed, std::vector<double>& loss, std::vector<std::vector<double>>& grad,
                  std::vector<double>& r, bool& intact) {
  const NetDesc nd = make_net_desc(nets[0].layers);
  const int B = static_cast<int>(nets.size()), n = pts[0].size();
  // The members' parameters and rows one after the other; the view's n is one member's row count.
  std::vector<double> theta_all;
  PointSet all;
  for (int b = 0; b < B; ++b) {
    theta_all.insert(theta_all.end(), nets[b].theta.begin(), nets[b].theta.end());
    for (auto [to, from] :
         {std::pair{&all.x, &pts[b].x}, std::pair{&all.alpha, &pts[b].alpha}, std::pair{&all.beta, &pts[b].beta},
          std::pair{&all.gamma, &pts[b].gamma}, std::pair{&all.f, &pts[b].f}, std::pair{&all.w, &pts[b].w},
          std::pair{&all.dirs, &pts[b].dirs}})
      to->insert(to->end(), from->begin(), from->end());
  }
  const std::vector<Real> theta = as<Real>(theta_all);
  const std::vector<Real> sr = seed ? as<Real>(*seed) : std::vector<Real>();
  const HostRows<Real> host_rows(all);
  DeviceRows<Real> rows = host_rows.view();
  rows.n = n;
  const unsigned blocks = static_cast<unsigned>((n + T - 1) / T);
  std::vector<Real> partial(static_cast<size_t>(B) * blocks * nd.P, Real(-7)),
      partial_loss(static_cast<size_t>(B) * blocks, Real(-7)), rr(static_cast<size_t>(B) * n, Real(-7));
  std::vector<unsigned long long> step(B, 0);
  Members mb;
  mb.count = B;
  mb.shared_rows = false;
  intact = emu::run_grid(
      emu::Dim3{blocks, static_cast<unsigned>(B), 1}, emu::Dim3{256, 1, 1},
      [&] {
        if constexpr (MMA) {
          mma_device::mma_gradient_kernel<WIDTH>(nd, theta.data(), rows, partial.data(), partial_loss.data(),
                                                 seed ? nullptr : rr.data(), seed ? nullptr : step.data(), mb,
                                                 seed ? sr.data() : nullptr);
        } else {
          gradient_device::loss_gradient_kernel<Real, STAGED, WIDTH, M>(
              nd, theta.data(), rows, T, partial.data(), partial_loss.data(), seed ? nullptr : rr.data(),
              seed ? nullptr : step.data(), mb, seed ? sr.data() : nullptr);
        }
      },
      MMA ? mma_device::mma_layout(WIDTH, nd.nl).size() * sizeof(double) : tile_smem<Real, STAGED>(nd, T));
  loss.assign(B, 0.0);
  grad.assign(B, std::vector<double>(nd.P, 0.0));
  for (int b = 0; b < B; ++b)
    for (unsigned k = 0; k < blocks; ++k) {
      loss[b] += partial_loss[static_cast<size_t>(b) * blocks + k];
      for (int p = 0; p < nd.P; ++p) grad[b][p] += partial[(static_cast<size_t>(b) * blocks + k) * nd.P + p];
    }
  r.assign(rr.begin(), rr.end());
  if (!seed) {
    for (int b = 0; b < B; ++b) EXPECT_EQ(step[b], 1u) << "member " << b << "'s step count";
  }
}

template <class Real, bool STAGED, int WIDTH, int M, bool MMA = false>
void check_gradient_case(const std::string& problem, const std::vector<double>& eps, const std::vector<int>& layers,
                         int nc, int T, bool dirs = false) {
  std::vector<PointSet> pts;
  std::vector<Mlp> nets;
  for (size_t b = 0; b < eps.size(); ++b) {
    pts.push_back(small_rows(problem, nc, eps[b], dirs));
    nets.push_back(testing::random_net(layers, static_cast<unsigned>(11 + b)));
  }
  if (dirs && pts.size() > 1) {  // the second member's directions differ from the first's
    for (double& v : pts[1].dirs) v = -0.5 * v + 0.25;
  }
  const std::string what = variant_name<Real, STAGED, WIDTH>(problem, T, dirs) + (MMA ? " tensor cores" : "");
  const double rtol = kernel_rtol<Real>();
  std::vector<double> loss, r;
  std::vector<std::vector<double>> grad;
  bool intact = false;
  run_gradient<Real, STAGED, WIDTH, M, MMA>(nets, pts, T, nullptr, loss, grad, r, intact);
  EXPECT_TRUE(intact) << what << ": a block wrote past its dynamic shared memory";
  auto cpu = make_cpu_backend(1);
  const int n = pts[0].size();
  for (size_t b = 0; b < nets.size(); ++b) {
    std::vector<double> r_ref(n), g_ref(nets[b].n_params());
    const double l_ref = cpu->loss_gradient(nets[b], pts[b], r_ref, g_ref);
    const std::string who = what + ", member " + std::to_string(b);
    EXPECT_TRUE(all_near({loss[b]}, {l_ref}, rtol)) << who << " loss";
    EXPECT_TRUE(all_near(grad[b], g_ref, rtol)) << who << " gradient";
    EXPECT_TRUE(all_near({r.begin() + static_cast<long>(b) * n, r.begin() + static_cast<long>(b + 1) * n}, r_ref, rtol))
        << who << " residuals";
  }
  // Seeded with y (one network): the partials sum to J^T y.
  std::vector<double> y(n);
  for (int k = 0; k < n; ++k) y[k] = std::sin(1.0 + 0.7 * k);
  std::vector<double> jty_ref(nets[0].n_params());
  cpu->jacobian_transpose_times(nets[0], pts[0], y, jty_ref);
  run_gradient<Real, STAGED, WIDTH, M, MMA>({nets[0]}, {pts[0]}, T, &y, loss, grad, r, intact);
  EXPECT_TRUE(intact) << what << " seeded: a block wrote past its dynamic shared memory";
  EXPECT_EQ(loss[0], 0.0) << what << ": a seeded pass writes zero partial losses";
  EXPECT_TRUE(all_near(grad[0], jty_ref, rtol)) << what << " J^T y";
}

TEST(TileKernelsEmulated, LossGradientMatchesTheCpuBackend) {
  const std::vector<int> wide = {1, 40, 40, 40, 1};
  // Two members on rows of their own (eps 1/8 and 1/16), 11 rows each: blocks of 4, 4, 3.
  check_gradient_case<double, true, 40, 1>("darcy-twoscale", {1.0 / 8, 1.0 / 16}, wide, 9, 4);
  check_gradient_case<double, false, 0, 1>("darcy-twoscale", {1.0 / 8}, wide, 9, 3);
  check_gradient_case<float, true, 40, 1>("darcy-twoscale", {1.0 / 8}, wide, 9, 4);
  check_gradient_case<double, true, 0, 2>("poisson2d-sines", {1.0, 1.0}, {2, 10, 12, 1}, 9, 3);
}

// The fused reduction and Adam update (cuda/adam_kernel.cuh, the phases of cuda/reduce_phases.cuh) for two members:
// bit for bit the documented order (row y of a block sums partials y, y + 32, ...; the rows added as a binary tree; one
// warp strides over the partial losses, then a shuffle tree), then adam_update with the bias corrections of the
// member's step; a member whose active flag is 0 is left as it was.
TEST(TileKernelsEmulated, FusedReductionAndAdamFollowTheirFixedOrder) {
  const int P = 77, blocks = 71, B = 3;
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> partial(static_cast<size_t>(B) * blocks * P), partial_loss(static_cast<size_t>(B) * blocks);
  for (double& v : partial) v = u(gen);
  for (double& v : partial_loss) v = 1.0 + u(gen);
  std::vector<double> theta(static_cast<size_t>(B) * P), m(theta.size()), v(theta.size()), loss(B, -1.0);
  for (size_t i = 0; i < theta.size(); ++i) theta[i] = u(gen), m[i] = 0.1 * u(gen), v[i] = 0.01 * (1.0 + u(gen));
  const std::vector<double> theta0 = theta, m0 = m, v0 = v;
  const double lr = 1e-3;
  const std::vector<unsigned long long> step = {5, 17, 2};
  const std::vector<int> active = {1, 0, 1};
  const AdamParams adam{0.9, 0.999, 1e-8};
  Members mb;
  mb.count = B;
  mb.active = active.data();
  emu::run_grid(emu::Dim3{reduce::reduce_blocks(P), static_cast<unsigned>(B), 1},
                emu::Dim3{32, static_cast<unsigned>(reduce::kReduceRows), 1}, [&] {
                  adam_device::reduce_gradient_adam_kernel<double>(P, blocks, partial.data(), partial_loss.data(),
                                                                   loss.data(), theta.data(), m.data(), v.data(), &lr,
                                                                   step.data(), adam, mb);
                });
  for (int b = 0; b < B; ++b) {
    const size_t o = static_cast<size_t>(b) * P;
    if (!active[b]) {
      EXPECT_EQ(loss[b], -1.0);
      for (int p = 0; p < P; ++p) ASSERT_TRUE(theta[o + p] == theta0[o + p] && m[o + p] == m0[o + p]) << b << " " << p;
      continue;
    }
    // The loss: lane l sums partial losses l, l + 32, ...; then s_l += s_{l + o} for o = 16, 8, 4, 2, 1.
    std::vector<double> lanes(32, 0.0);
    for (int l = 0; l < 32; ++l)
      for (int k = l; k < blocks; k += 32) lanes[l] += partial_loss[static_cast<size_t>(b) * blocks + k];
    for (int off = 16; off > 0; off /= 2) {
      const std::vector<double> before = lanes;
      for (int l = 0; l + off < 32; ++l) lanes[l] += before[l + off];
    }
    EXPECT_EQ(loss[b], lanes[0]) << "member " << b << "'s loss";
    const double t = static_cast<double>(step[b]);
    for (int p = 0; p < P; ++p) {
      double rows[reduce::kReduceRows] = {};
      for (int y = 0; y < reduce::kReduceRows; ++y)
        for (int k = y; k < blocks; k += reduce::kReduceRows)
          rows[y] += partial[(static_cast<size_t>(b) * blocks + k) * P + p];
      for (int s = reduce::kReduceRows / 2; s > 0; s /= 2)  // the rows' fixed binary tree
        for (int y = 0; y < s; ++y) rows[y] += rows[y + s];
      const double g = rows[0];
      double th = theta0[o + p], mm = m0[o + p], vv = v0[o + p];
      adam_update(th, mm, vv, g, lr, adam, 1.0 - std::pow(adam.beta1, t), 1.0 - std::pow(adam.beta2, t));
      ASSERT_EQ(theta[o + p], th) << "member " << b << ", parameter " << p;
      ASSERT_EQ(m[o + p], mm) << "member " << b << ", parameter " << p;
      ASSERT_EQ(v[o + p], vv) << "member " << b << ", parameter " << p;
    }
  }
}

// J u by the matrix-free kernel (cuda/matvec_kernel.cuh: one warp per row, 8 warps a block, warps past the last row
// returning whole) against the CPU backend's jacobian_times, 1-D and 2-D, fp64 and fp32.
template <class Real, int M>
void check_jacobian_times(const std::string& problem, const std::vector<int>& layers, int nc, bool dirs = false) {
  const PointSet pts = small_rows(problem, nc, std::nullopt, dirs);
  const Mlp net = testing::random_net(layers, 5);
  const NetDesc nd = make_net_desc(layers);
  const int n = pts.size();
  std::vector<double> dir(net.n_params());
  for (size_t p = 0; p < dir.size(); ++p) dir[p] = std::cos(0.3 * static_cast<double>(p));
  std::vector<double> ref(n);
  make_cpu_backend(1)->jacobian_times(net, pts, dir, ref);
  const std::vector<Real> theta = as<Real>(net.theta), d = as<Real>(dir);
  const HostRows<Real> rows(pts);
  std::vector<Real> out(n, Real(-7));
  constexpr int kWarps = 8;
  const bool intact = emu::run_blocks(
      static_cast<unsigned>((n + kWarps - 1) / kWarps), 32 * kWarps,
      [&] { matvec_device::jacobian_times_kernel<Real, M>(nd, theta.data(), d.data(), rows.view(), out.data()); },
      matvec_device::row_entries(nd) * sizeof(Real) * kWarps);
  const std::string what = problem + (sizeof(Real) == 8 ? " fp64" : " fp32") + " J u" + (dirs ? " own directions" : "");
  EXPECT_TRUE(intact) << what << ": a block wrote past its dynamic shared memory";
  EXPECT_TRUE(all_near({out.begin(), out.end()}, ref, kernel_rtol<Real>())) << what;
}

TEST(TileKernelsEmulated, JacobianTimesMatchesTheCpuBackend) {
  check_jacobian_times<double, 1>("darcy-twoscale", {1, 40, 40, 40, 1}, 9);  // 11 rows: the second block's last
  check_jacobian_times<float, 1>("darcy-twoscale", {1, 40, 40, 40, 1}, 9);   // five warps have no row
  check_jacobian_times<double, 2>("poisson2d-sines", {2, 10, 36, 1}, 9);     // 36 > 32: lanes take two neurons
}

// u and its derivatives along the axes by the evaluation kernel (cuda/eval_kernel.cuh) against the CPU backend's
// evaluate, 1-D (width-40 path, staged) and 2-D (generic, global weights), a short last block.
template <class Real, bool STAGED, int WIDTH, int M>
void check_eval(const std::vector<int>& layers, int n, int T) {
  const Mlp net = testing::random_net(layers, 9);
  const NetDesc nd = make_net_desc(layers);
  std::vector<double> x(static_cast<size_t>(n) * M);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i) + 0.1);
  std::vector<double> u_ref(n), du_ref(x.size()), d2u_ref(x.size());
  make_cpu_backend(1)->evaluate(net, x, u_ref, du_ref, d2u_ref);
  const std::vector<Real> theta = as<Real>(net.theta), xr = as<Real>(x);
  std::vector<Real> u(n, Real(-7)), du(x.size(), Real(-7)), d2u(x.size(), Real(-7));
  const bool intact = emu::run_blocks(
      static_cast<unsigned>((n + T - 1) / T), 256,
      [&] {
        eval_device::eval_kernel<Real, STAGED, WIDTH, M>(nd, theta.data(), xr.data(), n, T, u.data(), du.data(),
                                                         d2u.data());
      },
      tile_smem<Real, STAGED>(nd, T));
  const std::string what = std::string("eval ") + std::to_string(M) + "-D" + (sizeof(Real) == 8 ? " fp64" : " fp32");
  const double rtol = kernel_rtol<Real>();
  EXPECT_TRUE(intact) << what << ": a block wrote past its dynamic shared memory";
  EXPECT_TRUE(all_near({u.begin(), u.end()}, u_ref, rtol)) << what << " u";
  EXPECT_TRUE(all_near({du.begin(), du.end()}, du_ref, rtol)) << what << " du";
  EXPECT_TRUE(all_near({d2u.begin(), d2u.end()}, d2u_ref, rtol)) << what << " d2u";
}

TEST(TileKernelsEmulated, EvaluationMatchesTheCpuBackend) {
  check_eval<double, true, 40, 1>({1, 40, 40, 40, 1}, 10, 4);
  check_eval<float, true, 40, 1>({1, 40, 40, 40, 1}, 10, 4);
  check_eval<double, false, 0, 2>({2, 12, 9, 1}, 7, 3);
}

TEST(TileKernelsEmulated, JacobianMatchesTheCpuBackendInOneDimension) {
  const std::vector<int> wide = {1, 40, 40, 40, 1}, odd = {1, 7, 9, 1};
  check_case<double, true, 40, 1>("darcy-twoscale", wide, 9, 4);  // 11 rows: blocks of 4, 4, 3
  check_case<double, false, 40, 1>("darcy-twoscale", wide, 9, 4);
  check_case<double, true, 0, 1>("darcy-twoscale", wide, 9, 3);
  check_case<double, true, 0, 1>("poisson-twoscale", odd, 5, 2);
  check_case<float, true, 40, 1>("darcy-twoscale", wide, 9, 4);
}

TEST(TileKernelsEmulated, ThreeDimensionalInputs) {
  check_case<double, true, 40, 3>("poisson3d-sines", {3, 40, 40, 1}, 9, 4);
  check_case<double, false, 0, 3>("poisson3d-sines", {3, 8, 10, 1}, 9, 3);
  check_gradient_case<double, true, 40, 3>("poisson3d-sines", {1.0, 1.0}, {3, 40, 40, 1}, 9, 4);
  check_eval<double, true, 0, 3>({3, 8, 10, 1}, 7, 2);
}

TEST(TileKernelsEmulated, JacobianMatchesTheCpuBackendInTwoDimensions) {
  check_case<double, true, 40, 2>("darcy2d-twoscale", {2, 40, 40, 1}, 9, 4);
  check_case<double, false, 0, 2>("poisson2d-sines", {2, 10, 12, 1}, 9, 3);
}

// Rows with their own directions (a full coefficient tensor, DeviceRows::dirs): z'_k = W^1 v_k in the forward pass,
// every z'_k's adjoint times v_kj in W^1's entries, h'_k = v_k in J u. The Jacobian (width-40 staged and generic),
// the loss and gradient of two members whose directions differ plus J^T y, and J u, in 2-D and 3-D, fp64 and fp32.
TEST(TileKernelsEmulated, RowsWithTheirOwnDirections) {
  check_case<double, true, 40, 2>("poisson2d-sines", {2, 40, 40, 1}, 9, 4, true);
  check_case<double, false, 0, 3>("poisson3d-sines", {3, 8, 10, 1}, 9, 3, true);
  check_case<float, true, 40, 2>("poisson2d-sines", {2, 40, 40, 1}, 9, 4, true);
  check_gradient_case<double, true, 40, 2>("poisson2d-sines", {1.0, 1.0}, {2, 40, 40, 1}, 9, 4, true);
  check_gradient_case<double, false, 0, 3>("poisson3d-sines", {1.0}, {3, 8, 10, 1}, 9, 3, true);
  check_jacobian_times<double, 2>("poisson2d-sines", {2, 10, 36, 1}, 9, true);
  check_jacobian_times<double, 3>("poisson3d-sines", {3, 8, 10, 1}, 9, true);
  check_jacobian_times<float, 2>("poisson2d-sines", {2, 10, 36, 1}, 9, true);
}

// The per-point strides in shared memory: 4 (mod 32) numbers, at most 31 more than the entries they hold (4x40's
// tape of 800 and adjoint sets of 240, multiples of 32 that put every point's entry j in one bank, become 804 and 260).
TEST(TileKernelsEmulated, PointStridesStartEachPointInAnotherBank) {
  const NetDesc nd = make_net_desc({1, 40, 40, 40, 40, 1});
  EXPECT_EQ(nd.tape_stride(), 804);
  EXPECT_EQ(nd.adj_stride(), 260);
  for (int n = 0; n < 2000; ++n) {
    const int s = bank_padded(n);
    ASSERT_EQ(s % 32, 4) << n;
    ASSERT_TRUE(s >= n && s - n < 32) << n;
  }
}

// The emulated fragments keep the wmma API's rules, which the device enforces and plain arithmetic would not: a tile
// 32-byte aligned within the dynamic shared memory, ldm a multiple of 16 bytes. A load at 8 bytes from an aligned
// place, an odd ldm or a store at 16 bytes makes the block report a breach.
TEST(TileKernelsEmulated, FragmentsKeepTheApisAlignmentRules) {
  const auto run = [](size_t offset, unsigned ldm, bool store) {
    return emu::run_blocks(
        1, 32,
        [&] {
          PINNTK_DYNAMIC_SHARED(raw);
          double* tile = reinterpret_cast<double*>(raw + offset);
          dmma::FragA<dmma::RowMajor> a;
          dmma::FragC c;
          dmma::zero(c);
          if (store)
            dmma::store_row_major(tile, c, ldm);
          else
            dmma::load(a, tile, ldm);
        },
        64 * 16 * sizeof(double));
  };
  EXPECT_TRUE(run(0, 8, false));
  EXPECT_TRUE(run(64, 4, true));
  EXPECT_FALSE(run(8, 8, false));
  EXPECT_FALSE(run(0, 3, false));
  EXPECT_FALSE(run(16, 8, true));
}

// The tensor-core loss-gradient kernel (cuda/mma_gradient_kernel.cuh, 8 points a block, cuda/dmma.cuh's fragments
// as plain arithmetic): the loss, gradient and residuals of one network and of two members on rows of their own, and
// J^T y, against the CPU backend; 4x40 at 11 rows (a short second block: padded points must add nothing) and 26
// rows, and 2x40 (no hidden-to-hidden layer's GEMMs but the output's).
TEST(TileKernelsEmulated, TensorCoreGradientMatchesTheCpuBackend) {
  check_gradient_case<double, true, 40, 1, true>("darcy-twoscale", {1.0 / 8, 1.0 / 16}, {1, 40, 40, 40, 40, 1}, 9, 8);
  check_gradient_case<double, true, 40, 1, true>("poisson-twoscale", {1.0 / 4}, {1, 40, 40, 1}, 24, 8);
  check_gradient_case<double, true, 40, 1, true>("darcy-twoscale", {1.0 / 8}, {1, 40, 1}, 9, 8);
}

}  // namespace
}  // namespace pinntk
