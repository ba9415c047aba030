// Batches of networks on every backend (tests/backend_suite.hpp): train_adam_batch gives each member the result
// train_adam gives it alone (its own seed, eps and rows), a member that diverges or fails leaves the others alone, and
// bad batches are refused. On the CPU a member's arithmetic is its own session's: the comparisons are bitwise there;
// on the GPU the batched kernels run the same arithmetic at other offsets, compared to 1e-12.
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::isfinite, std::isnan
#include <cstdint>    // uint64_t
#include <cstdio>     // std::printf
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

#include "common/errors.hpp"  // NumericalError
#include "host/train.hpp"     // train_adam, train_adam_batch
#include "tests/backend_suite.hpp"

namespace pinntk::testing {
namespace {

ProblemSpec darcy_twoscale(int nc, double eps) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = nc;
  spec.eps = eps;
  return spec;
}

TrainConfig short_run(long lbfgs) {
  TrainConfig cfg;
  cfg.schedule = {{25, 1e-3}, {20, 1e-4}};
  cfg.history_every = 10;
  cfg.lbfgs.max_iter = lbfgs;
  return cfg;
}

class BatchCheck {
 public:
  explicit BatchCheck(bool bitwise, double rtol) : bitwise_(bitwise), rtol_(rtol) {}
  void same(double a, double b, const std::string& what) const {
    if (bitwise_) {
      EXPECT_EQ(a, b) << what;
    } else if (std::isnan(a) || std::isnan(b)) {
      EXPECT_TRUE(std::isnan(a) && std::isnan(b)) << what << ": " << a << " vs " << b;
    } else {
      EXPECT_LE(std::fabs(a - b), rtol_ * std::max(std::fabs(b), 1e-300)) << what << ": " << a << " vs " << b;
    }
  }
  // A member of a batch against the same network trained alone.
  void same_run(const Mlp& na, const TrainResult& a, const Mlp& nb, const TrainResult& b,
                const std::string& who) const {
    ASSERT_EQ(na.theta.size(), nb.theta.size());
    for (size_t i = 0; i < na.theta.size(); ++i)
      same(na.theta[i], nb.theta[i], who + " theta[" + std::to_string(i) + "]");
    EXPECT_EQ(a.iterations, b.iterations) << who;
    EXPECT_EQ(a.adam_iterations, b.adam_iterations) << who;
    EXPECT_EQ(a.lbfgs.iterations, b.lbfgs.iterations) << who;
    EXPECT_EQ(a.diverged, b.diverged) << who;
    EXPECT_EQ(a.diverged_at, b.diverged_at) << who;
    ASSERT_EQ(a.history.size(), b.history.size()) << who;
    for (size_t k = 0; k < a.history.size(); ++k) {
      const std::string row = who + " history row " + std::to_string(k);
      EXPECT_EQ(a.history[k].iteration, b.history[k].iteration) << row;
      EXPECT_EQ(a.history[k].optimizer, b.history[k].optimizer) << row;
      same(a.history[k].loss, b.history[k].loss, row + " loss");
      same(a.history[k].max_error, b.history[k].max_error, row + " max error");
      same(a.history[k].rel_l2_error, b.history[k].rel_l2_error, row + " relative L2 error");
    }
    same(a.final_loss, b.final_loss, who + " final loss");
  }

