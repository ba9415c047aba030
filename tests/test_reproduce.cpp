// `pinntk reproduce all --quick` end to end: every figure's files are there and sane, drawn, indexed and summed up
// beside the paper's numbers (the smoke test of the reproduction; the full runs are recorded in REPRODUCTION.md).
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <cmath>              // std::isfinite, std::fabs
#include <cstdlib>            // std::system
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ifstream
#include <nlohmann/json.hpp>  // nlohmann::json
#include <sstream>            // std::istringstream
#include <string>             // std::string, std::stod
#include <vector>             // std::vector

#include "host/report.hpp"     // headlines, index_markdown
#include "host/reproduce.hpp"  // reproduce_picture
#include "tests/slurp.hpp"     // slurp

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

// A CSV file as its header and rows of fields.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t col(const std::string& name) const {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    ADD_FAILURE() << "no column " << name;
    return 0;
  }
};
Csv read_csv(const fs::path& p) {
  Csv c;
  std::istringstream in(slurp(p));
  auto split = [](const std::string& line) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    return f;
  };
  std::string line;
  if (std::getline(in, line)) c.header = split(line);
  while (std::getline(in, line))
    if (!line.empty()) c.rows.push_back(split(line));
  return c;
}

// `pinntk reproduce TARGET --quick` into a fresh folder; the folder.
fs::path run_quick(const std::string& target, const std::string& name) {
  const fs::path out = fs::path(PINNTK_TEST_TMP) / name;
  fs::remove_all(out);
  const std::string cmd = std::string(PINNTK_BIN) + " reproduce " + target + " --quick --device cpu --out " +
                          out.string() + " > " + out.string() + ".log 2>&1";
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << "see " << out.string() << ".log";
  return out;
}

// fig4 keeps every trial's history: its last row is the trial's final network (trials.csv), and L-BFGS rows follow
// the Adam rows.
TEST(Reproduce, QuickFigure4KeepsEveryTrialsHistory) {
  const fs::path out = run_quick("fig4", "reproduce_fig4_quick");
  for (const char* c : {"regression", "poisson", "darcy"}) {
    const Csv h = read_csv(out / "fig4" / (std::string(c) + "_history.csv"));
    const Csv t = read_csv(out / "fig4" / (std::string(c) + "_trials.csv"));
    ASSERT_EQ(t.rows.size(), 2u) << c;
    const size_t trial = h.col("trial"), it = h.col("iteration"), opt = h.col("optimizer"), loss = h.col("loss"),
                 err = h.col("max_error");
    h.col("rel_l2_error");
    for (size_t k = 0; k < t.rows.size(); ++k) {
      std::vector<const std::vector<std::string>*> rows;
      for (const auto& r : h.rows)
        if (r[trial] == std::to_string(k)) rows.push_back(&r);
      ASSERT_GE(rows.size(), 3u) << c << " trial " << k;
      EXPECT_EQ(std::stol((*rows.front())[it]), 0) << c;
      bool lbfgs = false;
      for (size_t i = 1; i < rows.size(); ++i) {
        EXPECT_GE(std::stol((*rows[i])[it]), std::stol((*rows[i - 1])[it])) << c << " trial " << k;
        if ((*rows[i])[opt] == "lbfgs") lbfgs = true;
        if (lbfgs) {
          EXPECT_EQ((*rows[i])[opt], "lbfgs") << c << " trial " << k << ": Adam after L-BFGS";
        }
      }
      EXPECT_TRUE(lbfgs) << c << " trial " << k;
      const auto& last = *rows.back();
      EXPECT_EQ(std::stod(last[err]), std::stod(t.rows[k][t.col("max_error")])) << c << " trial " << k;
      EXPECT_EQ(std::stod(last[loss]), std::stod(t.rows[k][t.col("final_loss")])) << c << " trial " << k;
      EXPECT_EQ(std::stol(last[it]),
                std::stol(t.rows[k][t.col("adam_iterations")]) + std::stol(t.rows[k][t.col("lbfgs_iterations")]))
          << c << " trial " << k;
    }
  }
}

