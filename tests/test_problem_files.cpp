// Problem files (host/problemfile/problem_file.hpp): every preset's file under problems/ gives the built-in preset's
// rows, the file's mistakes are refused with one line naming the file and the field, --eps re-evaluates the
// formulas, `problem check` catches a wrong forcing, and a file without an exact solution measures the error against
// the reference solution. The CLI side (exit statuses, summary.json) is here too.
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <algorithm>          // std::max, std::count
#include <cmath>              // std::fabs
#include <cstdlib>            // std::system
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ofstream
#include <nlohmann/json.hpp>  // nlohmann::json
#include <string>             // std::string
#include <vector>             // std::vector

#include "common/errors.hpp"                  // UsageError
#include "host/problem.hpp"                   // problem_preset, build_points, solution_values
#include "host/problemfile/formula.hpp"       // formulas_available
#include "host/problemfile/problem_file.hpp"  // load_problem_file, problem_check_report
#include "host/problemfile/toml_json.hpp"     // toml_available
#include "slurp.hpp"                          // slurp

namespace fs = std::filesystem;

namespace pinntk {
namespace {

const fs::path kProblems = fs::path(PINNTK_SOURCE_DIR) / "problems";
const fs::path kTmp = fs::path(PINNTK_TEST_TMP) / "problem_files";

#define SKIP_WITHOUT_GINAC() \
  if (!formulas_available()) GTEST_SKIP() << "built without GiNaC"

// The largest |a - b| over the arrays, relative to the largest |b| (at least 1).
double worst_relative(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0, scale = 1.0;
  for (double v : b) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst / scale;
}

fs::path write_file(const std::string& name, const std::string& text) {
  fs::create_directories(kTmp);
  const fs::path p = kTmp / name;
  std::ofstream(p) << text;
  return p;
}

// Loads the file p and checks its refusal: one line that names the file and contains expect. expect "": a valid
// file among bad ones, accepted.
void expect_refusal(const fs::path& p, const std::string& expect) {
  try {
    load_problem_file(p.string());
    if (!expect.empty()) ADD_FAILURE() << "accepted: " << slurp(p);
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(p.string()), std::string::npos) << what;
    EXPECT_NE(what.find(expect), std::string::npos) << what << " (expected " << expect << ")";
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(ProblemFiles, EveryPresetFileGivesThePresetsRows) {
  SKIP_WITHOUT_GINAC();
  std::vector<std::string> names = problem_names();
  for (const auto& n : problem_names_nd()) names.push_back(n);
  for (const auto& name : names) {
    const ProblemSpec preset = problem_preset(name);
    const ProblemSpec file = load_problem_file((kProblems / (name + ".json")).string());
    EXPECT_EQ(file.name, name);
    EXPECT_EQ(file.dim, preset.dim) << name;
    EXPECT_EQ(file.nc, preset.nc) << name;
    EXPECT_EQ(file.nb, preset.nb) << name;
    EXPECT_EQ(file.lambda, preset.lambda) << name;
    EXPECT_EQ(file.default_layers, preset.default_layers) << name;
    EXPECT_EQ(file.default_init, preset.default_init) << name;
    EXPECT_EQ(uses_eps(file), uses_eps(preset)) << name;
    if (uses_eps(preset)) {
      EXPECT_DOUBLE_EQ(file.eps, preset.eps) << name;
    }
    const PointSet a = build_points(file), b = build_points(preset);
    ASSERT_EQ(a.size(), b.size()) << name;
    ASSERT_EQ(a.nc, b.nc) << name;
    EXPECT_LE(worst_relative(a.x, b.x), 1e-15) << name;
    // 1e-13, or more where the coefficient's sine has a large argument omega x / eps: the file's formula multiplies
    // x by omega / eps folded into one constant, the preset divides x by eps first; the two roundings of an argument
    // of size A differ by about A * 1e-16, and so do the sines (darcy-ntk: A = 160 pi).
    double arg = 0.0;
    if (preset.kind == ProblemKind::DarcyTwoscale || preset.kind == ProblemKind::DarcyNtk)
      for (double v : b.x) arg = std::max(arg, std::fabs(preset.omega * v / preset.eps));
    const double tol = std::max(1e-13, 2e-15 * arg);
    EXPECT_LE(worst_relative(a.alpha, b.alpha), tol) << name;
    EXPECT_LE(worst_relative(a.beta, b.beta), tol) << name;
    EXPECT_LE(worst_relative(a.gamma, b.gamma), tol) << name;
    EXPECT_LE(worst_relative(a.f, b.f), tol) << name;
    EXPECT_EQ(a.w, b.w) << name;
    // The error's reference is the exact solution in both.
    const std::vector<double> x = test_points(preset);
    EXPECT_LE(worst_relative(solution_values(file, x), solution_values(preset, x)), 1e-14) << name;
  }
}

TEST(ProblemFiles, EpsOverrideReevaluatesTheFormulas) {
  SKIP_WITHOUT_GINAC();
  ProblemSpec file = load_problem_file((kProblems / "darcy-twoscale.json").string());
  ProblemSpec preset = problem_preset("darcy-twoscale");
  file.eps = preset.eps = 1.0 / 7;
  const PointSet a = build_points(file), b = build_points(preset);
  EXPECT_LE(worst_relative(a.alpha, b.alpha), 1e-13);
  EXPECT_LE(worst_relative(a.beta, b.beta), 1e-13);
  EXPECT_LE(worst_relative(a.f, b.f), 1e-13);
}

TEST(ProblemFiles, MistakesAreRefusedNamingTheFileAndTheField) {
  SKIP_WITHOUT_GINAC();
  const std::string ok_op = R"J("operator": {"form": "divergence", "a": "2 + sin(x)"})J";
  const struct {
    std::string text, expect;
  } cases[] = {
      {"{", "not valid JSON"},
      {R"J({"dimension": 1, "box": [[0, 1]], )J" + ok_op + R"J(, "exact": "x", "colour": 1})J",
       "unknown key \"colour\""},
      {R"J({"dimension": 4, "box": [[0, 1]], )J" + ok_op + R"J(, "exact": "x"})J", "\"dimension\""},
      {R"J({"dimension": 1, "box": [[1, 0]], )J" + ok_op + R"J(, "exact": "x"})J", "lo must be smaller"},
      {R"J({"dimension": 1, "box": [[0, 1]], )J" + ok_op + "}", "forcing"},
      {R"J({"dimension": 1, "box": [[0, 1]], )J" + ok_op + R"J(, "forcing": "1"})J", "\"boundary\""},
      {R"J({"dimension": 1, "box": [[0, 1]], )J" + ok_op + R"J(, "exact": "x + q"})J", "q"},
      {R"J({"dimension": 1, "box": [[0, 1]], "operator": {"form": "tensor"}, "exact": "x"})J", "list of rows"},
      {R"J({"dimension": 2, "box": [[0, 1], [0, 1]], "operator": {"form": "divergence", "a": ["1", "2", "3"]},
           "exact": "x"})J",
       "needs 2 formulas"},
      {R"J({"dimension": 1, "box": [[0, 1]], )J" + ok_op + R"J(, "exact": "x", "network": {"layers": [2, 5, 1]}})J",
       "\"layers\""},
      // A syntax error names the formula and the position; a coefficient that is not positive, or a value that is
      // not finite, somewhere on the box names the point.
      {R"J({"dimension": 1, "box": [[0, 1]], "operator": {"form": "divergence", "a": "2 + * x"}, "exact": "x"})J",
       "formula \"a\": syntax error at character 5"},
      {R"J({"dimension": 1, "box": [[0, 1]], "operator": {"form": "divergence", "a": "x - 0.25"}, "exact": "x"})J",
       "must be positive on the box, it is -0.25 at x = 0"},
      {R"J({"dimension": 2, "box": [[0, 1], [0, 1]], "operator": {"form": "divergence", "a": "1"},
           "forcing": "1/(y - 0.5)", "boundary": "0"})J",
       "the forcing is not finite (inf) at x = 0, y = 0.5"},
      {R"J({"dimension": 2, "box": [[0, 1], [0, 1]], "operator": {"form": "general", "alpha": ["-1", "x - 2"],
           "beta": "0", "gamma": "0"}, "forcing": "1", "boundary": "0"})J",
       ""},
      {R"J({"dimension": 1, "box": [[0, 1]], "operator": {"form": "general", "alpha": "x - 0.5"}, "forcing": "1",
           "boundary": "0"})J",
       "alpha must be nonzero and of one sign on the box (elliptic), it is 0 at x = 0.5"},
      // A key twice in one object: a JSON parser would keep one silently.
      {R"J({"dimension": 1, "box": [[0, 1]], )J" + ok_op + R"J(, "exact": "x", "exact": "x*x"})J",
       "the key \"exact\" appears twice in one object"},
      {R"J({"dimension": 1, "box": [[0, 1]], "operator": {"form": "divergence", "a": "1", "a": "2"}, "exact": "x"})J",
       "the key \"a\" appears twice"},
  };
  int i = 0;
  for (const auto& c : cases) expect_refusal(write_file("bad" + std::to_string(i++) + ".json", c.text), c.expect);
}

