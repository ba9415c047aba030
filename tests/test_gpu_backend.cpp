// The CUDA backend against the CPU backend on random networks and points (label gpu; skipped without a device).
// fp64 agrees to about 1e-12 relative, fp32 to about 1e-5. Kernel outputs are poisoned with NaN before each launch
// so that an unwritten entry fails. Also: sessions saved and resumed, several host threads each driving a backend
// (reproduce --concurrent-trials), and counts past 2^31 in the library calls.
#include <gtest/gtest.h>

#include <cmath>      // std::isfinite, std::sqrt, std::fabs
#include <cstdint>    // int64_t, INT32_MAX, SIZE_MAX
#include <cstring>    // std::memcpy
#include <stdexcept>  // std::length_error, std::invalid_argument
#include <string>     // std::string
#include <thread>     // std::thread
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "common/errors.hpp"       // UsageError
#include "cuda/device_buffer.cuh"  // DeviceBuffer, kLegacyStream
#include "cuda/device_points.hpp"  // to_device, to_host
#include "cuda/eval.hpp"           // launch_eval
#include "cuda/handles.cuh"        // make_blas
#include "cuda/jacobian.hpp"       // launch_jacobian
#include "cuda/linalg.cuh"         // linalg::nrm2, linalg::dot
#include "cuda/tile_plan.hpp"      // make_net_desc, set_tile_points_override, set_weight_staging, set_fast_paths
#include "host/backend.hpp"        // make_cuda_backend, make_cpu_backend
#include "host/ntk.hpp"            // analyze_ntk, ntk_row_weights, ntk_weights_blockwise
#include "host/optim/lm.hpp"       // minimize_lm, LmConfig
#include "host/train.hpp"          // train_adam
#include "tests/gpu_skip.hpp"      // SKIP_WITHOUT_GPU
#include "tests/random_net.hpp"    // random_net: nonzero biases

