// Adam on a batch of networks on the CUDA backend (batch_train_session: every launch serves all members) and the
// sessions' multi-step CUDA graphs (label gpu; skipped without a device, except the refusals of check_batch, which
// need none). A member of a batch runs the kernels of a one-network session at its own offsets, so its trajectory
// is that session's bit for bit, in fp64 and fp32 alike: parameters, Adam moments, step count and losses, with
// shared rows (one problem, several seeds), with rows of its own (other eps, other points), inactive members left
// alone, and its one-network view (member(b)). A session's run(steps) over the kStepsPerGraph-step graph takes the
// steps of as many one-step launches, bit for bit.
#include <gtest/gtest.h>

#include <cmath>      // std::isnan, std::isfinite
#include <cstdint>    // uint64_t
#include <memory>     // std::unique_ptr
#include <stdexcept>  // std::invalid_argument, std::out_of_range
#include <string>     // std::string
#include <vector>     // std::vector

#include "cuda/tile_plan.hpp"          // set_mma_gradient
#include "host/backend.hpp"            // make_cuda_backend, cuda_device_count, check_batch, BatchTrainSession
#include "host/cuda/cuda_backend.hpp"  // kStepsPerGraph, set_multi_step_graphs
#include "host/mlp.hpp"                // init_mlp
#include "host/problem.hpp"            // problem_preset, build_points
#include "tests/gpu_skip.hpp"          // SKIP_WITHOUT_GPU
#include "tests/near.hpp"              // all_near, near
#include "tests/random_net.hpp"        // random_net

namespace pinntk {
namespace {

using testing::all_near;
using testing::near;

// darcy-twoscale at eps with nc collocation points (the preset's 1024 when nc is 0).
PointSet darcy(double eps, int nc = 0) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.eps = eps;
  if (nc > 0) spec.nc = nc;
  return build_points(spec);
}

const std::vector<int> kLayers = {1, 40, 40, 40, 40, 1};  // darcy-twoscale's default network

// What a session holds after its steps: the parameters, Adam's moments and step count.
struct State {
  std::vector<double> theta, m, v;
  long t = 0;
};

State state_of(TrainSession& s, size_t P) {
  State st;
  st.theta.resize(P);
  st.m.resize(P);
  st.v.resize(P);
  s.parameters(st.theta);
  st.t = s.adam_state(st.m, st.v);
  return st;
}

// a equals ref bit for bit (rtol 0) when `bitwise`, else to rtol of the magnitude.
void expect_state(const State& a, const State& ref, bool bitwise, double rtol, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.t, ref.t);
  EXPECT_TRUE(all_near(a.theta, ref.theta, rtol)) << "theta";
  EXPECT_TRUE(all_near(a.m, ref.m, rtol)) << "m";
  EXPECT_TRUE(all_near(a.v, ref.v, rtol)) << "v";
  if (bitwise) {
    EXPECT_EQ(a.theta, ref.theta);
    EXPECT_EQ(a.m, ref.m);
    EXPECT_EQ(a.v, ref.v);
  }
}

// Every member of a batch after `schedule` (steps at a learning rate, in turn) against a session of its own given the
// same schedule: the losses each run returns, then the parameters, moments and step counts.
void check_batch_matches_sessions(Backend& gpu, const std::vector<Mlp>& nets, const std::vector<PointSet>& pts,
                                  const std::vector<std::pair<long, double>>& schedule, bool bitwise, double rtol) {
  const size_t P = nets[0].theta.size();
  auto batch = gpu.batch_train_session(nets, pts, AdamConfig{});
  ASSERT_EQ(batch->size(), static_cast<int>(nets.size()));
  std::vector<std::vector<double>> batch_losses;
  for (const auto& [steps, lr] : schedule) batch_losses.push_back(batch->run(steps, lr));
  for (size_t b = 0; b < nets.size(); ++b) {
    SCOPED_TRACE(::testing::Message() << "member " << b);
    auto alone = gpu.train_session(nets[b], pts[b], AdamConfig{});
    for (size_t k = 0; k < schedule.size(); ++k) {
      const double l = alone->run(schedule[k].first, schedule[k].second);
      ASSERT_EQ(batch_losses[k].size(), nets.size());
      EXPECT_TRUE(near(batch_losses[k][b], l, l, rtol)) << "loss of run " << k;
      if (bitwise) {
        EXPECT_EQ(batch_losses[k][b], l) << "loss of run " << k;
      }
    }
    expect_state(state_of(batch->member(static_cast<int>(b)), P), state_of(*alone, P), bitwise, rtol, "state");
  }
}