TEST(ProblemFiles, CheckCatchesAWrongForcing) {
  SKIP_WITHOUT_GINAC();
  // -(a u')' for a = 2 + sin x, u = sin x is -(cos x cos x - (2 + sin x) sin x); the wrong one drops a term.
  const std::string head = R"J({"dimension": 1, "box": [[0, 3]], "operator": {"form": "divergence", "a": "2 + sin(x)"},
                               "exact": "sin(x)", "points": {"nc": 64}, )J";
  const fs::path good = write_file("good_forcing.json", head + R"J("forcing": "-(cos(x)^2 - (2 + sin(x))*sin(x))"})J");
  const fs::path bad = write_file("bad_forcing.json", head + R"J("forcing": "(2 + sin(x))*sin(x)"})J");
  const ProblemSpec g = load_problem_file(good.string()), b = load_problem_file(bad.string());
  const std::string rg = problem_check_report(g, build_points(g)), rb = problem_check_report(b, build_points(b));
  EXPECT_EQ(rg.find("CHECK"), std::string::npos) << rg;
  EXPECT_NE(rb.find("CHECK the forcing"), std::string::npos) << rb;
  EXPECT_NE(rg.find("contrast"), std::string::npos) << rg;
  // Without "scale", the smallest scale is estimated from the coefficient's oscillations: darcy-twoscale's period
  // 2 pi eps = 0.19635 at eps = 1/32 (one maximum and one minimum of a per period).
  const fs::path noscale = write_file("noscale.json", R"J({"dimension": 1, "box": [["-pi", "pi"]],
      "constants": {"eps": "1/32"}, "operator": {"form": "divergence", "a": "1/(2.1 + 2*sin(x/eps))"},
      "exact": "sin(x)"})J");
  const ProblemSpec ns = load_problem_file(noscale.string());
  const std::string rn = problem_check_report(ns, build_points(ns));
  EXPECT_NE(rn.find("smallest scale 0.19635 (estimated"), std::string::npos) << rn;
}