namespace pinntk {
namespace {

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
  DeviceBuffer<Real> b(n, kLegacyStream);
  if (n > 0) PINNTK_CUDA_CHECK(cudaMemset(b.data(), 0xff, n * sizeof(Real)));  // all-ones bits: NaN
  return b;
}

// The copies of cuda/device_points.hpp, on the legacy stream these single-threaded tests launch on.
template <class Real>
DeviceBuffer<Real> up(const std::vector<double>& v) {
  return cudaimpl::to_device<Real>(v, kLegacyStream);
}

template <class Real>
std::vector<double> down(const DeviceBuffer<Real>& d) {
  std::vector<double> h(d.size());
  cudaimpl::to_host(d, span<double>(h));
  return h;
}

// Kernel level: Jacobian and evaluation against the CPU, outputs poisoned, odd sizes and widths.
template <class Real>
void check_kernels(const std::vector<int>& layers, int nc, double tol) {
  const PointSet pts = points("darcy-twoscale", nc);
  const Mlp net = testing::random_net(layers, static_cast<unsigned>(100 + nc));
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
  for (const auto& layers : std::vector<std::vector<int>>{
           {1, 7, 1}, {1, 33, 5, 1}, {1, 40, 40, 40, 40, 1}, {1, 64, 64, 1}, {1, 128, 128, 1}}) {
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
  for (size_t i = 0; i < a.spectrum_K.size(); ++i)
    EXPECT_NEAR(b.spectrum_K[i], a.spectrum_K[i], 1e-11 * a.spectrum_K[0]);
  for (size_t i = 0; i < a.spectrum_Kuu.size(); ++i)
    EXPECT_NEAR(b.spectrum_Kuu[i], a.spectrum_Kuu[i], 1e-11 * a.spectrum_Kuu[0]);
}

TEST(GpuBackend, NtkMatchesCpu) {
  SKIP_WITHOUT_GPU();
  check_ntk("darcy-ntk", 256, {1, 50, 1});           // N = 258 > P = 151: the Gram trick
  check_ntk("darcy-twoscale", 300, {1, 40, 40, 1});  // N = 302 < P = 1761
}

// The Jacobian left on the device for the Python module's zero-copy arrays: in device memory
// (cudaPointerGetAttributes), equal to the CPU's J, in fp32 too; released after its backend is gone; a full-tensor
// problem's rows refused.
TEST(GpuBackend, JacobianBufferIsTheJacobianOnTheDevice) {
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 301);
  const Mlp net = init_mlp({1, 40, 40, 1}, "glorot-normal", 4);
  const size_t n = pts.size(), P = net.n_params();
  std::vector<double> r_cpu(n), J_cpu(n * P);
  make_cpu_backend(0)->residuals_jacobian(net, pts, r_cpu, J_cpu);
  for (bool single : {false, true}) {
    MatrixBuffer b;
    std::vector<double> r(n);
    {
      auto gpu = make_cuda_backend(single);
      b = gpu->jacobian_buffer(net, pts, r);
    }  // the backend goes first: the buffer stays valid
    ASSERT_EQ(b.device_type, 2);
    EXPECT_EQ(b.rows, n);
    EXPECT_EQ(b.cols, P);
    EXPECT_EQ(b.bits, single ? 32 : 64);
    cudaPointerAttributes attr{};
    PINNTK_CUDA_CHECK(cudaPointerGetAttributes(&attr, b.data));
    EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
    std::vector<double> J(n * P);
    if (single) {
      std::vector<float> f(n * P);
      PINNTK_CUDA_CHECK(cudaMemcpy(f.data(), b.data, f.size() * sizeof(float), cudaMemcpyDeviceToHost));
      for (size_t q = 0; q < f.size(); ++q) J[q] = f[q];
    } else {
      PINNTK_CUDA_CHECK(cudaMemcpy(J.data(), b.data, J.size() * sizeof(double), cudaMemcpyDeviceToHost));
    }
    b.release();
    EXPECT_LT(rel_error(J, J_cpu), single ? 1e-5 : 1e-12) << single;
    EXPECT_LT(rel_error(r, r_cpu), single ? 1e-5 : 1e-12) << single;
  }
  PointSet tensor = points("poisson2d-sines", 16);
  tensor.dirs.assign(static_cast<size_t>(tensor.size()) * 4, 0.0);
  std::vector<double> r(tensor.size());
  EXPECT_THROW(make_cuda_backend(false)->jacobian_buffer(init_mlp({2, 5, 1}, "glorot-normal", 1), tensor, r),
               UsageError);
}

// K = J J^T D left on the device (column-major), fp64 and fp32, against the CPU's row-major K; unequal weights on the
// two blocks make K non-symmetric, so a transposed K would fail.
TEST(GpuBackend, KernelBufferIsTheKernelOnTheDevice) {
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 301);
  const Mlp net = init_mlp({1, 40, 40, 1}, "glorot-normal", 4);
  const size_t n = pts.size();
  std::vector<double> d(pts.w);
  d.back() *= 3.0;  // not constant on the boundary block either
  std::vector<double> r_cpu(n);
  MatrixBuffer c = make_cpu_backend(0)->kernel_buffer(net, pts, d, r_cpu);
  ASSERT_FALSE(c.column_major);
  const std::vector<double> K_cpu(static_cast<const double*>(c.data), static_cast<const double*>(c.data) + n * n);
  c.release();
  for (bool single : {false, true}) {
    std::vector<double> r(n);
    MatrixBuffer b = make_cuda_backend(single)->kernel_buffer(net, pts, d, r);
    ASSERT_EQ(b.device_type, 2);
    ASSERT_TRUE(b.column_major);
    EXPECT_EQ(b.rows, n);
    EXPECT_EQ(b.cols, n);
    std::vector<double> K(n * n);
    if (single) {
      std::vector<float> f(n * n);
      PINNTK_CUDA_CHECK(cudaMemcpy(f.data(), b.data, f.size() * sizeof(float), cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) K[i * n + j] = f[i + j * n];
    } else {
      std::vector<double> g(n * n);
      PINNTK_CUDA_CHECK(cudaMemcpy(g.data(), b.data, g.size() * sizeof(double), cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < n; ++j) K[i * n + j] = g[i + j * n];
    }
    b.release();
    EXPECT_LT(rel_error(K, K_cpu), single ? 1e-5 : 1e-12) << single;
    EXPECT_LT(rel_error(r, r_cpu), single ? 1e-5 : 1e-12) << single;
  }
}

// The CUDA backend's chunked NTK (the rows, the chunk's Jacobian and the Grams on the device) against the host
// default driving the same backend's operations, on N = 3002 > P = 481 in chunks of 700 rows: K_uu from G_u, K_bb
// (2 rows) from its row Gram; weights constant on the blocks (two Grams) and per row (four).
TEST(GpuBackend, ChunkedNtkMatchesHostDefault) {
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 3000);
  const Mlp net = init_mlp({1, 20, 20, 1}, "glorot-normal", 7);
  ASSERT_GT(pts.size(), net.n_params());
  auto gpu = make_cuda_backend(false);
  std::vector<double> per_row = ntk_row_weights(pts, NtkScaling::Lemma);
  for (size_t i = 0; i < per_row.size(); ++i) per_row[i] *= 1.0 + 0.5 * std::sin(0.1 * static_cast<double>(i));
  for (const std::vector<double>& d : {ntk_row_weights(pts, NtkScaling::Lemma), per_row}) {
    SCOPED_TRACE(ntk_weights_blockwise(d, pts.nc) ? "blockwise weights" : "weights per row");
    const NtkResult a = gpu->Backend::ntk_chunked(net, pts, d, 700);  // the host default
    const NtkResult b = gpu->ntk_chunked(net, pts, d, 700);
    EXPECT_TRUE(b.gram_trick);
    EXPECT_EQ(b.nc, a.nc);
    EXPECT_EQ(b.nb, a.nb);
    EXPECT_LT(rel_error(b.residuals, a.residuals), 1e-12);
    EXPECT_NEAR(b.frobenius_K, a.frobenius_K, 1e-12 * a.frobenius_K);
    EXPECT_NEAR(b.frobenius_Kuu, a.frobenius_Kuu, 1e-12 * a.frobenius_Kuu);
    EXPECT_NEAR(b.frobenius_Kbb, a.frobenius_Kbb, 1e-12 * a.frobenius_Kbb);
    for (const auto& [got, ref] : {std::pair(&b.spectrum_K, &a.spectrum_K), std::pair(&b.spectrum_Kuu, &a.spectrum_Kuu),
                                   std::pair(&b.spectrum_Kbb, &a.spectrum_Kbb)}) {
      ASSERT_EQ(got->size(), ref->size());
      // The top ten relative to themselves (with lambda_max's rounding), the rest against lambda_max (Weyl: a
      // rounding change of the Gram moves each eigenvalue by about its norm times the rounding).
      const double top = ref->front();
      for (size_t i = 0; i < ref->size(); ++i)
        EXPECT_NEAR((*got)[i], (*ref)[i], i < 10 ? 1e-12 * std::fabs((*ref)[i]) + 1e-14 * top : 1e-12 * top)
            << "eigenvalue " << i;
    }
  }
}

TEST(GpuBackend, TrainingMatchesCpuStepForStep) {
  SKIP_WITHOUT_GPU();
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = 257;
  const PointSet pts = build_points(spec);
  TrainConfig cfg;
  cfg.schedule = {{30, 1e-3}, {20, 1e-4}};
  cfg.history_every = 10;
  // Adam only: 15000 L-BFGS iterations (the default) would carry the two backends' rounding differences far apart.
  cfg.lbfgs.max_iter = 0;
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
  // cuBLAS and OpenBLAS sum in other orders: a borderline gain ratio may be accepted on one and not the other.
  EXPECT_NEAR(rb.accepted, ra.accepted, 1);
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

TEST(GpuBackend, LevenbergMarquardtPredictedReductionKeepsItsDigits) {
  // At a large damping the step is tiny and the predicted reduction L - 1/2 |rh + Jh delta|^2 is about 5e-8 L: as a
  // difference of the two it keeps no fp32 digit (emulated: 100% off). Formed as -rh.v - 1/2 |v|^2 (v = Jh delta),
  // fp32 agrees with the host's fp64 to about 1e-5 (emulated with J perturbed by 1e-5: 6e-5).
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 200);
  const Mlp net = init_mlp({1, 20, 20, 1}, "glorot-normal", 5);
  auto cpu = make_cpu_backend(0);
  for (const bool single : {false, true}) {
    auto gpu = make_cuda_backend(single);
    for (const bool sample : {true, false}) {
      auto a = cpu->lm_session(net, pts, sample), b = gpu->lm_session(net, pts, sample);
      const double mu = 1e6 * a->max_diagonal();
      double la = 0, pa = 0, lb = 0, pb = 0;
      ASSERT_TRUE(a->try_step(mu, la, pa));
      ASSERT_TRUE(b->try_step(mu, lb, pb));
      ASSERT_GT(pa, 0.0);
      EXPECT_LT(pa, 1e-4 * a->loss());  // the regime where the difference form cancels
      EXPECT_NEAR(pb, pa, (single ? 1e-3 : 1e-9) * pa) << "fp32 " << single << ", sample " << sample;
    }
  }
}

TEST(GpuBackend, ResumedSessionMatchesUninterruptedBitwise) {
  // adam_state / set_adam_state: a new session set to a saved state takes the same steps as the session that went
  // on, bit for bit (same backend, same kernels, fixed reduction order; fp32 values round-trip through double).
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 257);
  const std::vector<int> layers = {1, 20, 20, 1};
  const Mlp net = init_mlp(layers, "glorot-normal", 6);
  const size_t P = net.theta.size();
  for (const bool single : {false, true}) {
    auto gpu = make_cuda_backend(single);
    auto a = gpu->train_session(net, pts, AdamConfig{});
    a->run(17, 1e-3);
    std::vector<double> theta(P), m(P), v(P);
    a->parameters(theta);
    const long t = a->adam_state(m, v);
    EXPECT_EQ(t, 17);
    const double la = a->run(23, 1e-4);
    // Another network and other steps first: set_adam_state must replace all of it.
    auto b = gpu->train_session(init_mlp(layers, "glorot-normal", 99), pts, AdamConfig{});
    b->run(5, 1e-2);
    b->set_adam_state(theta, m, v, t);
    const double lb = b->run(23, 1e-4);
    EXPECT_EQ(lb, la) << "fp32 " << single;
    std::vector<double> ta(P), tb(P), ma(P), mb(P), va(P), vb(P);
    a->parameters(ta);
    b->parameters(tb);
    EXPECT_EQ(tb, ta) << "fp32 " << single;
    EXPECT_EQ(b->adam_state(mb, vb), a->adam_state(ma, va));
    EXPECT_EQ(mb, ma);
    EXPECT_EQ(vb, va);
  }
}

