// The pinntk executable end to end: good runs write complete outputs, bad input gets one line and no output.
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS
#include <unistd.h>    // geteuid, usleep

#include <cmath>              // NAN
#include <csignal>            // SIGTERM
#include <cstdlib>            // std::system
#include <cstring>            // std::memcpy
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ofstream
#include <functional>         // std::function
#include <nlohmann/json.hpp>  // nlohmann::json
#include <sstream>            // std::istringstream

#include "host/io/npy.hpp"  // npy_bytes
#include "tests/near.hpp"   // near
#include "tests/slurp.hpp"  // slurp

namespace fs = std::filesystem;

namespace {

struct CliRun {
  int code;
  std::string err;
};

const fs::path kTmp = fs::path(PINNTK_TEST_TMP) / "cli";

CliRun pinntk(const std::string& args) {
  fs::create_directories(kTmp);
  // ctest runs tests in parallel processes: one stderr file per test.
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string tag = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : tag)
    if (c == '/') c = '_';
  const fs::path err = kTmp / ("stderr_" + tag + ".txt");
  const std::string cmd = std::string(PINNTK_BIN) + " " + args + " 2>" + err.string() + " >/dev/null";
  const int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), slurp(err)};
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// SIGTERM during a run: one line says so (and how to continue when a checkpoint was saved), the folder the run
// created goes when it is still empty, and the exit status is the signal's.
TEST(Cli, ASignalEndsARunWithOneLineAndNoEmptyFolder) {
  fs::create_directories(kTmp);
  for (const bool checkpoints : {false, true}) {
    const fs::path out = kTmp / (checkpoints ? "signal_ckpt" : "signal_plain"), err = out.string() + ".err";
    fs::remove_all(out);
    const std::string cmd = "sh -c '" + std::string(PINNTK_BIN) +
                            " train --threads 1 --nc 64 --layers 1,8,1 --schedule 1000000000@1e-3 --history-every "
                            "1000000 --checkpoint-every " +
                            (checkpoints ? "200" : "0") + " --out " + out.string() + " 2>" + err.string() +
                            // Signalled once it trains: its folder exists (with a checkpoint in it), then a little
                            // later; at most 60 s of waiting on a loaded machine.
                            " & p=$!; i=0; while [ ! -e " +
                            (checkpoints ? (out / "resume.json").string() : out.string()) +
                            " ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; sleep 0.3; kill -TERM $p; wait $p; "
                            "exit $?'";
    const int status = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << checkpoints;
    const std::string text = slurp(err);
    EXPECT_NE(text.find("pinntk: terminated (SIGTERM)"), std::string::npos) << text;
    if (checkpoints) {
      EXPECT_NE(text.find("--resume"), std::string::npos) << text;
      EXPECT_TRUE(fs::exists(out / "resume.json"));
      EXPECT_FALSE(fs::exists(out / "summary.json"));
    } else {
      EXPECT_NE(text.find("no result was written"), std::string::npos) << text;
      EXPECT_FALSE(fs::exists(out)) << "an empty folder was left";
    }
  }
}

TEST(Cli, NtkWritesSummaryAndSpectra) {
  const fs::path out = kTmp / "ntk_ok";
  fs::remove_all(out);
  const CliRun r = pinntk(
      "ntk --problem darcy-ntk --eps 1/20 --nc 64 --layers 1,10,1 --init normal --seed 3 "
      "--device cpu --save-matrices --out " +
      out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["problem"], "darcy-ntk");
  EXPECT_DOUBLE_EQ(j["eps"].get<double>(), 0.05);
  EXPECT_EQ(j["n_params"], 31);
  EXPECT_EQ(j["nc"], 64);
  EXPECT_EQ(j["nb"], 2);
  EXPECT_EQ(j["device"], "cpu");
  EXPECT_EQ(j["precision"], "fp64");
  EXPECT_EQ(j["ntk_scaling"], "lemma");
  EXPECT_EQ(j["layers"], (std::vector<int>{1, 10, 1}));
  EXPECT_GT(j["ntk"]["frobenius_K"].get<double>(), 0.0);
  EXPECT_GT(j["ntk"]["frobenius_Kuu"].get<double>(), 0.0);
  EXPECT_EQ(j["ntk"]["eigenvalues_Kuu_top"].size(), 3u);
  EXPECT_EQ(j["ntk"]["eigenvalues_K_top"].size(), 3u);
  EXPECT_TRUE(j["ntk"].contains("condition_Kuu"));
  // .npy: magic, header, then 66 doubles of the full spectrum.
  const std::string npy = slurp(out / "spectrum_K.npy");
  ASSERT_GE(npy.size(), 128u);
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  const size_t header = 10 + static_cast<unsigned char>(npy[8]) + 256 * static_cast<unsigned char>(npy[9]);
  EXPECT_EQ(header % 64, 0u);
  EXPECT_NE(npy.find("'shape': (66,)"), std::string::npos);
  EXPECT_EQ(npy.size(), header + 66 * 8);
  double first = 0.0;
  std::memcpy(&first, npy.data() + header, 8);
  EXPECT_DOUBLE_EQ(first, j["ntk"]["eigenvalues_K_top"][0].get<double>());
  EXPECT_TRUE(fs::exists(out / "spectrum_Kuu.npy"));
  EXPECT_NE(slurp(out / "K.npy").find("'shape': (66, 66)"), std::string::npos);
  EXPECT_NE(slurp(out / "J.npy").find("'shape': (66, 31)"), std::string::npos);
}

