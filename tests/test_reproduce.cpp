// `pinntk reproduce all --quick` end to end: every figure's files are there and sane (the smoke test of the
// reproduction; the full runs are recorded in REPRODUCTION.md).
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <cmath>              // std::isfinite
#include <cstdlib>            // std::system
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ifstream
#include <nlohmann/json.hpp>  // nlohmann::json

namespace fs = std::filesystem;

namespace {

nlohmann::json load(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(Reproduce, QuickRunWritesSaneFigures) {
  const fs::path out = fs::path(PINNTK_TEST_TMP) / "reproduce_quick";
  fs::remove_all(out);
  const std::string cmd = std::string(PINNTK_BIN) + " reproduce all --quick --device cpu --out " + out.string() +
                          " > " + out.string() + ".log 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_EQ(WEXITSTATUS(status), 0) << "see " << out.string() << ".log";
  for (const char* f : {"summary.json", "fig1/dft.csv", "fig1/history.csv", "fig1/summary.json", "fig2/sweep.csv",
                        "fig2/summary.json", "fig3/spectra.csv", "fig3/spectrum_K_init.npy",
                        "fig3/spectrum_K_trained.npy", "fig3/summary.json", "fig4/regression_mean.csv",
                        "fig4/poisson_mean.csv", "fig4/darcy_mean.csv", "fig4/summary.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const auto f2 = load(out / "fig2/summary.json");
  for (const char* panel : {"a_init_normal", "b_glorot_adam"}) {
    const double s = f2["fits"][panel]["frobenius_Kuu"]["slope_of_geometric_mean"];
    EXPECT_LT(s, -1.5) << panel;  // the paper: -2
    EXPECT_GT(s, -2.5) << panel;
  }
  const auto f3 = load(out / "fig3/summary.json");
  EXPECT_GT(f3["trained"]["lambda1_over_lambda2"].get<double>(), 1.0);
  const auto f1 = load(out / "fig1/summary.json");
  EXPECT_TRUE(std::isfinite(f1["max_error"].get<double>()));
  const auto f4 = load(out / "fig4/summary.json");
  for (const char* c : {"regression", "poisson", "darcy"}) {
    EXPECT_TRUE(std::isfinite(f4[c]["max_error_of_mean"].get<double>())) << c;
    EXPECT_TRUE(std::isfinite(f4[c]["mean_variance"].get<double>())) << c;
  }
}

TEST(Reproduce, QuickLevenbergMarquardtStudy) {
  const fs::path out = fs::path(PINNTK_TEST_TMP) / "reproduce_lm_quick";
  fs::remove_all(out);
  const std::string cmd = std::string(PINNTK_BIN) + " reproduce lm --quick --device cpu --out " + out.string() +
                          " > " + out.string() + ".log 2>&1";
  ASSERT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << "see " << out.string() << ".log";
  const auto j = load(out / "lm/summary.json");
  for (const char* run : {"poisson_lm", "darcy_continuation"}) {
    EXPECT_TRUE(std::isfinite(j[run]["max_error"].get<double>())) << run;
    EXPECT_GT(j[run]["lm_iterations"].get<long>(), 0) << run;
    EXPECT_TRUE(fs::exists(out / (std::string("lm/") + run + "_history.csv"))) << run;
  }
  EXPECT_TRUE(fs::exists(out / "lm/runs.csv"));
}

}  // namespace
