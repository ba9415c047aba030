// A full coefficient tensor (issue 15, DESIGN.md section 7): rows that carry their own Taylor directions (the
// eigenvectors of A at the row's point). The problem file's rows against the tensor they come from, the batched CPU
// gradient against the per-point Jacobian for every instruction set and chunking, the matrix-free products and the
// chunked NTK against the formed Jacobian, axis directions against rows without directions, the loss of a network
// along the directions, the refusal of the CUDA kernels, and LM training on a problem with an exact solution.
#include <gtest/gtest.h>
#include <sys/wait.h>  // WEXITSTATUS

#include <cmath>              // std::sin, std::cos, std::sqrt
#include <cstdlib>            // std::system
#include <filesystem>         // std::filesystem
#include <fstream>            // std::ofstream
#include <nlohmann/json.hpp>  // nlohmann::json
#include <random>             // std::mt19937_64, std::normal_distribution
#include <string>             // std::string
#include <vector>             // std::vector

#include "common/errors.hpp"                  // UsageError
#include "host/backend.hpp"                   // make_cpu_backend, cuda_device_count, evaluate_rows
#include "host/cpu_batched.hpp"               // batched_loss_gradient, batched_jacobian_times, BatchedWorkspace
#include "host/mlp.hpp"                       // init_mlp
#include "host/ntk.hpp"                       // ntk_chunked
#include "host/optim/lm.hpp"                  // loss_of
#include "host/problem.hpp"                   // build_points
#include "host/problemfile/formula.hpp"       // formulas_available
#include "host/problemfile/problem_file.hpp"  // load_problem_file
#include "slurp.hpp"                          // slurp
#include "tests/batched_settings.hpp"         // testing::for_each_batched_setting
#include "tests/near.hpp"                     // testing::near, testing::all_near

namespace fs = std::filesystem;