 private:
  bool bitwise_;
  double rtol_;
};

BatchCheck check_for(const BackendCase& c, double rtol) { return BatchCheck(std::string(c.name) == "cpu", rtol); }

// Trains the batch, then every member alone, and compares.
void expect_members_train_alone(Backend& be, const std::vector<ProblemSpec>& specs, const std::vector<Mlp>& init,
                                const TrainConfig& cfg, const BatchCheck& check) {
  std::vector<PointSet> pts;
  for (const ProblemSpec& s : specs) pts.push_back(build_points(s));
  std::vector<Mlp> nets = init;
  const std::vector<TrainResult> res = train_adam_batch(be, nets, specs, pts, cfg, nullptr);
  ASSERT_EQ(res.size(), init.size());
  for (size_t b = 0; b < init.size(); ++b) {
    Mlp alone = init[b];
    const TrainResult r = train_adam(be, alone, specs[b], pts[b], cfg, nullptr);
    EXPECT_FALSE(res[b].failed);
    check.same_run(nets[b], res[b], alone, r, "member " + std::to_string(b));
  }
}

TEST_P(Batch, EachMemberIsTheRunOfItsOwnSeed) {
  const ProblemSpec spec = darcy_twoscale(40, 1.0 / 8);
  std::vector<Mlp> init;
  for (uint64_t seed : {0, 1, 2}) init.push_back(init_mlp({1, 8, 8, 1}, "glorot-normal", seed));
  // One thread: members in turn. Two on the CPU: two members at once, each on one thread yet split as a two-thread
  // run splits its rows, so still bit for bit the run of its own with two threads.
  for (int threads : {1, 2}) {
    SCOPED_TRACE(threads);
    auto be = backend(threads);
    expect_members_train_alone(*be, {spec, spec, spec}, init, short_run(15), check_for(GetParam(), tol(1e-12)));
  }
}

// L-BFGS by the two-loop method: all members at once through the batch's lbfgs_ops (on the device for a device
// batch), each the run it makes alone; and it lowers the loss as liblbfgsb does.
TEST_P(Batch, TwoLoopLbfgsMembersAreTheirOwnRuns) {
  auto be = backend(1);
  const ProblemSpec spec = darcy_twoscale(40, 1.0 / 8);
  std::vector<Mlp> init;
  for (uint64_t seed : {0, 1, 2}) init.push_back(init_mlp({1, 8, 8, 1}, "glorot-normal", seed));
  TrainConfig cfg = short_run(40);
  cfg.lbfgs.method = "two-loop";
  expect_members_train_alone(*be, {spec, spec, spec}, init, cfg, check_for(GetParam(), tol(1e-12)));
  const PointSet pts = build_points(spec);
  Mlp a = init[0], b = init[0];
  const TrainResult two = train_adam(*be, a, spec, pts, cfg, nullptr);
  cfg.lbfgs.method = "lbfgsb";
  const TrainResult ref = train_adam(*be, b, spec, pts, cfg, nullptr);
  EXPECT_GT(two.lbfgs.iterations, 0) << two.lbfgs.stop;
  EXPECT_EQ(two.history.back().optimizer, "lbfgs");
  double start = 0.0;  // the loss where L-BFGS starts
  for (const HistoryRow& h : two.history)
    if (h.optimizer == "lbfgs" && h.iteration == two.adam_iterations) start = h.loss;
  std::printf("two-loop: %ld iterations (%s), loss %.6g -> %.6g; liblbfgsb: %ld iterations (%s), %.6g\n",
              two.lbfgs.iterations, two.lbfgs.stop.c_str(), start, two.final_loss, ref.lbfgs.iterations,
              ref.lbfgs.stop.c_str(), ref.final_loss);
  EXPECT_LT(two.final_loss, 0.5 * start);
  EXPECT_LT(two.final_loss, 10.0 * ref.final_loss);
  EXPECT_LT(ref.final_loss, 10.0 * two.final_loss);
}

TEST_P(Batch, MembersUseTheirOwnEpsAndRows) {
  auto be = backend(1);
  const std::vector<ProblemSpec> specs = {darcy_twoscale(40, 1.0 / 4), darcy_twoscale(40, 1.0 / 16)};
  const std::vector<Mlp> init(2, init_mlp({1, 8, 8, 1}, "glorot-normal", 5));  // one network, two problems
  expect_members_train_alone(*be, specs, init, short_run(0), check_for(GetParam(), tol(1e-12)));
  // The two problems' rows differ, so the one initial network trains to two different networks.
  std::vector<PointSet> pts = {build_points(specs[0]), build_points(specs[1])};
  std::vector<Mlp> nets = init;
  train_adam_batch(*be, nets, specs, pts, short_run(0), nullptr);
  EXPECT_NE(nets[0].theta, nets[1].theta);
}

TEST_P(Batch, TwoDimensionalMembers) {
  auto be = backend(1);
  ProblemSpec spec = problem_preset("darcy2d-twoscale");
  spec.nc = 64;
  spec.nb = 16;
  std::vector<Mlp> init;
  for (uint64_t seed : {3, 4}) init.push_back(init_mlp({2, 10, 10, 1}, "glorot-normal", seed));
  expect_members_train_alone(*be, {spec, spec}, init, short_run(5), check_for(GetParam(), tol(1e-12)));
}

TEST_P(Batch, DivergingMembersStopWhereTheyWouldAlone) {
  auto be = backend(1);
  const ProblemSpec spec = darcy_twoscale(40, 1.0 / 8);
  TrainConfig cfg = short_run(0);
  cfg.schedule = {{30, 1e-3}, {30, 1e300}};  // finite for 30 steps, then far too large a step
  cfg.history_every = 7;
  std::vector<Mlp> init;
  for (uint64_t seed : {3, 11}) init.push_back(init_mlp({1, 6, 6, 1}, "glorot-normal", seed));
  std::vector<PointSet> pts(2, build_points(spec));
  std::vector<Mlp> nets = init;
  const std::vector<TrainResult> res = train_adam_batch(*be, nets, {spec, spec}, pts, cfg, nullptr);
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_FALSE(res[b].diverged.empty()) << b;
    EXPECT_FALSE(res[b].failed);
    for (double v : nets[b].theta) EXPECT_TRUE(std::isfinite(v));
    Mlp alone = init[b];
    const TrainResult r = train_adam(*be, alone, spec, pts[b], cfg, nullptr);
    check_for(GetParam(), tol(1e-12)).same_run(nets[b], res[b], alone, r, "member " + std::to_string(b));
  }
}

