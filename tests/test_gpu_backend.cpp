// The CUDA backend against the CPU backend on random networks and points (label gpu; skipped without a device).
// fp64 agrees to about 1e-12 relative, fp32 to about 1e-5. Kernel outputs are poisoned with NaN before each launch
// so that an unwritten entry fails.
#include <gtest/gtest.h>

#include <cmath>  // std::isfinite, std::sqrt

#include "cuda/device_buffer.cuh"  // DeviceBuffer
#include "cuda/mlp_tile.hpp"       // launch_jacobian, launch_eval
#include "host/backend.hpp"        // make_cuda_backend, make_cpu_backend
#include "host/ntk.hpp"            // analyze_ntk
#include "host/optim/lm.hpp"       // minimize_lm, LmConfig
#include "host/train.hpp"          // train_adam

namespace pinntk {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device answers"

double rel_error(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1.0));
}

PointSet points(const char* problem, int nc) {
  ProblemSpec spec = problem_preset(problem);
  spec.nc = nc;
  return build_points(spec);
}

template <class Real>
DeviceBuffer<Real> poisoned(size_t n) {
  DeviceBuffer<Real> b(n);
  if (n > 0) PINNTK_CUDA_CHECK(cudaMemset(b.data(), 0xff, n * sizeof(Real)));  // all-ones bits: NaN
  return b;
}

template <class Real>
DeviceBuffer<Real> up(const std::vector<double>& v) {
  return DeviceBuffer<Real>(std::vector<Real>(v.begin(), v.end()));
}

template <class Real>
std::vector<double> down(const DeviceBuffer<Real>& d) {
  std::vector<Real> h;
  d.download(h);
  return std::vector<double>(h.begin(), h.end());
}

// Kernel level: Jacobian and evaluation against the CPU, outputs poisoned, odd sizes and widths.
template <class Real>
void check_kernels(const std::vector<int>& layers, int nc, double tol) {
  const PointSet pts = points("darcy-twoscale", nc);
  const Mlp net = init_mlp(layers, "glorot-normal", 100 + nc);
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * P), u(n), du(n), d2u(n);
  auto cpu = make_cpu_backend(0);
  cpu->residuals_jacobian(net, pts, r, J);
  cpu->evaluate(net, pts.x, u, du, d2u);

  const NetDesc nd = make_net_desc(layers);
  DeviceBuffer<Real> th = up<Real>(net.theta), x = up<Real>(pts.x), a = up<Real>(pts.alpha), b = up<Real>(pts.beta),
                     g = up<Real>(pts.gamma), f = up<Real>(pts.f), w = up<Real>(pts.w);
  DeviceBuffer<Real> dr = poisoned<Real>(n), dJ = poisoned<Real>(J.size());
  DeviceBuffer<Real> d0 = poisoned<Real>(n), d1 = poisoned<Real>(n), d2 = poisoned<Real>(n);
  const DeviceRows<Real> rows{x.data(), a.data(), b.data(), g.data(), f.data(), w.data(), n};
  launch_jacobian<Real>(nd, th.data(), rows, dr.data(), dJ.data(), nullptr);
  launch_eval<Real>(nd, th.data(), x.data(), n, d0.data(), d1.data(), d2.data(), nullptr);
  PINNTK_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_LT(rel_error(down(dJ), J), tol) << "J";
  EXPECT_LT(rel_error(down(dr), r), tol) << "r";
  EXPECT_LT(rel_error(down(d0), u), tol) << "u";
  EXPECT_LT(rel_error(down(d1), du), tol) << "u'";
  EXPECT_LT(rel_error(down(d2), d2u), tol) << "u''";
}

TEST(GpuSmall, KernelsMatchCpuFp64) {
  SKIP_WITHOUT_GPU();
  check_kernels<double>({1, 1, 1}, 1, 1e-12);
  check_kernels<double>({1, 7, 1}, 37, 1e-12);
  check_kernels<double>({1, 33, 5, 1}, 301, 1e-12);
}

TEST(GpuKernels, KernelsMatchCpuFp64) {
  SKIP_WITHOUT_GPU();
  check_kernels<double>({1, 512, 1}, 255, 1e-12);
  check_kernels<double>({1, 40, 40, 40, 40, 1}, 1024, 1e-12);
  check_kernels<double>({1, 64, 128, 64, 1}, 777, 1e-12);
  check_kernels<double>({1, 50, 1}, 5000, 1e-12);
}

TEST(GpuKernels, EveryTileSizeWeightPlacementAndPathMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (bool fast : {true, false}) {
    set_fast_paths(fast);
    for (bool staged : {true, false}) {
      set_weight_staging(staged);
      for (int T : {1, 3, 8}) {
        set_tile_points_override(T);
        check_kernels<double>({1, 40, 40, 40, 40, 1}, 301, 1e-12);
        check_kernels<double>({1, 7, 33, 1}, 29, 1e-12);
        check_kernels<float>({1, 40, 40, 40, 40, 1}, 301, 1e-5);
      }
    }
  }
  set_tile_points_override(0);
  set_weight_staging(true);
  set_fast_paths(true);
}

