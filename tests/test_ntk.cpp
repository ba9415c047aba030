// NTK identities (DESIGN.md section 3) and the NTK numbers against an independent implementation, on every backend
// (tests/backend_suite.hpp).
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::sqrt, std::log, std::abs, std::pow
#include <cstdio>     // std::printf
#include <limits>     // std::numeric_limits
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string
#include <utility>    // std::pair

#include "common/errors.hpp"     // UsageError
#include "host/ntk.hpp"          // analyze_ntk, gram_spectrum, frobenius_weighted, ntk_chunked, plan_ntk
#include "host/ntk_lanczos.hpp"  // ntk_top_eigen
#include "host/rng.hpp"          // Rng
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

// darcy-ntk: J by forward mode in theta, K, norms and spectra by plain loops and Jacobi; a 1x8 network (N = 32 > P =
// 25: the Gram trick) and a 2x8 one (N <= P = 97: everything from K_s).
TEST_P(Ntk, AnalysisMatchesIndependentImplementation) {
  auto be = backend();
  auto check = [&](const Case& c) {
    const NtkResult res = analyze_ntk(*be, c.net, c.pts, NtkScaling::Lemma, false);
    EXPECT_EQ(res.gram_trick, c.pts.size() > static_cast<int>(c.net.n_params()));
    const int n = c.pts.size(), nc = c.pts.nc, P = c.net.n_params();
    std::vector<std::vector<double>> J(n);
    for (int i = 0; i < n; ++i)
      J[i] =
          reference_jacobian_row(c.net.layers, c.net.theta, c.pts.x[i], c.pts.alpha[i], c.pts.beta[i], c.pts.gamma[i]);
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
  };
  check(small_case(30, {1, 8, 1}));
  check(small_case(30, {1, 8, 8, 1}));
}

// N <= P on a network with wide layers: the CPU builds K_s from each layer's factors without J
// (Backend::residuals_sample_gram); its norms and spectra against those of the formed J (keep_jacobian takes that
// path), including the non-symmetric K's norm with weights that differ between the blocks, and the residuals.
TEST_P(Ntk, WithoutTheJacobianMatchesTheFormedPath) {
  const Case c = small_case(90, {1, 64, 64, 1}, 7.0);  // N = 92 <= P = 4353
  auto be = backend();
  if (be->name() == "cpu") {
    const int n = c.pts.size();
    std::vector<double> r(n), K(static_cast<size_t>(n) * n);
    ASSERT_TRUE(be->residuals_sample_gram(c.net, c.pts, c.pts.w, r, K)) << "the CPU takes the path without J";
  }
  const NtkResult a = analyze_ntk(*be, c.net, c.pts, NtkScaling::Lemma, false);
  const NtkResult f = analyze_ntk(*be, c.net, c.pts, NtkScaling::Lemma, true);  // the formed J
  ASSERT_FALSE(f.jacobian.empty());
  EXPECT_FALSE(a.gram_trick);
  EXPECT_NEAR(a.frobenius_K, f.frobenius_K, tol(1e-12) * f.frobenius_K);
  EXPECT_NEAR(a.frobenius_Kuu, f.frobenius_Kuu, tol(1e-12) * f.frobenius_Kuu);
  EXPECT_NEAR(a.frobenius_Kbb, f.frobenius_Kbb, tol(1e-12) * f.frobenius_Kbb);
  ASSERT_EQ(a.spectrum_K.size(), f.spectrum_K.size());
  ASSERT_EQ(a.spectrum_Kuu.size(), f.spectrum_Kuu.size());
  ASSERT_EQ(a.spectrum_Kbb.size(), f.spectrum_Kbb.size());
  for (size_t i = 0; i < f.spectrum_K.size(); ++i)
    EXPECT_NEAR(a.spectrum_K[i], f.spectrum_K[i], tol(1e-12) * f.spectrum_K[0]);
  for (size_t i = 0; i < f.spectrum_Kuu.size(); ++i)
    EXPECT_NEAR(a.spectrum_Kuu[i], f.spectrum_Kuu[i], tol(1e-12) * f.spectrum_Kuu[0]);
  for (size_t i = 0; i < f.spectrum_Kbb.size(); ++i)
    EXPECT_NEAR(a.spectrum_Kbb[i], f.spectrum_Kbb[i], tol(1e-12) * f.spectrum_Kbb[0]);
  double rs = 0.0;
  for (double v : f.residuals) rs = std::max(rs, std::abs(v));
  for (size_t k = 0; k < f.residuals.size(); ++k) EXPECT_NEAR(a.residuals[k], f.residuals[k], 1e-13 * rs) << k;
}