TEST(Reproduce, QuickFigure2InTwoDimensions) {
  const fs::path out = run_quick("fig2-2d", "reproduce_fig2_2d_quick");
  const Csv csv = read_csv(out / "fig2-2d/fig2_2d.csv");
  const auto j = load(out / "fig2-2d/summary.json");
  const size_t n_eps = j["inv_eps"].size(), seeds = j["seeds"].get<size_t>();
  EXPECT_GE(n_eps, 3u);
  EXPECT_EQ(csv.rows.size(), 2 * seeds * n_eps);  // panels x seeds x eps
  for (const auto& r : csv.rows)
    for (const char* q : {"frobenius_Kuu", "lambda1", "spectral_radius_Kbb"}) {
      const double v = std::stod(r[csv.col(q)]);
      EXPECT_TRUE(std::isfinite(v) && v > 0) << q << " = " << v;
    }
  for (const char* panel : {"a_init_normal", "b_init_glorot"}) {
    const auto& f = j["fits"][panel];
    for (const char* q : {"frobenius_Kuu", "lambda1"}) {
      // ||K_uu||_F and lambda_1 grow as eps shrinks (the 1-D law is eps^-2; the coarse quick grid aliases)
      const double s = f[q]["slope_pooled"], m = f[q]["slope_mean_over_seeds"], sd = f[q]["slope_std_over_seeds"];
      EXPECT_LT(s, -1.0) << panel << ' ' << q;
      EXPECT_GT(s, -6.0) << panel << ' ' << q;
      EXPECT_NEAR(m, s, 1e-9) << panel << ' ' << q;  // every seed has every eps: the same least-squares slope
      EXPECT_TRUE(std::isfinite(sd) && sd >= 0) << panel << ' ' << q;
    }
    EXPECT_LT(std::fabs(f["spectral_radius_Kbb"]["slope_pooled"].get<double>()), 0.5) << panel;
  }
  EXPECT_EQ(j["grid_points_per_period"].size(), n_eps);
  expect_picture(out / pinntk::reproduce_picture("fig2-2d"));
}

TEST(Reproduce, QuickPoisson2dStudy) {
  const fs::path out = run_quick("poisson2d", "reproduce_poisson2d_quick");
  const Csv csv = read_csv(out / "poisson2d/poisson2d_runs.csv");
  ASSERT_GE(csv.rows.size(), 10u);
  const size_t D = csv.col("D"), t = csv.col("time_s"), rel = csv.col("rel_l2"), abs = csv.col("l2_abs");
  csv.col("optimizer");
  csv.col("iteration");
  for (const auto& r : csv.rows) {
    const double e = std::stod(r[rel]), a = std::stod(r[abs]);
    EXPECT_TRUE(std::isfinite(e) && std::isfinite(a) && std::stod(r[t]) >= 0) << r[D];
    EXPECT_NEAR(e / a, 2.0, 0.05) << r[D];  // ||u*||_RMS = 1/2 on the unit square: rel = 2 abs
  }
  const auto j = load(out / "poisson2d/summary.json");
  for (const auto& n : j["networks"]) EXPECT_EQ(n["n_params"], n["D"]);
  ASSERT_TRUE(j["best"].contains("257"));
  const double best = j["best"]["257"]["rel_l2"];
  EXPECT_LT(best, 0.1);  // 50 LM iterations from the initial error of about 0.8
  EXPECT_GT(best, 0.0);
  EXPECT_TRUE(j["best"].contains("9873"));
  for (const auto& r : j["darcy2d"]["runs"]) {
    const double m = r["max_error"], e = r["rel_l2"];
    EXPECT_TRUE(std::isfinite(m) && m > 0 && m < 100) << r["run"];
    EXPECT_TRUE(std::isfinite(e) && e > 0) << r["run"];
  }
  EXPECT_TRUE(fs::exists(out / "poisson2d/darcy2d_runs.csv"));
  expect_picture(out / pinntk::reproduce_picture("poisson2d"));
  const std::string log = slurp(out.string() + ".log");
  EXPECT_NE(log.find("D = 257: best relative L2 error"), std::string::npos) << log;
}

