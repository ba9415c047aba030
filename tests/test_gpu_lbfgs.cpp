// The batched L-BFGS's operations on the CUDA device (CudaLbfgsOps, host/cuda/cuda_lbfgs.cu; label gpu, skipped
// without a device): every operation against HostLbfgsOps on the same random numbers (B = 3, P = 1001, m = 5, a ring
// that wraps, a member masked out, whose numbers stay bit for bit), in fp64 to rounding and in fp32 to its precision;
// evaluate against member(b).loss_gradient_at on darcy-twoscale; minimize_lbfgs_batched through a batch session's
// ops against the host operations; and the refusals.
#include <gtest/gtest.h>

#include <climits>    // INT_MAX
#include <cmath>      // std::isnan, std::isfinite, std::fabs
#include <cstdint>    // uint64_t
#include <limits>     // std::numeric_limits
#include <memory>     // std::make_shared, std::unique_ptr
#include <random>     // std::mt19937
#include <stdexcept>  // std::invalid_argument, std::length_error, std::logic_error
#include <tuple>      // std::tuple
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "host/backend.hpp"              // make_cuda_backend, BatchTrainSession
#include "host/cuda/backend_common.cuh"  // CudaContext
#include "host/cuda/cuda_lbfgs.hpp"      // make_cuda_lbfgs_ops
#include "host/mlp.hpp"                  // init_mlp
#include "host/optim/lbfgs_batched.hpp"  // HostLbfgsOps, minimize_lbfgs_batched
#include "host/problem.hpp"              // problem_preset, build_points
#include "tests/gpu_skip.hpp"            // SKIP_WITHOUT_GPU
#include "tests/near.hpp"                // all_near, near, kRoundingRtol

