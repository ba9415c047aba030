// Levenberg-Marquardt on every fp64 backend (tests/backend_suite.hpp): exact on linear least squares as mu -> 0, both
// solve forms agree, monotone on a PINN.
#include <gtest/gtest.h>
#include <lapacke.h>  // LAPACKE_dgels, LAPACKE_dposv

#include <cmath>      // std::sqrt, std::sin, std::cos, std::fabs
#include <memory>     // std::unique_ptr
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string
#include <utility>    // std::move
#include <vector>     // std::vector

#include "common/errors.hpp"  // UsageError
#include "host/optim/lm.hpp"  // GaussNewtonSystem, minimize_lm
#include "tests/backend_suite.hpp"

namespace pinntk::testing {
namespace {

// A backend whose "residuals" are linear in theta, r = A theta - b: Gauss-Newton is exact for it. Its Grams and
// eigenvalues are those of the backend under test.
class LinearBackend final : public Backend {
 public:
  LinearBackend(int n, int p, std::unique_ptr<Backend> inner)
      : n_(n), p_(p), A_(static_cast<size_t>(n) * p), b_(n), inner_(std::move(inner)) {
    for (int i = 0; i < n * p; ++i) A_[i] = std::sin(1.3 * i) + 0.2 * std::cos(0.7 * i * i);
    for (int i = 0; i < n; ++i) b_[i] = std::cos(0.9 * i);
  }
  std::string name() const override { return "linear"; }
  void evaluate(const Mlp&, span<const double>, span<double>, span<double>, span<double>) override {}
  void residuals_jacobian(const Mlp& net, const PointSet&, span<double> r, span<double> J) override {
    std::copy(A_.begin(), A_.end(), J.begin());
    for (int i = 0; i < n_; ++i) {
      r[i] = -b_[i];
      for (int q = 0; q < p_; ++q) r[i] += A_[static_cast<size_t>(i) * p_ + q] * net.theta[q];
    }
  }
  double loss_gradient(const Mlp&, const PointSet&, span<double>, span<double>) override { return 0.0; }
  void gram_rows(span<const double> A, int n, int k, span<double> G) override { inner_->gram_rows(A, n, k, G); }
  void gram_cols(span<const double> A, int n, int k, span<double> G) override { inner_->gram_cols(A, n, k, G); }
  void symmetric_eigenvalues(span<double> A, int n, span<double> e) override { inner_->symmetric_eigenvalues(A, n, e); }
  int n_, p_;
  std::vector<double> A_, b_;
  std::unique_ptr<Backend> inner_;
};

PointSet unit_rows(int n) {
  PointSet p;
  p.nc = n;
  p.x.assign(n, 0.0);
  p.alpha = p.beta = p.gamma = p.f = p.x;
  p.w.assign(n, 1.0);
  return p;
}

// The rows of a small PINN: preset `problem` at eps with nc collocation points.
PointSet rows_of(const std::string& problem, double eps, int nc) {
  ProblemSpec spec = problem_preset(problem);
  spec.eps = eps;
  spec.nc = nc;
  return build_points(spec);
}

// Parameters for the linear backend: only the size of theta matters, and it must match the shape's count.
Mlp params(int hidden) {
  Mlp net;
  net.layers = {1, hidden, 1};
  net.theta.assign(net.n_params(), 0.1);
  return net;
}

TEST_P(Lm, OverdeterminedLinearLeastSquaresIsSolvedExactly) {
  Mlp net = params(2);
  const int n = 30, p = net.n_params();  // N > P = 7: the parameter form
  LinearBackend be(n, p, backend());
  GaussNewtonSystem sys(be, net, unit_rows(n), "auto");
  EXPECT_FALSE(sys.sample_form());
  std::vector<double> delta;
  ASSERT_TRUE(sys.solve(1e-13 * sys.max_diagonal(), delta));
  // Reference: argmin |A x - b| by LAPACK's QR least squares.
  std::vector<double> A = be.A_, b = be.b_;
  ASSERT_EQ(LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', n, p, 1, A.data(), p, b.data(), 1), 0);
  for (int q = 0; q < p; ++q) EXPECT_NEAR(net.theta[q] + delta[q], b[q], 1e-9 * (1 + std::fabs(b[q])));
}

TEST_P(Lm, UnderdeterminedLinearStepIsTheMinimumNormSolution) {
  Mlp net = params(6);
  const int n = 6, p = net.n_params();  // N < P = 19: the sample form, delta = -A^T (A A^T)^-1 r
  LinearBackend be(n, p, backend());
  GaussNewtonSystem sys(be, net, unit_rows(n), "auto");
  EXPECT_TRUE(sys.sample_form());
  std::vector<double> delta;
  ASSERT_TRUE(sys.solve(1e-14 * sys.max_diagonal(), delta));
  std::vector<double> A = be.A_, rhs(p, 0.0);
  for (int i = 0; i < n; ++i) {  // rhs = b - A theta, then the minimum-norm solution of A delta = rhs
    rhs[i] = be.b_[i];
    for (int q = 0; q < p; ++q) rhs[i] -= be.A_[static_cast<size_t>(i) * p + q] * net.theta[q];
  }
  ASSERT_EQ(LAPACKE_dgels(LAPACK_ROW_MAJOR, 'N', n, p, 1, A.data(), p, rhs.data(), 1), 0);
  for (int q = 0; q < p; ++q) EXPECT_NEAR(delta[q], rhs[q], 1e-8 * (1 + std::fabs(rhs[q])));
}

TEST_P(Lm, SampleAndParameterFormsGiveTheSameStep) {
  const PointSet pts = rows_of("darcy-twoscale", 1.0 / 8, 40);
  const Mlp net = init_mlp({1, 6, 5, 1}, "glorot-normal", 1);  // P = 53 > N = 42 and both forms are possible
  auto be = backend();
  GaussNewtonSystem s(*be, net, pts, "sample"), q(*be, net, pts, "parameter");
  EXPECT_NEAR(s.loss(), q.loss(), 1e-14 * s.loss());
  for (double rel : {1e-6, 1e-3, 1.0}) {
    std::vector<double> ds, dq;
    ASSERT_TRUE(s.solve(rel * s.max_diagonal(), ds));
    ASSERT_TRUE(q.solve(rel * s.max_diagonal(), dq));
    double num = 0, den = 0;
    for (size_t i = 0; i < ds.size(); ++i) {
      num += (ds[i] - dq[i]) * (ds[i] - dq[i]);
      den += dq[i] * dq[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-8) << "mu/max diag = " << rel;
  }
}

// A system relinearized in place at another network is the system built afresh there, bit for bit (the same path and
// threads), in each form and on the path without J (the 64-wide network on the CPU); another shape is refused.
TEST_P(Lm, RelinearizedSystemIsTheFreshSystem) {
  const PointSet pts = rows_of("darcy-twoscale", 1.0 / 8, 40);
  auto be = backend();
  for (const std::vector<int>& layers : {std::vector<int>{1, 6, 5, 1}, std::vector<int>{1, 64, 64, 1}})
    for (const char* form : {"sample", "parameter"}) {
      const Mlp a = init_mlp(layers, "glorot-normal", 1), b = init_mlp(layers, "glorot-normal", 2);
      GaussNewtonSystem moved(*be, a, pts, form);
      std::vector<double> d0;
      ASSERT_TRUE(moved.solve(1e-3 * moved.max_diagonal(), d0));  // the kept factorization's storage in use
      moved.relinearize(b);
      GaussNewtonSystem fresh(*be, b, pts, form);
      const std::string what = std::to_string(layers[1]) + " wide, " + form + " form";
      EXPECT_EQ(moved.loss(), fresh.loss()) << what;
      EXPECT_EQ(moved.max_diagonal(), fresh.max_diagonal()) << what;
      const double mu = 1e-4 * fresh.max_diagonal();
      std::vector<double> dm, df;
      ASSERT_TRUE(moved.solve(mu, dm)) << what;
      ASSERT_TRUE(fresh.solve(mu, df)) << what;
      EXPECT_EQ(dm, df) << what;
      EXPECT_EQ(moved.predicted_reduction(dm), fresh.predicted_reduction(df)) << what;
    }
  GaussNewtonSystem sys(*be, init_mlp({1, 6, 5, 1}, "glorot-normal", 1), pts, "auto");
  EXPECT_THROW(sys.relinearize(init_mlp({1, 6, 1}, "glorot-normal", 1)), std::invalid_argument);
}

// The sample form where the CPU backend builds the Gram without J (Backend::residuals_sample_gram: the 64-wide
// layers take the factored form) and its products with Jh are the matrix-free ones: the step and predicted
// reduction of the formed J's sample form within rounding. On CUDA the system forms J (the check of the path).
TEST_P(Lm, SampleFormWithoutTheJacobianGivesTheFormedStep) {
  const PointSet pts = rows_of("darcy-twoscale", 1.0 / 8, 40);
  const Mlp net = init_mlp({1, 64, 64, 1}, "glorot-normal", 2);  // P = 4353 > N = 42
  auto be = backend();
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r(n), K(static_cast<size_t>(n) * n), J(static_cast<size_t>(n) * P);
  if (be->name() == "cpu") {
    ASSERT_TRUE(be->residuals_sample_gram(net, pts, pts.w, r, K)) << "the CPU takes the path without J";
  }
  be->residuals_jacobian(net, pts, r, J);
  std::vector<double> rh(n), G(static_cast<size_t>(n) * n, 0.0);
  double loss = 0.0;
  for (int k = 0; k < n; ++k) {
    const double s = std::sqrt(pts.w[k]);
    rh[k] = s * r[k];
    loss += 0.5 * rh[k] * rh[k];
    for (int q = 0; q < P; ++q) J[static_cast<size_t>(k) * P + q] *= s;
  }
  for (int k = 0; k < n; ++k)
    for (int m = 0; m < n; ++m)
      for (int q = 0; q < P; ++q)
        G[static_cast<size_t>(k) * n + m] += J[static_cast<size_t>(k) * P + q] * J[static_cast<size_t>(m) * P + q];
  GaussNewtonSystem s(*be, net, pts, "sample");
  EXPECT_NEAR(s.loss(), loss, 1e-13 * loss);
  for (double rel : {1e-6, 1e-3, 1.0}) {
    const double mu = rel * s.max_diagonal();
    std::vector<double> ds, A = G, y = rh, ref(P, 0.0), v(n, 0.0);
    ASSERT_TRUE(s.solve(mu, ds));
    for (int k = 0; k < n; ++k) A[static_cast<size_t>(k) * n + k] += mu;
    ASSERT_EQ(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', n, 1, A.data(), n, y.data(), 1), 0);
    for (int k = 0; k < n; ++k)
      for (int q = 0; q < P; ++q) ref[q] -= J[static_cast<size_t>(k) * P + q] * y[k];  // -Jh^T y
    double num = 0, den = 0;
    for (int q = 0; q < P; ++q) {
      num += (ds[q] - ref[q]) * (ds[q] - ref[q]);
      den += ref[q] * ref[q];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-8) << "mu/max diag = " << rel;
    double rv = 0.0, vv = 0.0;  // L - 1/2 |rh + Jh delta|^2
    for (int k = 0; k < n; ++k) {
      for (int q = 0; q < P; ++q) v[k] += J[static_cast<size_t>(k) * P + q] * ds[q];
      rv += rh[k] * v[k];
      vv += v[k] * v[k];
    }
    EXPECT_NEAR(s.predicted_reduction(ds), -rv - 0.5 * vv, 1e-10 * std::fabs(rv + 0.5 * vv)) << "mu/max diag = " << rel;
  }
}

TEST_P(Lm, LossDecreasesMonotonicallyOverAcceptedSteps) {
  const PointSet pts = rows_of("poisson-twoscale", 1.0 / 4, 64);
  Mlp net = init_mlp({1, 10, 10, 1}, "glorot-normal", 3);
  auto be = backend();
  const double start = loss_of(*be, net, pts);
  LmConfig cfg;
  cfg.max_iter = 60;
  cfg.cond_every = 20;
  const LmResult r = minimize_lm(*be, net, pts, cfg);
  EXPECT_GT(r.accepted, 10);
  // The session's own loss at the start may differ from loss_of's in the last digits (another summation order on
  // a device backend): the first row is compared with that much room, every later one with none.
  double last = start * (1 + 1e-13);
  for (const auto& row : r.rows) {
    EXPECT_LE(row.loss, last);
    if (row.accepted) {
      EXPECT_LT(row.loss, last);
    }
    last = row.loss;
  }
  EXPECT_LT(r.loss, 0.5 * start);  // a hard start: Glorot init is far from the solution
  EXPECT_NEAR(loss_of(*be, net, pts), r.loss, 1e-12 * r.loss);
  EXPECT_TRUE(std::isfinite(r.rows[19].cond));
}

TEST_P(Lm, DampingRulesMoveMuAsDocumented) {
  const PointSet pts = rows_of("poisson-twoscale", 1.0 / 4, 40);
  auto be = backend();
  for (const char* rule : {"nielsen", "delayed"}) {
    Mlp net = init_mlp({1, 8, 8, 1}, "glorot-normal", 4);
    LmConfig cfg;
    cfg.max_iter = 30;
    cfg.damping = rule;
    const LmResult r = minimize_lm(*be, net, pts, cfg);
    ASSERT_GT(r.accepted, 0) << rule;
    ASSERT_GT(r.rejected, 0) << rule;
    int run = 0;  // rejections in a row before this row
    for (size_t i = 0; i + 1 < r.rows.size(); ++i) {
      const LmRow& a = r.rows[i];
      const double ratio = r.rows[i + 1].mu / a.mu;
      if (a.accepted) {
        const double want =
            std::string(rule) == "delayed" ? 1.0 / 3 : std::max(1.0 / 3, 1 - std::pow(2 * a.rho - 1, 3));
        EXPECT_NEAR(ratio, want, 1e-12) << rule << " row " << i;
        run = 0;
      } else {
        const double want = std::string(rule) == "delayed" ? 2.0 : std::pow(2.0, run + 1);  // Nielsen: 2, 4, 8, ...
        EXPECT_NEAR(ratio, want, 1e-12 * want) << rule << " row " << i;
        ++run;
      }
    }
  }
  LmConfig bad;
  bad.max_iter = 1;
  bad.damping = "fast";
  Mlp net = init_mlp({1, 4, 1}, "glorot-normal", 0);
  EXPECT_THROW(minimize_lm(*be, net, pts, bad), UsageError);
}

TEST_P(Lm, SessionReportsAFailedCholeskyAndGoesOn) {
  const PointSet pts = rows_of("poisson-twoscale", 1.0 / 4, 30);
  const Mlp net = init_mlp({1, 8, 1}, "glorot-normal", 2);
  auto be = backend();
  for (const bool sample : {true, false}) {
    auto s = be->lm_session(net, pts, sample);
    EXPECT_EQ(s->sample_form(), sample);
    EXPECT_NEAR(s->loss(), loss_of(*be, net, pts), 1e-12 * s->loss());
    double l = 0, p = 0;
    EXPECT_FALSE(s->try_step(-10 * s->max_diagonal(), l, p));  // G - 10 max(diag) I is negative definite
    ASSERT_TRUE(s->try_step(1e-3 * s->max_diagonal(), l, p));
    EXPECT_GT(p, 0.0);  // the Gauss-Newton model predicts a decrease
    std::vector<double> theta(net.theta.size());
    s->accept(theta);
    Mlp moved = net;
    moved.theta = theta;
    EXPECT_NEAR(loss_of(*be, moved, pts), l, 1e-12 * l);  // the trial loss is the loss where the session moved
    EXPECT_NEAR(s->loss(), l, 1e-12 * l);
  }
}

}  // namespace
}  // namespace pinntk::testing