TEST(ProblemFiles, GeneralFormAndDiagonalTensorRows) {
  SKIP_WITHOUT_GINAC();
  // 2-D: -d_x(a0 d_x u) - d_y(a1 d_y u) with a diagonal tensor; rows alpha_k = -a_k, beta_k = -d_k a_k.
  const fs::path p = write_file("diag.json", R"J({"dimension": 2, "box": [[0, 1], [0, 2]],
      "operator": {"form": "divergence", "a": ["1 + x^2", "exp(y)"]}, "exact": "x*y",
      "points": {"nc": 16, "nb": 8, "grid": "grid"}})J");
  const ProblemSpec s = load_problem_file(p.string());
  const PointSet pts = build_points(s);
  for (int k = 0; k < pts.nc; ++k) {
    const double x = pts.x[2 * k], y = pts.x[2 * k + 1];
    EXPECT_NEAR(pts.alpha[2 * k], -(1 + x * x), 1e-15);
    EXPECT_NEAR(pts.alpha[2 * k + 1], -std::exp(y), 1e-14);
    EXPECT_NEAR(pts.beta[2 * k], -2 * x, 1e-15);
    EXPECT_NEAR(pts.beta[2 * k + 1], -std::exp(y), 1e-14);
    EXPECT_NEAR(pts.f[k], -(2 * x * y + x * std::exp(y)), 1e-13);  // -(d_x((1 + x^2) y) + d_y(e^y x))
  }
  for (int j = 0; j < pts.nb; ++j)
    EXPECT_NEAR(pts.f[pts.nc + j], pts.x[2 * (pts.nc + j)] * pts.x[2 * (pts.nc + j) + 1], 1e-15);
  // 1-D general form: -u'' + x u' + 2 u with u = x^3.
  const fs::path q = write_file("general.json", R"J({"dimension": 1, "box": [[-1, 1]],
      "operator": {"form": "general", "alpha": "-1", "beta": "x", "gamma": 2}, "exact": "x^3", "points": {"nc": 9}})J");
  const PointSet g = build_points(load_problem_file(q.string()));
  for (int k = 0; k < g.nc; ++k) {
    const double x = g.x[k];
    EXPECT_EQ(g.alpha[k], -1.0);
    EXPECT_NEAR(g.beta[k], x, 1e-16);
    EXPECT_EQ(g.gamma[k], 2.0);
    EXPECT_NEAR(g.f[k], -6 * x + 3 * x * x * x + 2 * x * x * x, 1e-14);
  }
}