std::vector<Mlp> seeds(const std::vector<int>& layers, std::vector<uint64_t> s) {
  std::vector<Mlp> nets;
  for (uint64_t seed : s) nets.push_back(init_mlp(layers, "glorot-normal", seed));
  return nets;
}

// 37 = 2 x 16 + 5 steps: the long graph twice, then the one-step graph; then 20 more at another rate.
const std::vector<std::pair<long, double>> kSchedule = {{37, 1e-3}, {20, 5e-4}};

TEST(GpuBatch, SeedsMatchSeparateSessionsFp64) {
  // Three seeds on one problem: the rows are uploaded once and shared by the members.
  SKIP_WITHOUT_GPU();
  static_assert(kStepsPerGraph == 16, "the schedule covers both graphs for 16");
  auto gpu = make_cuda_backend(false);
  const PointSet pts = darcy(1.0 / 32);
  check_batch_matches_sessions(*gpu, seeds(kLayers, {0, 1, 2}), {pts, pts, pts}, kSchedule, true, 1e-12);
}

TEST(GpuBatch, SeedsMatchSeparateSessionsFp32) {
  // The same kernels in single precision: bit for bit too (the tolerance first, for a readable failure).
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(true);
  const PointSet pts = darcy(1.0 / 32);
  check_batch_matches_sessions(*gpu, seeds(kLayers, {0, 1, 2}), {pts, pts, pts}, kSchedule, true, 1e-5);
}

TEST(GpuBatch, MembersReadTheirOwnRows) {
  // Other eps per member (other coefficients, targets): the rows are uploaded member after member.
  SKIP_WITHOUT_GPU();
  const std::vector<PointSet> pts = {darcy(1.0 / 8), darcy(1.0 / 32), darcy(1.0 / 16)};
  ASSERT_NE(pts[0].alpha, pts[1].alpha);
  ASSERT_NE(pts[0].f, pts[1].f);
  for (const bool single : {false, true}) {
    SCOPED_TRACE(single ? "fp32" : "fp64");
    auto gpu = make_cuda_backend(single);
    check_batch_matches_sessions(*gpu, seeds(kLayers, {3, 4, 5}), pts, kSchedule, true, single ? 1e-5 : 1e-12);
    // One network on every member's rows: the members still differ, each as its own rows say.
    check_batch_matches_sessions(*gpu, seeds(kLayers, {6, 6, 6}), pts, {{19, 1e-3}}, true, single ? 1e-5 : 1e-12);
  }
}

TEST(GpuBatch, TwoDimensionalBatchMatchesSeparateSessions) {
  // poisson2d-sines (M = 2 directions) with points of their own per member (point seeds), on the width-40 kernel and
  // on the generic one.
  SKIP_WITHOUT_GPU();
  std::vector<PointSet> pts;
  for (uint64_t s : {11, 12}) {
    ProblemSpec spec = problem_preset("poisson2d-sines");
    spec.nc = 200;
    spec.point_seed = s;
    pts.push_back(build_points(spec));
  }
  ASSERT_NE(pts[0].x, pts[1].x);
  auto gpu = make_cuda_backend(false);
  for (const std::vector<int>& layers : {std::vector<int>{2, 40, 40, 1}, std::vector<int>{2, 24, 17, 1}}) {
    SCOPED_TRACE(::testing::Message() << "layers[1] = " << layers[1]);
    check_batch_matches_sessions(*gpu, seeds(layers, {7, 8}), pts, kSchedule, true, 1e-12);
  }
}

TEST(GpuBatch, InactiveMembersAreLeftAlone) {
  // set_active(1, false): member 1's parameters, moments and step count stay, its loss entry is NaN, the others go
  // on as sessions of their own; active again, member 1 goes on from where it stopped.
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const PointSet pts = darcy(1.0 / 32, 255);
  const std::vector<Mlp> nets = seeds(kLayers, {0, 1, 2});
  const size_t P = nets[0].theta.size();
  auto batch = gpu->batch_train_session(nets, {pts, pts, pts}, AdamConfig{});
  batch->run(10, 1e-3);
  const State stopped = state_of(batch->member(1), P);
  batch->set_active(1, false);
  const std::vector<double> l = batch->run(21, 1e-3);
  ASSERT_EQ(l.size(), 3u);
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_TRUE(std::isfinite(l[0]) && std::isfinite(l[2]));
  expect_state(state_of(batch->member(1), P), stopped, true, 0.0, "inactive member 1");
  batch->set_active(1, true);
  const std::vector<double> l2 = batch->run(5, 1e-3);
  for (int b = 0; b < 3; ++b) {
    SCOPED_TRACE(::testing::Message() << "member " << b);
    auto alone = gpu->train_session(nets[b], pts, AdamConfig{});
    const double la = alone->run(b == 1 ? 10 : 31, 1e-3);
    if (b != 1) {
      EXPECT_EQ(l[b], la);
    }
    EXPECT_EQ(l2[b], alone->run(5, 1e-3));
    expect_state(state_of(batch->member(b), P), state_of(*alone, P), true, 0.0, "after 5 more steps");
  }
  EXPECT_THROW(batch->set_active(3, false), std::out_of_range);
  EXPECT_THROW(batch->member(-1), std::out_of_range);
}