namespace pinntk {
namespace {

const fs::path kTmp = fs::path(PINNTK_TEST_TMP) / "full_tensor";
const fs::path kProblems = fs::path(PINNTK_SOURCE_DIR) / "problems";

fs::path write_file(const std::string& name, const std::string& text) {
  fs::create_directories(kTmp);
  const fs::path p = kTmp / name;
  std::ofstream(p) << text;
  return p;
}

// nc collocation rows with random points, orthonormal directions (Gram-Schmidt of a Gaussian matrix) and
// coefficients, then nb boundary rows (gamma = 1, axes): what a full tensor's file gives, without GiNaC.
PointSet random_tensor_rows(int dim, int nc, int nb, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> n01;
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  PointSet p;
  p.dim = dim;
  p.nc = nc;
  p.nb = nb;
  const int N = nc + nb;
  p.x.resize(static_cast<size_t>(N) * dim);
  p.alpha.assign(p.x.size(), 0.0);
  p.beta.assign(p.x.size(), 0.0);
  p.gamma.assign(N, 0.0);
  p.f.resize(N);
  p.w.resize(N);
  p.dirs.assign(static_cast<size_t>(N) * dim * dim, 0.0);
  for (int k = 0; k < N; ++k) {
    for (int i = 0; i < dim; ++i) p.x[k * dim + i] = u01(g);
    double* v = p.dirs.data() + static_cast<size_t>(k) * dim * dim;
    if (k >= nc) {  // boundary: u alone, the axes
      for (int i = 0; i < dim; ++i) v[i * dim + i] = 1.0;
      p.gamma[k] = 1.0;
    } else {
      for (int i = 0; i < dim; ++i) {
        for (int j = 0; j < dim; ++j) v[i * dim + j] = n01(g);
        for (int q = 0; q < i; ++q) {
          double d = 0.0;
          for (int j = 0; j < dim; ++j) d += v[i * dim + j] * v[q * dim + j];
          for (int j = 0; j < dim; ++j) v[i * dim + j] -= d * v[q * dim + j];
        }
        double nn = 0.0;
        for (int j = 0; j < dim; ++j) nn += v[i * dim + j] * v[i * dim + j];
        for (int j = 0; j < dim; ++j) v[i * dim + j] /= std::sqrt(nn);
        p.alpha[k * dim + i] = -(0.5 + u01(g));
        p.beta[k * dim + i] = n01(g);
      }
      p.gamma[k] = k % 3 == 0 ? 0.3 : 0.0;
    }
    p.f[k] = n01(g);
    p.w[k] = (k < nc ? 1.0 / nc : 10.0 / nb);
  }
  return p;
}

struct Grad {
  double loss;
  std::vector<double> r, g;
};

// The loss, residuals and gradient J^T (w r) from the per-point Jacobian (residuals_jacobian).
Grad from_jacobian(Backend& be, const Mlp& net, const PointSet& pts) {
  const size_t n = pts.size(), P = net.n_params();
  std::vector<double> J(n * P);
  Grad out{0.0, std::vector<double>(n), std::vector<double>(P, 0.0)};
  be.residuals_jacobian(net, pts, out.r, J);
  for (size_t k = 0; k < n; ++k) {
    out.loss += 0.5 * pts.w[k] * out.r[k] * out.r[k];
    for (size_t q = 0; q < P; ++q) out.g[q] += pts.w[k] * out.r[k] * J[k * P + q];
  }
  return out;
}

TEST(FullTensor, BatchedGradientMatchesThePerPointJacobian) {
  auto be = make_cpu_backend(0);
  for (int dim : {2, 3}) {
    const PointSet pts = random_tensor_rows(dim, 203, 24, 7 + dim);
    const Mlp net = init_mlp({dim, 9, 7, 5, 1}, "glorot-normal", 3);
    const Grad ref = from_jacobian(*be, net, pts);
    testing::for_each_batched_setting([&](BatchedWorkspace& ws, int chunk, const std::string& setting) {
      Grad b{0.0, std::vector<double>(pts.size()), std::vector<double>(net.n_params())};
      b.loss = batched_loss_gradient(net, pts, b.r, b.g, ws, chunk);
      const std::string what = "dim " + std::to_string(dim) + ", " + setting;
      EXPECT_TRUE(testing::near(b.loss, ref.loss, ref.loss)) << what;
      EXPECT_TRUE(testing::all_near(b.r, ref.r)) << what;
      EXPECT_TRUE(testing::all_near(b.g, ref.g)) << what;
    });
    // The loss along the directions from the per-point evaluation (history rows, LM's trial loss).
    EXPECT_TRUE(testing::near(loss_of(*be, net, pts), ref.loss, ref.loss)) << dim;
  }
}

TEST(FullTensor, AxisDirectionsGiveTheResultsOfRowsWithoutDirections) {
  auto be = make_cpu_backend(0);
  PointSet axes = random_tensor_rows(2, 150, 16, 11);
  for (int k = 0; k < axes.size(); ++k) {
    double* v = axes.dirs.data() + static_cast<size_t>(k) * 4;
    v[0] = v[3] = 1.0;
    v[1] = v[2] = 0.0;
  }
  PointSet none = axes;
  none.dirs.clear();
  const Mlp net = init_mlp({2, 8, 8, 1}, "glorot-normal", 5);
  const size_t P = net.n_params();
  std::vector<double> r1(axes.size()), r2(axes.size()), g1(P), g2(P);
  const double l1 = be->loss_gradient(net, axes, r1, g1), l2 = be->loss_gradient(net, none, r2, g2);
  EXPECT_TRUE(testing::near(l1, l2, l2));
  EXPECT_TRUE(testing::all_near(g1, g2));
  EXPECT_TRUE(testing::all_near(r1, r2));
}

TEST(FullTensor, MatrixFreeProductsAndChunkedNtkMatchTheFormedJacobian) {
  auto be = make_cpu_backend(0);
  const PointSet pts = random_tensor_rows(2, 180, 20, 21);
  const Mlp net = init_mlp({2, 6, 5, 1}, "glorot-normal", 9);
  const size_t n = pts.size(), P = net.n_params();
  std::vector<double> r(n), J(n * P);
  be->residuals_jacobian(net, pts, r, J);
  std::mt19937_64 g(4);
  std::normal_distribution<double> n01;
  std::vector<double> u(P), y(n), Ju(n), Jty(P), Ju_ref(n, 0.0), Jty_ref(P, 0.0);
  for (auto& v : u) v = n01(g);
  for (auto& v : y) v = n01(g);
  be->jacobian_times(net, pts, u, Ju);
  be->jacobian_transpose_times(net, pts, y, Jty);
  for (size_t k = 0; k < n; ++k)
    for (size_t q = 0; q < P; ++q) {
      Ju_ref[k] += J[k * P + q] * u[q];
      Jty_ref[q] += J[k * P + q] * y[k];
    }
  EXPECT_TRUE(testing::all_near(Ju, Ju_ref));
  EXPECT_TRUE(testing::all_near(Jty, Jty_ref));
  // The batched passes behind them with the rows' own directions: each instruction set, chunks, all channels.
  testing::for_each_batched_setting([&](BatchedWorkspace& ws, int chunk, const std::string& setting) {
    std::vector<double> ju(n), jty(P);
    batched_jacobian_times(net, pts, u, ju, ws, chunk);
    batched_jacobian_transpose_times(net, pts, y, jty, ws, chunk);
    EXPECT_TRUE(testing::all_near(ju, Ju_ref)) << setting;
    EXPECT_TRUE(testing::all_near(jty, Jty_ref)) << setting;
  });
  // The chunked Gram (its chunks slice the rows' directions) against the one-shot NTK (N > P here).
  ASSERT_GT(n, P);
  const std::vector<double> d(pts.w);
  const NtkResult whole = be->ntk(net, pts, d, false);
  for (long chunk : {1L, 7L, 64L}) {
    const NtkResult c = ntk_chunked(*be, net, pts, d, chunk);
    EXPECT_TRUE(testing::near(c.frobenius_K, whole.frobenius_K, whole.frobenius_K, 1e-12)) << chunk;
    EXPECT_TRUE(testing::near(c.frobenius_Kuu, whole.frobenius_Kuu, whole.frobenius_Kuu, 1e-12)) << chunk;
    EXPECT_TRUE(testing::all_near(c.spectrum_Kuu, whole.spectrum_Kuu, 1e-12)) << chunk;
  }
}

#define SKIP_WITHOUT_GINAC() \
  if (!formulas_available()) GTEST_SKIP() << "built without GiNaC"

// A = [[1 + x^2, x y], [x y, 2 + y^2]]: b_j = sum_i d_i a_ij = (3x, 3y); u = sin(pi x) sin(pi y).
const char* kTensorFile = R"J({"dimension": 2, "box": [[0, 1], [0, 1]],
    "operator": {"form": "divergence", "a": [["1 + x^2", "x*y"], ["x*y", "2 + y^2"]]},
    "exact": "sin(pi*x)*sin(pi*y)", "points": {"nc": 64, "nb": 32, "grid": "grid"}})J";