// scripts/plot.py draws a 2-D training's prediction.csv (u, exact, error) as prediction.png.
TEST(Plot, TwoDimensionalPrediction) {
  const fs::path out = fs::path(PINNTK_TEST_TMP) / "plot_prediction_2d";
  fs::remove_all(out);
  const std::string train = std::string(PINNTK_BIN) +
                            " train --problem poisson2d-sines --layers 2,8,1 --schedule 20@1e-2 --device cpu --out " +
                            out.string() + " > " + out.string() + ".log 2>&1";
  ASSERT_EQ(WEXITSTATUS(std::system(train.c_str())), 0) << "see " << out.string() << ".log";
  const fs::path script = fs::path(__FILE__).parent_path().parent_path() / "scripts" / "plot.py";
  bool drawn = false;
  for (const char* py : {"python3", "/usr/bin/python3"}) {
    const std::string check = std::string(py) + " -c 'import matplotlib, numpy' > /dev/null 2>&1";
    if (std::system(check.c_str()) != 0) continue;
    const std::string cmd =
        std::string(py) + " '" + script.string() + "' '" + out.string() + "' >> " + out.string() + ".log 2>&1";
    EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 0) << "see " << out.string() << ".log";
    drawn = true;
    break;
  }
  ASSERT_TRUE(drawn) << "no python3 with numpy and matplotlib";
  expect_picture(out / "prediction.png");
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
  EXPECT_NE(md.find("| Fig. 4 (quick) | darcy"), std::string::npos) << md;  // the index page's rows say so too
  EXPECT_EQ(md.find("| Fig. 2a (quick)"), std::string::npos) << md;
}

TEST(Report, HeadlinesOfTheTwoDimensionalStudies) {
  const nlohmann::json fit = {{"slope_mean_over_seeds", -2.11}, {"slope_std_over_seeds", 0.07}, {"slope_pooled", -2.1}};
  const nlohmann::json summary = {
      {"device", "cpu"},
      {"precision", "fp64"},
      {"fig2-2d", {{"quick", false}, {"fits", {{"a_init_normal", {{"frobenius_Kuu", fit}}}}}}},
      {"poisson2d",
       {{"quick", false},
        {"best",
         {{"257",
           {{"rel_l2", 1.5e-6},
            {"limit", "60 s"},
            {"published_best_rel_l2", 1.22e-7},
            {"published_best_optimizer", "ENGD_per_layer"}}}}},
        {"darcy2d", {{"runs", {{{"inv_eps", 16}, {"optimizer", "LM"}, {"max_error", 8.5e-3}}}}}}}}};
  const std::string lines = pinntk::headline_lines(pinntk::headlines(summary));
  EXPECT_NE(lines.find("Fig. 2a (2-D)"), std::string::npos) << lines;
  EXPECT_NE(lines.find("-2.11 +- 0.07 over seeds (pooled -2.10)"), std::string::npos) << lines;
  EXPECT_NE(lines.find("D = 257: best relative L2 error, LM (60 s"), std::string::npos) << lines;
  EXPECT_NE(lines.find("1.5e-06"), std::string::npos) << lines;
  EXPECT_NE(lines.find("1.22e-07 (Dangel et al. best, ENGD_per_layer"), std::string::npos) << lines;
  EXPECT_NE(lines.find("eps = 1/16: max error, LM"), std::string::npos) << lines;
  EXPECT_NE(lines.find("0.0085"), std::string::npos) << lines;
  const std::string md = pinntk::index_markdown(summary);
  EXPECT_NE(md.find("![fig2-2d](fig2-2d/fig2_2d.png)"), std::string::npos) << md;
  EXPECT_NE(md.find("![poisson2d](poisson2d/poisson2d.png)"), std::string::npos) << md;
  EXPECT_NE(md.find("Run in its full form"), std::string::npos) << md;
}

}  // namespace