TEST(GpuBatch, MemberViewMatchesASessionOfItsOwn) {
  // member(b): its run advances member b alone (not graph-captured), its evaluate, loss_gradient_at and Adam state
  // are those of a session on member b's network; the batch's later steps go on from each member's own step count.
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const std::vector<PointSet> pts = {darcy(1.0 / 8, 300), darcy(1.0 / 32, 300), darcy(1.0 / 16, 300)};
  const std::vector<Mlp> nets = seeds(kLayers, {0, 1, 2});
  const size_t P = nets[0].theta.size();
  auto batch = gpu->batch_train_session(nets, pts, AdamConfig{});
  auto alone = gpu->train_session(nets[1], pts[1], AdamConfig{});
  EXPECT_EQ(batch->member(1).run(7, 1e-3), alone->run(7, 1e-3));
  expect_state(state_of(batch->member(1), P), state_of(*alone, P), true, 0.0, "member 1 after its own steps");
  // The other members did not move.
  for (int b : {0, 2}) {
    const State st = state_of(batch->member(b), P);
    EXPECT_EQ(st.t, 0) << "member " << b;
    EXPECT_EQ(st.theta, nets[b].theta) << "member " << b;
  }

  // evaluate at the rows' points.
  const std::vector<double>& x = pts[1].x;
  const size_t n = x.size();
  std::vector<double> u(n), du(n), d2u(n), ua(n), dua(n), d2ua(n);
  batch->member(1).evaluate(x, u, du, d2u);
  alone->evaluate(x, ua, dua, d2ua);
  EXPECT_EQ(u, ua);
  EXPECT_EQ(du, dua);
  EXPECT_EQ(d2u, d2ua);

  // loss_gradient_at another network (L-BFGS's call): the loss, the gradient and the parameters it leaves.
  const Mlp at = init_mlp(kLayers, "glorot-normal", 21);
  std::vector<double> g(P), ga(P);
  EXPECT_EQ(batch->member(1).loss_gradient_at(at.theta, g), alone->loss_gradient_at(at.theta, ga));
  EXPECT_EQ(g, ga);
  std::vector<double> th(P);
  batch->member(1).parameters(th);
  EXPECT_EQ(th, at.theta);

  // set_adam_state of member 2 from the single session, then the batch's steps: member 2 goes on as the session does.
  const State s = state_of(*alone, P);
  batch->member(2).set_adam_state(s.theta, s.m, s.v, s.t);
  expect_state(state_of(batch->member(2), P), s, true, 0.0, "member 2 after set_adam_state");
  const std::vector<double> l = batch->run(18, 1e-3);
  auto alone2 = gpu->train_session(nets[1], pts[2], AdamConfig{});  // member 2's rows
  alone2->set_adam_state(s.theta, s.m, s.v, s.t);
  EXPECT_EQ(l[2], alone2->run(18, 1e-3));
  expect_state(state_of(batch->member(2), P), state_of(*alone2, P), true, 0.0, "member 2 after the batch's steps");
  // Member 1 (7 steps, then L-BFGS's parameters) and member 0 (from the start) likewise.
  EXPECT_EQ(l[1], alone->run(18, 1e-3));
  expect_state(state_of(batch->member(1), P), state_of(*alone, P), true, 0.0, "member 1 after the batch's steps");
  auto alone0 = gpu->train_session(nets[0], pts[0], AdamConfig{});
  EXPECT_EQ(l[0], alone0->run(18, 1e-3));
  expect_state(state_of(batch->member(0), P), state_of(*alone0, P), true, 0.0, "member 0");
}

