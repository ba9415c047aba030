// The n-dimensional problems (DESIGN.md section 7) on every backend (tests/backend_suite.hpp): u and its axis
// derivatives, the residuals and the Jacobian against the independent forward-mode reference (tests/reference_mlp.hpp),
// the loss gradient against J^T diag(w) r, the NTK's norms and spectra against plain loops and Jacobi, Adam and LM
// on 2-D and 3-D presets.
#include <gtest/gtest.h>

#include <cmath>   // std::sqrt, std::isfinite
#include <vector>  // std::vector

#include "host/ntk.hpp"             // analyze_ntk
#include "host/optim/lm.hpp"        // GaussNewtonSystem, minimize_lm, loss_of
#include "host/rng.hpp"             // Rng
#include "host/train.hpp"           // train_adam
#include "tests/backend_suite.hpp"  // Nd, tol
#include "tests/reference_mlp.hpp"  // reference_forward_nd, reference_jacobian_row_nd, jacobi_eigenvalues

namespace pinntk::testing {
namespace {

// A preset with a small point set: an interior grid of side^n points (or `side`^n Sobol points), 2n faces of
// per_face points each.
ProblemSpec small_spec(const std::string& name, int side, int per_face) {
  ProblemSpec spec = problem_preset(name);
  spec.nc = 1;
  for (int i = 0; i < spec.dim; ++i) spec.nc *= side;
  spec.nb = 2 * spec.dim * per_face;
  if (spec.eps > 0) spec.eps = 1.0 / 4;
  return spec;
}

std::vector<double> point(const PointSet& p, int k) {
  return {p.x.begin() + static_cast<long>(k) * p.dim, p.x.begin() + static_cast<long>(k + 1) * p.dim};
}

// Relative distance of two vectors in the max norm, scaled by b's largest entry.
double rel_max(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0.0, s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::fabs(a[i] - b[i]));
    s = std::max(s, std::fabs(b[i]));
  }
  return d / s;
}

TEST_P(Nd, EvaluateMatchesTheForwardModeReference) {
  // {3,40,40,1} and {2,64,1} take the kernels' width fast paths, {2,7,5,1} the generic one.
  for (const std::vector<int>& layers : {std::vector<int>{2, 7, 5, 1}, {2, 64, 1}, {3, 40, 40, 1}}) {
    const int n = layers[0];
    const Mlp net = init_mlp(layers, "normal", 5);
    Rng rng(9);
    const int N = 37;
    std::vector<double> x(static_cast<size_t>(N) * n);
    for (double& v : x) v = 2.0 * rng.uniform() - 1.0;
    std::vector<double> u(N), du(x.size()), d2u(x.size());
    auto be = backend();
    be->evaluate(net, x, u, du, d2u);
    std::vector<double> ru(N), rdu(x.size()), rd2u(x.size());
    for (int k = 0; k < N; ++k) {
      const std::vector<double> xk(x.begin() + k * n, x.begin() + (k + 1) * n);
      for (int i = 0; i < n; ++i) {
        const Taylor t = reference_forward_nd(layers, net.theta, xk, i, -1);
        ru[k] = t.c0.a;
        rdu[k * n + i] = t.c1.a;
        rd2u[k * n + i] = t.c2.a;
      }
    }
    EXPECT_LT(rel_max(u, ru), tol(1e-13)) << layers[1];
    EXPECT_LT(rel_max(du, rdu), tol(1e-13)) << layers[1];
    EXPECT_LT(rel_max(d2u, rd2u), tol(1e-12)) << layers[1];
  }
}

