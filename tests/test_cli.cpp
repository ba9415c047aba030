// The pinntk executable end to end: good runs write complete outputs, bad input gets one line and no output.
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <cstdlib>            // std::system
#include <cstring>            // std::memcpy
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ifstream
#include <nlohmann/json.hpp>  // nlohmann::json
#include <sstream>            // std::stringstream

namespace fs = std::filesystem;

namespace {

struct CliRun {
  int code;
  std::string err;
};

const fs::path kTmp = fs::path(PINNTK_TEST_TMP) / "cli";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

TEST(Cli, NtkWritesSummaryAndSpectra) {
  const fs::path out = kTmp / "ntk_ok";
  fs::remove_all(out);
  const CliRun r = pinntk("ntk --problem darcy-ntk --eps 1/20 --nc 64 --layers 1,10,1 --init normal --seed 3 "
                       "--device cpu --save-matrices --out " + out.string());
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
  const CliRun r = pinntk("train --problem poisson-twoscale --eps 1/4 --nc 64 --layers 1,12,1 --schedule 30@1e-2,20@1e-3 "
                       "--history-every 10 --log-every 25 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("iteration 50/50"), std::string::npos) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["iterations"], 50);
  EXPECT_GT(j["final_loss"].get<double>(), 0.0);
  EXPECT_GT(j["max_error"].get<double>(), 0.0);
  const std::string hist = slurp(out / "history.csv");
  EXPECT_EQ(hist.substr(0, hist.find('\n')), "iteration,optimizer,lr,loss,loss_pde,loss_boundary,max_error,time_s");
  EXPECT_EQ(count_lines(hist), 1 + 6);  // iterations 0, 10, 20, 30, 40 and the final 50
  EXPECT_EQ(count_lines(slurp(out / "prediction.csv")), 1001);
  // Training from the written checkpoint with zero-length... instead evaluate its NTK: it must load.
  const CliRun again = pinntk("ntk --problem poisson-twoscale --eps 1/4 --nc 16 --checkpoint " +
                           (out / "checkpoint.json").string() + " --out " + (kTmp / "ntk_from_ckpt").string());
  EXPECT_EQ(again.code, 0) << again.err;
}

TEST(Cli, LevenbergMarquardtWithContinuation) {
  const fs::path out = kTmp / "lm_ok";
  fs::remove_all(out);
  const CliRun r = pinntk("train --problem darcy-twoscale --nc 48 --layers 1,8,8,1 --schedule 20@1e-3 --optimizer lm "
                          "--eps-continuation 1/4,1/8 --lm-iters 6,8 --history-every 5 --device cpu --out " +
                          out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["lm"]["stages"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["eps"].get<double>(), 0.125);
  EXPECT_EQ(j["iterations"], 20 + 6 + 8);
  EXPECT_EQ(count_lines(slurp(out / "lm_history.csv")), 1 + 6 + 8);
  const std::string hist = slurp(out / "history.csv");
  EXPECT_NE(hist.find(",lm,"), std::string::npos);
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
        BadCase{"layers_first", "ntk --layers 2,50,1 --out OUT"}, BadCase{"layers_last", "ntk --layers 1,50,3 --out OUT"},
        BadCase{"zero_width", "ntk --layers 1,0,1 --out OUT"}, BadCase{"nc_zero", "ntk --nc 0 --out OUT"},
        BadCase{"lambda_negative", "ntk --lambda -1 --out OUT"},
        BadCase{"schedule", "train --schedule 100@ --out OUT"},
        BadCase{"schedule_rate", "train --schedule 100@-1e-3 --out OUT"},
        BadCase{"ckpt_missing", "ntk --checkpoint /nonexistent.json --out OUT"},
        BadCase{"ckpt_shape", "ntk --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_1_3_1.json --layers 1,50,1 --out OUT"},
        BadCase{"ckpt_nan", "ntk --checkpoint " PINNTK_TEST_TMP "/cli/ckpt_nan.json --out OUT"},
        BadCase{"out_unwritable", "ntk --nc 8 --out /proc/pinntk_out"},
        BadCase{"device", "ntk --device tpu --out OUT"}, BadCase{"precision", "ntk --precision fp16 --out OUT"},
        BadCase{"unknown_flag", "ntk --frobnicate --out OUT"}, BadCase{"scaling", "ntk --ntk-scaling half --out OUT"},
        BadCase{"init", "ntk --init he --out OUT"}, BadCase{"eps_for_sines", "ntk --problem poisson-sines --eps 0.1 --out OUT"},
        BadCase{"domain", "ntk --domain 1,0 --out OUT"}, BadCase{"resume_missing", "train --resume --out OUT"},
        BadCase{"reproduce_target", "reproduce fig9 --out OUT"},
        BadCase{"optimizer", "train --optimizer sgd --out OUT"},
        BadCase{"lm_iters", "train --optimizer lm --eps-continuation 1/8,1/16 --lm-iters 1,2,3 --out OUT"},
        BadCase{"continuation_without_lm", "train --eps-continuation 1/8 --out OUT"},
        BadCase{"lm_with_lbfgs", "train --optimizer lm --lbfgs 10 --out OUT"},
        BadCase{"lm_damping", "train --optimizer lm --lm-damping fast --out OUT"},
        BadCase{"lm_runs", "reproduce lm --quick --lm-runs darcy_2 --out OUT"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

// Checkpoint files for the bad-input cases, written before the parameterized suite runs.
class CheckpointFiles : public ::testing::Environment {
 public:
  void SetUp() override {
    write_file(kTmp / "ckpt_1_3_1.json", R"({"format":"pinntk-mlp-v1","layers":[1,3,1],"activation":"tanh",)"
                                         R"("weights":[[[1],[2],[3]],[[1,2,3]]],"biases":[[0,0,0],[0]]})");
    write_file(kTmp / "ckpt_nan.json", R"({"format":"pinntk-mlp-v1","layers":[1,1,1],"activation":"tanh",)"
                                       R"("weights":[[[NaN]],[[1]]],"biases":[[0],[0]]})");
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new CheckpointFiles);

}  // namespace