TEST(GpuBackend, SessionLossGradientAtMatchesCpu) {
  // L-BFGS's call: the session's parameters become theta, and the loss and gradient there match the CPU backend's.
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("poisson-twoscale", 333);
  const std::vector<int> layers = {1, 40, 40, 40, 40, 1};
  const Mlp start = init_mlp(layers, "glorot-normal", 8), at = init_mlp(layers, "glorot-normal", 21);
  const size_t P = start.theta.size();
  std::vector<double> r(pts.size()), g(P);
  const double loss = make_cpu_backend(0)->loss_gradient(at, pts, r, g);
  for (const bool single : {false, true}) {
    const double tol = single ? 1e-4 : 1e-12;
    auto gpu = make_cuda_backend(single);
    auto s = gpu->train_session(start, pts, AdamConfig{});
    s->run(3, 1e-3);  // moves the parameters and the moments away from `at`
    std::vector<double> gg(P, NAN), th(P);
    const double lg = s->loss_gradient_at(at.theta, gg);
    EXPECT_NEAR(lg, loss, tol * loss) << "fp32 " << single;
    EXPECT_LT(rel_error(gg, g), tol) << "fp32 " << single;
    s->parameters(th);
    if (single) {
      EXPECT_LT(rel_error(th, at.theta), 1e-7);  // theta rounded to fp32
    } else {
      EXPECT_EQ(th, at.theta);
    }
    EXPECT_TRUE(std::isfinite(s->run(2, 1e-4)));  // and Adam goes on from there
  }
}