namespace pinntk {
namespace {

using testing::all_near;
using testing::kRoundingRtol;
using testing::near;

using Rows = std::vector<std::vector<double>>;  // B rows of P numbers
constexpr int kB = 3, kP = 1001, kM = 5;
const LbfgsMask kAll = {1, 1, 1}, kOff1 = {1, 0, 1};  // every member; member 1 masked out

// The five vectors of every member, [vector][member], read through copy into x and store; x is restored after.
std::vector<Rows> snapshot(LbfgsOps& ops) {
  const LbfgsMask all(ops.members(), 1);
  std::vector<Rows> s(5, Rows(ops.members(), std::vector<double>(ops.params())));
  for (int b = 0; b < ops.members(); ++b) ops.store(b, s[0][b]);
  for (int v = 1; v < 5; ++v) {
    ops.copy(LbfgsVector::X, static_cast<LbfgsVector>(v), all);
    for (int b = 0; b < ops.members(); ++b) ops.store(b, s[v][b]);
  }
  for (int b = 0; b < ops.members(); ++b) ops.load(b, s[0][b]);
  return s;
}

// Vector v of every member set to rows (through x: set x last).
void set_vector(LbfgsOps& ops, LbfgsVector v, const Rows& rows) {
  for (int b = 0; b < ops.members(); ++b) ops.load(b, rows[b]);
  if (v != LbfgsVector::X) ops.copy(v, LbfgsVector::X, LbfgsMask(ops.members(), 1));
}

// Every vector of every member of a within rtol of ref's (of the row's largest magnitude).
void expect_vectors_near(LbfgsOps& a, LbfgsOps& ref, double rtol, const char* what) {
  SCOPED_TRACE(what);
  const std::vector<Rows> sa = snapshot(a), sr = snapshot(ref);
  for (int v = 0; v < 5; ++v)
    for (size_t b = 0; b < sa[v].size(); ++b) EXPECT_TRUE(all_near(sa[v][b], sr[v][b], rtol)) << v << ", " << b;
}

// Member b's five vectors, bit for bit.
void expect_member_kept(const std::vector<Rows>& before, const std::vector<Rows>& after, int b, const char* what) {
  for (int v = 0; v < 5; ++v) EXPECT_EQ(after[v][b], before[v][b]) << what << ": vector " << v << " of member " << b;
}

// Random rows in [-scale, scale], rounded to Real (so that both operations start from the same numbers).
template <class Real>
Rows random_rows(std::mt19937& gen, double scale) {
  std::uniform_real_distribution<double> u(-scale, scale);
  Rows r(kB, std::vector<double>(kP));
  for (auto& row : r)
    for (double& x : row) x = static_cast<double>(static_cast<Real>(u(gen)));
  return r;
}

template <class Real>
void check_operations_against_host(double rtol) {
  auto ctx = std::make_shared<const cudaimpl::CudaContext>();
  std::unique_ptr<LbfgsOps> dev = cudaimpl::make_cuda_lbfgs_ops<Real>(ctx, kB, kP, kM);
  HostLbfgsOps host(kB, kP, kM, [](int, span<const double>, span<double>) { return 0.0; });  // evaluate unused
  ASSERT_EQ(dev->members(), kB);
  ASSERT_EQ(dev->params(), kP);
  ASSERT_EQ(dev->history(), kM);
  LbfgsOps* both[] = {dev.get(), &host};
  std::mt19937 gen(20240611);

  // Loads, stores and copies move the numbers exactly.
  for (LbfgsVector v : {LbfgsVector::G, LbfgsVector::XTrial, LbfgsVector::GTrial, LbfgsVector::D, LbfgsVector::X}) {
    const Rows r = random_rows<Real>(gen, 1.0);
    for (LbfgsOps* o : both) set_vector(*o, v, r);
  }
  const std::vector<Rows> start = snapshot(*dev);
  ASSERT_EQ(start, snapshot(host));

  // Reductions: dot to rounding of sum |a_i v_i|, max_abs exactly.
  for (const LbfgsMask& mask : {kAll, kOff1}) {
    const std::vector<double> d = dev->dot(LbfgsVector::G, LbfgsVector::D, mask),
                              h = host.dot(LbfgsVector::G, LbfgsVector::D, mask);
    const std::vector<double> ma = dev->max_abs(LbfgsVector::XTrial, mask),
                              mh = host.max_abs(LbfgsVector::XTrial, mask);
    for (int b = 0; b < kB; ++b) {
      if (!mask[b]) continue;
      double scale = 0.0;
      for (int p = 0; p < kP; ++p) scale += std::fabs(start[1][b][p] * start[4][b][p]);
      EXPECT_TRUE(near(d[b], h[b], scale, rtol)) << "dot of member " << b;
      EXPECT_EQ(ma[b], mh[b]) << "max_abs of member " << b;
    }
  }

  // The element updates on members 0 and 2; member 1 keeps its numbers bit for bit.
  for (LbfgsOps* o : both) {
    o->axpy(LbfgsVector::XTrial, {0.5, 7.0, -0.25}, LbfgsVector::D, kOff1);
    o->scale(LbfgsVector::GTrial, {1.5, 3.0, -2.0}, kOff1);
    o->copy(LbfgsVector::D, LbfgsVector::G, kOff1);
  }
  expect_vectors_near(*dev, host, rtol, "axpy, scale, copy");
  expect_member_kept(start, snapshot(*dev), 1, "axpy, scale, copy");

  // Seven curvature pairs into a ring of five (positions 0 1 2 3 4 0 1: it wraps), member 1 only in the first two.
  // y = h s + noise with h in [0.5, 2]: s . y > 0 well away from 0, so rho is as accurate as the products.
  LbfgsRing ring{std::vector<int>(kB, 0), {kM, 2, 3}, std::vector<double>(kB * kM, 0.0), std::vector<double>(kB)};
  std::uniform_real_distribution<double> curv(0.5, 2.0);
  std::vector<double> h(kP);
  for (double& x : h) x = curv(gen);
  for (int k = 0; k < 7; ++k) {
    const Rows x = random_rows<Real>(gen, 1.0), s = random_rows<Real>(gen, 0.1), g = random_rows<Real>(gen, 1.0),
               noise = random_rows<Real>(gen, 1e-3);
    Rows xt = x, gt = g;
    for (int b = 0; b < kB; ++b)
      for (int p = 0; p < kP; ++p) {
        xt[b][p] = static_cast<double>(static_cast<Real>(x[b][p] + s[b][p]));
        gt[b][p] = static_cast<double>(static_cast<Real>(g[b][p] + h[p] * s[b][p] + noise[b][p]));
      }
    for (LbfgsOps* o : both) {
      set_vector(*o, LbfgsVector::G, g);
      set_vector(*o, LbfgsVector::GTrial, gt);
      set_vector(*o, LbfgsVector::XTrial, xt);
      set_vector(*o, LbfgsVector::X, x);
    }
    const LbfgsMask mask = k < 2 ? kAll : kOff1;
    const std::vector<int> pos(kB, k % kM);
    const std::vector<Rows> before = snapshot(*dev);
    const LbfgsPairProducts pd = dev->store_pair(pos, mask), ph = host.store_pair(pos, mask);
    if (!mask[1]) expect_member_kept(before, snapshot(*dev), 1, "store_pair");
    for (int b = 0; b < kB; ++b) {
      if (!mask[b]) continue;
      EXPECT_TRUE(near(pd.sy[b], ph.sy[b], std::fabs(ph.sy[b]), rtol)) << "s.y of pair " << k << ", member " << b;
      EXPECT_TRUE(near(pd.yy[b], ph.yy[b], ph.yy[b], rtol)) << "y.y of pair " << k << ", member " << b;
      ASSERT_GT(ph.sy[b], 0.0);
      ring.newest[b] = k % kM;
      ring.rho[b * kM + k % kM] = 1.0 / ph.sy[b];
      ring.gamma[b] = ph.sy[b] / ph.yy[b];
    }
  }
  ASSERT_EQ(ring.newest, (std::vector<int>{1, 1, 1}));

  // The two-loop recursion: member 0 on its full ring (newest at 1, the oldest at 2), member 1 on its two pairs
  // (positions 0, 1: the masked stores after them did not touch its ring), member 2 on its three newest.
  // In one launch (the default) and as the launches of a pair each.
  for (const bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "two_loop in one launch" : "two_loop, launches per pair");
    cudaimpl::set_fused_two_loop(fused);
    for (LbfgsOps* o : both) o->two_loop(ring, kAll);
    cudaimpl::set_fused_two_loop(true);
    expect_vectors_near(*dev, host, rtol, "two_loop, every member");
  }
  // Again from another g with member 1 masked out (its newest out of range: not read), member 2 with one pair, and
  // with an empty ring for member 0 (d = -gamma g).
  const Rows g2 = random_rows<Real>(gen, 1.0);
  for (LbfgsOps* o : both) {
    set_vector(*o, LbfgsVector::G, g2);
    set_vector(*o, LbfgsVector::X, start[0]);
  }
  for (const std::vector<int>& count : {std::vector<int>{4, 0, 1}, std::vector<int>{0, 0, 5}}) {
    LbfgsRing r2 = ring;
    r2.count = count;
    r2.newest[1] = 99;
    r2.gamma[0] = 0.75;
    for (const bool fused : {true, false}) {
      SCOPED_TRACE(fused ? "two_loop in one launch" : "two_loop, launches per pair");
      const std::vector<Rows> before = snapshot(*dev);
      cudaimpl::set_fused_two_loop(fused);
      for (LbfgsOps* o : both) o->two_loop(r2, kOff1);
      cudaimpl::set_fused_two_loop(true);
      expect_vectors_near(*dev, host, rtol, "two_loop, member 1 masked out");
      expect_member_kept(before, snapshot(*dev), 1, "two_loop");
    }
  }