TEST(GpuBatch, OneMemberBatchIsASession) {
  // B = 1 (the active flags read, member 0's offsets all 0) against the session, fp64 and fp32.
  SKIP_WITHOUT_GPU();
  const PointSet pts = darcy(1.0 / 32, 129);
  for (const bool single : {false, true}) {
    SCOPED_TRACE(single ? "fp32" : "fp64");
    auto gpu = make_cuda_backend(single);
    check_batch_matches_sessions(*gpu, seeds({1, 20, 20, 1}, {5}), {pts}, kSchedule, true, single ? 1e-5 : 1e-12);
  }
}

TEST(GpuBatch, MultiStepGraphTakesTheStepsOfOneStepLaunches) {
  // A session's run(37) (the 16-step graph twice, then five one-step launches) against 37 run(1) and against
  // run(37) with one-step launches only: bit for bit.
  SKIP_WITHOUT_GPU();
  const PointSet pts = darcy(1.0 / 32);
  const Mlp net = init_mlp(kLayers, "glorot-normal", 3);
  const size_t P = net.theta.size();
  for (const bool single : {false, true}) {
    SCOPED_TRACE(single ? "fp32" : "fp64");
    auto gpu = make_cuda_backend(single);
    auto a = gpu->train_session(net, pts, AdamConfig{});
    auto b = gpu->train_session(net, pts, AdamConfig{});
    auto c = gpu->train_session(net, pts, AdamConfig{});
    const double la = a->run(37, 1e-3);
    double lb = 0.0;
    for (int k = 0; k < 37; ++k) lb = b->run(1, 1e-3);
    set_multi_step_graphs(false);
    const double lc = c->run(37, 1e-3);
    set_multi_step_graphs(true);
    EXPECT_EQ(la, lb);
    EXPECT_EQ(la, lc);
    const State sa = state_of(*a, P);
    EXPECT_EQ(sa.t, 37);
    expect_state(state_of(*b, P), sa, true, 0.0, "37 run(1)");
    expect_state(state_of(*c, P), sa, true, 0.0, "one-step launches only");
    // And the batch's long graph against its one-step launches.
    auto batch_a = gpu->batch_train_session({net, net}, {pts, pts}, AdamConfig{});
    auto batch_b = gpu->batch_train_session({net, net}, {pts, pts}, AdamConfig{});
    const std::vector<double> lba = batch_a->run(37, 1e-3);
    set_multi_step_graphs(false);
    const std::vector<double> lbb = batch_b->run(37, 1e-3);
    set_multi_step_graphs(true);
    EXPECT_EQ(lba, lbb);
    EXPECT_EQ(lba[0], la);
    for (int m = 0; m < 2; ++m) {
      expect_state(state_of(batch_a->member(m), P), sa, true, 0.0, "batch, long graph");
      expect_state(state_of(batch_b->member(m), P), sa, true, 0.0, "batch, one-step launches");
    }
  }
}

// ---- refusals ----

TEST(GpuBatch, CheckBatchRefusesMismatchedMembers) {
  // check_batch needs no device: the shapes and sizes a batch refuses, before anything is allocated.
  const PointSet a = darcy(1.0 / 32, 64), b = darcy(1.0 / 32, 65);
  const Mlp n1 = init_mlp({1, 10, 10, 1}, "glorot-normal", 1), n2 = init_mlp({1, 10, 11, 1}, "glorot-normal", 2);
  EXPECT_NO_THROW(check_batch({n1, n1}, {a, a}));
  EXPECT_THROW(check_batch({}, {}), std::invalid_argument);
  EXPECT_THROW(check_batch({n1, n2}, {a, a}), std::invalid_argument);  // layers
  EXPECT_THROW(check_batch({n1, n1}, {a, b}), std::invalid_argument);  // point counts
  EXPECT_THROW(check_batch({n1, n1}, {a}), std::invalid_argument);     // one point set short
  Mlp short_theta = n1;
  short_theta.theta.pop_back();
  EXPECT_THROW(check_batch({n1, short_theta}, {a, a}), std::invalid_argument);  // parameters
  PointSet two_d = a;
  two_d.dim = 2;
  EXPECT_THROW(check_batch({n1, n1}, {a, two_d}), std::invalid_argument);  // dimension
}