TEST(GpuBackend, FailedSessionLeavesBackendUsable) {
  // A session whose construction throws (one point of a 1x3000 network needs more shared memory than a block has)
  // releases what it allocated, and the backend goes on working.
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 64);
  auto gpu = make_cuda_backend(false);
  EXPECT_THROW(gpu->train_session(init_mlp({1, 3000, 1}, "glorot-normal", 1), pts, AdamConfig{}), UsageError);
  auto s = gpu->train_session(init_mlp({1, 10, 1}, "glorot-normal", 1), pts, AdamConfig{});
  EXPECT_TRUE(std::isfinite(s->run(5, 1e-3)));
}

// What one fig4-like trial leaves: losses, parameters, values and gradients along the way.
std::vector<double> concurrent_trial(const PointSet& pts, int seed) {
  const std::vector<int> layers = {1, 16, 16, 1};
  const Mlp net = init_mlp(layers, "glorot-normal", static_cast<uint64_t>(seed));
  const std::vector<double> x = linspace(-3.0, 3.0, 101);
  std::vector<double> out, u(x.size()), du(x.size()), d2u(x.size()), theta(net.theta.size()), g(net.theta.size());
  auto be = make_cuda_backend(false);                  // stream, pool and handles made and destroyed
  auto s = be->train_session(net, pts, AdamConfig{});  // a graph captured
  for (int k = 0; k < 4; ++k) {
    out.push_back(s->run(10, 1e-3));  // graph launches
    s->evaluate(x, u, du, d2u);       // allocations, copies and frees
    out.insert(out.end(), u.begin(), u.end());
  }
  s->parameters(theta);
  out.push_back(s->loss_gradient_at(theta, g));  // L-BFGS's path
  out.insert(out.end(), g.begin(), g.end());
  Mlp moved = net;
  moved.theta = theta;
  std::vector<double> r(pts.size());
  out.push_back(be->loss_gradient(moved, pts, r, g));  // the backend's own buffers
  out.insert(out.end(), g.begin(), g.end());
  return out;
}