// kernel_buffer's K = J J^T D of the same wide network (the CPU from K_s without J; weights that differ between
// the blocks) against K from the formed J, entry by entry against sqrt(K_kk K_mm).
TEST_P(Ntk, KernelBufferOfAWideNetworkMatchesTheFormedKernel) {
  const Case c = small_case(90, {1, 64, 64, 1}, 7.0);
  auto be = backend();
  const int n = c.pts.size(), P = c.net.n_params();
  const std::vector<double> d = ntk_row_weights(c.pts, NtkScaling::Lemma);
  std::vector<double> r(n), J(static_cast<size_t>(n) * P);
  be->residuals_jacobian(c.net, c.pts, r, J);
  const std::vector<double> ref = ntk_matrix(*be, J, n, P, d);
  MatrixBuffer b = be->kernel_buffer(c.net, c.pts, d, r);
  if (b.device_type != 1) {
    if (b.release) b.release();
    GTEST_SKIP() << "K in device memory: GpuBackend.KernelBufferIsTheKernelOnTheDevice checks it";
  }
  const double* K = static_cast<const double*>(b.data);
  for (int k = 0; k < n; ++k)
    for (int m = 0; m < n; ++m) {
      const size_t e = b.column_major ? static_cast<size_t>(m) * n + k : static_cast<size_t>(k) * n + m;
      const double bound = 1e-13 *
                           std::sqrt(ref[static_cast<size_t>(k) * n + k] * ref[static_cast<size_t>(m) * n + m]) *
                           std::sqrt(d[m] / d[k]);
      ASSERT_NEAR(K[e], ref[static_cast<size_t>(k) * n + m], bound) << k << ", " << m;
    }
  if (b.release) b.release();
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

// Problems with N > P for the chunked path (DESIGN.md section 8).
Case twoscale_case(const std::string& preset, int nc, int nb, const std::vector<int>& layers) {
  ProblemSpec spec = problem_preset(preset);
  spec.nc = nc;
  spec.nb = nb;
  return {init_mlp(layers, "glorot-normal", 5), build_points(spec)};
}

// Row weights: the Lemma's (constant on each block), none, and one per row (the four-Gram form).
std::vector<std::vector<double>> weight_variants(const PointSet& pts) {
  std::vector<double> rows(pts.size());
  for (int i = 0; i < pts.size(); ++i) rows[i] = 0.5 + 0.37 * ((i * 7919) % 13);
  return {ntk_row_weights(pts, NtkScaling::Lemma), ntk_row_weights(pts, NtkScaling::None), rows};
}

TEST_P(Ntk, ChunkedGramEqualsOneShot) {
  auto be = backend();
  // 1-D: K_uu from G_u, K_bb (2 rows) from its row Gram; 2-D: both blocks longer than P; 2-D small: both blocks
  // shorter than P, N > P.
  const std::vector<Case> cases = {twoscale_case("darcy-twoscale", 200, 2, {1, 6, 6, 1}),
                                   twoscale_case("darcy2d-twoscale", 144, 80, {2, 6, 6, 1}),
                                   twoscale_case("darcy2d-twoscale", 49, 48, {2, 6, 6, 1})};
  for (const Case& c : cases) {
    const int n = c.pts.size();
    ASSERT_GT(n, c.net.n_params());
    for (const std::vector<double>& d : weight_variants(c.pts)) {
      const NtkResult ref = be->ntk(c.net, c.pts, d, false);
      for (const long rows : {1L, 7L, 64L, static_cast<long>(n)}) {
        SCOPED_TRACE("N = " + std::to_string(n) + ", chunk rows " + std::to_string(rows) +
                     (ntk_weights_blockwise(d, c.pts.nc) ? ", blockwise weights" : ", weights per row"));
        const NtkResult got = ntk_chunked(*be, c.net, c.pts, d, rows);
        EXPECT_TRUE(got.gram_trick);
        EXPECT_EQ(got.nc, c.pts.nc);
        EXPECT_EQ(got.nb, c.pts.nb);
        EXPECT_EQ(got.jacobian.size(), 0u);
        EXPECT_NEAR(got.frobenius_K, ref.frobenius_K, tol(1e-13) * ref.frobenius_K);
        EXPECT_NEAR(got.frobenius_Kuu, ref.frobenius_Kuu, tol(1e-13) * ref.frobenius_Kuu);
        EXPECT_NEAR(got.frobenius_Kbb, ref.frobenius_Kbb, tol(1e-13) * ref.frobenius_Kbb);
        for (const auto& [a, b] :
             {std::pair(&got.spectrum_K, &ref.spectrum_K), std::pair(&got.spectrum_Kuu, &ref.spectrum_Kuu),
              std::pair(&got.spectrum_Kbb, &ref.spectrum_Kbb)}) {
          ASSERT_EQ(a->size(), b->size());
          const double top = b->front();
          // The largest relative to themselves, the rest against lambda_max (Weyl: a rounding change of the Gram
          // moves every eigenvalue by about its norm times the rounding).
          for (size_t i = 0; i < a->size(); ++i)
            EXPECT_NEAR((*a)[i], (*b)[i], tol(1e-13) * (i < 3 ? std::abs((*b)[i]) : top)) << i;
        }
        for (int i = 0; i < n; ++i)
          EXPECT_NEAR(got.residuals[i], ref.residuals[i], tol(1e-14) * std::max(1.0, std::abs(ref.residuals[i]))) << i;
      }
    }
  }
}

TEST_P(Ntk, ChunkedFrobeniusIdentityEqualsDirectForm) {
  // ||J J^T D||_F from two P x P Grams (weights constant on each block) or from J^T J and J^T D^2 J (weights per
  // row) against the N x N product.
  const Case c = twoscale_case("darcy-twoscale", 80, 2, {1, 5, 5, 1});
  auto be = backend();
  const int n = c.pts.size(), P = c.net.n_params();
  ASSERT_GT(n, P);
  std::vector<double> r(n), J(static_cast<size_t>(n) * P), G(static_cast<size_t>(n) * n);
  be->residuals_jacobian(c.net, c.pts, r, J);
  be->gram_rows(J, n, P, G);
  for (const std::vector<double>& d : weight_variants(c.pts)) {
    double f2 = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) f2 += (G[i * n + j] * d[j]) * (G[i * n + j] * d[j]);
    EXPECT_NEAR(ntk_chunked(*be, c.net, c.pts, d, 9).frobenius_K, std::sqrt(f2), tol(1e-13) * std::sqrt(f2));
  }
}