TEST(ProblemFiles, WithoutAnExactSolutionTheErrorIsAgainstTheReference) {
  SKIP_WITHOUT_GINAC();
  // darcy-twoscale at eps = 1/8 with its forcing -(a u*')' and boundary data given instead of its exact solution:
  // the reference solution must be the exact one to about its estimated error.
  const fs::path p = write_file("darcy_noexact.json", R"J({"dimension": 1, "box": [["-pi", "pi"]],
      "constants": {"eps": "1/8", "c": "eps/pi*sin(pi/eps)"},
      "operator": {"form": "divergence", "a": "1/(2.1 + 2*sin(x/eps))"},
      "forcing": "2*cos(x/eps)/eps/(2.1 + 2*sin(x/eps))^2*(2*cos(2*x) + cos(x/eps) - c) - (-4*sin(2*x) - sin(x/eps)/eps)/(2.1 + 2*sin(x/eps))",
      "boundary": "sin(2*x) + eps*sin(x/eps) - c*x", "scale": "2*pi*eps"})J");
  const ProblemSpec s = load_problem_file(p.string());
  ProblemSpec preset = problem_preset("darcy-twoscale");
  preset.eps = 1.0 / 8;
  const PointSet a = build_points(s), b = build_points(preset);
  EXPECT_LE(worst_relative(a.f, b.f), 1e-13);  // the forcing written out equals the manufactured one
  const std::vector<double> x = test_points(s);
  SolutionSource src;
  const std::vector<double> ref = solution_values(s, x, &src), exact = solution_values(preset, x);
  EXPECT_NE(src.method, "exact");
  EXPECT_TRUE(src.converged);
  EXPECT_LE(src.error_estimate, 1e-9);
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(ref[i] - exact[i]));
  EXPECT_LE(worst, 1e-9) << src.method;
  // The network's error is measured against it: the exact solution's own error is the reference's.
  EXPECT_LE(solution_error(s, x, exact).max_error, 1e-9);
}

// TOML (a file named *.toml): anisotropic-2d.toml gives anisotropic-2d.json's rows bit for bit; a syntax error names
// its line and column in one line; a date, which no field can mean, is refused.
TEST(ProblemFiles, TomlFileGivesTheJsonFilesRows) {
  SKIP_WITHOUT_GINAC();
  if (!toml_available()) GTEST_SKIP() << "built without toml++";
  const ProblemSpec t = load_problem_file((kProblems / "anisotropic-2d.toml").string());
  const ProblemSpec j = load_problem_file((kProblems / "anisotropic-2d.json").string());
  EXPECT_EQ(t.name, j.name);
  EXPECT_EQ(t.default_layers, j.default_layers);
  EXPECT_EQ(t.lambda, j.lambda);
  const PointSet a = build_points(t), b = build_points(j);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.alpha, b.alpha);
  EXPECT_EQ(a.beta, b.beta);
  EXPECT_EQ(a.dirs, b.dirs);
  EXPECT_EQ(a.f, b.f);
  EXPECT_EQ(a.w, b.w);
  const struct {
    std::string text, expect;
  } cases[] = {
      {"dimension = 1\nbox = [[0, 1]\n", "not valid TOML: "},
      {"dimension = 1\nbox = [[0, 1]]\nwhen = 1979-05-27\n", "\"when\": dates and times"},
      {"dimension = 1\nbox = [[0, 1]]\ncolour = 1\n[operator]\nform = \"divergence\"\na = \"1\"\n",
       "unknown key \"colour\""},
  };
  int i = 0;
  for (const auto& c : cases) expect_refusal(write_file("bad" + std::to_string(i++) + ".toml", c.text), c.expect);
  try {
    load_problem_file(write_file("bad_line.toml", "dimension = 1\nbox = [[0, 1]\n").string());
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, column"), std::string::npos) << e.what();
  }
}

