// Training on every backend (tests/backend_suite.hpp): an interrupted run resumed from its saved state ends exactly
// where the uninterrupted run ends, and a run whose loss stops being finite stops with the last finite network kept.
// Bitwise expectations compare two runs of one backend (same kernels, fixed reduction order).
#include <gtest/gtest.h>

#include <algorithm>   // std::count, std::max
#include <cmath>       // std::isfinite, std::abs
#include <filesystem>  // std::filesystem::create_directories
#include <fstream>     // std::ofstream
#include <stdexcept>   // std::invalid_argument
#include <string>      // std::string, std::to_string
#include <utility>     // std::move

#include "common/errors.hpp"     // UsageError, NumericalError
#include "host/ntk.hpp"          // analyze_ntk, NtkScaling
#include "host/ntk_history.hpp"  // NtkRecorder, ntk_history_csv
#include "host/train.hpp"        // train_adam, TrainState, train_state_json, load_train_state
#include "tests/backend_suite.hpp"
#include "tests/near.hpp"  // near

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
    // Fields a caller saves beside the state come back in the file's document; the state's own names are refused.
    const std::string more_path = path + ".more";
    { std::ofstream(more_path) << train_state_json(saved[1], "{\"run\":1}", {{"extra", {1, 2}}}); }
    nlohmann::json file;
    EXPECT_EQ(load_train_state(more_path, "{\"run\":1}", np, 60, cfg.history_every, &file).theta, st.theta);
    EXPECT_EQ(file["extra"], nlohmann::json({1, 2}));
    EXPECT_THROW(train_state_json(saved[1], "{\"run\":1}", {{"theta", 0}}), std::invalid_argument);

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

// train --ntk-every: every recorded row is the NTK of the network at its iteration (the analysis of ntk run on that
// network), one row per due iteration, and a run resumed from a saved state with the rows saved with it ends with
// the uninterrupted run's rows.
TEST_P(Train, NtkRowsAlongTrainingAreEachNetworksNtkAndSurviveAResume) {
  const ProblemSpec spec = darcy_twoscale(97);
  const PointSet pts = build_points(spec);
  const Mlp init = init_mlp({1, 12, 12, 1}, "glorot-normal", 4);
  auto be = backend();
  TrainConfig cfg = adam_only({{25, 1e-2}, {35, 1e-3}});
  cfg.history_every = 10;
  cfg.checkpoint_every = 20;
  NtkRecorder rec(*be, init, pts, NtkScaling::Lemma, 0, 20);
  std::vector<std::vector<double>> thetas;  // the network at each row
  cfg.on_record = [&](long it, TrainSession& s) {
    if (rec.record(it, s)) {
      thetas.emplace_back(init.theta.size());
      s.parameters(thetas.back());
    }
  };
  std::vector<TrainState> saved;
  std::vector<std::string> saved_rows;
  cfg.on_checkpoint = [&](const TrainState& st) {
    saved.push_back(st);
    saved_rows.push_back(rec.state_below(st.iteration).dump());
  };
  Mlp a = init;
  train_adam(*be, a, spec, pts, cfg, nullptr);
  const std::vector<NtkHistoryRow> full = rec.rows();
  ASSERT_EQ(full.size(), 4u);  // iterations 0, 20, 40, 60
  ASSERT_EQ(saved.size(), 2u);
  for (size_t k = 0; k < full.size(); ++k) {
    EXPECT_EQ(full[k].iteration, static_cast<long>(20 * k));
    ASSERT_TRUE(full[k].computed);
    Mlp net = init;
    net.theta = thetas[k];
    const NtkResult r = analyze_ntk(*be, net, pts, NtkScaling::Lemma, false);
    EXPECT_TRUE(near(full[k].frobenius_K, r.frobenius_K, r.frobenius_K)) << k;
    EXPECT_TRUE(near(full[k].frobenius_Kuu, r.frobenius_Kuu, r.frobenius_Kuu)) << k;
    EXPECT_TRUE(near(full[k].lambda_max_Kuu, r.spectrum_Kuu.front(), r.spectrum_Kuu.front())) << k;
    double trace = 0.0;
    for (double e : r.spectrum_Kbb) trace += e;
    EXPECT_TRUE(near(full[k].trace_Kbb, trace, trace)) << k;
    double theta_max = 0.0;
    for (double v : thetas[k]) theta_max = std::max(theta_max, std::abs(v));
    EXPECT_EQ(full[k].theta_max_abs, theta_max);
  }
  // The network moves, and so does its kernel: the rows are not one network's.
  EXPECT_NE(full[0].frobenius_K, full[3].frobenius_K);
  EXPECT_NE(full[0].w0_max_abs, full[3].w0_max_abs);

  // Resumed at iteration 40 with the rows saved then (0 and 20): the same four rows.
  TrainConfig again = cfg;
  again.resume = &saved[1];
  again.on_checkpoint = nullptr;
  NtkRecorder rec2(*be, init, pts, NtkScaling::Lemma, 0, 20);
  rec2.restore(nlohmann::json::parse(saved_rows[1]), saved[1].iteration, "state");
  ASSERT_EQ(rec2.rows().size(), 2u);
  again.on_record = [&](long it, TrainSession& s) { rec2.record(it, s); };
  Mlp b = init;
  train_adam(*be, b, spec, pts, again, nullptr);
  ASSERT_EQ(rec2.rows().size(), full.size());
  for (size_t k = 0; k < full.size(); ++k) {
    EXPECT_EQ(rec2.rows()[k].iteration, full[k].iteration);
    EXPECT_EQ(rec2.rows()[k].frobenius_K, full[k].frobenius_K) << k;
    EXPECT_EQ(rec2.rows()[k].lambda_max_K, full[k].lambda_max_K) << k;
    EXPECT_EQ(rec2.rows()[k].w0_max_abs, full[k].w0_max_abs) << k;
  }
  // Saved rows that are not those of the state's iteration are refused.
  NtkRecorder rec3(*be, init, pts, NtkScaling::Lemma, 0, 20);
  EXPECT_THROW(rec3.restore(nlohmann::json::parse(saved_rows[0]), saved[1].iteration, "state"), UsageError);
  EXPECT_THROW(rec3.restore(nlohmann::json(), saved[1].iteration, "state"), UsageError);
  nlohmann::json bad = nlohmann::json::parse(saved_rows[1]);
  bad[1][0] = 30;
  EXPECT_THROW(rec3.restore(bad, saved[1].iteration, "state"), UsageError);
  // The CSV: a header and a row per entry.
  const std::string csv = ntk_history_csv(full);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
  EXPECT_EQ(csv.rfind("iteration,frobenius_K,", 0), 0u);
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
