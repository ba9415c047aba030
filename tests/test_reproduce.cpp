// `pinntk reproduce all --quick` end to end: every figure's files are there and sane, drawn, indexed and summed up
// beside the paper's numbers (the smoke test of the reproduction; the full runs are recorded in REPRODUCTION.md).
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <cmath>              // std::isfinite
#include <cstdlib>            // std::system
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ifstream
#include <nlohmann/json.hpp>  // nlohmann::json

#include "host/report.hpp"  // headlines, index_markdown
#include "tests/slurp.hpp"  // slurp

namespace fs = std::filesystem;

namespace {

nlohmann::json load(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// A drawn figure: a PNG of at least 400 x 300 pixels and 20 kB (axes, lines and labels; an empty canvas
// compresses to a few kB).
void expect_picture(const fs::path& png) {
  ASSERT_TRUE(fs::exists(png)) << png
                               << " missing: pinntk draws with python3 + matplotlib "
                                  "(scripts/install_deps.sh installs python3-matplotlib)";
  const std::string b = slurp(png);
  ASSERT_GE(b.size(), 24u) << png;
  EXPECT_EQ(b.substr(0, 8), "\x89PNG\r\n\x1a\n") << png;
  EXPECT_EQ(b.substr(12, 4), "IHDR") << png;
  auto be32 = [&](size_t at) {
    return (static_cast<unsigned char>(b[at]) << 24) | (static_cast<unsigned char>(b[at + 1]) << 16) |
           (static_cast<unsigned char>(b[at + 2]) << 8) | static_cast<unsigned char>(b[at + 3]);
  };
  EXPECT_GE(be32(16), 400) << png << " width";
  EXPECT_GE(be32(20), 300) << png << " height";
  EXPECT_GE(b.size(), 20000u) << png;
}

TEST(Reproduce, QuickRunWritesSaneFigures) {
  const fs::path out = fs::path(PINNTK_TEST_TMP) / "reproduce_quick";
  fs::remove_all(out);
  const std::string cmd = std::string(PINNTK_BIN) + " reproduce all --quick --device cpu --out " + out.string() +
                          " > " + out.string() + ".log 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_EQ(WEXITSTATUS(status), 0) << "see " << out.string() << ".log";
  for (const char* f :
       {"summary.json", "fig1/dft.csv", "fig1/history.csv", "fig1/summary.json", "fig2/sweep.csv", "fig2/summary.json",
        "fig3/spectra.csv", "fig3/spectrum_K_init.npy", "fig3/spectrum_K_trained.npy", "fig3/summary.json",
        "fig4/regression_mean.csv", "fig4/poisson_mean.csv", "fig4/darcy_mean.csv", "fig4/summary.json"})
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
  // Every figure drawn, the index page, and the headline numbers beside the paper's at the end.
  const std::string index = slurp(out / "README.md"), log = slurp(out.string() + ".log");
  for (const char* fig : {"fig1", "fig2", "fig3", "fig4"}) {
    expect_picture(out / fig / (std::string(fig) + ".png"));
    EXPECT_NE(index.find(std::string("](") + fig + "/" + fig + ".png)"), std::string::npos) << fig;
  }
  EXPECT_NE(index.find("in its quick form"), std::string::npos);
  EXPECT_NE(log.find("Fig. 2a"), std::string::npos) << log;
  EXPECT_NE(log.find("(paper: -2)"), std::string::npos) << log;
  EXPECT_NE(log.find("fig2/fig2.png"), std::string::npos) << log;
}

TEST(Reproduce, QuickLevenbergMarquardtStudy) {
  const fs::path out = fs::path(PINNTK_TEST_TMP) / "reproduce_lm_quick";
  fs::remove_all(out);
  const std::string cmd = std::string(PINNTK_BIN) + " reproduce lm --quick --device cpu --out " + out.string() + " > " +
                          out.string() + ".log 2>&1";
  ASSERT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << "see " << out.string() << ".log";
  const auto j = load(out / "lm/summary.json");
  for (const char* run : {"poisson_lm", "darcy_continuation"}) {
    EXPECT_TRUE(std::isfinite(j[run]["max_error"].get<double>())) << run;
    EXPECT_GT(j[run]["lm_iterations"].get<long>(), 0) << run;
    EXPECT_TRUE(fs::exists(out / (std::string("lm/") + run + "_history.csv"))) << run;
  }
  EXPECT_TRUE(fs::exists(out / "lm/runs.csv"));
  expect_picture(out / "lm" / "lm.png");
}

TEST(Report, HeadlinesAndIndexStandBesideThePapersNumbers) {
  const nlohmann::json summary = {
      {"device", "cpu"},
      {"precision", "fp64"},
      {"fig1", {{"max_error", 7.2e-4}, {"paper_max_error", 1.26e-2}, {"quick", false}}},
      {"fig2",
       {{"quick", false},
        {"fits",
         {{"a_init_normal",
           {{"frobenius_Kuu", {{"slope_of_geometric_mean", -1.98}, {"slope_of_geometric_mean_stderr", 0.01}}},
            {"lambda1", {{"slope_of_geometric_mean", -2.01}, {"slope_of_geometric_mean_stderr", 0.02}}},
            {"spectral_radius_Kbb", {{"slope_of_geometric_mean", 0.0}, {"slope_of_geometric_mean_stderr", 0.0}}}}}}}}},
      {"fig4",
       {{"quick", true},
        {"darcy",
         {{"max_error_of_mean", 0.96},
          {"mean_variance", 0.85},
          {"paper_max_error", 0.431},
          {"paper_mean_variance", 0.283}}}}}};
  const std::string lines = pinntk::headline_lines(pinntk::headlines(summary));
  EXPECT_NE(lines.find("Fig. 1"), std::string::npos);
  EXPECT_NE(lines.find("0.00072"), std::string::npos) << lines;
  EXPECT_NE(lines.find("(paper: 0.0126)"), std::string::npos) << lines;
  EXPECT_NE(lines.find("-1.98 +- 0.01"), std::string::npos) << lines;
  EXPECT_NE(lines.find("darcy: max error of the trial mean / mean variance"), std::string::npos) << lines;
  EXPECT_NE(lines.find("0.96 / 0.85"), std::string::npos) << lines;
  EXPECT_NE(lines.find("(paper: 0.431 / 0.283)"), std::string::npos) << lines;
  EXPECT_EQ(lines.find("Fig. 3"), std::string::npos);  // not in this summary
  const std::string md = pinntk::index_markdown(summary);
  EXPECT_NE(md.find("![fig2](fig2/fig2.png)"), std::string::npos);
  EXPECT_NE(md.find("Run at the paper's settings"), std::string::npos);
  EXPECT_NE(md.find("Run in its quick form"), std::string::npos);
  EXPECT_NE(md.find("| Fig. 2a | slope of \\|\\|K_uu\\|\\|_F"), std::string::npos) << md;
  EXPECT_NE(lines.find("Fig. 4 (quick)"), std::string::npos) << lines;
}

}  // namespace