TEST(GpuKernels, EveryFastWidthMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (int w : {40, 50, 60, 64, 128}) {
    check_kernels<double>({1, w, 1}, 97, 1e-12);
    check_kernels<double>({1, w, w, 1}, 131, 1e-12);
    check_kernels<double>({1, w, w, w, 1}, 65, 1e-12);
    check_kernels<float>({1, w, w, 1}, 131, 1e-5);
  }
}

TEST(GpuKernels, KernelsMatchCpuFp32) {
  SKIP_WITHOUT_GPU();
  check_kernels<float>({1, 7, 1}, 37, 1e-5);
  check_kernels<float>({1, 40, 40, 40, 40, 1}, 1024, 1e-5);
  check_kernels<float>({1, 512, 1}, 255, 1e-5);
}

void check_gradient(bool single, double tol) {
  for (const auto& layers :
       std::vector<std::vector<int>>{{1, 7, 1}, {1, 33, 5, 1}, {1, 40, 40, 40, 40, 1}, {1, 64, 64, 1}, {1, 128, 128, 1}}) {
    const PointSet pts = points("poisson-twoscale", 333);
    const Mlp net = init_mlp(layers, "glorot-normal", 8);
    std::vector<double> r(pts.size()), g(net.n_params()), rg(pts.size(), NAN), gg(net.n_params(), NAN);
    const double loss = make_cpu_backend(0)->loss_gradient(net, pts, r, g);
    const double lossg = make_cuda_backend(single)->loss_gradient(net, pts, rg, gg);
    EXPECT_NEAR(lossg, loss, tol * loss);
    EXPECT_LT(rel_error(gg, g), tol);
    EXPECT_LT(rel_error(rg, r), tol);
  }
}

TEST(GpuBackend, GradientMatchesCpu) {
  SKIP_WITHOUT_GPU();
  check_gradient(false, 1e-12);
  check_gradient(true, 1e-4);
}

TEST(GpuBackend, GramsAndEigenvaluesMatchCpu) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_cpu_backend(0);
  auto gpu = make_cuda_backend(false);
  const int n = 45, k = 31;
  std::vector<double> A(n * k);
  for (int i = 0; i < n * k; ++i) A[i] = std::sin(0.37 * i) + 0.1 * std::cos(1.3 * i * i);
  std::vector<double> G1(n * n), G2(n * n, NAN), H1(k * k), H2(k * k, NAN), e1(n), e2(n, NAN);
  cpu->gram_rows(A, n, k, G1);
  gpu->gram_rows(A, n, k, G2);
  cpu->gram_cols(A, n, k, H1);
  gpu->gram_cols(A, n, k, H2);
  EXPECT_LT(rel_error(G2, G1), 1e-13);
  EXPECT_LT(rel_error(H2, H1), 1e-13);
  cpu->symmetric_eigenvalues(G1, n, e1);
  gpu->symmetric_eigenvalues(G2, n, e2);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(e2[i], e1[i], 1e-11 * e1[0]);
}

void check_ntk(const char* problem, int nc, const std::vector<int>& layers) {
  ProblemSpec spec = problem_preset(problem);
  spec.nc = nc;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp(layers, "normal", 4);
  auto cpu = make_cpu_backend(0);
  auto gpu = make_cuda_backend(false);
  const NtkResult a = analyze_ntk(*cpu, net, pts, NtkScaling::Lemma, true);
  const NtkResult b = analyze_ntk(*gpu, net, pts, NtkScaling::Lemma, true);
  EXPECT_EQ(a.gram_trick, b.gram_trick);
  EXPECT_LT(rel_error(b.jacobian, a.jacobian), 1e-12);
  EXPECT_NEAR(b.frobenius_K, a.frobenius_K, 1e-11 * a.frobenius_K);
  EXPECT_NEAR(b.frobenius_Kuu, a.frobenius_Kuu, 1e-11 * a.frobenius_Kuu);
  EXPECT_NEAR(b.frobenius_Kbb, a.frobenius_Kbb, 1e-11 * a.frobenius_Kbb);
  ASSERT_EQ(b.spectrum_K.size(), a.spectrum_K.size());
  for (size_t i = 0; i < a.spectrum_K.size(); ++i) EXPECT_NEAR(b.spectrum_K[i], a.spectrum_K[i], 1e-11 * a.spectrum_K[0]);
  for (size_t i = 0; i < a.spectrum_Kuu.size(); ++i)
    EXPECT_NEAR(b.spectrum_Kuu[i], a.spectrum_Kuu[i], 1e-11 * a.spectrum_Kuu[0]);
}

TEST(GpuBackend, NtkMatchesCpu) {
  SKIP_WITHOUT_GPU();
  check_ntk("darcy-ntk", 256, {1, 50, 1});           // N = 258 > P = 151: the Gram trick
  check_ntk("darcy-twoscale", 300, {1, 40, 40, 1});  // N = 302 < P = 1761
}