  // max_abs is NaN when an entry is NaN, infinite when one is.
  Rows odd = start[0];
  odd[0][500] = std::numeric_limits<double>::quiet_NaN();
  odd[2][17] = -std::numeric_limits<double>::infinity();
  for (LbfgsOps* o : both) set_vector(*o, LbfgsVector::X, odd);
  const std::vector<double> md = dev->max_abs(LbfgsVector::X, kAll), mh = host.max_abs(LbfgsVector::X, kAll);
  EXPECT_TRUE(std::isnan(md[0]) && std::isnan(mh[0]));
  EXPECT_EQ(md[1], mh[1]);
  EXPECT_EQ(md[2], std::numeric_limits<double>::infinity());
  EXPECT_EQ(mh[2], md[2]);
}

TEST(GpuLbfgs, OperationsMatchHostOpsFp64) {
  SKIP_WITHOUT_GPU();
  check_operations_against_host<double>(kRoundingRtol);
}

TEST(GpuLbfgs, OperationsMatchHostOpsFp32) {
  // The same numbers in single precision: element updates round to fp32 (the reductions still sum in double).
  SKIP_WITHOUT_GPU();
  check_operations_against_host<float>(1e-5);
}

TEST(GpuLbfgs, RefusesWhatTheHostOpsRefuse) {
  SKIP_WITHOUT_GPU();
  auto ctx = std::make_shared<const cudaimpl::CudaContext>();
  auto ops = cudaimpl::make_cuda_lbfgs_ops<double>(ctx, kB, kP, kM);
  const std::vector<double> theta(kP, 1.0);
  EXPECT_THROW(ops->load(kB, theta), std::invalid_argument);
  EXPECT_THROW(ops->load(0, std::vector<double>(kP - 1)), std::invalid_argument);
  std::vector<double> out(kP);
  EXPECT_THROW(ops->store(-1, out), std::invalid_argument);
  EXPECT_THROW(ops->dot(LbfgsVector::X, LbfgsVector::G, LbfgsMask{1, 1}), std::invalid_argument);
  EXPECT_THROW(ops->axpy(LbfgsVector::X, {1.0, 2.0}, LbfgsVector::D, kAll), std::invalid_argument);
  LbfgsRing ring{{0, 0, 0}, {1, 1, 1}, std::vector<double>(kB * kM, 1.0), {1.0, 1.0, 1.0}};
  ring.newest[2] = kM;
  EXPECT_THROW(ops->two_loop(ring, kAll), std::invalid_argument);
  EXPECT_NO_THROW(ops->two_loop(ring, LbfgsMask{1, 1, 0}));  // a masked-out member's ring is not read
  ring.rho.pop_back();
  EXPECT_THROW(ops->two_loop(ring, LbfgsMask{1, 1, 0}), std::invalid_argument);
  EXPECT_THROW(ops->store_pair({0, kM, 0}, kAll), std::invalid_argument);
  EXPECT_NO_THROW(ops->store_pair({0, kM, 0}, kOff1));
  EXPECT_THROW(ops->evaluate(kAll), std::logic_error);  // no loss and gradient to evaluate
  for (const auto& [members, params, history] :
       {std::tuple{0, kP, kM}, std::tuple{kB, 0, kM}, std::tuple{kB, kP, 0}, std::tuple{kB, kP, kMaxHistory + 1}})
    EXPECT_THROW(cudaimpl::make_cuda_lbfgs_ops<double>(ctx, members, params, history), std::invalid_argument);
  // Far more than any device holds: refused before anything is allocated.
  EXPECT_THROW(cudaimpl::make_cuda_lbfgs_ops<double>(ctx, 1000, INT_MAX, kMaxHistory), std::length_error);
}

// ---- through a batch session ----

PointSet darcy(double eps) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.eps = eps;
  return build_points(spec);
}