TEST_P(Ntk, ChunkedRefusesWhatItCannotDo) {
  auto be = backend();
  const Case small = small_case(20, {1, 6, 1});  // N = 22 > P = 19
  const Case wide = small_case(20, {1, 20, 1});  // N = 22 <= P = 61
  const std::vector<double> d = ntk_row_weights(small.pts, NtkScaling::Lemma);
  EXPECT_THROW(ntk_chunked(*be, wide.net, wide.pts, d, 4), std::invalid_argument);
  EXPECT_THROW(ntk_chunked(*be, small.net, small.pts, d, 0), std::invalid_argument);
  EXPECT_THROW(ntk_chunked(*be, small.net, small.pts, std::vector<double>(3, 1.0), 4), std::invalid_argument);
  EXPECT_THROW(analyze_ntk(*be, small.net, small.pts, NtkScaling::Lemma, true, 4), std::invalid_argument);
  const NtkResult a = analyze_ntk(*be, small.net, small.pts, NtkScaling::Lemma, false, 4);
  EXPECT_TRUE(a.gram_trick);
}

TEST_P(Ntk, PathFollowsTheMemoryBudget) {
  // 4002 rows, P = 481: the one-shot path needs about 69 MB, the chunked one under 8 MiB in chunks of about 1100 rows.
  const long nc = 4000, nb = 2, p = 481;
  const double exact = ntk_memory_bytes(nc + nb, p, false);
  // With room for both: the one-shot path when the weights vary within a block, else the Grams by blocks (less work).
  const NtkPlan roomy = plan_ntk(NtkPath::Auto, nc, nb, p, 1, false, 0, false, static_cast<uint64_t>(2 * exact));
  EXPECT_FALSE(roomy.chunked);
  EXPECT_EQ(roomy.peak_bytes, exact);
  const NtkPlan blocks = plan_ntk(NtkPath::Auto, nc, nb, p, 1, true, 0, false, static_cast<uint64_t>(2 * exact));
  EXPECT_TRUE(blocks.chunked);
  EXPECT_LT(blocks.peak_bytes, exact);
  EXPECT_NE(blocks.reason.find("N > P"), std::string::npos) << blocks.reason;
  EXPECT_FALSE(plan_ntk(NtkPath::Auto, 400, 2, p, 1, true, 0, false, 0).chunked);  // N <= P: the N x N kernel
  const uint64_t budget = 8u << 20;
  const NtkPlan tight = plan_ntk(NtkPath::Auto, nc, nb, p, 1, true, 0, false, budget);
  EXPECT_TRUE(tight.chunked);
  EXPECT_EQ(tight.chunk_rows, ntk_chunk_rows(nc, nb, p, 1, true, static_cast<double>(budget)));
  EXPECT_LE(tight.peak_bytes, static_cast<double>(budget));
  EXPECT_GT(ntk_chunked_memory_bytes(nc, nb, p, 1, tight.chunk_rows + 1, true), static_cast<double>(budget));
  EXPECT_NE(tight.reason.find("chunks of"), std::string::npos) << tight.reason;
  // The cap on the rows per chunk, the rows given, and the refusals.
  EXPECT_EQ(ntk_chunk_rows(100000, nb, p, 1, true, 1e12), kNtkMaxChunkRows);
  EXPECT_EQ(ntk_chunk_rows(nc, nb, p, 1, true, 1e12), nc);
  EXPECT_EQ(plan_ntk(NtkPath::Chunked, nc, nb, p, 1, true, 37, false, 0).chunk_rows, 37);
  EXPECT_EQ(ntk_chunk_rows(nc, nb, p, 1, true, 1024.0), 0);
  EXPECT_THROW(plan_ntk(NtkPath::Chunked, nc, nb, p, 1, true, 0, false, 1024), UsageError);
  EXPECT_THROW(plan_ntk(NtkPath::Chunked, nc, nb, p, 1, true, -3, false, 0), UsageError);
  EXPECT_THROW(plan_ntk(NtkPath::Chunked, 100, 2, p, 1, true, 0, false, 0), UsageError);  // N <= P
  EXPECT_THROW(plan_ntk(NtkPath::Chunked, nc, nb, p, 1, true, 0, true, 0), UsageError);   // --save-matrices
  EXPECT_THROW(plan_ntk(NtkPath::Exact, nc, nb, p, 1, true, 5, false, 0), UsageError);    // --chunk-rows
  EXPECT_THROW(plan_ntk(NtkPath::Exact, nc, nb, p, 1, true, 0, false, budget), UsageError);
  // Four Grams when the weights differ within a block.
  EXPECT_GT(ntk_chunked_memory_bytes(nc, nb, p, 1, 64, false), ntk_chunked_memory_bytes(nc, nb, p, 1, 64, true));
  // Rows with their own directions hold dim x dim numbers more each: 8 dim^2 bytes a row of the points (and of a
  // chunk's rows where the chunk sets the peak).
  const double more =
      ntk_chunked_memory_bytes(nc, nb, p, 3, 64, true, true) - ntk_chunked_memory_bytes(nc, nb, p, 3, 64, true);
  EXPECT_GE(more, 8.0 * 9 * (nc + nb));
  // The rows' share is what remains with no parameters and no chunk.
  EXPECT_EQ(ntk_rows_bytes(nc, nb, 3, true), ntk_chunked_memory_bytes(nc, nb, 0, 3, 0, true, true));
  EXPECT_GT(ntk_rows_bytes(nc, nb, 3, true), ntk_rows_bytes(nc, nb, 3, false));
  EXPECT_LE(more, 8.0 * 9 * (nc + nb + 64));
}