TEST_P(Batch, AMemberWithoutAFiniteStartFailsAndTheOthersTrain) {
  auto be = backend(1);
  const ProblemSpec spec = darcy_twoscale(16, 1.0 / 8);
  const TrainConfig cfg = short_run(5);
  std::vector<Mlp> init = {init_mlp({1, 4, 1}, "glorot-normal", 1), init_mlp({1, 4, 1}, "glorot-normal", 2)};
  Mlp& bad = init[1];
  bad.theta[0] = 1e300;  // the output layer's weights below overflow the residual
  bad.theta.back() = 1e300;
  bad.theta[bad.theta.size() - 2] = 1e300;
  std::vector<PointSet> pts(2, build_points(spec));
  std::vector<Mlp> nets = init;
  const std::vector<TrainResult> res = train_adam_batch(*be, nets, {spec, spec}, pts, cfg, nullptr);
  EXPECT_TRUE(res[1].failed);
  EXPECT_NE(res[1].diverged.find("not finite"), std::string::npos) << res[1].diverged;
  EXPECT_TRUE(std::isnan(res[1].final_loss));
  EXPECT_EQ(nets[1].theta, init[1].theta);  // nothing trained
  Mlp alone = init[0];
  const TrainResult r = train_adam(*be, alone, spec, pts[0], cfg, nullptr);
  EXPECT_FALSE(res[0].failed);
  check_for(GetParam(), tol(1e-12)).same_run(nets[0], res[0], alone, r, "member 0");
  // Alone, the failing network is a NumericalError, as before batches.
  Mlp bad_alone = init[1];
  EXPECT_THROW(train_adam(*be, bad_alone, spec, pts[1], cfg, nullptr), NumericalError);
}