const std::vector<int> kLayers = {1, 40, 40, 40, 40, 1};  // darcy-twoscale's default network

std::vector<Mlp> seeds(std::vector<uint64_t> s) {
  std::vector<Mlp> nets;
  for (uint64_t seed : s) nets.push_back(init_mlp(kLayers, "glorot-normal", seed));
  return nets;
}

// A member's parameters and Adam state in a batch.
std::vector<std::vector<double>> member_state(BatchTrainSession& batch, int b, size_t P) {
  std::vector<std::vector<double>> st(3, std::vector<double>(P));
  batch.member(b).parameters(st[0]);
  const long t = batch.member(b).adam_state(st[1], st[2]);
  st.push_back({static_cast<double>(t)});
  return st;
}

TEST(GpuLbfgs, EvaluateGivesTheMembersLossAndGradient) {
  // evaluate at x_trial of members 0 and 2 against member(b).loss_gradient_at there, with rows shared and rows of
  // their own; member 1's g_trial is left alone, and so are every member's parameters and Adam state.
  SKIP_WITHOUT_GPU();
  for (const bool single : {false, true}) {
    auto gpu = make_cuda_backend(single);
    const double rtol = single ? 1e-5 : kRoundingRtol;
    const PointSet shared = darcy(1.0 / 32);
    for (const bool own_rows : {false, true}) {
      SCOPED_TRACE(::testing::Message() << (single ? "fp32" : "fp64") << (own_rows ? ", rows of their own" : ""));
      const std::vector<PointSet> pts = own_rows ? std::vector<PointSet>{darcy(0.125), shared, darcy(0.0625)}
                                                 : std::vector<PointSet>{shared, shared, shared};
      const std::vector<Mlp> nets = seeds({0, 1, 2});
      const size_t P = nets[0].theta.size();
      auto batch = gpu->batch_train_session(nets, pts, AdamConfig{});
      batch->run(3, 1e-3);
      std::vector<std::vector<std::vector<double>>> before;
      for (int b = 0; b < kB; ++b) before.push_back(member_state(*batch, b, P));
      auto ops = batch->lbfgs_ops(static_cast<int>(P), 4);
      EXPECT_THROW(batch->lbfgs_ops(static_cast<int>(P) + 1, 4), std::invalid_argument);

      std::mt19937 gen(5);
      std::uniform_real_distribution<double> u(-1e-2, 1e-2);
      Rows theta(kB), marker(kB, std::vector<double>(P, 0.5));
      for (int b = 0; b < kB; ++b) {
        theta[b] = nets[b].theta;
        for (double& x : theta[b]) x += u(gen);
      }
      set_vector(*ops, LbfgsVector::GTrial, marker);
      set_vector(*ops, LbfgsVector::XTrial, theta);
      const std::vector<double> f = ops->evaluate(kOff1);
      for (int b = 0; b < kB; ++b) EXPECT_EQ(member_state(*batch, b, P), before[b]) << "member " << b;
      const std::vector<Rows> v = snapshot(*ops);
      EXPECT_EQ(v[3][1], marker[1]);
      for (int b : {0, 2}) {
        std::vector<double> g(P);
        const double l = batch->member(b).loss_gradient_at(theta[b], g);
        EXPECT_TRUE(near(f[b], l, std::fabs(l), rtol)) << "loss of member " << b;
        EXPECT_TRUE(all_near(v[3][b], g, rtol)) << "gradient of member " << b;
      }

      // A non-finite parameter: that member's loss is NaN, the others' are as before.
      theta[2][7] = std::numeric_limits<double>::quiet_NaN();
      set_vector(*ops, LbfgsVector::XTrial, theta);
      const std::vector<double> f2 = ops->evaluate(kAll);
      EXPECT_EQ(f2[0], f[0]);
      EXPECT_TRUE(std::isfinite(f2[1]));
      EXPECT_TRUE(std::isnan(f2[2]));
    }
  }
}

