// Training: an interrupted run resumed from its saved state ends exactly where the uninterrupted run ends.
#include <gtest/gtest.h>

#include <fstream>  // std::ofstream

#include "common/errors.hpp"  // UsageError
#include "host/train.hpp"   // train_adam, TrainState

namespace pinntk {
namespace {

TEST(Train, ResumedRunEqualsUninterruptedRun) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 97;
  const PointSet pts = build_points(spec);
  const Mlp init = init_mlp({1, 12, 12, 1}, "glorot-normal", 9);
  TrainConfig cfg;
  cfg.schedule = {{25, 1e-3}, {35, 1e-4}};
  cfg.history_every = 10;
  cfg.lbfgs.max_iter = 0;  // Adam only: resuming is the subject, not 15000 L-BFGS iterations (the default) twice
  cfg.checkpoint_every = 20;
  std::vector<TrainState> saved;
  cfg.on_checkpoint = [&](const TrainState& st) { saved.push_back(st); };
  auto be = make_cpu_backend(0);
  Mlp a = init;
  const TrainResult full = train_adam(*be, a, spec, pts, cfg, nullptr);
  ASSERT_EQ(saved.size(), 2u);  // at 20 and 40 (not at the end, 60)
  EXPECT_EQ(saved[1].iteration, 40);
  EXPECT_EQ(saved[1].adam_step, 40);

  // Through the file format too: what a crashed process leaves behind.
  const std::string path = std::string(PINNTK_TEST_TMP) + "/state.json";
  { std::ofstream(path) << train_state_json(saved[1], "{\"run\":1}"); }
  const long np = init.n_params();
  const TrainState st = load_train_state(path, "{\"run\":1}", np, 60);
  EXPECT_THROW(load_train_state(path, "{\"run\":2}", np, 60), UsageError);
  EXPECT_THROW(load_train_state(path + ".missing", "{\"run\":1}", np, 60), UsageError);

  TrainConfig again = cfg;
  again.resume = &st;
  again.on_checkpoint = nullptr;
  Mlp b = init;  // replaced by the saved parameters
  const TrainResult resumed = train_adam(*be, b, spec, pts, again, nullptr);
  EXPECT_EQ(b.theta, a.theta);  // bit for bit
  ASSERT_EQ(resumed.history.size(), full.history.size());
  for (size_t i = 0; i < full.history.size(); ++i) {
    EXPECT_EQ(resumed.history[i].iteration, full.history[i].iteration);
    EXPECT_EQ(resumed.history[i].loss, full.history[i].loss);
    EXPECT_EQ(resumed.history[i].max_error, full.history[i].max_error);
  }
}

}  // namespace
}  // namespace pinntk