// The matrix-free products (DESIGN.md section 8) against the formed Jacobian on a 1-D, a 2-D and a 3-D problem, and
// the identity <J u, y> = <u, J^T y>. Bounds by norms (a product's rounding is its terms' magnitude times the unit
// roundoff, whatever their cancellation): a row of J u against |J_i| |u|, J^T y against |J|_F |y|.
TEST_P(Ntk, MatrixFreeProductsMatchTheFormedJacobian) {
  auto be = backend();
  const std::vector<Case> cases = {twoscale_case("darcy-twoscale", 50, 2, {1, 7, 5, 1}),
                                   twoscale_case("darcy2d-twoscale", 49, 48, {2, 6, 5, 1}),
                                   twoscale_case("poisson3d-sines", 64, 54, {3, 5, 4, 1})};
  for (const Case& c : cases) {
    const int n = c.pts.size(), P = c.net.n_params();
    SCOPED_TRACE("dim " + std::to_string(c.pts.dim) + ", N = " + std::to_string(n) + ", P = " + std::to_string(P));
    std::vector<double> r(n), J(static_cast<size_t>(n) * P);
    be->residuals_jacobian(c.net, c.pts, r, J);
    Rng rng(31 + c.pts.dim);
    std::vector<double> y(n), u(P);
    for (double& e : y) e = rng.normal();
    for (double& e : u) e = rng.normal();
    std::vector<double> jty(P), ju(n);
    be->jacobian_transpose_times(c.net, c.pts, y, jty);
    be->jacobian_times(c.net, c.pts, u, ju);

    std::vector<double> jty_ref(P, 0.0);
    double norm_J2 = 0.0, norm_y2 = 0.0, norm_u2 = 0.0;
    for (const double e : u) norm_u2 += e * e;
    for (int i = 0; i < n; ++i) {
      double ju_ref = 0.0, row2 = 0.0;
      for (int q = 0; q < P; ++q) {
        const double Jiq = J[static_cast<size_t>(i) * P + q];
        ju_ref += Jiq * u[q];
        row2 += Jiq * Jiq;
        jty_ref[q] += Jiq * y[i];
      }
      norm_J2 += row2;
      norm_y2 += y[i] * y[i];
      EXPECT_NEAR(ju[i], ju_ref, tol(1e-13) * std::sqrt(row2 * norm_u2)) << "row " << i;
    }
    const double bound_y = std::sqrt(norm_J2 * norm_y2);
    for (int q = 0; q < P; ++q) EXPECT_NEAR(jty[q], jty_ref[q], tol(1e-13) * bound_y) << "parameter " << q;
    double ju_y = 0.0, u_jty = 0.0;
    for (int i = 0; i < n; ++i) ju_y += ju[i] * y[i];
    for (int q = 0; q < P; ++q) u_jty += u[q] * jty[q];
    EXPECT_NEAR(ju_y, u_jty, tol(1e-13) * bound_y * std::sqrt(norm_u2));
  }
}