TEST(Cli, TrainWritesHistoryPredictionCheckpointAndSummary) {
  const fs::path out = kTmp / "train_ok";
  fs::remove_all(out);
  const CliRun r = pinntk(
      "train --problem poisson-twoscale --eps 1/4 --nc 64 --layers 1,12,1 --schedule 30@1e-2,20@1e-3 "
      "--history-every 10 --log-every 25 --out " +
      out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("iteration 50/50"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["iterations"], 50);
  EXPECT_GT(j["final_loss"].get<double>(), 0.0);
  EXPECT_GT(j["max_error"].get<double>(), 0.0);
  const std::string hist = slurp(out / "history.csv");
  EXPECT_EQ(hist.substr(0, hist.find('\n')),
            "iteration,optimizer,lr,loss,loss_pde,loss_boundary,max_error,rel_l2_error,time_s");
  EXPECT_EQ(count_lines(hist), 1 + 6);  // iterations 0, 10, 20, 30, 40 and the final 50
  EXPECT_EQ(count_lines(slurp(out / "prediction.csv")), 1001);
  // Training from the written checkpoint with zero-length... instead evaluate its NTK: it must load.
  const CliRun again = pinntk("ntk --problem poisson-twoscale --eps 1/4 --nc 16 --checkpoint " +
                              (out / "checkpoint.json").string() + " --out " + (kTmp / "ntk_from_ckpt").string());
  EXPECT_EQ(again.code, 0) << again.err;
}

// --ntk-every: ntk_history.csv holds the NTK at iterations 0, K, 2K, ... through Adam and L-BFGS (one row where
// L-BFGS starts at Adam's last iteration); its first row is `pinntk ntk` of the initial network, its last that of the
// trained checkpoint.
TEST(Cli, TrainRecordsTheNtkAlongTraining) {
  const fs::path out = kTmp / "train_ntk_every", first = kTmp / "train_ntk_first", last = kTmp / "train_ntk_last";
  for (const fs::path& p : {out, first, last}) fs::remove_all(p);
  const std::string problem = "--problem darcy-ntk --eps 1/20 --nc 64 --device cpu --threads 1 ";
  const CliRun r = pinntk("train " + problem +
                          "--seed 3 --schedule 40@1e-3 --lbfgs 40 --history-every 20 --ntk-every 20 "
                          "--ntk-scaling none --out " +
                          out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp(out / "ntk_history.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "iteration,frobenius_K,frobenius_Kuu,frobenius_Kbb,lambda_max_K,lambda_max_Kuu,lambda_min_Kuu,"
            "lambda_max_Kbb,trace_Kuu,trace_Kbb,theta_max_abs,w0_max_abs,ntk_time_s");
  const auto summary = nlohmann::json::parse(slurp(out / "summary.json"));
  const long iterations = summary["iterations"].get<long>();  // L-BFGS may stop before its 40
  ASSERT_GT(iterations, 40);
  std::vector<std::vector<double>> rows;
  std::istringstream in(csv.substr(csv.find('\n') + 1));
  for (std::string line; std::getline(in, line);) {
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) row.push_back(std::stod(c));
    ASSERT_EQ(row.size(), 13u) << line;
    rows.push_back(row);
  }
  const size_t want = static_cast<size_t>(iterations / 20 + 1);
  ASSERT_EQ(rows.size(), want) << csv;
  for (size_t k = 0; k < rows.size(); ++k) EXPECT_EQ(rows[k][0], 20.0 * k);
  EXPECT_EQ(summary["ntk_history"]["rows"], want);
  EXPECT_EQ(summary["ntk_history"]["scaling"], "none");
  // The first row against ntk on the initial network (same seed), the last against the checkpoint when L-BFGS ended
  // at a multiple of 20.
  const CliRun a = pinntk("ntk " + problem + "--seed 3 --ntk-scaling none --out " + first.string());
  ASSERT_EQ(a.code, 0) << a.err;
  const auto ja = nlohmann::json::parse(slurp(first / "summary.json"));
  const double fa = ja["ntk"]["frobenius_Kuu"].get<double>();
  EXPECT_TRUE(pinntk::testing::near(rows[0][2], fa, fa)) << rows[0][2] << " vs " << fa;
  EXPECT_NE(rows.back()[1], rows[0][1]);
  if (iterations % 20 == 0) {
    const CliRun b = pinntk("ntk " + problem + "--ntk-scaling none --checkpoint " + (out / "checkpoint.json").string() +
                            " --out " + last.string());
    ASSERT_EQ(b.code, 0) << b.err;
    const double fb = nlohmann::json::parse(slurp(last / "summary.json"))["ntk"]["frobenius_K"].get<double>();
    EXPECT_TRUE(pinntk::testing::near(rows.back()[1], fb, fb)) << rows.back()[1] << " vs " << fb;
  }
}

TEST(Cli, TwoDimensionalRunsWriteGridPredictionsPointsAndCheckpoints) {
  const fs::path out = kTmp / "train_2d", ntk = kTmp / "ntk_2d", again = kTmp / "ntk_2d_points";
  for (const auto& p : {out, ntk, again}) fs::remove_all(p);
  CliRun r = pinntk(
      "train --problem poisson2d-sines --nc 100 --nb 40 --layers 2,8,1 --schedule 60@1e-2 --device cpu "
      "--history-every 20 --out " +
      out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["dim"], 2);
  EXPECT_EQ(j["layers"], (std::vector<int>{2, 8, 1}));
  EXPECT_EQ(j["nc"], 100);
  EXPECT_GT(j["rel_l2_error"].get<double>(), 0.0);
  EXPECT_GT(j["max_error"].get<double>(), 0.0);
  const std::string pred = slurp(out / "prediction.csv");
  EXPECT_EQ(pred.substr(0, pred.find('\n')), "x,y,u,exact,error");
  EXPECT_EQ(count_lines(pred), 1 + 101 * 101);
  // The trained network goes on from its checkpoint; a 1-D problem refuses it (input width 2).
  r = pinntk("ntk --problem poisson2d-sines --nc 16 --nb 8 --checkpoint " + (out / "checkpoint.json").string() +
             " --save-matrices --device cpu --out " + ntk.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(ntk / "points.npy").find("'shape': (24, 2)"), std::string::npos);
  EXPECT_NE(slurp(ntk / "J.npy").find("'shape': (24, 33)"), std::string::npos);
  r = pinntk("ntk --problem darcy-ntk --checkpoint " + (out / "checkpoint.json").string() + " --out " +
             (kTmp / "ntk_2d_refused").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("input width is 2"), std::string::npos) << r.err;
  // The rows' points read back as a point file: every one a collocation point now.
  r = pinntk("ntk --problem poisson2d-sines --nb 8 --points " + (ntk / "points.npy").string() + " --checkpoint " +
             (out / "checkpoint.json").string() + " --save-matrices --device cpu --out " + again.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(again / "summary.json"))["nc"], 24);
}