TEST(FullTensor, FileRowsAreTheTensorInItsEigenbasis) {
  SKIP_WITHOUT_GINAC();
  const ProblemSpec s = load_problem_file(write_file("tensor.json", kTensorFile).string());
  const PointSet pts = build_points(s);
  ASSERT_TRUE(pts.has_directions());
  ASSERT_EQ(pts.dirs.size(), static_cast<size_t>(pts.size()) * 4);
  const double pi = M_PI;
  for (int k = 0; k < pts.nc; ++k) {
    const double x = pts.x[2 * k], y = pts.x[2 * k + 1];
    const double A[4] = {1 + x * x, x * y, x * y, 2 + y * y}, b[2] = {3 * x, 3 * y};
    const double* v = pts.directions(k, nullptr);
    double R[4] = {0, 0, 0, 0}, bb[2] = {0, 0};
    for (int q = 0; q < 2; ++q) {
      EXPECT_NEAR(v[2 * q] * v[2 * q] + v[2 * q + 1] * v[2 * q + 1], 1.0, 1e-15);
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) R[i * 2 + j] += -pts.alpha[2 * k + q] * v[2 * q + i] * v[2 * q + j];
        bb[i] += pts.beta[2 * k + q] * v[2 * q + i];
      }
    }
    EXPECT_NEAR(v[0] * v[2] + v[1] * v[3], 0.0, 1e-15);
    for (int q = 0; q < 4; ++q) EXPECT_NEAR(R[q], A[q], 1e-14) << k;    // A = sum_k lambda_k v_k v_k^T
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(bb[i], -b[i], 1e-14) << k;  // sum_k c_k v_k = -b
    // f = -sum_ij a_ij d_i d_j u - b . grad u, manufactured from the exact solution along the directions.
    const double sx = std::sin(pi * x), sy = std::sin(pi * y), cx = std::cos(pi * x), cy = std::cos(pi * y);
    const double f =
        pi * pi * (A[0] + A[3]) * sx * sy - 2 * A[1] * pi * pi * cx * cy - (b[0] * pi * cx * sy + b[1] * pi * sx * cy);
    EXPECT_NEAR(pts.f[k], f, 1e-12) << k;
  }
  for (int j = 0; j < pts.nb; ++j) EXPECT_EQ(pts.gamma[pts.nc + j], 1.0);
  // The exact solution's own residual, as `problem check` computes it, is at rounding.
  const std::string forcing =
      "pi^2*(3 + x^2 + y^2)*sin(pi*x)*sin(pi*y) - 2*x*y*pi^2*cos(pi*x)*cos(pi*y) - "
      "3*x*pi*cos(pi*x)*sin(pi*y) - 3*y*pi*sin(pi*x)*cos(pi*y)";
  std::string text = kTensorFile;
  text.insert(text.rfind('}'), ", \"forcing\": \"" + forcing + "\"");
  const ProblemSpec given = load_problem_file(write_file("tensor_f.json", text).string());
  const std::string report = problem_check_report(given, build_points(given));
  EXPECT_EQ(report.find("CHECK"), std::string::npos) << report;
  EXPECT_NE(report.find("full tensor"), std::string::npos) << report;
}

