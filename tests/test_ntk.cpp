// NTK identities (DESIGN.md section 3) and the NTK numbers against an independent implementation, on every backend
// (tests/backend_suite.hpp).
#include <gtest/gtest.h>

#include <cmath>  // std::sqrt, std::log

#include "host/ntk.hpp"  // analyze_ntk, gram_spectrum, frobenius_weighted
#include "tests/backend_suite.hpp"
#include "tests/reference_mlp.hpp"

namespace pinntk::testing {
namespace {

struct Case {
  Mlp net;
  PointSet pts;
};

Case small_case(int nc, const std::vector<int>& layers, double lambda = 3.0) {
  ProblemSpec spec = problem_preset("darcy-ntk");
  spec.nc = nc;
  spec.eps = 1.0 / 20;
  spec.lambda = lambda;
  Mlp net = init_mlp(layers, "normal", 17);
  return {net, build_points(spec)};
}

TEST_P(Ntk, SymmetricFormIsSymmetricPsdWithTraceOfRowNorms) {
  const Case c = small_case(24, {1, 6, 5, 1});
  auto be = backend();
  const int n = c.pts.size(), P = c.net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * P), Jh(J.size()), K(static_cast<size_t>(n) * n);
  be->residuals_jacobian(c.net, c.pts, r, J);
  double trace_ref = 0.0;
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < P; ++p) {
      Jh[i * P + p] = std::sqrt(c.pts.w[i]) * J[i * P + p];
      trace_ref += Jh[i * P + p] * Jh[i * P + p];
    }
  be->gram_rows(Jh, n, P, K);
  double trace = 0.0;
  for (int i = 0; i < n; ++i) {
    trace += K[i * n + i];
    // Bit for bit: gram_rows computes one triangle (dsyrk, cuBLAS syrk) and copies it to the other, no second
    // rounding path.
    for (int j = 0; j < n; ++j) EXPECT_EQ(K[i * n + j], K[j * n + i]);
  }
  EXPECT_NEAR(trace, trace_ref, tol(1e-13) * trace_ref);
  std::vector<double> eig(n);
  be->symmetric_eigenvalues(K, n, eig);
  double sum = 0.0;
  for (double e : eig) {
    EXPECT_GE(e, -tol(1e-12) * eig.front());
    sum += e;
  }
  EXPECT_NEAR(sum, trace_ref, tol(1e-12) * trace_ref);
  for (int i = 1; i < n; ++i) EXPECT_LE(eig[i], eig[i - 1]);
}

TEST_P(Ntk, GramTrickEqualsDirectForm) {
  // N = 42 rows and P = 31 parameters: the P x P path is taken and must agree with the N x N one.
  const Case c = small_case(40, {1, 5, 3, 1});
  auto be = backend();
  const int n = c.pts.size(), P = c.net.n_params();
  ASSERT_GT(n, P);
  std::vector<double> r(n), J(static_cast<size_t>(n) * P);
  be->residuals_jacobian(c.net, c.pts, r, J);
  const SymmetricSpectrum gram = gram_spectrum(*be, J, n, P);
  EXPECT_TRUE(gram.gram_trick);
  std::vector<double> K(static_cast<size_t>(n) * n), eig(n);
  be->gram_rows(J, n, P, K);
  double f2 = 0.0;
  for (double k : K) f2 += k * k;
  EXPECT_NEAR(gram.frobenius, std::sqrt(f2), tol(1e-13) * std::sqrt(f2));
  be->symmetric_eigenvalues(K, n, eig);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(gram.eigenvalues[i], eig[i], tol(1e-11) * eig[0]) << i;
  // The weighted, non-symmetric Frobenius norm by the two-Gram identity against the direct sum.
  const std::vector<double> d = c.pts.w;
  std::vector<double> G(static_cast<size_t>(n) * n);
  be->gram_rows(J, n, P, G);
  double fw2 = 0.0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) fw2 += (G[i * n + j] * d[j]) * (G[i * n + j] * d[j]);
  EXPECT_NEAR(frobenius_weighted(*be, J, d, n, P), std::sqrt(fw2), tol(1e-12) * std::sqrt(fw2));
}