TEST(Cli, NtkChunkedPathGivesTheExactPathsNumbers) {
  // N = 402 rows, P = 97: the Grams over chunks of 37 rows (not a divisor of 400), over the chunks the memory limit
  // allows (auto: the one-shot path needs about 1.6 MB), and the one-shot path.
  const std::string common = "ntk --problem darcy-twoscale --nc 400 --layers 1,8,8,1 --seed 2 --device cpu --out ";
  const fs::path exact = kTmp / "ntk_exact", chunked = kTmp / "ntk_chunked", limited = kTmp / "ntk_limited";
  for (const auto& p : {exact, chunked, limited}) fs::remove_all(p);
  CliRun r = pinntk(common + exact.string() + " --ntk-path exact");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("exact path: asked for by --ntk-path exact"), std::string::npos) << r.err;
  r = pinntk(common + chunked.string() + " --ntk-path chunked --chunk-rows 37");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("chunked path: asked for by --ntk-path chunked"), std::string::npos) << r.err;
  r = pinntk(common + limited.string() + " --memory-limit 400K");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("chunked path: the one-shot"), std::string::npos) << r.err;
  const auto e = nlohmann::json::parse(slurp(exact / "summary.json"))["ntk"];
  EXPECT_EQ(e["path"], "exact");
  EXPECT_EQ(e["chunk_rows"], 0);
  for (const auto& dir : {chunked, limited}) {
    const auto j = nlohmann::json::parse(slurp(dir / "summary.json"));
    const auto c = j["ntk"];
    EXPECT_EQ(c["path"], "chunked");
    EXPECT_FALSE(c["path_reason"].get<std::string>().empty());
    EXPECT_GT(c["peak_memory_bytes_estimate"].get<double>(), 0.0);
    EXPECT_LT(c["peak_memory_bytes_estimate"].get<double>(), e["peak_memory_bytes_estimate"].get<double>());
    EXPECT_TRUE(c["gram_trick"].get<bool>());
    for (const char* key : {"frobenius_K", "frobenius_Kuu", "frobenius_Kbb", "spectral_radius_Kbb"})
      EXPECT_NEAR(c[key].get<double>(), e[key].get<double>(), 1e-12 * e[key].get<double>()) << key;
    for (const char* key : {"eigenvalues_K_top", "eigenvalues_Kuu_top"})
      for (int i = 0; i < 3; ++i)
        EXPECT_NEAR(c[key][i].get<double>(), e[key][i].get<double>(), 1e-12 * e[key][i].get<double>()) << key;
    // The smallest eigenvalue of K_uu is at rounding level: absolute against the largest.
    const double top = e["eigenvalues_Kuu_top"][0];
    EXPECT_NEAR(c["eigenvalue_Kuu_min"].get<double>(), e["eigenvalue_Kuu_min"].get<double>(), 1e-12 * top);
    EXPECT_NEAR(j["residual_norm"].get<double>(), nlohmann::json::parse(slurp(exact / "summary.json"))["residual_norm"],
                1e-12 * j["residual_norm"].get<double>());
  }
  EXPECT_EQ(nlohmann::json::parse(slurp(chunked / "summary.json"))["ntk"]["chunk_rows"], 37);
  const long rows = nlohmann::json::parse(slurp(limited / "summary.json"))["ntk"]["chunk_rows"];
  EXPECT_GT(rows, 1);
  EXPECT_LT(rows, 400);
  // Not even one row fits: bad input (exit 2), one line, no folder.
  const fs::path refused = kTmp / "ntk_chunked_refused";
  fs::remove_all(refused);
  r = pinntk(common + refused.string() + " --ntk-path chunked --memory-limit 100K");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--memory-limit"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(refused));
}

TEST(Cli, NtkLanczosTopEigenvaluesAreTheExactPaths) {
  // N = 66 rows <= P = 97 (K_s) and N = 402 > P (the Gram): top:4 by Lanczos against the full analysis.
  for (const int nc : {64, 400}) {
    const std::string common =
        "ntk --problem darcy-twoscale --nc " + std::to_string(nc) + " --layers 1,8,8,1 --seed 2 --device cpu --out ";
    const fs::path exact = kTmp / ("ntk_eig_exact_" + std::to_string(nc));
    const fs::path top = kTmp / ("ntk_eig_top_" + std::to_string(nc));
    for (const auto& p : {exact, top}) fs::remove_all(p);
    CliRun r = pinntk(common + exact.string());
    ASSERT_EQ(r.code, 0) << r.err;
    r = pinntk(common + top.string() + " --eigen top:4 --save-vectors");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("top-4 eigenvalues of K by Lanczos"), std::string::npos) << r.err;
    const auto e = nlohmann::json::parse(slurp(exact / "summary.json"))["ntk"]["eigenvalues_K_top"];
    const auto j = nlohmann::json::parse(slurp(top / "summary.json"))["eigen"];
    EXPECT_EQ(j["method"], "lanczos (Spectra SymEigsSolver)");
    EXPECT_EQ(j["operator"], nc == 64 ? "K_s (N x N)" : "Jh^T Jh (P x P)");
    EXPECT_EQ(j["k"], 4);
    EXPECT_GT(j["products"].get<long>(), 0);
    ASSERT_EQ(j["values"].size(), 4u);
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(j["values"][i].get<double>(), e[i].get<double>(), 1e-9 * e[i].get<double>()) << i;
    EXPECT_TRUE(fs::exists(top / "eigenvalues_top.npy"));
    EXPECT_TRUE(fs::exists(top / "eigenvectors_top.npy"));
    EXPECT_FALSE(fs::exists(top / "spectrum_K.npy"));
  }
  // K beyond the rank min(N, P): one line, exit 2, no folder.
  const fs::path refused = kTmp / "ntk_eig_refused";
  fs::remove_all(refused);
  const CliRun r = pinntk("ntk --problem darcy-twoscale --nc 64 --layers 1,8,8,1 --device cpu --eigen top:67 --out " +
                          refused.string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("min(N, P) = 66"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(refused));
}