// Lanczos on the matrix-free products (issue 14 item 3) against syevd's spectrum of the formed kernel: the N x N
// operator K_s when N <= P, the P x P Gram when N > P; eigenvectors by their residuals on the formed Jh; every
// eigenvalue (k = the rank: the dense fallback); k outside [1, min(N, P)] refused.
TEST_P(Ntk, LanczosTopEigenvaluesMatchSyevd) {
  auto be = backend();
  const std::vector<Case> cases = {twoscale_case("darcy-twoscale", 30, 2, {1, 8, 8, 1}),
                                   twoscale_case("darcy-twoscale", 200, 2, {1, 6, 6, 1})};
  const int k = 5;
  for (const Case& c : cases) {
    const int n = c.pts.size(), P = c.net.n_params(), rank = std::min(n, P);
    SCOPED_TRACE("N = " + std::to_string(n) + ", P = " + std::to_string(P));
    const std::vector<double> d = ntk_row_weights(c.pts, NtkScaling::Lemma);
    const NtkResult ref = be->ntk(c.net, c.pts, d, true);
    const TopEigen t = ntk_top_eigen(*be, c.net, c.pts, d, k, true);
    EXPECT_EQ(t.dim, n <= P ? n : P);
    EXPECT_EQ(t.gram, n > P);
    EXPECT_EQ(t.converged, k);
    EXPECT_GT(t.products, 0);
    ASSERT_EQ(t.values.size(), static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) EXPECT_NEAR(t.values[i], ref.spectrum_K[i], tol(1e-10) * ref.spectrum_K[i]) << i;
    // Each vector: unit norm, A v = lambda v on the formed operator (Jh Jh^T or Jh^T Jh), Jh = D^1/2 J.
    const int dim = t.dim;
    ASSERT_EQ(t.vectors.size(), static_cast<size_t>(dim) * k);
    // Jh x (transposed: false, x of P) or Jh^T x (true, x of N).
    const auto times = [&](const std::vector<double>& x, bool transposed) {
      std::vector<double> y(transposed ? P : n, 0.0);
      for (int i = 0; i < n; ++i)
        for (int q = 0; q < P; ++q) {
          const double Jh = std::sqrt(d[i]) * ref.jacobian[static_cast<size_t>(i) * P + q];
          if (transposed)
            y[q] += Jh * x[i];
          else
            y[i] += Jh * x[q];
        }
      return y;
    };
    for (int e = 0; e < k; ++e) {
      std::vector<double> v(dim);
      double norm2 = 0.0;
      for (int q = 0; q < dim; ++q) norm2 += (v[q] = t.vectors[static_cast<size_t>(q) * k + e]) * v[q];
      EXPECT_NEAR(norm2, 1.0, tol(1e-12));
      const std::vector<double> Av = times(times(v, !t.gram), t.gram);
      double res2 = 0.0;
      for (int q = 0; q < dim; ++q) res2 += (Av[q] - t.values[e] * v[q]) * (Av[q] - t.values[e] * v[q]);
      EXPECT_LT(std::sqrt(res2), tol(1e-9) * t.values.front()) << "vector " << e;
    }
    // Every eigenvalue: against syevd to rounding of the largest.
    const TopEigen all = ntk_top_eigen(*be, c.net, c.pts, d, rank, false);
    ASSERT_EQ(all.values.size(), static_cast<size_t>(rank));
    for (int i = 0; i < rank; ++i)
      EXPECT_NEAR(all.values[i], ref.spectrum_K[i], tol(1e-10) * ref.spectrum_K.front()) << i;
    for (const int bad : {0, -1, rank + 1}) {
      try {
        ntk_top_eigen(*be, c.net, c.pts, d, bad, false);
        ADD_FAILURE() << "k = " << bad << " accepted";
      } catch (const UsageError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("min(N, P) = " + std::to_string(rank)), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      }
    }
  }
}