TEST_P(Ntk, AnalysisMatchesIndependentImplementation) {
  // darcy-ntk with a 1x8 network: J by forward mode in theta, K, norms and spectra by plain loops and Jacobi.
  const Case c = small_case(30, {1, 8, 1});
  auto be = backend();
  const NtkResult res = analyze_ntk(*be, c.net, c.pts, NtkScaling::Lemma, false);
  const int n = c.pts.size(), nc = c.pts.nc, P = c.net.n_params();
  std::vector<std::vector<double>> J(n);
  for (int i = 0; i < n; ++i)
    J[i] = reference_jacobian_row(c.net.layers, c.net.theta, c.pts.x[i], c.pts.alpha[i], c.pts.beta[i], c.pts.gamma[i]);
  auto dot = [&](int i, int j) {
    double s = 0.0;
    for (int p = 0; p < P; ++p) s += J[i][p] * J[j][p];
    return s;
  };
  double fK = 0.0, fuu = 0.0, fbb = 0.0;
  std::vector<double> Ks(static_cast<size_t>(n) * n), Kuu(static_cast<size_t>(nc) * nc);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const double g = dot(i, j);
      const double k = g * c.pts.w[j];  // K = J J^T D (Lemma 3.1)
      fK += k * k;
      Ks[i * n + j] = std::sqrt(c.pts.w[i] * c.pts.w[j]) * g;
      if (i < nc && j < nc) {
        fuu += k * k;
        Kuu[i * nc + j] = k;
      }
      if (i >= nc && j >= nc) fbb += k * k;
    }
  EXPECT_NEAR(res.frobenius_K, std::sqrt(fK), tol(1e-12) * std::sqrt(fK));
  EXPECT_NEAR(res.frobenius_Kuu, std::sqrt(fuu), tol(1e-12) * std::sqrt(fuu));
  EXPECT_NEAR(res.frobenius_Kbb, std::sqrt(fbb), tol(1e-12) * std::sqrt(fbb));
  const std::vector<double> eK = jacobi_eigenvalues(Ks, n);
  const std::vector<double> euu = jacobi_eigenvalues(Kuu, nc);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(res.spectrum_K[i], eK[i], tol(1e-12) * eK[0]);
    EXPECT_NEAR(res.spectrum_Kuu[i], euu[i], tol(1e-12) * euu[0]);
  }
  // The non-symmetric K has the same eigenvalues as K_s: its trace is the sum of them.
  double trace = 0.0;
  for (int i = 0; i < n; ++i) trace += dot(i, i) * c.pts.w[i];
  double sum = 0.0;
  for (double e : res.spectrum_K) sum += e;
  EXPECT_NEAR(sum, trace, tol(1e-12) * trace);
}

TEST_P(Ntk, UnscaledIsLemmaTimesNc) {
  const Case c = small_case(20, {1, 6, 1});
  auto be = backend();
  const NtkResult lemma = analyze_ntk(*be, c.net, c.pts, NtkScaling::Lemma, false);
  const NtkResult none = analyze_ntk(*be, c.net, c.pts, NtkScaling::None, false);
  EXPECT_NEAR(none.frobenius_Kuu, lemma.frobenius_Kuu * 20, tol(1e-12) * none.frobenius_Kuu);
  EXPECT_NEAR(none.spectrum_Kuu[0], lemma.spectrum_Kuu[0] * 20, tol(1e-12) * none.spectrum_Kuu[0]);
}

TEST_P(Ntk, KuuGrowsLikeEpsToTheMinusTwo) {
  // The paper's Section 4.1 claim on a small case: from eps = 1/10 to 1/40, ||K_uu||_F grows by about 16.
  auto be = backend();
  auto frob = [&](double eps) {
    ProblemSpec spec = problem_preset("darcy-ntk");
    spec.eps = eps;
    spec.nc = 256;
    return analyze_ntk(*be, init_mlp({1, 50, 1}, "normal", 0), build_points(spec), NtkScaling::Lemma, false)
        .frobenius_Kuu;
  };
  const double slope = std::log(frob(1.0 / 40) / frob(1.0 / 10)) / std::log(0.25);
  EXPECT_LT(slope, -1.5);
  EXPECT_GT(slope, -2.5);
}

TEST_P(Ntk, SpectraWithTheGramTrickAreInDescendingOrder) {
  // n > p: the Gram trick appends n - p zeros after the computed eigenvalues, whose smallest may round below 0.
  auto be = backend(1);
  const int n = 9, p = 3;
  std::vector<double> A(static_cast<size_t>(n) * p, 0.0);
  for (int i = 0; i < n; ++i) A[static_cast<size_t>(i) * p] = 1.0 + i;  // rank one: two zero eigenvalues of the Gram
  for (int i = 0; i < n; ++i) A[static_cast<size_t>(i) * p + 1] = 1e-9 * (1.0 + i);
  const SymmetricSpectrum s = gram_spectrum(*be, A, n, p);
  ASSERT_TRUE(s.gram_trick);
  for (int i = 1; i < n; ++i) EXPECT_GE(s.eigenvalues[i - 1], s.eigenvalues[i]) << i;
}

}  // namespace
}  // namespace pinntk::testing