TEST(Cli, LevenbergMarquardtWithContinuation) {
  const fs::path out = kTmp / "lm_ok";
  fs::remove_all(out);
  const CliRun r = pinntk(
      "train --problem darcy-twoscale --nc 48 --layers 1,8,8,1 --schedule 20@1e-3 --optimizer lm "
      "--eps-continuation 1/4,1/8 --lm-iters 6,9 --history-every 5 --device cpu --out " +
      out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["lm"]["stages"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["eps"].get<double>(), 0.125);
  EXPECT_EQ(j["iterations"], 20 + 6 + 9);
  EXPECT_EQ(count_lines(slurp(out / "lm_history.csv")), 1 + 6 + 9);
  const std::string hist = slurp(out / "history.csv");
  EXPECT_NE(hist.find(",lm,"), std::string::npos);
  // One row per iteration: Adam's 0 .. 20, then LM's 25, 30 and the last, 35 (a multiple of 5: one row, not two).
  std::istringstream rows(hist.substr(hist.find('\n') + 1));
  std::vector<long> its;
  for (std::string line; std::getline(rows, line);) its.push_back(std::stol(line.substr(0, line.find(','))));
  EXPECT_EQ(its, (std::vector<long>{0, 5, 10, 15, 20, 25, 30, 35})) << hist;
}

TEST(Cli, SameSeedSameNumbersAcrossThreadCounts) {
  const std::string common = "ntk --problem darcy-ntk --nc 40 --layers 1,20,1 --seed 5 --save-matrices --out ";
  ASSERT_EQ(pinntk(common + (kTmp / "t1").string() + " --threads 1").code, 0);
  ASSERT_EQ(pinntk(common + (kTmp / "t2").string() + " --threads 2").code, 0);
  // The initialization and the per-point Jacobian are bit-identical; BLAS and LAPACK may round differently
  // with another thread count, so the spectra agree to rounding.
  const auto j1 = nlohmann::json::parse(slurp(kTmp / "t1" / "summary.json"));
  const auto j2 = nlohmann::json::parse(slurp(kTmp / "t2" / "summary.json"));
  EXPECT_EQ(j1["residual_norm"], j2["residual_norm"]);
  EXPECT_EQ(slurp(kTmp / "t1" / "J.npy"), slurp(kTmp / "t2" / "J.npy"));
  for (int i = 0; i < 3; ++i) {
    const double a = j1["ntk"]["eigenvalues_Kuu_top"][i], b = j2["ntk"]["eigenvalues_Kuu_top"][i];
    EXPECT_NEAR(a, b, 1e-12 * j1["ntk"]["eigenvalues_Kuu_top"][0].get<double>());
  }
}

TEST(Cli, ADivergedRunExitsThreeAndKeepsTheLastFiniteNetwork) {
  const fs::path out = kTmp / "diverged";
  fs::remove_all(out);
  const CliRun r = pinntk(
      "train --nc 64 --layers 1,10,10,1 --schedule 20@1e-3,200@1e300 --history-every 5 "
      "--device cpu --out " +
      out.string());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("pinntk: diverged: Adam: the loss is not finite at iteration"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["status"], "diverged");
  const long at = j["diverged"]["iteration"];
  EXPECT_GT(at, 20);
  EXPECT_EQ(j["iterations"], at - 1);
  ASSERT_TRUE(j["final_loss"].is_number());  // NaN would be written as null
  ASSERT_TRUE(j["max_error"].is_number());
  EXPECT_GT(j["max_error"].get<double>(), 0.0);
  const std::string hist = slurp(out / "history.csv");
  EXPECT_EQ(hist.find("nan"), std::string::npos) << hist;
  EXPECT_EQ(slurp(out / "prediction.csv").find("nan"), std::string::npos);
  // The kept network is a checkpoint pinntk itself loads.
  const CliRun again =
      pinntk("ntk --problem darcy-twoscale --nc 16 --checkpoint " + (out / "checkpoint.json").string() +
             " --device cpu --out " + (kTmp / "diverged_ntk").string());
  EXPECT_EQ(again.code, 0) << again.err;
}

TEST(Cli, AKernelBeyondDoublePrecisionExitsThreeWithoutOutput) {
  const fs::path out = kTmp / "ntk_overflow";
  fs::remove_all(out);
  const CliRun r = pinntk("ntk --omega 1e300 --nc 32 --device cpu --out " + out.string());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("not finite"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(Cli, ResultsLandOnAMountPoint) {
  // The container's documented use: --out is a mount point, so its parent is another file system.
  const fs::path vol = kTmp / "volume";
  std::system(("umount " + vol.string() + " 2>/dev/null").c_str());
  fs::remove_all(vol);
  fs::create_directories(vol);
  if (geteuid() != 0 || std::system(("mount -t tmpfs -o size=16m tmpfs " + vol.string() + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "mounting a tmpfs needs root";
  const CliRun r = pinntk("train --nc 32 --layers 1,6,1 --schedule 20@1e-3 --device cpu --out " + vol.string());
  const bool landed = fs::exists(vol / "summary.json") && fs::exists(vol / "checkpoint.json");
  std::system(("umount " + vol.string()).c_str());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(landed);
}

TEST(Cli, AWritableOutUnderAReadOnlyParent) {
  // The container's /results: owned by the user who runs pinntk, under a root-owned folder.
  if (geteuid() != 0 || std::system("id nobody >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs root and user nobody";
  const fs::path parent = kTmp / "rootowned";
  fs::remove_all(parent);
  fs::create_directories(parent / "results");
  fs::permissions(kTmp, fs::perms::others_exec, fs::perm_options::add);
  fs::permissions(parent, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  ASSERT_EQ(std::system(("chown nobody " + (parent / "results").string()).c_str()), 0);
  const std::string cmd = "su nobody -s /bin/sh -c '" + std::string(PINNTK_BIN) +
                          " train --nc 16 --layers 1,4,1 --schedule 10@1e-3 --device cpu --out " +
                          (parent / "results").string() + "' 2>/dev/null";
  if (std::system(("su nobody -s /bin/sh -c 'test -x " + std::string(PINNTK_BIN) + "'").c_str()) != 0)
    GTEST_SKIP() << "the build is not readable by nobody";
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0);
  EXPECT_TRUE(fs::exists(parent / "results" / "summary.json"));
}

TEST(Cli, ResumeFilesAreCheckedAndAFolderHasOneWriter) {
  const fs::path out = kTmp / "resume_checked";
  fs::remove_all(out);
  const std::string flags =
      "train --nc 16 --layers 1,4,1 --schedule 1000000000@1e-4 --checkpoint-every 100 "
      "--threads 1 --device cpu --out " +
      out.string();
  const fs::path pid = kTmp / "resume_checked.pid";
  ASSERT_EQ(
      std::system((std::string(PINNTK_BIN) + " " + flags + " >/dev/null 2>&1 & echo $! > " + pid.string()).c_str()), 0);
  for (int i = 0; i < 600 && !fs::exists(out / "resume.json"); ++i) usleep(100000);
  // While it runs, a second run on the same folder is refused at once.
  const CliRun second = pinntk("ntk --nc 8 --device cpu --out " + out.string());
  std::system(("kill -9 $(cat " + pid.string() + ") 2>/dev/null").c_str());
  usleep(200000);
  EXPECT_EQ(second.code, 2);
  EXPECT_NE(second.err.find("another pinntk run"), std::string::npos) << second.err;
  ASSERT_TRUE(fs::exists(out / "resume.json"));
  const auto state = nlohmann::json::parse(slurp(out / "resume.json"));
  auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const char* expect) {
    nlohmann::json j = state;
    edit(j);
    std::ofstream(out / "resume.json") << j.dump();
    const CliRun r = pinntk(flags + " --resume");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
  };
  refused([](nlohmann::json& j) { j["theta"] = std::vector<double>(13000, 0.1); }, "\"theta\" must hold 13 numbers");
  refused([](nlohmann::json& j) { j["m"] = std::vector<double>(2, 0.1); }, "\"m\" must hold 13 numbers");
  refused([](nlohmann::json& j) { j["iteration"] = -5; }, "\"iteration\"");
  refused([](nlohmann::json& j) { j["adam_step"] = -5; }, "\"adam_step\"");
}

// With the two-loop L-BFGS, which runs all members at once: member 1 is still the run with --seed 1, bit for bit.
// --eigen auto (the default): when neither the full analysis nor the Grams over chunks fit the memory limit (the same
// run with --eigen exact is refused: CliBadInput's auto_memory), the top 20 eigenvalues by Lanczos, and why; when
// they fit, the full analysis, saying so.
// On the CPU a network with wide layers needs no N x P Jacobian for the NTK's one-shot path (N <= P) or LM's sample
// form: 1002 rows of a 1,64,64,1 network (P = 4353) run under 70 MiB, where the formed J's plans ask for about
// 156 MB (ntk) and 95 MB (train --optimizer lm).
TEST(Cli, WideNetworksNeedNoJacobianOnTheCpu) {
  const fs::path ntk = kTmp / "wide_ntk", lm = kTmp / "wide_lm";
  fs::remove_all(ntk);
  fs::remove_all(lm);
  const std::string rows = "--problem darcy-twoscale --nc 1000 --layers 1,64,64,1 --memory-limit 70M --device cpu ";
  const CliRun a = pinntk("ntk " + rows + "--eigen exact --out " + ntk.string());
  ASSERT_EQ(a.code, 0) << a.err;
  const auto j = nlohmann::json::parse(slurp(ntk / "summary.json"));
  EXPECT_NE(j["ntk"]["path_reason"].get<std::string>().find("without the Jacobian"), std::string::npos);
  EXPECT_LT(j["ntk"]["peak_memory_bytes_estimate"].get<double>(), 70.0 * (1 << 20));
  const CliRun b = pinntk("train " + rows + "--optimizer lm --lm-iters 2 --schedule 1@1e-30 --out " + lm.string());
  ASSERT_EQ(b.code, 0) << b.err;
}

TEST(Cli, EigenAutoFallsBackToLanczosWhenNothingElseFits) {
  const fs::path out = kTmp / "eigen_auto";
  fs::remove_all(out);
  const CliRun r = pinntk(
      // 3 MiB: the top 20 by Lanczos fit (the CPU products' chunk buffers, about 1.8 MB, counted), the Grams over
      // chunks and the full analysis (69 MB) do not.
      "ntk --problem darcy-twoscale --nc 4000 --layers 1,20,20,1 --memory-limit 3M --eigen auto "
      "--device cpu --out " +
      out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("--eigen auto"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["eigen"]["k"], 20);
  EXPECT_EQ(j["eigen"]["values"].size(), 20u);
  EXPECT_NE(j["eigen"]["path_reason"].get<std::string>().find("Lanczos"), std::string::npos);
  const fs::path fits = kTmp / "eigen_auto_fits";
  fs::remove_all(fits);
  const CliRun d = pinntk("ntk --problem darcy-twoscale --nc 64 --layers 1,8,1 --device cpu --out " + fits.string());
  ASSERT_EQ(d.code, 0) << d.err;
  const auto k = nlohmann::json::parse(slurp(fits / "summary.json"));
  EXPECT_EQ(k["eigen"]["method"], "full");
  EXPECT_EQ(k["eigen"]["requested"], "auto");
  EXPECT_NE(k["eigen"]["path_reason"].get<std::string>().find("fits"), std::string::npos);
  EXPECT_TRUE(k["ntk"].contains("frobenius_K"));
}

TEST(Cli, AnEnsembleWithTwoLoopLbfgsIsItsMembersRuns) {
  const fs::path out = kTmp / "ensemble_twoloop", single = kTmp / "ensemble_twoloop_seed1";
  fs::remove_all(out);
  fs::remove_all(single);
  const std::string flags =
      "train --problem darcy-twoscale --nc 32 --layers 1,6,1 --schedule 30@1e-3 --lbfgs 25 --lbfgs-method two-loop "
      "--device cpu --threads 1 ";
  CliRun r = pinntk(flags + "--ensemble 3 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  r = pinntk(flags + "--seed 1 --out " + single.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(out / "member_001" / "checkpoint.json"), slurp(single / "checkpoint.json"));
  const auto j = nlohmann::json::parse(slurp(single / "summary.json"));
  EXPECT_EQ(j["lbfgs"]["method"], "two-loop") << j.dump();
}

TEST(Cli, AnEnsembleTrainsEachMemberAsItsOwnSeedWould) {
  const fs::path out = kTmp / "ensemble3", single = kTmp / "ensemble3_seed1";
  fs::remove_all(out);
  fs::remove_all(single);
  const std::string flags =
      "train --problem darcy-twoscale --nc 32 --layers 1,6,1 --schedule 30@1e-3 --device cpu --threads 1 ";
  CliRun r = pinntk(flags + "--ensemble 3 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("members 1..3: Adam as one batch"), std::string::npos) << r.err;
  r = pinntk(flags + "--seed 1 --out " + single.string());
  ASSERT_EQ(r.code, 0) << r.err;
  // Member 1 is the run with --seed 1, bit for bit.
  EXPECT_EQ(slurp(out / "member_001" / "checkpoint.json"), slurp(single / "checkpoint.json"));
  EXPECT_EQ(slurp(out / "member_001" / "prediction.csv"), slurp(single / "prediction.csv"));
  EXPECT_NE(slurp(out / "member_000" / "checkpoint.json"), slurp(single / "checkpoint.json"));
  for (const char* m : {"member_000", "member_001", "member_002"})
    for (const char* f : {"history.csv", "prediction.csv", "checkpoint.json", "summary.json"})
      EXPECT_TRUE(fs::exists(out / m / f)) << m << "/" << f;
  EXPECT_EQ(nlohmann::json::parse(slurp(out / "member_002" / "summary.json"))["seed"], 2);
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["ensemble"]["members"], 3);
  EXPECT_EQ(j["status"], "complete");
  for (const char* q : {"final_loss", "max_error", "rel_l2_error"}) {
    const auto& sp = j["spread"][q];
    EXPECT_EQ(sp["count"], 3) << q;
    for (const char* k : {"min", "median", "mean", "max", "std"}) ASSERT_TRUE(sp[k].is_number()) << q << " " << k;
    EXPECT_LE(sp["min"].get<double>(), sp["median"].get<double>());
    EXPECT_LE(sp["median"].get<double>(), sp["max"].get<double>());
    EXPECT_GT(sp["std"].get<double>(), 0.0);
  }
  const std::string csv = slurp(out / "ensemble.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "member,seed,final_loss,max_error,rel_l2_error,iterations,wall_time_s,status");
  EXPECT_EQ(count_lines(csv), 1 + 3);
  std::istringstream rows(csv.substr(csv.find('\n') + 1));
  std::string line;
  for (int i = 0; std::getline(rows, line); ++i) {
    std::istringstream cells(line);
    std::string cell;
    std::vector<std::string> c;
    while (std::getline(cells, cell, ',')) c.push_back(cell);
    ASSERT_EQ(c.size(), 8u) << line;
    EXPECT_EQ(c[1], std::to_string(i));
    for (int k = 2; k < 5; ++k) EXPECT_TRUE(std::isfinite(std::stod(c[k])) && std::stod(c[k]) > 0) << line;
    EXPECT_EQ(c[5], "30");
    EXPECT_EQ(c[7], "complete");
  }
  const std::string mean = slurp(out / "prediction_mean.csv");
  EXPECT_EQ(mean.substr(0, mean.find('\n')), "x,u_mean,u_std,exact,error_of_mean");
  EXPECT_EQ(count_lines(mean), 1001);
  EXPECT_EQ(mean.find("nan"), std::string::npos);
}

TEST(Cli, ATwoDimensionalEnsembleAndItsRefusals) {
  const fs::path out = kTmp / "ensemble2d";
  fs::remove_all(out);
  CliRun r = pinntk(
      "train --problem poisson2d-sines --nc 100 --nb 40 --layers 2,8,1 --schedule 20@1e-2 --device cpu "
      "--ensemble 2 --seed 7 --out " +
      out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string mean = slurp(out / "prediction_mean.csv");
  EXPECT_EQ(mean.substr(0, mean.find('\n')), "x,y,u_mean,u_std,exact,error_of_mean");
  EXPECT_EQ(count_lines(mean), 1 + 101 * 101);
  EXPECT_EQ(count_lines(slurp(out / "ensemble.csv")), 1 + 2);
  EXPECT_EQ(nlohmann::json::parse(slurp(out / "member_001" / "summary.json"))["seed"], 8);
  EXPECT_EQ(count_lines(slurp(out / "member_001" / "prediction.csv")), 1 + 101 * 101);
  // Every member diverges: each says so, every result is kept, the exit status is 3.
  const fs::path div = kTmp / "ensemble_diverged";
  fs::remove_all(div);
  r = pinntk("train --nc 32 --layers 1,6,1 --schedule 5@1e-3,50@1e300 --device cpu --ensemble 2 --out " + div.string());
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("pinntk: diverged: 2 of 2 members"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(div / "member_001" / "summary.json"))["status"], "diverged");
  EXPECT_EQ(nlohmann::json::parse(slurp(div / "summary.json"))["status"], "diverged");
  EXPECT_NE(slurp(div / "ensemble.csv").find(",diverged\n"), std::string::npos);
}

struct BadCase {
  const char* name;
  const char* args;
};

class CliBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(CliBadInput, OneLineNonZeroExitAndNoOutput) {
  const fs::path out = kTmp / (std::string("bad_") + GetParam().name);
  fs::remove_all(out);
  std::string args = GetParam().args;
  const auto pos = args.find("OUT");
  if (pos != std::string::npos) args.replace(pos, 3, out.string());
  const CliRun r = pinntk(args);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("error"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
  // No staging folder left behind either.
  for (const auto& e : fs::directory_iterator(kTmp))
    EXPECT_EQ(e.path().filename().string().find(".bad_"), std::string::npos) << e.path();
}

void write_file(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

INSTANTIATE_TEST_SUITE_P(
    All, CliBadInput,
    ::testing::Values(
        BadCase{"eps_zero", "ntk --eps 0 --out OUT"}, BadCase{"eps_negative", "ntk --eps -1/80 --out OUT"},
        BadCase{"eps_text", "ntk --eps abc --out OUT"}, BadCase{"unknown_problem", "ntk --problem heat --out OUT"},
        BadCase{"layers_first", "ntk --layers 2,50,1 --out OUT"},
        BadCase{"layers_last", "ntk --layers 1,50,3 --out OUT"}, BadCase{"zero_width", "ntk --layers 1,0,1 --out OUT"},
        BadCase{"nc_zero", "ntk --nc 0 --out OUT"}, BadCase{"lambda_negative", "ntk --lambda -1 --out OUT"},
        BadCase{"schedule", "train --schedule 100@ --out OUT"},
        BadCase{"schedule_rate", "train --schedule 100@-1e-3 --out OUT"},
        BadCase{"ckpt_missing", "ntk --checkpoint /nonexistent.json --out OUT"},
        BadCase{"ckpt_shape", "ntk --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_1_3_1.json --layers 1,50,1 --out OUT"},
        BadCase{"ckpt_nan", "ntk --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_nan.json --out OUT"},
        BadCase{"out_unwritable", "ntk --nc 8 --out /proc/pinntk_out"}, BadCase{"device", "ntk --device tpu --out OUT"},
        BadCase{"precision", "ntk --precision fp16 --out OUT"}, BadCase{"unknown_flag", "ntk --frobnicate --out OUT"},
        BadCase{"scaling", "ntk --ntk-scaling half --out OUT"}, BadCase{"init", "ntk --init he --out OUT"},
        BadCase{"eps_for_sines", "ntk --problem poisson-sines --eps 0.1 --out OUT"},
        BadCase{"domain", "ntk --domain 1,0 --out OUT"}, BadCase{"resume_missing", "train --resume --out OUT"},
        BadCase{"reproduce_target", "reproduce fig9 --out OUT"},
        BadCase{"optimizer", "train --optimizer sgd --out OUT"},
        BadCase{"lm_iters", "train --optimizer lm --eps-continuation 1/8,1/16 --lm-iters 1,2,3 --out OUT"},
        BadCase{"continuation_without_lm", "train --eps-continuation 1/8 --out OUT"},
        BadCase{"lm_with_lbfgs", "train --optimizer lm --lbfgs 10 --out OUT"},
        BadCase{"lm_damping", "train --optimizer lm --lm-damping fast --out OUT"},
        BadCase{"lm_runs", "reproduce lm --quick --lm-runs darcy_2 --out OUT"},
        // Empty values and sentinels are refused, not read as "not given"; a refused run creates no folder.
        BadCase{"eps_empty", "ntk --eps '' --out OUT/sub"}, BadCase{"layers_empty", "ntk --layers '' --out OUT/sub"},
        BadCase{"checkpoint_empty", "ntk --checkpoint '' --out OUT/sub"},
        BadCase{"nb_negative", "ntk --nb -1 --out OUT/sub"},
        BadCase{"trials_zero", "reproduce fig4 --trials 0 --out OUT"},
        BadCase{"seed_negative", "ntk --seed -1 --out OUT"},
        BadCase{"seed_overflow", "ntk --seed 18446744073709551616 --out OUT"},
        BadCase{"schedule_overflow", "train --schedule 9223372036854775807@1e-3,10@1e-3 --out OUT"},
        BadCase{"schedule_total", "train --schedule 999999999999@1e-3,999999999999@1e-3 --out OUT"},
        BadCase{"lm_cond_every", "train --optimizer lm --lm-cond-every -1 --out OUT"},
        BadCase{"lm_mu0_inf", "train --optimizer lm --lm-mu0 inf --out OUT"},
        BadCase{"lm_iters_trailing", "train --optimizer lm --lm-iters 5, --out OUT"},
        BadCase{"threads_negative", "reproduce fig3 --threads -3 --out OUT"},
        BadCase{"full_unknown", "reproduce all --quick --full fig2,fig9 --out OUT"},
        BadCase{"full_without_quick", "reproduce all --full fig2 --out OUT"},
        BadCase{"lbfgs_history", "train --lbfgs 10 --lbfgs-history 2147483647 --out OUT"},
        BadCase{"checkpoint_device", "ntk --checkpoint /dev/zero --out OUT"},
        // Sizes: checked before any work, memory estimated before any allocation.
        BadCase{"nb_huge", "ntk --nb 2147483647 --out OUT"},
        BadCase{"points_over_limit", "ntk --nc 16777216 --layers 1,10,10,1 --out OUT"},
        BadCase{"ntk_memory", "ntk --layers 1,4096,4096,4096,1 --nc 1000000 --eigen exact --out OUT"},
        BadCase{"memory_limit", "ntk --nc 512 --layers 1,64,64,1 --memory-limit 1M --eigen exact --out OUT"},
        BadCase{"memory_limit_text", "ntk --memory-limit lots --out OUT"},
        // The NTK's paths: a chunk of one row beyond the limit (asked for, or chosen because the one-shot path does
        // not fit), rows per chunk, a path that cannot serve the request.
        BadCase{"chunked_memory",
                "ntk --problem darcy-twoscale --nc 4000 --layers 1,20,20,1 --ntk-path chunked --memory-limit 1K "
                "--out OUT"},
        BadCase{"auto_memory",
                "ntk --problem darcy-twoscale --nc 4000 --layers 1,20,20,1 --memory-limit 1M --eigen exact "
                "--out OUT"},
        BadCase{"chunk_rows_negative", "ntk --ntk-path chunked --chunk-rows -3 --out OUT"},
        BadCase{"chunk_rows_text", "ntk --chunk-rows many --out OUT"},
        BadCase{"chunk_rows_exact", "ntk --ntk-path exact --chunk-rows 5 --out OUT"},
        BadCase{"ntk_path", "ntk --ntk-path fast --out OUT"},
        BadCase{"chunked_few_rows", "ntk --ntk-path chunked --nc 8 --out OUT"},
        BadCase{"chunked_save", "ntk --ntk-path chunked --save-matrices --out OUT"},
        // --eigen top:K: K a positive integer within the rank, no flags of the full analysis.
        BadCase{"eigen_top_zero", "ntk --eigen top:0 --out OUT"},
        BadCase{"eigen_top_text", "ntk --eigen top:x --out OUT"},
        BadCase{"eigen_top_empty", "ntk --eigen top: --out OUT"}, BadCase{"eigen_method", "ntk --eigen all --out OUT"},
        BadCase{"eigen_top_huge", "ntk --nc 8 --eigen top:99999999999 --out OUT"},
        BadCase{"eigen_top_save_matrices", "ntk --eigen top:2 --save-matrices --out OUT"},
        BadCase{"eigen_top_path", "ntk --eigen top:2 --ntk-path chunked --out OUT"},
        BadCase{"save_vectors_exact", "ntk --save-vectors --out OUT"},
        // --eigen density: settings of at least 1, no flags of the full analysis or of top:K.
        BadCase{"density_probes_zero", "ntk --eigen density --density-probes 0 --out OUT"},
        BadCase{"density_steps_negative", "ntk --eigen density --density-steps -2 --out OUT"},
        BadCase{"density_bins_zero", "ntk --eigen density --density-bins 0 --out OUT"},
        BadCase{"density_bins_text", "ntk --eigen density --density-bins many --out OUT"},
        BadCase{"density_save_matrices", "ntk --eigen density --save-matrices --out OUT"},
        BadCase{"density_flag_exact", "ntk --density-probes 4 --out OUT"},
        BadCase{"regression_eps_tiny", "ntk --problem regression-twoscale --eps 1e-7 --out OUT"},
        BadCase{"domain_overflow", "train --domain -1e308,1e308 --out OUT"},
        BadCase{"omega_overflow", "ntk --problem darcy-twoscale --omega 1e308 --out OUT"},
        // n-dimensional problems: point files, input widths, point counts, boxes.
        BadCase{"points_width", "ntk --problem poisson2d-sines --points " PINNTK_TEST_TMP "/cli/pts_w3.npy --out OUT"},
        BadCase{"points_nan", "ntk --problem poisson2d-sines --points " PINNTK_TEST_TMP "/cli/pts_nan.npy --out OUT"},
        BadCase{"points_outside",
                "ntk --problem poisson2d-sines --points " PINNTK_TEST_TMP "/cli/pts_out.npy --out OUT"},
        BadCase{"points_missing", "ntk --problem poisson2d-sines --points /nonexistent.npy --out OUT"},
        BadCase{"points_with_nc",
                "ntk --problem poisson2d-sines --nc 9 --points " PINNTK_TEST_TMP "/cli/pts_ok.npy --out OUT"},
        BadCase{"points_1d", "ntk --points " PINNTK_TEST_TMP "/cli/pts_ok.npy --out OUT"},
        BadCase{"ckpt_width",
                "ntk --problem poisson2d-sines --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_1_3_1.json --out OUT"},
        BadCase{"layers_dim", "train --problem poisson2d-sines --layers 1,10,1 --out OUT"},
        BadCase{"layers_width4", "ntk --problem poisson3d-sines --layers 4,10,1 --out OUT"},
        BadCase{"nc_not_square", "ntk --problem darcy2d-ntk --nc 1000 --out OUT"},
        BadCase{"nb_faces", "ntk --problem darcy2d-ntk --nb 10 --out OUT"},
        BadCase{"face_grid", "ntk --problem poisson3d-sines --nb 30 --boundary grid --layers 3,4,1 --out OUT"},
        BadCase{"grid_sobol_1d", "ntk --grid sobol --out OUT"},
        BadCase{"grid_linspace_2d", "ntk --problem darcy2d-ntk --grid linspace --out OUT"},
        BadCase{"boundary_1d", "ntk --boundary uniform --out OUT"},
        BadCase{"boundary_text", "ntk --problem darcy2d-ntk --boundary edges --out OUT"},
        BadCase{"box_reversed", "ntk --problem poisson2d-sines --domain 0,1,1,0 --out OUT"},
        BadCase{"box_count", "ntk --problem poisson2d-sines --domain 0,1,0 --out OUT"},
        BadCase{"eps_for_sines2d", "ntk --problem poisson2d-sines --eps 0.1 --out OUT"},
        BadCase{"ensemble_zero", "train --ensemble 0 --out OUT"},
        BadCase{"ensemble_negative", "train --ensemble -1 --out OUT"},
        BadCase{"ensemble_huge", "train --ensemble 2000 --out OUT"},
        BadCase{"ensemble_text", "train --ensemble many --out OUT"},
        BadCase{"ensemble_resume", "train --ensemble 2 --resume --out OUT"},
        BadCase{"lbfgs_method", "train --lbfgs-method newton --out OUT"},
        BadCase{"concurrent_runs_target", "reproduce fig4 --concurrent-runs 2 --out OUT"},
        BadCase{"concurrent_runs_zero", "reproduce lm --concurrent-runs 0 --out OUT"},
        BadCase{"omega_for_poisson", "ntk --problem poisson-sines --omega 3 --out OUT"},
        BadCase{"omega_for_regression", "ntk --problem regression-twoscale --omega 3 --out OUT"},
        BadCase{"lambda_for_regression", "ntk --problem regression-twoscale --lambda 5 --out OUT"},
        BadCase{"flag_twice", "ntk --nc 32 --nc 64 --out OUT"},
        BadCase{"flag_twice_with_equals", "ntk --nc=32 --nc 64 --out OUT"},
        BadCase{"unknown_command", "bogus --out OUT"}, BadCase{"unknown_problem_command", "problem bogus"},
        BadCase{"concurrent_runs_all", "reproduce all --quick --concurrent-runs 2 --out OUT"},  // all runs no lm
        BadCase{"trials_for_fig3", "reproduce fig3 --quick --trials 3 --out OUT"},
        BadCase{"seeds_for_fig4", "reproduce fig4 --quick --seeds 3 --out OUT"},
        BadCase{"lm_eps32_for_fig3", "reproduce fig3 --quick --lm-eps32-only --out OUT"},
        BadCase{"concurrent_trials_for_fig3", "reproduce fig3 --quick --concurrent-trials 2 --out OUT"},
        BadCase{"full_not_run", "reproduce fig3 --quick --full fig2 --out OUT"},
        BadCase{"ensemble_checkpoint",
                "train --ensemble 2 --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_1_3_1.json --out OUT"},
        BadCase{"ensemble_seed_overflow", "train --ensemble 3 --seed 18446744073709551614 --out OUT"},
        // Flags that would do nothing in the run are refused, not ignored.
        BadCase{"lbfgs_history_idle", "train --lbfgs-history 5 --out OUT"},
        BadCase{"lbfgs_method_idle", "train --lbfgs-method two-loop --out OUT"},
        BadCase{"lm_iters_idle", "train --lm-iters 5 --out OUT"},
        BadCase{"ntk_scaling_idle", "train --ntk-scaling none --out OUT"},
        BadCase{"ntk_every_not_a_history_row", "train --history-every 100 --ntk-every 150 --out OUT"},
        BadCase{"ntk_every_negative", "train --ntk-every -5 --out OUT"},
        BadCase{"ntk_every_ensemble", "train --ntk-every 100 --ensemble 2 --out OUT"},
        BadCase{"ntk_every_lm", "train --ntk-every 100 --optimizer lm --out OUT"},
        BadCase{"ntk_every_scaling", "train --ntk-every 100 --ntk-scaling half --out OUT"},
        BadCase{"ntk_every_memory", "train --ntk-every 100 --nc 20000 --memory-limit 50M --out OUT"},
        BadCase{"lm_form_idle", "train --lm-form sample --out OUT"},
        BadCase{"seed_with_checkpoint",
                "train --seed 5 --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_1_3_1.json --out OUT"},
        BadCase{"init_with_checkpoint",
                "train --init normal --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_1_3_1.json --out OUT"},
        BadCase{"density_bins_huge", "ntk --eigen density --density-bins 100000000 --out OUT"},
        BadCase{"density_probes_huge", "ntk --eigen density --density-probes 1000000000 --out OUT"},
        BadCase{"no_path_fits", "ntk --memory-limit 1K --out OUT"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

// Checkpoint files for the bad-input cases, written before the parameterized suite runs.
class CheckpointFiles : public ::testing::Environment {
 public:
  void SetUp() override {
    write_file(kTmp / "ckpt_1_3_1.json", R"({"format":"pinntk-mlp-v1","layers":[1,3,1],"activation":"tanh",)"
                                         R"("weights":[[[1],[2],[3]],[[1,2,3]]],"biases":[[0,0,0],[0]]})");
    // Point files for the 2-D presets ([0,1]^2): 3 coordinates, a NaN, a point outside, a good one.
    write_file(kTmp / "pts_w3.npy", pinntk::npy_bytes(std::vector<double>(12, 0.5), {4, 3}));
    write_file(kTmp / "pts_nan.npy", pinntk::npy_bytes({0.5, 0.5, NAN, 0.25}, {2, 2}));
    write_file(kTmp / "pts_out.npy", pinntk::npy_bytes({0.5, 0.5, 1.5, 0.25}, {2, 2}));
    write_file(kTmp / "pts_ok.npy", pinntk::npy_bytes({0.5, 0.5, 0.75, 0.25, 0.1, 0.9}, {3, 2}));
    write_file(kTmp / "ckpt_nan.json", R"({"format":"pinntk-mlp-v1","layers":[1,1,1],"activation":"tanh",)"
                                       R"("weights":[[[NaN]],[[1]]],"biases":[[0],[0]]})");
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new CheckpointFiles);

}  // namespace
