// Training on every backend (tests/backend_suite.hpp): an interrupted run resumed from its saved state ends exactly
// where the uninterrupted run ends, and a run whose loss stops being finite stops with the last finite network kept.
// Bitwise expectations compare two runs of one backend (same kernels, fixed reduction order).
#include <gtest/gtest.h>

#include <cmath>       // std::isfinite
#include <filesystem>  // std::filesystem::create_directories
#include <fstream>     // std::ofstream
#include <string>      // std::string, std::to_string
#include <utility>     // std::move

#include "common/errors.hpp"  // UsageError, NumericalError
#include "host/train.hpp"     // train_adam, TrainState, train_state_json, load_train_state
#include "tests/backend_suite.hpp"

namespace pinntk::testing {
namespace {

ProblemSpec darcy_twoscale(int nc) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = nc;
  return spec;
}

// Adam only over `schedule`: resuming and divergence are the subject, not 15000 L-BFGS iterations (the default).
TrainConfig adam_only(decltype(TrainConfig::schedule) schedule) {
  TrainConfig cfg;
  cfg.schedule = std::move(schedule);
  cfg.lbfgs.max_iter = 0;
  return cfg;
}

// 2-D rows: an 8 x 8 interior grid and 4 points on each side of darcy2d-twoscale.
ProblemSpec darcy2d_twoscale() {
  ProblemSpec spec = problem_preset("darcy2d-twoscale");
  spec.nc = 64;
  spec.nb = 16;
  return spec;
}

TEST_P(Train, ResumedRunEqualsUninterruptedRun) {
  for (const ProblemSpec& spec : {darcy_twoscale(97), darcy2d_twoscale()}) {
    const PointSet pts = build_points(spec);
    const Mlp init = init_mlp({spec.dim, 12, 12, 1}, "glorot-normal", 9);
    TrainConfig cfg = adam_only({{25, 1e-3}, {35, 1e-4}});
    cfg.history_every = 10;
    cfg.checkpoint_every = 20;
    std::vector<TrainState> saved;
    cfg.on_checkpoint = [&](const TrainState& st) { saved.push_back(st); };
    auto be = backend();
    Mlp a = init;
    const TrainResult full = train_adam(*be, a, spec, pts, cfg, nullptr);
    ASSERT_EQ(saved.size(), 2u);  // at 20 and 40 (not at the end, 60)
    EXPECT_EQ(saved[1].iteration, 40);
    EXPECT_EQ(saved[1].adam_step, 40);

    // Through the file format too: what a crashed process leaves behind (one file per backend: the CPU and GPU
    // binaries may run at once).
    std::filesystem::create_directories(PINNTK_TEST_TMP);
    const std::string path =
        std::string(PINNTK_TEST_TMP) + "/state_" + GetParam().name + "_" + std::to_string(spec.dim) + ".json";
    { std::ofstream(path) << train_state_json(saved[1], "{\"run\":1}"); }
    const long np = init.n_params();
    const TrainState st = load_train_state(path, "{\"run\":1}", np, 60, cfg.history_every);
    EXPECT_THROW(load_train_state(path, "{\"run\":2}", np, 60), UsageError);
    EXPECT_THROW(load_train_state(path + ".missing", "{\"run\":1}", np, 60), UsageError);

    TrainConfig again = cfg;
    again.resume = &st;
    again.on_checkpoint = nullptr;
    Mlp b = init;  // replaced by the saved parameters
    const TrainResult resumed = train_adam(*be, b, spec, pts, again, nullptr);
    EXPECT_EQ(b.theta, a.theta) << spec.name;  // bit for bit
    ASSERT_EQ(resumed.history.size(), full.history.size());
    // The resumed run's clock goes on from the state's: times never fall back.
    EXPECT_GT(st.elapsed_s, 0.0);
    EXPECT_GE(resumed.wall_time_s, st.elapsed_s);
    for (size_t i = 1; i < resumed.history.size(); ++i)
      EXPECT_GE(resumed.history[i].time_s, resumed.history[i - 1].time_s) << spec.name << " row " << i;
    for (size_t i = 0; i < full.history.size(); ++i) {
      EXPECT_EQ(resumed.history[i].iteration, full.history[i].iteration);
      EXPECT_EQ(resumed.history[i].loss, full.history[i].loss);
      EXPECT_EQ(resumed.history[i].max_error, full.history[i].max_error);
      EXPECT_EQ(resumed.history[i].rel_l2_error, full.history[i].rel_l2_error);
    }
  }
}

TEST_P(Divergence, AdamStopsAtTheFirstNonFiniteLossAndKeepsTheNetworkBefore) {
  const ProblemSpec spec = darcy_twoscale(40);
  const PointSet pts = build_points(spec);
  auto be = backend(1);
  TrainConfig cfg = adam_only({{30, 1e-3}, {30, 1e300}});  // finite for 30 steps, then far too large a step
  cfg.history_every = 7;
  Mlp net = init_mlp({1, 6, 6, 1}, "glorot-normal", 3);
  const TrainResult r = train_adam(*be, net, spec, pts, cfg, nullptr);
  ASSERT_FALSE(r.diverged.empty());
  EXPECT_GT(r.diverged_at, 30);
  EXPECT_EQ(r.iterations, r.diverged_at - 1);
  EXPECT_NE(r.diverged.find("iteration " + std::to_string(r.diverged_at)), std::string::npos) << r.diverged;
  for (double v : net.theta) EXPECT_TRUE(std::isfinite(v));
  EXPECT_TRUE(std::isfinite(r.final_loss));
  EXPECT_TRUE(std::isfinite(r.max_error));
  for (const auto& h : r.history) {
    EXPECT_LE(h.iteration, r.iterations);
    EXPECT_TRUE(std::isfinite(h.loss) && std::isfinite(h.max_error));
  }
  EXPECT_EQ(r.history.back().iteration, r.iterations);
  // The kept network is the one Adam held after diverged_at - 1 steps: the same run stopped there agrees.
  TrainConfig shorter = cfg;
  shorter.schedule = {{30, 1e-3}, {r.iterations - 30, 1e300}};
  Mlp again = init_mlp({1, 6, 6, 1}, "glorot-normal", 3);
  const TrainResult s = train_adam(*be, again, spec, pts, shorter, nullptr);
  EXPECT_TRUE(s.diverged.empty());
  EXPECT_EQ(again.theta, net.theta);  // same path, backend and thread count
}

TEST_P(Divergence, ANonFiniteInitialLossIsANumericalError) {
  const ProblemSpec spec = darcy_twoscale(16);
  const PointSet pts = build_points(spec);
  auto be = backend(1);
  const TrainConfig cfg = adam_only({{5, 1e-3}});
  Mlp net = init_mlp({1, 4, 1}, "glorot-normal", 1);
  net.theta[0] = 1e300;  // tanh saturates, but the output layer's weight below overflows the residual
  net.theta.back() = 1e300;
  net.theta[net.theta.size() - 2] = 1e300;
  EXPECT_THROW(train_adam(*be, net, spec, pts, cfg, nullptr), NumericalError);
}

}  // namespace
}  // namespace pinntk::testing