TEST(GpuBackend, TrainingMatchesCpuStepForStep) {
  SKIP_WITHOUT_GPU();
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 257;
  const PointSet pts = build_points(spec);
  TrainConfig cfg;
  cfg.schedule = {{30, 1e-3}, {20, 1e-4}};
  cfg.history_every = 10;
  Mlp a = init_mlp({1, 20, 20, 1}, "glorot-normal", 6), b = a;
  auto cpu = make_cpu_backend(0);
  auto gpu = make_cuda_backend(false);
  const TrainResult ra = train_adam(*cpu, a, spec, pts, cfg, nullptr);
  const TrainResult rb = train_adam(*gpu, b, spec, pts, cfg, nullptr);
  ASSERT_EQ(ra.history.size(), rb.history.size());
  for (size_t i = 0; i < ra.history.size(); ++i)
    EXPECT_NEAR(rb.history[i].loss, ra.history[i].loss, 1e-10 * ra.history[i].loss) << "row " << i;
  EXPECT_LT(rel_error(b.theta, a.theta), 1e-10);
}

TEST(GpuBackend, LevenbergMarquardtStepMatchesCpu) {
  // The device session (syrk, potrf/potrs, gemv on the GPU) against the host one (LAPACKE) on the same network.
  SKIP_WITHOUT_GPU();
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 200;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 20, 20, 1}, "glorot-normal", 5);  // P = 481 > N = 202: both forms apply
  auto cpu = make_cpu_backend(0);
  auto gpu = make_cuda_backend(false);
  for (const bool sample : {true, false}) {
    auto a = cpu->lm_session(net, pts, sample), b = gpu->lm_session(net, pts, sample);
    EXPECT_EQ(b->sample_form(), sample);
    EXPECT_NEAR(b->loss(), a->loss(), 1e-12 * a->loss());
    EXPECT_NEAR(b->max_diagonal(), a->max_diagonal(), 1e-12 * a->max_diagonal());
    std::vector<double> ta(net.theta.size()), tb(net.theta.size());
    for (const double rel : {1e-2, 1e-4}) {
      const double mu = rel * a->max_diagonal();
      double la = 0, pa = 0, lb = 0, pb = 0;
      ASSERT_TRUE(a->try_step(mu, la, pa));
      ASSERT_TRUE(b->try_step(mu, lb, pb));
      EXPECT_NEAR(lb, la, 1e-9 * la) << "sample " << sample << ", mu/max diag " << rel;
      EXPECT_NEAR(pb, pa, 1e-9 * std::fabs(pa)) << "sample " << sample << ", mu/max diag " << rel;
      a->accept(ta);
      b->accept(tb);
      std::vector<double> da(ta.size()), db(tb.size());  // the steps taken since the start
      for (size_t q = 0; q < ta.size(); ++q) da[q] = ta[q] - net.theta[q], db[q] = tb[q] - net.theta[q];
      EXPECT_LT(rel_error(db, da), 1e-8) << "sample " << sample << ", mu/max diag " << rel;
      EXPECT_NEAR(b->loss(), a->loss(), 1e-9 * a->loss());
    }
    // The spectrum the condition-number rows come from.
    const std::vector<double> ea = a->gram_eigenvalues(), eb = b->gram_eigenvalues();
    ASSERT_EQ(ea.size(), eb.size());
    EXPECT_NEAR(eb.front(), ea.front(), 1e-10 * ea.front());
  }
  // A negative-definite system: potrf's devInfo reports it and the step fails without throwing.
  auto b = gpu->lm_session(net, pts, true);
  double l = 0, p = 0;
  EXPECT_FALSE(b->try_step(-1e3 * b->max_diagonal(), l, p));
  EXPECT_TRUE(b->try_step(1e-3 * b->max_diagonal(), l, p));  // and the session still works
  // A full LM run on the device descends as the host one does.
  LmConfig cfg;
  cfg.max_iter = 15;
  Mlp na = net, nb = net;
  const LmResult ra = minimize_lm(*cpu, na, pts, cfg), rb = minimize_lm(*gpu, nb, pts, cfg);
  EXPECT_EQ(rb.accepted, ra.accepted);
  EXPECT_NEAR(rb.loss, ra.loss, 1e-6 * ra.loss);
}

TEST(GpuBackend, LevenbergMarquardtInSinglePrecisionDescends) {
  // fp32 on the device (Cholesky of an fp32 Gram): the accepted steps lower the loss, and failed factorizations
  // only raise mu.
  SKIP_WITHOUT_GPU();
  ProblemSpec spec = problem_preset("poisson-twoscale");
  spec.eps = 1.0 / 4;
  spec.nc = 64;
  const PointSet pts = build_points(spec);
  Mlp net = init_mlp({1, 10, 10, 1}, "glorot-normal", 3);
  auto gpu = make_cuda_backend(true);
  const double start = loss_of(*gpu, net, pts);
  LmConfig cfg;
  cfg.max_iter = 40;
  const LmResult r = minimize_lm(*gpu, net, pts, cfg);
  EXPECT_GT(r.accepted, 5);
  EXPECT_LT(r.loss, 0.5 * start);
  double last = start * (1 + 1e-5);
  for (const auto& row : r.rows) {
    EXPECT_LE(row.loss, last);
    last = row.loss;
  }
}

}  // namespace
}  // namespace pinntk