TEST(GpuBatch, BackendRefusesMismatchedMembers) {
  // The CUDA backend's batch_train_session makes the same checks, and those of every member's rows against the
  // network (its arrays' lengths), before it allocates; the backend goes on working.
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const PointSet a = darcy(1.0 / 32, 64), b = darcy(1.0 / 32, 65);
  const Mlp n1 = init_mlp({1, 10, 10, 1}, "glorot-normal", 1), n2 = init_mlp({1, 10, 11, 1}, "glorot-normal", 2);
  EXPECT_THROW(gpu->batch_train_session({n1, n2}, {a, a}, AdamConfig{}), std::invalid_argument);
  EXPECT_THROW(gpu->batch_train_session({n1, n1}, {a, b}, AdamConfig{}), std::invalid_argument);
  EXPECT_THROW(gpu->batch_train_session({}, {}, AdamConfig{}), std::invalid_argument);
  PointSet no_weights = a;
  no_weights.w.clear();
  EXPECT_THROW(gpu->batch_train_session({n1, n1}, {a, no_weights}, AdamConfig{}), std::invalid_argument);
  auto s = gpu->batch_train_session({n1, n1}, {a, a}, AdamConfig{});
  const std::vector<double> l = s->run(3, 1e-3);
  EXPECT_TRUE(std::isfinite(l[0]) && std::isfinite(l[1]));
}

// The tensor-core loss gradient (set_mma_gradient; cuda/mma_gradient_kernel.cuh): the gradient against the CPU
// backend's (and the tile kernel's) at row counts 8 does and does not divide; a batch bit for bit against sessions
// of their own on the same kernel; 20 Adam steps against the tile kernel's to a tolerance; J^T y by the seeded form.
struct MmaKnob {
  MmaKnob() { set_mma_gradient(true); }
  MmaKnob(const MmaKnob&) = delete;
  MmaKnob& operator=(const MmaKnob&) = delete;
  ~MmaKnob() { set_mma_gradient(false); }
};

TEST(GpuBatch, TensorCoreGradientMatchesCpuAndTheTileKernel) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_cpu_backend(0);
  for (const int nc : {1024, 1021, 5}) {
    SCOPED_TRACE("nc " + std::to_string(nc));
    const PointSet pts = darcy(1.0 / 16, nc);
    const Mlp net = testing::random_net(kLayers, 7);
    const size_t P = net.theta.size(), n = pts.size();
    std::vector<double> r(n), g(P), gr(n, NAN), gg(P, NAN), tr(n), tg(P);
    const double loss = cpu->loss_gradient(net, pts, r, g);
    const double tile_loss = make_cuda_backend(false)->loss_gradient(net, pts, tr, tg);
    const MmaKnob on;
    const double gloss = make_cuda_backend(false)->loss_gradient(net, pts, gr, gg);
    EXPECT_TRUE(near(gloss, loss, loss, 1e-12)) << "loss";
    EXPECT_TRUE(all_near(gg, g, 1e-12)) << "gradient against the CPU";
    EXPECT_TRUE(all_near(gg, tg, 1e-12)) << "gradient against the tile kernel";
    EXPECT_TRUE(all_near(gr, r, 1e-12)) << "residuals";
    EXPECT_TRUE(near(gloss, tile_loss, tile_loss, 1e-12)) << "loss against the tile kernel";
    std::vector<double> y(n), jty(P, NAN), jty_cpu(P);
    for (size_t k = 0; k < n; ++k) y[k] = std::sin(0.3 * static_cast<double>(k));
    make_cuda_backend(false)->jacobian_transpose_times(net, pts, y, jty);
    cpu->jacobian_transpose_times(net, pts, y, jty_cpu);
    EXPECT_TRUE(all_near(jty, jty_cpu, 1e-12)) << "J^T y";
  }
}

TEST(GpuBatch, TensorCoreBatchMatchesSessionsAndTheTileKernel) {
  SKIP_WITHOUT_GPU();
  const PointSet pts = darcy(1.0 / 32);
  const std::vector<Mlp> nets = seeds(kLayers, {0, 1, 2});
  const size_t P = nets[0].theta.size();
  auto tile_session = make_cuda_backend(false)->train_session(nets[1], pts, AdamConfig{});
  tile_session->run(20, 1e-3);
  const MmaKnob on;
  auto gpu = make_cuda_backend(false);
  check_batch_matches_sessions(*gpu, nets, {pts, pts, pts}, kSchedule, true, 1e-12);
  auto mma_session = gpu->train_session(nets[1], pts, AdamConfig{});
  mma_session->run(20, 1e-3);
  // 20 steps from the same start: the two kernels' sums differ in the last bits, which Adam does not amplify much.
  expect_state(state_of(*mma_session, P), state_of(*tile_session, P), false, 1e-8, "20 steps, tensor cores vs tiles");
}

}  // namespace
}  // namespace pinntk