// The CLI: `problem check`, training on a file, a bad file's one line and exit status 2.
struct CliResult {
  int code;
  std::string out, err;
};

CliResult pinntk_cli(const std::string& args, const std::string& tag) {
  fs::create_directories(kTmp);
  const fs::path out = kTmp / (tag + ".out"), err = kTmp / (tag + ".err");
  const int status =
      std::system((std::string(PINNTK_BIN) + " " + args + " >" + out.string() + " 2>" + err.string()).c_str());
  return {WEXITSTATUS(status), slurp(out), slurp(err)};
}

// A file whose forcing contradicts its exact solution: `problem check` reports it and exits 2 with one error line;
// a training on it says so in a warning line before it starts.
TEST(ProblemFiles, CliCheckFailsOnAWrongForcingAndTrainingWarns) {
  SKIP_WITHOUT_GINAC();
  const fs::path bad =
      write_file("cli_bad_forcing.json",
                 R"J({"dimension": 1, "box": [[0, 3]], "operator": {"form": "divergence", "a": "2 + sin(x)"},
                               "exact": "sin(x)", "points": {"nc": 64}, "forcing": "(2 + sin(x))*sin(x)"})J");
  const CliResult check = pinntk_cli("problem check " + bad.string(), "check_bad");
  EXPECT_EQ(check.code, 2) << check.err;
  EXPECT_NE(check.out.find("CHECK the forcing"), std::string::npos) << check.out;
  EXPECT_EQ(std::count(check.err.begin(), check.err.end(), '\n'), 1) << check.err;
  EXPECT_NE(check.err.find("the forcing does not match the exact solution"), std::string::npos) << check.err;
  const fs::path out = kTmp / "train_bad_forcing";
  fs::remove_all(out);
  const CliResult train =
      pinntk_cli("train --problem-file " + bad.string() +
                     " --layers 1,4,1 --schedule 5@1e-3 --device cpu --threads 1 --out " + out.string(),
                 "train_bad");
  EXPECT_EQ(train.code, 0) << train.err;
  EXPECT_NE(train.err.find("pinntk: warning: "), std::string::npos) << train.err;
}

TEST(ProblemFiles, CliCheckTrainAndRefusal) {
  SKIP_WITHOUT_GINAC();
  const CliResult check = pinntk_cli("problem check " + (kProblems / "darcy-twoscale.json").string(), "check");
  ASSERT_EQ(check.code, 0) << check.err;
  EXPECT_NE(check.out.find("divergence"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("points per period"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("manufactured from the exact solution"), std::string::npos) << check.out;

  const fs::path out = kTmp / "train_file";
  fs::remove_all(out);
  const CliResult train =
      pinntk_cli("train --problem-file " + (kProblems / "incommensurate-1d.json").string() +
                     " --nc 64 --layers 1,8,1 --schedule 20@1e-3 --device cpu --threads 1 --out " + out.string(),
                 "train");
  ASSERT_EQ(train.code, 0) << train.err;
  const auto j = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(j["problem"], "incommensurate-1d");
  EXPECT_EQ(j["problem_file"]["exact_solution"], false);
  EXPECT_NE(j["error_reference"]["method"].get<std::string>(), "exact");
  EXPECT_LE(j["error_reference"]["estimated_error"].get<double>(), 1e-10);
  EXPECT_TRUE(std::isfinite(j["max_error"].get<double>()));

  const fs::path bad = write_file("cli_bad.json", R"J({"dimension": 1, "box": [[0, 1]],
      "operator": {"form": "divergence", "a": "1 + sinn(x)"}, "exact": "x"})J");
  const CliResult refused =
      pinntk_cli("train --problem-file " + bad.string() + " --out " + (kTmp / "never").string(), "bad");
  EXPECT_EQ(refused.code, 2);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_NE(refused.err.find("sinn"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(kTmp / "never"));
  const CliResult both = pinntk_cli(
      "train --problem darcy-ntk --problem-file " + bad.string() + " --out " + (kTmp / "never").string(), "both");
  EXPECT_EQ(both.code, 2);
}

}  // namespace
}  // namespace pinntk