TEST_P(Batch, BadBatchesAreRefused) {
  auto be = backend(1);
  const ProblemSpec spec = darcy_twoscale(16, 1.0 / 8);
  const PointSet pts = build_points(spec);
  const TrainConfig cfg = short_run(0);
  std::vector<Mlp> mixed = {init_mlp({1, 4, 1}, "glorot-normal", 1), init_mlp({1, 5, 1}, "glorot-normal", 2)};
  EXPECT_THROW(train_adam_batch(*be, mixed, {spec, spec}, {pts, pts}, cfg, nullptr), std::invalid_argument);
  std::vector<Mlp> two(2, init_mlp({1, 4, 1}, "glorot-normal", 1));
  const PointSet other = build_points(darcy_twoscale(17, 1.0 / 8));
  EXPECT_THROW(train_adam_batch(*be, two, {spec, spec}, {pts, other}, cfg, nullptr), std::invalid_argument);
  EXPECT_THROW(train_adam_batch(*be, two, {spec}, {pts, pts}, cfg, nullptr), std::invalid_argument);
  EXPECT_THROW(train_adam_batch(*be, two, {spec, spec}, {pts}, cfg, nullptr), std::invalid_argument);
  std::vector<Mlp> none;
  EXPECT_THROW(train_adam_batch(*be, none, {}, {}, cfg, nullptr), std::invalid_argument);
  TrainConfig ckpt = cfg;
  ckpt.checkpoint_every = 5;
  ckpt.on_checkpoint = [](const TrainState&) {};
  EXPECT_THROW(train_adam_batch(*be, two, {spec, spec}, {pts, pts}, ckpt, nullptr), std::invalid_argument);
  std::vector<Mlp> short_theta = two;
  short_theta[1].theta.pop_back();
  EXPECT_THROW(train_adam_batch(*be, short_theta, {spec, spec}, {pts, pts}, cfg, nullptr), std::invalid_argument);
}

// The batch session itself: set_active freezes a member, member(b) is member b's one-network session.
TEST_P(Batch, SessionMembersAndActiveFlags) {
  auto be = backend(1);
  const ProblemSpec spec = darcy_twoscale(40, 1.0 / 8);
  const PointSet pts = build_points(spec);
  std::vector<Mlp> nets = {init_mlp({1, 8, 8, 1}, "glorot-normal", 0), init_mlp({1, 8, 8, 1}, "glorot-normal", 1)};
  AdamConfig adam;
  auto batch = be->batch_train_session(nets, {pts, pts}, adam);
  ASSERT_EQ(batch->size(), 2);
  batch->set_active(1, false);
  // Member 1's parameters as the batch holds them (in fp32 the network's rounded to single precision).
  std::vector<double> held(nets[1].theta.size());
  batch->member(1).parameters(held);
  const std::vector<double> loss = batch->run(7, 1e-3);
  EXPECT_TRUE(std::isfinite(loss[0]));
  EXPECT_TRUE(std::isnan(loss[1]));
  std::vector<double> theta(nets[1].theta.size());
  batch->member(1).parameters(theta);
  EXPECT_EQ(theta, held);  // untouched
  batch->member(0).parameters(theta);
  EXPECT_NE(theta, nets[0].theta);
  // Member 0 after 7 steps is a single session after 7 steps.
  auto single = be->train_session(nets[0], pts, adam);
  const double l = single->run(7, 1e-3);
  std::vector<double> ref(theta.size());
  single->parameters(ref);
  const BatchCheck check = check_for(GetParam(), tol(1e-12));
  check.same(loss[0], l, "loss");
  for (size_t i = 0; i < ref.size(); ++i) check.same(theta[i], ref[i], "theta[" + std::to_string(i) + "]");
  // member(1).run advances member 1 alone, inactive or not.
  batch->member(1).run(3, 1e-3);
  batch->member(1).parameters(theta);
  EXPECT_NE(theta, held);
  EXPECT_ANY_THROW(batch->member(2));
}

}  // namespace
}  // namespace pinntk::testing