// The spectral density by stochastic Lanczos quadrature (issue 14 item 4) against the exact spectrum binned on the
// same edges: N = 62 <= P = 97 (K_s) and N = 202 > P (the Gram, with N - P known zeros). With steps = dim every
// probe's measure is reproduced (full Lanczos), so the only error left is the probe average: for Rademacher probes
// the cumulative count below an edge, a projector's trace c, has standard deviation at most sqrt(2 c / probes)
// <= sqrt(2 dim / 32) (2.0 for dim 62, 2.5 for 97), and 0.15 N (9.3 and 30) is over 4.5 of those; the total mass is
// N to rounding (each probe's weights sum to 1). Eigenvalues below about 1e-13 lambda_max are rounding-level in both
// methods and may fall on either side of the lowest edges: the comparison starts 12 decades below lambda_max (in
// fp32, 5).
TEST_P(Ntk, SpectralDensityMatchesTheExactSpectrumWithinItsResolution) {
  auto be = backend();
  const std::vector<Case> cases = {twoscale_case("darcy-twoscale", 60, 2, {1, 8, 8, 1}),
                                   twoscale_case("darcy-twoscale", 200, 2, {1, 8, 8, 1})};
  for (const Case& c : cases) {
    const int n = c.pts.size(), P = c.net.n_params(), dim = std::min(n, P);
    SCOPED_TRACE("N = " + std::to_string(n) + ", P = " + std::to_string(P));
    const std::vector<double> d = ntk_row_weights(c.pts, NtkScaling::Lemma);
    const NtkResult ref = be->ntk(c.net, c.pts, d, false);
    DensityConfig cfg;
    cfg.probes = 32;
    cfg.steps = dim + 5;  // capped at dim
    cfg.bins = 32;
    cfg.seed = 11;
    const NtkDensity r = ntk_spectral_density(*be, c.net, c.pts, d, cfg);
    EXPECT_EQ(r.dim, dim);
    EXPECT_EQ(r.gram, n > P);
    EXPECT_EQ(r.steps, dim);
    EXPECT_TRUE(r.steps_capped);
    EXPECT_EQ(r.zeros, n - dim);
    EXPECT_LE(r.products, static_cast<long>(cfg.probes) * dim);
    ASSERT_EQ(r.edges.size(), static_cast<size_t>(cfg.bins + 1));
    ASSERT_EQ(r.counts.size(), static_cast<size_t>(cfg.bins));
    EXPECT_NEAR(r.lambda_max, ref.spectrum_K.front(), tol(1e-10) * ref.spectrum_K.front());
    EXPECT_NEAR(r.edges.back() - r.edges.front(), cfg.decades, 1e-12);
    double total = r.below, weights = 0.0;
    for (const double m : r.counts) {
      EXPECT_GE(m, 0.0);
      total += m;
    }
    for (const double w : r.weights) weights += w;
    EXPECT_NEAR(total, n, 1e-9 * n);
    EXPECT_NEAR(weights, n, 1e-9 * n);
    EXPECT_GT(r.counts.back(), 0.0);  // the bin of lambda_max
    EXPECT_GE(r.below, r.zeros);
    // Cumulative counts below each edge from 12 decades under lambda_max up (5 in fp32, whose rounding level,
    // unit roundoff times lambda_max, lies 7 decades down: K's and the probes' eigenvalues below 1e-5 lambda_max
    // move by rounding between the methods).
    const double lo_cmp = r.edges.back() - (GetParam().rtol_floor > 0.0 ? 5.0 : 12.0);
    double slq = r.below, worst = 0.0;
    for (int b = 0; b <= cfg.bins; ++b) {
      if (b > 0) slq += r.counts[b - 1];
      if (b == cfg.bins || r.edges[b] < lo_cmp) continue;  // the top edge: everything, checked above
      const double edge = std::pow(10.0, r.edges[b]);
      double exact = 0.0;
      for (const double e : ref.spectrum_K) exact += e < edge ? 1.0 : 0.0;
      worst = std::max(worst, std::abs(slq - exact));
      EXPECT_LE(std::abs(slq - exact), 0.15 * n) << "edge 10^" << r.edges[b] << ": SLQ " << slq << ", exact " << exact;
    }
    std::printf("[ density ] N=%d P=%d dim=%d: max |CDF_slq - CDF_exact| = %.2f (%.1f%% of N), %d breakdowns\n", n, P,
                dim, worst, 100.0 * worst / n, r.breakdowns);
  }
}