TEST_P(Nd, ResidualsAndJacobianMatchTheForwardModeReference) {
  struct Case {
    const char* problem;
    int side, per_face;
    std::vector<int> layers;
  };
  for (const Case& c : {Case{"darcy2d-twoscale", 5, 3, {2, 6, 5, 1}}, Case{"poisson3d-sines", 3, 1, {3, 8, 1}},
                        Case{"darcy2d-ntk", 4, 2, {2, 40, 40, 1}}}) {
    ProblemSpec spec = small_spec(c.problem, c.side, c.per_face);
    if (spec.grid == Grid::Sobol) spec.nc = 20;
    const PointSet pts = build_points(spec);
    const Mlp net = init_mlp(c.layers, "glorot-normal", 3);
    const int N = pts.size(), P = net.n_params(), n = pts.dim;
    auto be = backend();
    std::vector<double> r(N), J(static_cast<size_t>(N) * P);
    be->residuals_jacobian(net, pts, r, J);
    std::vector<double> rr(N), rJ(J.size());
    for (int k = 0; k < N; ++k) {
      const std::vector<double> xk = point(pts, k);
      const std::vector<double> row = reference_jacobian_row_nd(net.layers, net.theta, xk, pts.alpha.data() + k * n,
                                                                pts.beta.data() + k * n, pts.gamma[k]);
      std::copy(row.begin(), row.end(), rJ.begin() + static_cast<long>(k) * P);
      double rho = pts.gamma[k] * reference_forward_nd(net.layers, net.theta, xk, 0, -1).c0.a;
      for (int i = 0; i < n; ++i) {
        const Taylor t = reference_forward_nd(net.layers, net.theta, xk, i, -1);
        rho += pts.alpha[k * n + i] * t.c2.a + pts.beta[k * n + i] * t.c1.a;
      }
      rr[k] = rho - pts.f[k];
    }
    EXPECT_LT(rel_max(r, rr), tol(1e-12)) << c.problem;
    EXPECT_LT(rel_max(J, rJ), tol(1e-12)) << c.problem;
  }
}

TEST_P(Nd, LossGradientIsJacobianTransposeTimesWeightedResiduals) {
  for (const char* problem : {"darcy2d-twoscale", "poisson3d-sines"}) {
    ProblemSpec spec = small_spec(problem, 6, 4);
    if (spec.grid == Grid::Sobol) spec.nc = 90;
    const PointSet pts = build_points(spec);
    const Mlp net =
        init_mlp(pts.dim == 2 ? std::vector<int>{2, 9, 7, 1} : std::vector<int>{3, 40, 40, 1}, "glorot-normal", 8);
    const int N = pts.size(), P = net.n_params();
    auto be = backend();
    std::vector<double> r(N), J(static_cast<size_t>(N) * P), g(P), r2(N);
    be->residuals_jacobian(net, pts, r, J);
    const double loss = be->loss_gradient(net, pts, r2, g);
    std::vector<double> ref(P, 0.0);
    double lref = 0.0;
    for (int k = 0; k < N; ++k) {
      lref += 0.5 * pts.w[k] * r[k] * r[k];
      for (int q = 0; q < P; ++q) ref[q] += J[static_cast<size_t>(k) * P + q] * pts.w[k] * r[k];
    }
    EXPECT_NEAR(loss, lref, tol(1e-12) * lref) << problem;
    EXPECT_LT(rel_max(r2, r), tol(1e-12)) << problem;
    EXPECT_LT(rel_max(g, ref), tol(1e-11)) << problem;
  }
}

TEST_P(Nd, NtkMatchesPlainLoopsWithAndWithoutTheGramTrick) {
  // {2,8,1} (P = 33) on 41 rows takes the Gram trick; {2,12,1} (P = 49) the direct form.
  for (const std::vector<int>& layers : {std::vector<int>{2, 8, 1}, {2, 12, 1}}) {
    const PointSet pts = build_points(small_spec("darcy2d-ntk", 5, 4));
    const Mlp net = init_mlp(layers, "normal", 21);
    auto be = backend();
    const NtkResult res = analyze_ntk(*be, net, pts, NtkScaling::Lemma, false);
    EXPECT_EQ(res.gram_trick, pts.size() > net.n_params());
    const int N = pts.size(), nc = pts.nc, P = net.n_params(), n = pts.dim;
    std::vector<std::vector<double>> J(N);
    for (int k = 0; k < N; ++k)
      J[k] = reference_jacobian_row_nd(layers, net.theta, point(pts, k), pts.alpha.data() + k * n,
                                       pts.beta.data() + k * n, pts.gamma[k]);
    double fK = 0.0, fuu = 0.0;
    std::vector<double> Kuu(static_cast<size_t>(nc) * nc);
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j) {
        double g = 0.0;
        for (int q = 0; q < P; ++q) g += J[i][q] * J[j][q];
        const double k = g * pts.w[j];  // K = J J^T D (Lemma 3.1)
        fK += k * k;
        if (i < nc && j < nc) {
          fuu += k * k;
          Kuu[static_cast<size_t>(i) * nc + j] = k;
        }
      }
    EXPECT_NEAR(res.frobenius_K, std::sqrt(fK), tol(1e-12) * std::sqrt(fK));
    EXPECT_NEAR(res.frobenius_Kuu, std::sqrt(fuu), tol(1e-12) * std::sqrt(fuu));
    const std::vector<double> e = jacobi_eigenvalues(Kuu, nc);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(res.spectrum_Kuu[i], e[i], tol(1e-11) * e[0]) << layers[1];
  }
}