TEST(GpuLbfgs, MinimizationFollowsTheHostOperations) {
  // 30 iterations of minimize_lbfgs_batched with a history of 10 (the ring wraps) through the batch's device ops and
  // through HostLbfgsOps evaluating with member(b).loss_gradient_at, from the same starts: the summation orders
  // differ, so the losses agree to rounding amplified by the iterations, checked over the first 10. A member not
  // asked keeps its x bit for bit.
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const PointSet pts = darcy(1.0 / 32);
  const std::vector<Mlp> nets = seeds({0, 1});
  const int B = 2, P = static_cast<int>(nets[0].theta.size());
  auto batch = gpu->batch_train_session(nets, {pts, pts}, AdamConfig{});
  BatchedLbfgsConfig cfg;
  cfg.history = 10;
  cfg.max_iter = 30;
  cfg.gtol = 0.0;
  cfg.ftol = 0.0;
  const auto run = [&](LbfgsOps& ops, const LbfgsMask* members) {
    for (int b = 0; b < B; ++b) ops.load(b, nets[b].theta);
    std::vector<std::vector<double>> losses(B);
    const std::vector<LbfgsResult> res = minimize_lbfgs_batched(
        ops, cfg, [&](int b, long, double l) { losses[b].push_back(l); }, members);
    return std::pair{res, losses};
  };
  auto dev = batch->lbfgs_ops(P, cfg.history);
  const auto [dres, dl] = run(*dev, nullptr);
  HostLbfgsOps host(B, P, cfg.history, [&](int b, span<const double> th, span<double> g) {
    return batch->member(b).loss_gradient_at(th, g);
  });
  const auto [hres, hl] = run(host, nullptr);
  for (int b = 0; b < B; ++b) {
    SCOPED_TRACE(::testing::Message() << "member " << b);
    ASSERT_GE(dl[b].size(), 10u) << dres[b].stop;
    ASSERT_GE(hl[b].size(), 10u) << hres[b].stop;
    for (size_t k = 0; k < 10; ++k)
      EXPECT_TRUE(near(dl[b][k], hl[b][k], std::fabs(hl[b][k]), 1e-8)) << "iteration " << k;
    EXPECT_EQ(dres[b].iterations, hres[b].iterations) << dres[b].stop << " / " << hres[b].stop;
    EXPECT_LT(dres[b].loss, dl[b][0]);
  }

  const LbfgsMask only0 = {1, 0};
  const auto [pres, pl] = run(*dev, &only0);
  EXPECT_EQ(pres[1].stop, "not asked");
  EXPECT_TRUE(pl[1].empty());
  EXPECT_EQ(pl[0], dl[0]);  // the same member on the same device operations: the same numbers
  std::vector<double> x1(P);
  dev->store(1, x1);
  EXPECT_EQ(x1, nets[1].theta);
}

}  // namespace
}  // namespace pinntk