TEST(GpuConcurrency, TwoThreadsTrainingAtOnceMatchOneAfterTheOther) {
  // reproduce --concurrent-trials: host threads each drive their own backend. Backends and sessions are made and
  // destroyed trial after trial, so that one thread's graph capture meets the other's copies, frees and handle
  // destruction; every result must equal that of the same trials run one after the other, bit for bit.
  SKIP_WITHOUT_GPU();
  const PointSet pts = points("darcy-twoscale", 129);
  const int per_thread = 6;
  std::vector<std::vector<double>> alone(2 * per_thread), together(2 * per_thread);
  for (int t = 0; t < 2 * per_thread; ++t) alone[t] = concurrent_trial(pts, t);
  std::vector<std::string> errors(2);
  std::vector<std::thread> pool;
  for (int w = 0; w < 2; ++w)
    pool.emplace_back([&, w] {
      try {
        for (int t = w * per_thread; t < (w + 1) * per_thread; ++t) together[t] = concurrent_trial(pts, t);
      } catch (const std::exception& e) {
        errors[w] = e.what();
      }
    });
  for (auto& th : pool) th.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  for (int t = 0; t < 2 * per_thread; ++t) EXPECT_EQ(together[t], alone[t]) << "trial " << t;
}

// ---- sizes past 2^31 ----

TEST(GpuSizes, CountsThatWouldWrapAreRefused) {
  // Host-side checks, no device needed: a network whose parameter count overflows the kernels' int, a buffer
  // whose byte count overflows size_t, an upload of the wrong length.
  EXPECT_THROW(make_net_desc({1, 50000, 50000, 1}), std::length_error);
  EXPECT_THROW(DeviceBuffer<double>(SIZE_MAX / 4, kLegacyStream), std::length_error);
  DeviceBuffer<double> empty;
  EXPECT_THROW(empty.upload(std::vector<double>(3, 1.0)), std::invalid_argument);
}

// nrm2 and dot over the m^2 entries of an m x m Gram with m = 46341, past 2^31: the count an int would wrap
// (negative: cuBLAS returns 0 and frobenius_K silently became 0).
template <class Real>
void check_counts_past_int(const unsigned char byte) {
  const int64_t m = 46341, count = m * m;
  ASSERT_GT(count, int64_t(INT32_MAX));
  size_t free_bytes = 0, total = 0;
  PINNTK_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  if (free_bytes < static_cast<size_t>(count) * sizeof(Real) + (size_t(1) << 30))
    GTEST_SKIP() << "needs " << count * sizeof(Real) / (1 << 20) << " MiB of free device memory";
  DeviceBuffer<Real> x(static_cast<size_t>(count), kLegacyStream);
  PINNTK_CUDA_CHECK(cudaMemset(x.data(), byte, x.size() * sizeof(Real)));
  PINNTK_CUDA_CHECK(cudaDeviceSynchronize());
  Real c = 0;
  std::memcpy(&c, std::vector<unsigned char>(sizeof(Real), byte).data(), sizeof(Real));  // every entry's value
  const cudaimpl::UniqueBlas h = cudaimpl::make_blas(nullptr);
  Real nrm = 0, dot = 0;
  PINNTK_CUBLAS_CHECK(linalg::nrm2(h.get(), count, x.data(), &nrm));
  PINNTK_CUBLAS_CHECK(linalg::dot(h.get(), count, x.data(), x.data(), &dot));
  const double want = std::fabs(double(c)) * std::sqrt(double(count));
  // Loose: 2^31 equal fp32 terms add up with a systematic rounding bias; a wrapped count is off by 100%.
  EXPECT_NEAR(double(nrm), want, 1e-2 * want);
  EXPECT_NEAR(double(dot), want * want, 1e-2 * want * want);
}

TEST(GpuSizes, Nrm2AndDotCountPast2To31Entries) {
  SKIP_WITHOUT_GPU();
  check_counts_past_int<float>(0x3f);   // 0x3f3f3f3f: 0.747 (8.6 GB)
  check_counts_past_int<double>(0x3f);  // 0x3f3f...: 4.8e-4 (17.2 GB)
}

}  // namespace
}  // namespace pinntk