TEST_P(Nd, AdamAndLevenbergMarquardtReduceTheLossIn2dAnd3d) {
  for (const char* problem : {"poisson2d-sines", "poisson3d-sines"}) {
    ProblemSpec spec = problem_preset(problem);
    spec.nc = spec.dim == 2 ? 100 : 64;
    spec.nb = spec.dim == 2 ? 40 : 6 * 4;
    spec.test_uniform = spec.dim == 2 ? 500 : 0;
    spec.test_per_axis = 6;
    const PointSet pts = build_points(spec);
    Mlp net = init_mlp(spec.dim == 2 ? std::vector<int>{2, 10, 1} : std::vector<int>{3, 8, 8, 1}, "glorot-normal", 4);
    auto be = backend();
    TrainConfig cfg;
    cfg.schedule = {{200, 1e-2}};
    cfg.history_every = 100;
    cfg.lbfgs.max_iter = 30;  // Adam, then L-BFGS
    const TrainResult a = train_adam(*be, net, spec, pts, cfg, nullptr);
    ASSERT_TRUE(a.diverged.empty());
    EXPECT_LT(a.final_loss, 0.5 * a.history.front().loss) << problem;
    double after_adam = 0.0;
    for (const auto& h : a.history)
      if (h.optimizer == "adam") after_adam = h.loss;
    EXPECT_GT(a.lbfgs.iterations, 0) << problem;
    EXPECT_LT(a.final_loss, after_adam) << problem;
    EXPECT_TRUE(std::isfinite(a.rel_l2_error) && a.rel_l2_error > 0.0) << problem;
    const double before = loss_of(*be, net, pts);
    LmConfig lm;
    lm.max_iter = 20;
    lm.form = "sample";
    const LmResult l = minimize_lm(*be, net, pts, lm);
    EXPECT_LT(l.loss, 0.1 * before) << problem;
    EXPECT_NEAR(loss_of(*be, net, pts), l.loss, tol(1e-10) * l.loss) << problem;
  }
}

TEST_P(Nd, SampleAndParameterFormsGiveTheSameStepIn2d) {
  if (GetParam().rtol_floor > 0) GTEST_SKIP() << "fp64 only: the step at mu = 1e-3 of the Gram's scale (as Lm)";
  const PointSet pts = build_points(small_spec("darcy2d-twoscale", 4, 2));  // N = 24
  const Mlp net = init_mlp({2, 5, 4, 1}, "glorot-normal", 1);               // P = 44
  auto be = backend();
  GaussNewtonSystem s(*be, net, pts, "sample"), q(*be, net, pts, "parameter");
  EXPECT_NEAR(s.loss(), q.loss(), 1e-13 * s.loss());
  std::vector<double> ds, dq;
  ASSERT_TRUE(s.solve(1e-3 * s.max_diagonal(), ds));
  ASSERT_TRUE(q.solve(1e-3 * s.max_diagonal(), dq));
  EXPECT_LT(rel_max(ds, dq), 1e-8);
}

}  // namespace
}  // namespace pinntk::testing