TEST(FullTensor, ADiagonalTensorGivesTheDiagonalFormsLoss) {
  SKIP_WITHOUT_GINAC();
  const std::string head = R"J({"dimension": 2, "box": [[0, 1], [0, 2]], "exact": "x*y + sin(y)",
      "points": {"nc": 100, "nb": 40, "grid": "grid"}, "operator": {"form": "divergence", "a": )J";
  const ProblemSpec t =
      load_problem_file(write_file("diag_t.json", head + R"J([["1 + x^2", "0"], ["0", "exp(y)"]]}})J").string());
  const ProblemSpec d = load_problem_file(write_file("diag_d.json", head + R"J(["1 + x^2", "exp(y)"]}})J").string());
  const PointSet pt = build_points(t), pd = build_points(d);
  auto be = make_cpu_backend(0);
  const Mlp net = init_mlp({2, 10, 10, 1}, "glorot-normal", 2);
  const size_t P = net.n_params();
  std::vector<double> r1(pt.size()), r2(pd.size()), g1(P), g2(P);
  const double l1 = be->loss_gradient(net, pt, r1, g1), l2 = be->loss_gradient(net, pd, r2, g2);
  EXPECT_TRUE(testing::near(l1, l2, l2, 1e-12));
  EXPECT_TRUE(testing::all_near(r1, r2, 1e-12));
  EXPECT_TRUE(testing::all_near(g1, g2, 1e-12));
}

TEST(FullTensor, MistakesAreRefused) {
  SKIP_WITHOUT_GINAC();
  const struct {
    std::string a, expect;
    int dim;
  } cases[] = {
      {R"J([["1", "2"], ["2", "1"]])J", "positive definite", 2},
      {R"J([["1", "x"], ["0", "1"]])J", "must be symmetric", 2},
      {R"J([["1", "0"], ["0", "1"], ["0", "1"]])J", "needs 2 rows", 2},
      {R"J([["1", "0", "0"], ["0", "1"], ["0", "0", "1"]])J", "needs 3 formulas", 3},
      {R"J([["1"]])J", "dimension 2 or 3", 1},
  };
  int i = 0;
  for (const auto& c : cases) {
    std::string box = c.dim == 1 ? "[[0, 1]]" : c.dim == 2 ? "[[0, 1], [0, 1]]" : "[[0, 1], [0, 1], [0, 1]]";
    const fs::path p = write_file("bad_tensor" + std::to_string(i++) + ".json",
                                  R"J({"dimension": )J" + std::to_string(c.dim) + R"J(, "box": )J" + box +
                                      R"J(, "operator": {"form": "divergence", "a": )J" + c.a +
                                      R"J(}, "forcing": "1", "boundary": "0"})J");
    try {
      load_problem_file(p.string());
      ADD_FAILURE() << "accepted: " << c.a;
    } catch (const UsageError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.expect), std::string::npos) << what << " (expected " << c.expect << ")";
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}

// The CLI: LM on the constant anisotropic problem (a rotated tensor of contrast 10) reaches a small error against
// its exact solution, which wrong directions or coefficients could not. --device cuda takes the same rows: where a
// GPU answers it reaches the same small error, elsewhere it is refused with one line and writes nothing.
TEST(FullTensor, CliTrainsTheAnisotropicProblemOnEitherDevice) {
  SKIP_WITHOUT_GINAC();
  fs::create_directories(kTmp);
  const std::string file = (kProblems / "anisotropic-2d.json").string();
  const auto train = [&](const std::string& device, const std::string& name) {
    fs::remove_all(kTmp / name);
    const std::string cmd = std::string(PINNTK_BIN) + " train --problem-file " + file +
                            " --nc 256 --nb 64 --schedule 300@1e-3 --optimizer lm --lm-iters 80 --device " + device +
                            " --threads 1 --out " + (kTmp / name).string() + " >" + (kTmp / (name + ".log")).string() +
                            " 2>&1";
    return WEXITSTATUS(std::system(cmd.c_str()));
  };
  ASSERT_EQ(train("cpu", "aniso"), 0) << slurp(kTmp / "aniso.log");
  const nlohmann::json j = nlohmann::json::parse(slurp(kTmp / "aniso" / "summary.json"));
  EXPECT_LT(j["rel_l2_error"].get<double>(), 1e-2) << j.dump();
  const int rc = train("cuda", "aniso_cuda");
  const std::string log = slurp(kTmp / "aniso_cuda.log");
  if (cuda_device_count() == 0) {
    EXPECT_EQ(rc, 2) << log;
    EXPECT_NE(log.find("CUDA"), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(kTmp / "aniso_cuda")) << "no half-written output";
    return;
  }
  ASSERT_EQ(rc, 0) << log;
  const nlohmann::json g = nlohmann::json::parse(slurp(kTmp / "aniso_cuda" / "summary.json"));
  EXPECT_LT(g["rel_l2_error"].get<double>(), 1e-2) << g.dump();
}

}  // namespace
}  // namespace pinntk