TEST_P(Ntk, SpectralDensityRefusesBadSettings) {
  auto be = backend();
  const Case c = twoscale_case("darcy-twoscale", 30, 2, {1, 6, 6, 1});
  const std::vector<double> d = ntk_row_weights(c.pts, NtkScaling::Lemma);
  DensityConfig ok;
  ok.probes = 2;
  ok.steps = 5;
  EXPECT_NO_THROW(ntk_spectral_density(*be, c.net, c.pts, d, ok));
  std::vector<DensityConfig> bad(6, ok);
  bad[0].probes = 0;
  bad[1].steps = 0;
  bad[2].bins = 0;
  bad[3].probes = -4;
  bad[4].decades = 0.0;
  bad[5].decades = std::numeric_limits<double>::infinity();
  for (const DensityConfig& cfg : bad) {
    try {
      ntk_spectral_density(*be, c.net, c.pts, d, cfg);
      ADD_FAILURE() << "accepted probes " << cfg.probes << " steps " << cfg.steps << " bins " << cfg.bins << " decades "
                    << cfg.decades;
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
  std::vector<double> short_d(d.begin(), d.end() - 1), negative = d;
  negative[3] = -1.0;
  EXPECT_THROW(ntk_spectral_density(*be, c.net, c.pts, short_d, ok), std::invalid_argument);
  EXPECT_THROW(ntk_spectral_density(*be, c.net, c.pts, negative, ok), std::invalid_argument);
}

}  // namespace
}  // namespace pinntk::testing
