// pinntk-bench: times the CUDA kernels and library calls with CUDA events (warm-up, then the median of many runs)
// and prints achieved GB/s and GFLOP/s next to the two floors of DESIGN.md section 6: the fewest bytes over the
// measured copy bandwidth, and the flops over the measured matrix-product rate. Also times the CPU backend's Adam
// step and a Levenberg-Marquardt iteration on both backends, Adam on a batch of networks (one launch serving every
// member) against one network, a session's multi-step CUDA graph against one graph launch per step, and an iteration
// of the batched L-BFGS with its vectors on the device against liblbfgsb's on the host. Writes every number to --json.
// As llm.c's dev/cuda: every kernel variant (points per block, weight placement, width path, fused or separate
// reduction and update) is first checked against its reference (the CPU backend, or for the fused variant the
// separate kernels) with |a - b| <= atol + rtol |ref|, and a variant that fails stops the run before any timing.
//
//   pinntk-bench [--json FILE] [--quick] [--cpu-only] [--profile]
// --profile launches only the main kernels once each (4x40: the Jacobian at 65536 points, one Adam step at 1024, one
// step of a batch of ten), for Nsight Compute (benchmarks/profile.sh).
#include <cuda_runtime.h>  // cudaEvent_t

#include <algorithm>          // std::sort, std::max, std::min, std::find
#include <chrono>             // std::chrono
#include <cmath>              // std::fabs
#include <cstdint>            // uint64_t
#include <cstdio>             // std::printf
#include <cstring>            // std::strcmp
#include <fstream>            // std::ofstream
#include <functional>         // std::function
#include <iterator>           // std::begin, std::end
#include <nlohmann/json.hpp>  // nlohmann::json
#include <stdexcept>          // std::runtime_error
#include <string>             // std::string
#include <utility>            // std::pair
#include <vector>             // std::vector

#include "cuda/adam.hpp"                 // launch_adam_update, launch_reduce_gradient_adam
#include "cuda/check.cuh"                // PINNTK_CUDA_CHECK
#include "cuda/device_buffer.cuh"        // DeviceBuffer, kLegacyStream
#include "cuda/device_points.hpp"        // DevicePoints, to_device, enqueue_loss_gradient
#include "cuda/handles.cuh"              // make_blas, make_solver, make_solver_params, make_event
#include "cuda/jacobian.hpp"             // launch_jacobian
#include "cuda/linalg.cuh"               // linalg::syrk, PINNTK_CUBLAS_CHECK
#include "cuda/loss_gradient.hpp"        // GradientWorkspace
#include "cuda/reduce.hpp"               // launch_reduce_gradient
#include "cuda/tile_plan.hpp"            // make_net_desc, set_tile_points_override, set_weight_staging, set_fast_paths
#include "host/backend.hpp"              // make_cuda_backend, make_cpu_backend
#include "host/blas_setup.hpp"           // ensure_fast_openblas_kernels
#include "host/cuda/cuda_backend.hpp"    // kStepsPerGraph, set_multi_step_graphs, set_layerwise_products
#include "host/cuda/cuda_lbfgs.hpp"      // set_fused_two_loop
#include "host/ntk.hpp"                  // ntk_chunked, ntk_row_weights
#include "host/optim/lbfgs.hpp"          // minimize_lbfgs
#include "host/optim/lbfgs_batched.hpp"  // minimize_lbfgs_batched, HostLbfgsOps
#include "host/optim/lm.hpp"             // lm_sample_form
#include "host/problem.hpp"              // problem_preset, build_points

using nlohmann::json;
using namespace pinntk;

namespace {

// Median milliseconds of fn over `reps` runs, each timed with CUDA events, after `warm` untimed runs.
double time_ms(const std::function<void()>& fn, int warm, int reps, cudaStream_t s = nullptr) {
  for (int i = 0; i < warm; ++i) fn();
  const cudaimpl::UniqueEvent a = cudaimpl::make_event(), b = cudaimpl::make_event();
  std::vector<float> t(reps);
  for (int i = 0; i < reps; ++i) {
    PINNTK_CUDA_CHECK(cudaEventRecord(a.get(), s));
    fn();
    PINNTK_CUDA_CHECK(cudaEventRecord(b.get(), s));
    PINNTK_CUDA_CHECK(cudaEventSynchronize(b.get()));
    PINNTK_CUDA_CHECK(cudaEventElapsedTime(&t[i], a.get(), b.get()));
  }
  std::sort(t.begin(), t.end());
  return t[reps / 2];
}

// ---- validation before timing (llm.c dev/cuda) ----

// Tolerances of a device result against its reference: |a - b| <= atol + rtol |ref|, with atol = atol_abs plus a
// fraction atol_of_max of max |ref|.
struct Tol {
  double atol_of_max, rtol, atol_abs = 0.0;
};
template <class Real>
Tol tol_for() {
  return sizeof(Real) == 8 ? Tol{1e-11, 1e-9} : Tol{1e-4, 1e-3};
}

// Throws, naming the variant and the worst entry, when a differs from ref beyond tol; else prints one line.
void validate(const std::string& what, const std::vector<double>& a, const std::vector<double>& ref, Tol tol) {
  if (a.size() != ref.size())
    throw std::runtime_error(what + ": " + std::to_string(a.size()) + " values against " + std::to_string(ref.size()));
  double scale = 0.0;
  for (double v : ref) scale = std::max(scale, std::fabs(v));
  const double atol = tol.atol_abs + tol.atol_of_max * scale;
  size_t worst = 0, bad = 0;
  double worst_excess = -INFINITY;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double bound = atol + tol.rtol * std::fabs(ref[i]), err = std::fabs(a[i] - ref[i]);
    const double excess = std::isfinite(a[i]) ? err - bound : INFINITY;
    if (excess > 0) ++bad;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (bad > 0)
    throw std::runtime_error(what + ": " + std::to_string(bad) + " of " + std::to_string(ref.size()) +
                             " values off the reference, worst at " + std::to_string(worst) + ": " +
                             std::to_string(a[worst]) + " against " + std::to_string(ref[worst]));
  std::printf("  ok: %s matches its reference (%zu values)\n", what.c_str(), ref.size());
}

template <class Real>
std::vector<double> download(const DeviceBuffer<Real>& d) {
  std::vector<Real> h;
  d.download(h);
  return std::vector<double>(h.begin(), h.end());
}

// Rows 0, stride, 2 stride, ... of pts (all of them when stride is 1): the rows a Jacobian is checked at.
PointSet every_nth_row(const PointSet& pts, int stride) {
  PointSet s;
  for (int k = 0; k < pts.size(); k += stride) {
    s.x.push_back(pts.x[k]);
    s.alpha.push_back(pts.alpha[k]);
    s.beta.push_back(pts.beta[k]);
    s.gamma.push_back(pts.gamma[k]);
    s.f.push_back(pts.f[k]);
    s.w.push_back(pts.w[k]);
  }
  s.nc = static_cast<int>(s.x.size());
  return s;
}

// The CPU backend's results for a network and rows: the reference of the tile kernels.
struct Reference {
  Reference(const Mlp& net, const PointSet& pts) : n(pts.size()), stride(std::max(1, pts.size() / 2048)) {
    auto cpu = make_cpu_backend(0);
    const PointSet rows = every_nth_row(pts, stride);
    r.resize(rows.size());
    J.resize(static_cast<size_t>(rows.size()) * net.n_params());
    cpu->residuals_jacobian(net, rows, r, J);
    r_all.resize(n);
    grad.resize(net.n_params());
    loss = cpu->loss_gradient(net, pts, r_all, grad);
  }
  int n, stride;  // J and r at rows 0, stride, 2 stride, ...
  std::vector<double> r, J, r_all, grad;
  double loss = 0;
};

// The Jacobian (n x P, row-major on the device) and residuals at the reference's rows, against the reference.
template <class Real>
void validate_jacobian(const std::string& what, const Reference& ref, const DeviceBuffer<Real>& r,
                       const DeviceBuffer<Real>& J, int P) {
  const std::vector<double> rd = download(r);
  const size_t rows = ref.r.size();
  std::vector<double> rs(rows), Js(rows * P);
  std::vector<Real> row(P);
  for (size_t i = 0; i < rows; ++i) {
    const size_t k = i * ref.stride;
    rs[i] = rd[k];
    PINNTK_CUDA_CHECK(cudaMemcpy(row.data(), J.data() + k * P, P * sizeof(Real), cudaMemcpyDeviceToHost));
    std::copy(row.begin(), row.end(), Js.begin() + i * P);
  }
  validate(what + " residuals", rs, ref.r, tol_for<Real>());
  validate(what + " Jacobian", Js, ref.J, tol_for<Real>());
}

// The loss and gradient of enqueue_loss_gradient against the reference.
template <class Real>
void validate_gradient(const std::string& what, const Reference& ref, const DeviceBuffer<Real>& grad,
                       const DeviceBuffer<double>& loss) {
  validate(what + " gradient", download(grad), ref.grad, tol_for<Real>());
  validate(what + " loss", download(loss), {ref.loss}, tol_for<Real>());
}

double median_host_us(const std::function<void()>& fn, int warm, int reps) {
  for (int i = 0; i < warm; ++i) fn();
  std::vector<double> t(reps);
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  return t[reps / 2];
}

// Flops of one point's forward and reverse pass (DESIGN.md section 2): per layer 6 din dout for the three
// forward dot products, 5 din dout for the Jacobian entries (or their accumulation), 6 din dout for the adjoints.
double flops_per_point(const std::vector<int>& layers) {
  double f = 0.0;
  for (size_t l = 1; l < layers.size(); ++l) {
    const double dd = double(layers[l]) * layers[l - 1];
    f += 6 * dd + 5 * dd + (l > 1 ? 6 * dd : 0.0);
  }
  return f;
}

struct Ceilings {
  double copy_gbs = 0, gemm_gflops64 = 0, gemm_gflops32 = 0;
};

// GFLOP/s of a 4096^3 product C = A A^T through cuBLAS, on sine data (never zeros).
template <class Real>
double gemm_rate(cublasHandle_t h, bool quick) {
  const int n = 4096;
  std::vector<Real> host(size_t(n) * n);
  for (size_t i = 0; i < host.size(); ++i) host[i] = Real(std::sin(0.001 * double(i)));
  DeviceBuffer<Real> A(host, kLegacyStream), C(size_t(n) * n, kLegacyStream);
  const double t = time_ms([&] { PINNTK_CUBLAS_CHECK(linalg::gemm_nt(h, n, A.data(), C.data())); }, 2, quick ? 3 : 10);
  return 2.0 * n * double(n) * n / (t * 1e-3) / 1e9;
}

Ceilings measure_ceilings(bool quick) {
  Ceilings c;
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer<char> a(bytes, kLegacyStream), b(bytes, kLegacyStream);
  PINNTK_CUDA_CHECK(cudaMemset(a.data(), 1, bytes));
  const double ms = time_ms([&] { PINNTK_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice)); },
                            2, quick ? 3 : 10);
  c.copy_gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;  // bytes read plus bytes written
  const cudaimpl::UniqueBlas h = cudaimpl::make_blas(nullptr);
  c.gemm_gflops64 = gemm_rate<double>(h.get(), quick);
  c.gemm_gflops32 = gemm_rate<float>(h.get(), quick);
  return c;
}

// The rows of darcy-twoscale (eps = 1/32) with nc collocation points: the benchmarks' problem.
PointSet darcy_points(int nc) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = nc;
  return build_points(spec);
}

// A network and a problem's rows on the device.
template <class Real>
struct DeviceCase {
  DeviceCase(const Mlp& net, const PointSet& p)
      : th(cudaimpl::to_device<Real>(net.theta, kLegacyStream)), pts(p, kLegacyStream), rows(pts.view()) {}
  DeviceBuffer<Real> th;
  cudaimpl::DevicePoints<Real> pts;
  DeviceRows<Real> rows;
};

struct Case {
  const char* problem;
  std::vector<int> layers;
  int nc;
};

// The reduction of the partials and the Adam update: fused in one kernel (the session's variant) against the
// reduction and the update as two kernels, which are its reference (bit for bit: the same sums, the same update).
template <class Real>
json bench_reduce_adam(const std::string& tag, const GradientWorkspace<Real>& ws, const Real* th,
                       const DeviceRows<Real>& rows, bool quick) {
  const int P = ws.plan().net.P;
  std::vector<double> host_theta(P);
  {
    std::vector<Real> t(P);
    PINNTK_CUDA_CHECK(cudaMemcpy(t.data(), th, P * sizeof(Real), cudaMemcpyDeviceToHost));
    std::copy(t.begin(), t.end(), host_theta.begin());
  }
  const std::vector<double> zeros(P, 0.0);
  const AdamParams adam{0.9, 0.999, 1e-8};
  DeviceBuffer<Real> grad(P, kLegacyStream);
  DeviceBuffer<double> loss(1, kLegacyStream), lr(std::vector<double>{1e-4}, kLegacyStream);
  DeviceBuffer<unsigned long long> step(std::vector<unsigned long long>{1}, kLegacyStream);
  launch_gradient_partials<Real>(th, rows, ws, nullptr, nullptr, nullptr);
  // One update each from the same partials and state: the fused kernel against the two.
  const auto up = [](const std::vector<double>& h) { return cudaimpl::to_device<Real>(h, kLegacyStream); };
  DeviceBuffer<Real> t1 = up(host_theta), m1 = up(zeros), v1 = up(zeros);
  DeviceBuffer<Real> t2 = up(host_theta), m2 = up(zeros), v2 = up(zeros);
  launch_reduce_gradient_adam<Real>(ws, loss.data(), t1.data(), m1.data(), v1.data(), lr.data(), step.data(), adam,
                                    nullptr);
  launch_reduce_gradient<Real>(ws, grad.data(), loss.data(), nullptr);
  launch_adam_update<Real>(P, grad.data(), t2.data(), m2.data(), v2.data(), lr.data(), step.data(), adam, nullptr);
  const Tol exact{0.0, 0.0};
  validate(tag + " fused reduction + Adam: theta", download(t1), download(t2), exact);
  validate(tag + " fused reduction + Adam: m", download(m1), download(m2), exact);
  validate(tag + " fused reduction + Adam: v", download(v1), download(v2), exact);
  const int reps = quick ? 5 : 50;
  const double fused = time_ms(
      [&] {
        launch_reduce_gradient_adam<Real>(ws, loss.data(), t1.data(), m1.data(), v1.data(), lr.data(), step.data(),
                                          adam, nullptr);
      },
      3, reps);
  const double split = time_ms(
      [&] {
        launch_reduce_gradient<Real>(ws, grad.data(), loss.data(), nullptr);
        launch_adam_update<Real>(P, grad.data(), t2.data(), m2.data(), v2.data(), lr.data(), step.data(), adam,
                                 nullptr);
      },
      3, reps);
  std::printf("  reduction + Adam update: fused %.2f us, reduction then update %.2f us\n", fused * 1e3, split * 1e3);
  return {{"fused_us", fused * 1e3}, {"separate_us", split * 1e3}};
}

template <class Real>
json bench_kernels(const Case& c, const Ceilings& ceil, bool quick) {
  const char* prec = sizeof(Real) == 8 ? "fp64" : "fp32";
  ProblemSpec spec = problem_preset(c.problem);
  spec.nc = c.nc;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp(c.layers, "glorot-normal", 1);
  const NetDesc nd = make_net_desc(c.layers);
  const int n = pts.size(), P = nd.P;
  const DeviceCase<Real> dc(net, pts);
  const Real* th = dc.th.data();
  const DeviceRows<Real>& rows = dc.rows;
  DeviceBuffer<Real> r(n, kLegacyStream), J(size_t(n) * P, kLegacyStream);
  const Reference ref(net, pts);
  const int reps = quick ? 5 : 50;
  const double flop = flops_per_point(c.layers) * n;
  const double gemm = sizeof(Real) == 8 ? ceil.gemm_gflops64 : ceil.gemm_gflops32;

  json out;
  out["problem"] = c.problem;
  out["layers"] = c.layers;
  out["n"] = n;
  out["P"] = P;
  out["precision"] = prec;
  const GradientWorkspace<Real> ws(nd, n, kLegacyStream);
  const TilePlan& plan = ws.plan().tiles;
  out["tile"] = {{"points_per_block", plan.T}, {"threads", plan.threads}, {"blocks", plan.blocks},
                 {"smem", plan.smem},          {"staged", plan.staged},   {"width", plan.width}};
  const std::string tag = std::string(c.problem) + " " + json(c.layers).dump() + " N=" + std::to_string(n) + " " + prec;

  launch_jacobian<Real>(nd, th, rows, r.data(), J.data(), nullptr);
  validate_jacobian(tag, ref, r, J, P);
  const double tj = time_ms([&] { launch_jacobian<Real>(nd, th, rows, r.data(), J.data(), nullptr); }, 3, reps);
  const double bytes_j = double(n) * P * sizeof(Real);
  out["jacobian"] = {{"ms", tj},
                     {"GBps", bytes_j / (tj * 1e-3) / 1e9},
                     {"GFLOPs", flop / (tj * 1e-3) / 1e9},
                     {"floor_bytes_ms", bytes_j / (ceil.copy_gbs * 1e9) * 1e3},
                     {"floor_flops_ms", flop / (gemm * 1e9) * 1e3}};

  DeviceBuffer<Real> grad(P, kLegacyStream);
  DeviceBuffer<double> loss(1, kLegacyStream);
  cudaimpl::enqueue_loss_gradient<Real>(th, rows, ws, nullptr, grad.data(), loss.data(), nullptr);
  validate_gradient(tag, ref, grad, loss);
  const double tg =
      time_ms([&] { cudaimpl::enqueue_loss_gradient<Real>(th, rows, ws, nullptr, grad.data(), loss.data(), nullptr); },
              3, reps);
  out["gradient"] = {{"us", tg * 1e3}, {"GFLOPs", flop / (tg * 1e-3) / 1e9}};
  out["reduce_adam"] = bench_reduce_adam<Real>(tag, ws, th, rows, quick);

  const cudaimpl::UniqueBlas h = cudaimpl::make_blas(nullptr);
  DeviceBuffer<Real> K(size_t(n) * n, kLegacyStream);
  const double ts =
      time_ms([&] { PINNTK_CUBLAS_CHECK(linalg::syrk(h.get(), CUBLAS_OP_T, n, P, J.data(), P, K.data(), n)); }, 2,
              quick ? 3 : 20);
  const double flop_syrk = double(n) * n * P;  // n^2 P multiply-adds over the triangle
  out["syrk"] = {
      {"ms", ts}, {"GFLOPs", flop_syrk / (ts * 1e-3) / 1e9}, {"floor_flops_ms", flop_syrk / (gemm * 1e9) * 1e3}};
  if (n <= 4096) {
    const cudaimpl::UniqueSolver sh = cudaimpl::make_solver(nullptr);
    std::vector<double> host(size_t(n) * n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) host[size_t(i) * n + j] = 1.0 / (1.0 + std::abs(i - j)) + (i == j ? n : 0);
    const cudaimpl::UniqueSolverParams params = cudaimpl::make_solver_params();
    DeviceBuffer<Real> A0 = cudaimpl::to_device<Real>(host, kLegacyStream), A(size_t(n) * n, kLegacyStream),
                       W(n, kLegacyStream);
    DeviceBuffer<int> info(1, kLegacyStream);
    size_t device_bytes = 0, host_bytes = 0;
    PINNTK_CUSOLVER_CHECK(
        linalg::syevd_buffer(sh.get(), params.get(), n, A.data(), W.data(), &device_bytes, &host_bytes));
    DeviceBuffer<unsigned char> work(std::max<size_t>(device_bytes, 1), kLegacyStream);
    std::vector<unsigned char> host_work(std::max<size_t>(host_bytes, 1));
    const double te = time_ms(
        [&] {
          PINNTK_CUDA_CHECK(cudaMemcpy(A.data(), A0.data(), A.size() * sizeof(Real), cudaMemcpyDeviceToDevice));
          PINNTK_CUSOLVER_CHECK(linalg::syevd(sh.get(), params.get(), n, A.data(), W.data(), work.data(), device_bytes,
                                              host_work.data(), host_bytes, info.data()));
        },
        1, quick ? 2 : 5);
    out["syevd"] = {{"ms", te}};
  }

  // A whole Adam step through the device-resident session (a CUDA graph per step), over many steps.
  auto be = make_cuda_backend(sizeof(Real) == 4);
  auto session = be->train_session(net, pts, AdamConfig{});
  {
    // Its first steps against the CPU backend's session (in fp32 an Adam step moves a parameter whose gradient
    // is near 0 by up to lr either way: the tolerance allows that much for each step).
    const auto cpu = make_cpu_backend(0);  // outlives its session, which refers to it
    auto cpu_session = cpu->train_session(net, pts, AdamConfig{});
    const double lr = 1e-4;
    session->run(2, lr);
    cpu_session->run(2, lr);
    std::vector<double> a(P), b(P);
    session->parameters(a);
    cpu_session->parameters(b);
    validate(tag + " Adam session, 2 steps", a, b, sizeof(Real) == 8 ? Tol{1e-9, 1e-9} : Tol{0.0, 1e-5, 2 * 2 * lr});
  }
  const long steps = quick ? 200 : 2000;
  session->run(50, 1e-4);
  const double t_step = median_host_us([&] { session->run(steps, 1e-4); }, 1, quick ? 2 : 5) / steps;
  out["adam_step_us"] = t_step;
  std::printf(
      "%-15s %-16s N=%-6d P=%-5d %s | J %8.3f ms %7.0f GB/s %6.0f GF/s (floors %.3f/%.3f ms) | grad %7.1f us | "
      "adam step %6.2f us | syrk %7.3f ms %6.0f GF/s%s\n",
      c.problem, std::string(json(c.layers).dump()).c_str(), n, P, prec, tj, bytes_j / (tj * 1e-3) / 1e9,
      flop / (tj * 1e-3) / 1e9, bytes_j / (ceil.copy_gbs * 1e9) * 1e3, flop / (gemm * 1e9) * 1e3, tg * 1e3, t_step, ts,
      flop_syrk / (ts * 1e-3) / 1e9,
      out.contains("syevd") ? (" | syevd " + std::to_string(out["syevd"]["ms"].get<double>()) + " ms").c_str() : "");
  std::fflush(stdout);
  return out;
}

// The benchmarks' rows (darcy_points) at nc collocation points, on the device and with their CPU reference.
struct SweepCase {
  SweepCase(const Mlp& net, int nc)
      : pts(darcy_points(nc)), n(pts.size()), dc(net, pts), th(dc.th.data()), ref(net, pts) {}
  PointSet pts;
  int n;
  DeviceCase<double> dc;
  const double* th;
  Reference ref;
};

// Points per block against time, for the Jacobian at 65536 points and the fused gradient at 1024 (fp64, 4x40).
// Each variant's result is checked against the CPU backend before it is timed.
json tile_sweep(bool quick) {
  json out = json::array();
  const std::vector<int> layers = {1, 40, 40, 40, 40, 1};
  const Mlp net = init_mlp(layers, "glorot-normal", 1);
  const NetDesc nd = make_net_desc(layers);
  for (int nc : {65536, 1024}) {
    const SweepCase sc(net, nc);
    const int n = sc.n, P = nd.P;
    DeviceBuffer<double> r(n, kLegacyStream), J(nc > 4096 ? size_t(n) * P : 0, kLegacyStream), grad(P, kLegacyStream);
    DeviceBuffer<double> loss(1, kLegacyStream);
    for (int T : {1, 2, 4, 8, 16, 32}) {
      set_tile_points_override(T);
      const TilePlan plan = plan_tiles<double>(nd, n);
      const std::string tag = "tile sweep N=" + std::to_string(n) + " T=" + std::to_string(plan.T);
      double ms = 0;
      if (nc > 4096) {
        launch_jacobian<double>(nd, sc.th, sc.dc.rows, r.data(), J.data(), nullptr);
        validate_jacobian(tag, sc.ref, r, J, P);
        ms = time_ms([&] { launch_jacobian<double>(nd, sc.th, sc.dc.rows, r.data(), J.data(), nullptr); }, 2,
                     quick ? 3 : 20);
      } else {
        const GradientWorkspace<double> ws(nd, n, kLegacyStream);  // planned with this T
        cudaimpl::enqueue_loss_gradient<double>(sc.th, sc.dc.rows, ws, nullptr, grad.data(), loss.data(), nullptr);
        validate_gradient(tag, sc.ref, grad, loss);
        ms = time_ms(
            [&] {
              cudaimpl::enqueue_loss_gradient<double>(sc.th, sc.dc.rows, ws, nullptr, grad.data(), loss.data(),
                                                      nullptr);
            },
            3, quick ? 5 : 50);
      }
      std::printf("tile sweep: %s N=%d T=%d (T used %d, %d blocks): %.4f ms\n", nc > 4096 ? "jacobian" : "gradient", n,
                  T, plan.T, plan.blocks, ms);
      out.push_back({{"kernel", nc > 4096 ? "jacobian" : "gradient"}, {"n", n}, {"T", plan.T}, {"ms", ms}});
    }
    set_tile_points_override(0);
  }
  // Hidden weights staged in shared memory (the default) against read from global memory, and the compile-time
  // width path (the default) against the generic one, at the default tiles.
  for (int nc : {65536, 1024}) {
    const SweepCase sc(net, nc);
    const int n = sc.n, P = nd.P;
    DeviceBuffer<double> r(n, kLegacyStream), J(size_t(n) * P, kLegacyStream), grad(P, kLegacyStream),
        loss(1, kLegacyStream);
    for (int variant = 0; variant < 3; ++variant) {
      const bool staged = variant != 1, fast = variant != 2;
      set_weight_staging(staged);
      set_fast_paths(fast);
      const GradientWorkspace<double> ws(nd, n, kLegacyStream);
      const TilePlan& plan = ws.plan().tiles;
      const std::string tag = std::string("variant N=") + std::to_string(n) + (plan.staged ? " staged" : " global") +
                              (plan.width > 0 ? " width-" + std::to_string(plan.width) : " generic");
      launch_jacobian<double>(nd, sc.th, sc.dc.rows, r.data(), J.data(), nullptr);
      validate_jacobian(tag, sc.ref, r, J, P);
      cudaimpl::enqueue_loss_gradient<double>(sc.th, sc.dc.rows, ws, nullptr, grad.data(), loss.data(), nullptr);
      validate_gradient(tag, sc.ref, grad, loss);
      const double tj = time_ms([&] { launch_jacobian<double>(nd, sc.th, sc.dc.rows, r.data(), J.data(), nullptr); }, 2,
                                quick ? 3 : 20);
      const double tg = time_ms(
          [&] {
            cudaimpl::enqueue_loss_gradient<double>(sc.th, sc.dc.rows, ws, nullptr, grad.data(), loss.data(), nullptr);
          },
          3, quick ? 5 : 50);
      std::printf("weights %s, %s path: N=%d T=%d jacobian %.4f ms, gradient+reduce %.4f ms\n",
                  plan.staged ? "staged in shared memory" : "read from global memory", fast ? "width-40" : "generic", n,
                  plan.T, tj, tg);
      out.push_back({{"kernel", "variants"},
                     {"staged", plan.staged},
                     {"fast_path", fast},
                     {"n", n},
                     {"T", plan.T},
                     {"jacobian_ms", tj},
                     {"gradient_ms", tg}});
    }
  }
  set_weight_staging(true);
  set_fast_paths(true);
  return out;
}

void profile_launches() {
  const std::vector<int> layers = {1, 40, 40, 40, 40, 1};
  const Mlp net = init_mlp(layers, "glorot-normal", 1);
  const NetDesc nd = make_net_desc(layers);
  for (int nc : {65536, 1024}) {
    const PointSet pts = darcy_points(nc);
    const int n = pts.size();
    const DeviceCase<double> dc(net, pts);
    const double* th = dc.th.data();
    const DeviceRows<double>& rows = dc.rows;
    if (nc > 4096) {
      DeviceBuffer<double> r(n, kLegacyStream), J(size_t(n) * nd.P, kLegacyStream);
      launch_jacobian<double>(nd, th, rows, r.data(), J.data(), nullptr);
    } else {
      const auto be = make_cuda_backend(false);  // named: it lives as long as the session that uses it
      auto session = be->train_session(net, pts, AdamConfig{});
      session->run(1, 1e-3);
      // The batch of ten (issue 13's B = 10): the same kernels with ten members in the grid's y dimension.
      std::vector<Mlp> nets;
      for (uint64_t seed = 1; seed <= 10; ++seed) nets.push_back(init_mlp(layers, "glorot-normal", seed));
      auto batch = be->batch_train_session(nets, std::vector<PointSet>(10, pts), AdamConfig{});
      batch->run(1, 1e-3);
    }
  }
  PINNTK_CUDA_CHECK(cudaDeviceSynchronize());
}

// Adam on a batch of B networks through batch_train_session (every launch serves all members) against B = 1, per
// step: 4x40 on darcy-twoscale (N = 1026, fp64), ten seeds on shared rows and ten eps on rows of their own; then a
// session's step through its kStepsPerGraph-step graph against one graph launch per step. A batch's members are
// first checked against sessions of their own (bit for bit: the same kernels at other offsets).
json bench_batch(bool quick) {
  const std::vector<int> layers = {1, 40, 40, 40, 40, 1};
  const PointSet pts = darcy_points(1024);
  auto be = make_cuda_backend(false);
  const long steps = quick ? 160 : 1600;
  const int reps = quick ? 2 : 5;
  const double lr = 1e-4;
  const auto time_step = [&](const std::function<void()>& run) { return median_host_us(run, 1, reps) / steps; };
  const auto batch_step = [&](int B, bool own_rows) {
    std::vector<Mlp> nets;
    std::vector<PointSet> rows;
    for (int b = 0; b < B; ++b) {
      nets.push_back(init_mlp(layers, "glorot-normal", static_cast<uint64_t>(b + 1)));
      ProblemSpec spec = problem_preset("darcy-twoscale");
      spec.eps = 1.0 / (32 + b);
      rows.push_back(own_rows ? build_points(spec) : pts);
    }
    auto batch = be->batch_train_session(nets, rows, AdamConfig{});
    const std::vector<double> l = batch->run(2, lr);
    const size_t P = nets[0].theta.size();
    for (int b : {0, B - 1}) {
      auto alone = be->train_session(nets[b], rows[b], AdamConfig{});
      const double la = alone->run(2, lr);
      std::vector<double> a(P), ref(P);
      batch->member(b).parameters(a);
      alone->parameters(ref);
      const std::string tag = "batch of " + std::to_string(B) + (own_rows ? " (own rows)" : "") + ", member " +
                              std::to_string(b) + " after 2 steps";
      validate(tag + ": parameters", a, ref, Tol{0.0, 0.0});
      validate(tag + ": loss", {l[b]}, {la}, Tol{0.0, 0.0});
    }
    batch->run(50, lr);
    return time_step([&] { batch->run(steps, lr); });
  };
  const double b1 = batch_step(1, false), b10 = batch_step(10, false), b10_own = batch_step(10, true);
  // Points per block for the batch (the default plan chose T for one network's 1026 rows): fewer, longer blocks
  // may suit ten networks' 2570 blocks better (NOTES.md). Each is checked against sessions alone with that T.
  // Hidden weights from global memory leave each block less shared memory, so more blocks fit on a multiprocessor.
  json by_t = json::object();
  std::string by_t_line;
  const NetDesc nd = make_net_desc(layers);
  for (const auto& [T, staged] :
       std::vector<std::pair<int, bool>>{{2, true}, {8, true}, {12, true}, {4, false}, {8, false}}) {
    set_tile_points_override(T);
    set_weight_staging(staged);
    const TilePlan plan = plan_tiles<double>(nd, pts.size());
    const double t = batch_step(10, false);
    set_tile_points_override(0);
    set_weight_staging(true);
    const std::string key = std::to_string(T) + (staged ? "" : " global");
    by_t[key] = {{"us", t}, {"T", plan.T}, {"threads", plan.threads}, {"smem", plan.smem}, {"staged", plan.staged}};
    char buf[96];
    std::snprintf(buf, sizeof buf, " T=%d%s %.2f us (%d threads, %d B smem);", plan.T, staged ? "" : " global", t,
                  plan.threads, static_cast<int>(plan.smem));
    by_t_line += buf;
  }

  // The tensor-core loss gradient (set_mma_gradient, cuda/mma_gradient_kernel.cuh), B = 1 and B = 10, each batch
  // checked against sessions alone on the same kernel.
  set_mma_gradient(true);
  const double mma1 = batch_step(1, false), mma10 = batch_step(10, false);
  set_mma_gradient(false);
  std::printf(
      "batched adam step, tensor-core gradient: B=1 %.2f us, B=10 %.2f us (%.2f x its B=1; tile kernel B=1 "
      "%.2f us)\n",
      mma1, mma10, mma10 / mma1, b1);

  // Fig. 4's regression (403 rows, u only in the loss): the step DeepXDE's is compared with (issue 13).
  ProblemSpec reg_spec = problem_preset("regression-twoscale");
  const PointSet reg = build_points(reg_spec);
  auto reg_session = be->train_session(init_mlp(layers, "glorot-normal", 1), reg, AdamConfig{});
  reg_session->run(50, lr);
  const double reg_step = time_step([&] { reg_session->run(steps, lr); });

  auto session = be->train_session(init_mlp(layers, "glorot-normal", 1), pts, AdamConfig{});
  session->run(50, lr);
  const double multi = time_step([&] { session->run(steps, lr); });
  set_multi_step_graphs(false);
  const double single = time_step([&] { session->run(steps, lr); });
  set_multi_step_graphs(true);
  std::printf(
      "batched adam step: darcy-twoscale 4x40 N=%d fp64: B=1 %.2f us, B=10 %.2f us (%.2f x B=1, %.2f us per "
      "network), B=10 own rows %.2f us | session step: %d-step graph %.2f us, 1-step graph %.2f us\n",
      pts.size(), b1, b10, b10 / b1, b10 / 10, b10_own, kStepsPerGraph, multi, single);
  std::printf("batched adam step, B=10 by points per block (default plan above):%s\n", by_t_line.c_str());
  std::printf("adam step: regression-twoscale 4x40 N=%d fp64: %.2f us\n", reg.size(), reg_step);
  std::fflush(stdout);
  return {{"problem", "darcy-twoscale"},
          {"layers", layers},
          {"n", pts.size()},
          {"precision", "fp64"},
          {"b1_step_us", b1},
          {"b10_step_us", b10},
          {"b10_over_b1", b10 / b1},
          {"b10_own_rows_step_us", b10_own},
          {"b10_step_us_by_points_per_block", by_t},
          {"mma_b1_step_us", mma1},
          {"mma_b10_step_us", mma10},
          {"regression_step_us", reg_step},
          {"regression_n", reg.size()},
          {"steps_per_graph", kStepsPerGraph},
          {"session_multi_step_graph_us", multi},
          {"session_one_step_graph_us", single}};
}

// L-BFGS on the device: minimize_lbfgs_batched through a batch session's lbfgs_ops (vectors, history and
// evaluations on the device, history 100), per iteration (the driver's rounds, over the member with the most
// iterations), for B = 1 and 10 networks 4x40 on darcy-twoscale (N = 1026, fp64), beside liblbfgsb (minimize_lbfgs
// on the host) evaluating through a CUDA train_session's loss_gradient_at, B = 1. The device operations are first
// checked against HostLbfgsOps (evaluating through the members) over a few iterations.
json bench_lbfgs(bool quick) {
  const std::vector<int> layers = {1, 40, 40, 40, 40, 1};
  const PointSet pts = darcy_points(1024);
  auto be = make_cuda_backend(false);
  BatchedLbfgsConfig cfg;
  cfg.history = 100;
  cfg.max_iter = quick ? 40 : 200;
  cfg.gtol = 0.0;
  cfg.ftol = 0.0;
  const auto seconds_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double evals_per_iteration = 0.0;
  const auto device_iteration = [&](int B) {
    std::vector<Mlp> nets;
    for (int b = 0; b < B; ++b) nets.push_back(init_mlp(layers, "glorot-normal", static_cast<uint64_t>(b + 1)));
    const int P = static_cast<int>(nets[0].theta.size());
    auto batch = be->batch_train_session(nets, std::vector<PointSet>(B, pts), AdamConfig{});
    auto ops = batch->lbfgs_ops(P, cfg.history);
    HostLbfgsOps host(B, P, cfg.history, [&](int b, span<const double> th, span<double> g) {
      return batch->member(b).loss_gradient_at(th, g);
    });
    BatchedLbfgsConfig check = cfg;
    check.max_iter = 5;
    std::vector<std::vector<double>> losses(2);
    for (int k = 0; k < 2; ++k) {
      LbfgsOps& o = k == 0 ? *ops : static_cast<LbfgsOps&>(host);
      for (int b = 0; b < B; ++b) o.load(b, nets[b].theta);
      minimize_lbfgs_batched(o, check, [&](int, long, double l) { losses[k].push_back(l); });
    }
    validate("device l-bfgs, batch of " + std::to_string(B) + ": losses of 5 iterations", losses[0], losses[1],
             Tol{0.0, 1e-8});
    for (int b = 0; b < B; ++b) ops->load(b, nets[b].theta);
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<LbfgsResult> res = minimize_lbfgs_batched(*ops, cfg);
    const double s = seconds_since(t0);
    long iterations = 0, evaluations = 0;
    for (const LbfgsResult& r : res) {
      iterations = std::max(iterations, r.iterations);
      evaluations = std::max(evaluations, r.evaluations);
    }
    if (B == 1) evals_per_iteration = static_cast<double>(evaluations) / iterations;
    return 1e6 * s / iterations;
  };
  const double b1 = device_iteration(1), b10 = device_iteration(10);
  const double e1 = evals_per_iteration;
  cudaimpl::set_fused_two_loop(false);  // the two-loop as launches per pair, for comparison
  const double u1 = device_iteration(1), u10 = device_iteration(10);
  cudaimpl::set_fused_two_loop(true);

  const Mlp net = init_mlp(layers, "glorot-normal", 1);
  auto session = be->train_session(net, pts, AdamConfig{});
  std::vector<double> x = net.theta;
  const auto t0 = std::chrono::steady_clock::now();
  const LbfgsResult r = minimize_lbfgs(
      x, [&](span<const double> th, span<double> g) { return session->loss_gradient_at(th, g); }, cfg);
  const double host = 1e6 * seconds_since(t0) / r.iterations;
  std::printf(
      "device l-bfgs iteration: darcy-twoscale 4x40 N=%d fp64 m=%d, %ld iterations: B=1 %.1f us (%.2f evaluations "
      "per iteration), B=10 %.1f us (%.1f us per member); two-loop as launches per pair: B=1 %.1f us, B=10 %.1f us | "
      "liblbfgsb on the host, CUDA loss_gradient_at: B=1 %.1f us\n",
      pts.size(), cfg.history, cfg.max_iter, b1, e1, b10, b10 / 10, u1, u10, host);
  std::fflush(stdout);
  return {{"problem", "darcy-twoscale"},
          {"layers", layers},
          {"n", pts.size()},
          {"precision", "fp64"},
          {"history", cfg.history},
          {"iterations", cfg.max_iter},
          {"device_b1_iteration_us", b1},
          {"device_b1_evaluations_per_iteration", e1},
          {"device_b10_iteration_us", b10},
          {"per_pair_launches_b1_iteration_us", u1},
          {"per_pair_launches_b10_iteration_us", u10},
          {"liblbfgsb_b1_iteration_us", host}};
}

json bench_cpu_step(bool quick) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 40, 40, 40, 40, 1}, "glorot-normal", 1);
  auto be = make_cpu_backend(0);
  auto session = be->train_session(net, pts, AdamConfig{});
  const long steps = quick ? 5 : 50;
  const double us = median_host_us([&] { session->run(steps, 1e-4); }, 1, quick ? 2 : 5) / steps;
  std::printf("cpu backend: darcy-twoscale 4x40 N=1026 fp64 Adam step %.1f us\n", us);
  // Ten networks as one batch (each member on its own backend, as many stepped at once as there are threads)
  // against ten sessions one after another; issue goal: ten networks in less than ten times one network's time.
  std::vector<Mlp> nets;
  for (uint64_t seed = 0; seed < 10; ++seed) nets.push_back(init_mlp(net.layers, "glorot-normal", seed));
  auto batch = be->batch_train_session(nets, std::vector<PointSet>(nets.size(), pts), AdamConfig{});
  const double batch_us = median_host_us([&] { batch->run(steps, 1e-4); }, 1, quick ? 2 : 5) / steps;
  std::printf("cpu backend: 10 networks as one batch, Adam step %.1f us (%.2f x one network's)\n", batch_us,
              batch_us / us);
  return {{"problem", "darcy-twoscale"}, {"layers", {1, 40, 40, 40, 40, 1}}, {"n", pts.size()},
          {"adam_step_us", us},          {"batch10_step_us", batch_us},      {"batch10_over_one", batch_us / us}};
}

// The CPU backend's evaluate (u and its derivatives at the points: history rows, predictions, errors) through the
// batched forward pass, against the per-point forward pass it replaced (evaluate_rows_per_point, the rows split
// over the threads as before), for a 1-D and two 2-D networks at 9000 points (poisson2d-sines's test set size).
json bench_cpu_evaluate(bool quick) {
  json rows = json::array();
  auto be = make_cpu_backend(0);
  for (const std::vector<int>& layers :
       std::vector<std::vector<int>>{{1, 40, 40, 40, 40, 1}, {2, 64, 64, 48, 48, 1}, {2, 256, 256, 128, 128, 1}}) {
    const Mlp net = init_mlp(layers, "glorot-normal", 1);
    const int m = layers.front(), n = quick ? 1000 : 9000;
    std::vector<double> x(static_cast<size_t>(n) * m), u(n), du(x.size()), d2u(x.size());
    for (size_t k = 0; k < x.size(); ++k) x[k] = std::sin(1.3 * static_cast<double>(k));
    const double batched = median_host_us([&] { be->evaluate(net, x, u, du, d2u); }, 1, quick ? 2 : 5);
    PointSet at;
    at.dim = m;
    at.nc = n;
    at.x = x;
    const double per_point = median_host_us([&] { evaluate_rows_per_point(net, at, u, du, d2u); }, 1, quick ? 2 : 3);
    std::printf("cpu evaluate: %d-D P=%d at %d points: %.2f ms (per-point forward %.2f ms, %.1f x)\n", m,
                net.n_params(), n, batched * 1e-3, per_point * 1e-3, per_point / batched);
    rows.push_back(
        {{"layers", layers}, {"points", n}, {"batched_ms", batched * 1e-3}, {"per_point_ms", per_point * 1e-3}});
  }
  std::fflush(stdout);
  return rows;
}

// The CPU's residuals and Jacobian (J, N x P): the batched Jacobian pass the CPU backend takes against the per-point
// reverse pass it replaced (residuals_jacobian_per_point), on the paper's networks and a 2-D one.
json bench_cpu_jacobian(bool quick) {
  json rows = json::array();
  auto be = make_cpu_backend(0);
  struct JacobianCase {
    const char* problem;
    std::vector<int> layers;
    int nc;
  };
  for (const JacobianCase& c :
       {JacobianCase{"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 1024}, JacobianCase{"darcy-ntk", {1, 50, 1}, 256},
        JacobianCase{"poisson2d-sines", {2, 64, 64, 48, 48, 1}, 1000}}) {
    ProblemSpec spec = problem_preset(c.problem);
    spec.nc = c.nc;
    const PointSet pts = build_points(spec);
    const Mlp net = init_mlp(c.layers, "glorot-normal", 1);
    const size_t n = pts.size(), P = net.n_params();
    std::vector<double> r(n), J(n * P);
    const int reps = quick ? 3 : 11;
    const double batched = median_host_us([&] { be->residuals_jacobian(net, pts, r, J); }, 1, reps);
    const double per_point = median_host_us([&] { residuals_jacobian_per_point(net, pts, r, J); }, 1, reps);
    std::printf("cpu jacobian: %s P=%zu N=%zu: %.2f ms (per-point reverse pass %.2f ms, %.1f x)\n", c.problem, P, n,
                batched * 1e-3, per_point * 1e-3, per_point / batched);
    rows.push_back({{"problem", c.problem},
                    {"layers", c.layers},
                    {"points", n},
                    {"batched_ms", batched * 1e-3},
                    {"per_point_ms", per_point * 1e-3}});
  }
  std::fflush(stdout);
  return rows;
}

// One Levenberg-Marquardt iteration (issue goal: under 2 ms for 4x40, Nc = 1024, fp64 on a GPU): a rejected one
// is a damped Cholesky solve plus the trial loss (try_step); an accepted one adds the relinearization at the new
// point (Jacobian, Gram, accept). A large damping keeps the repeated accepted steps small.
json bench_lm(Backend& be, int nc, bool quick) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = nc;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, 40, 40, 40, 40, 1}, "glorot-normal", 1);
  auto s = be.lm_session(net, pts, lm_sample_form("auto", pts.size(), static_cast<int>(net.n_params())));
  const double mu = s->max_diagonal();
  std::vector<double> theta(net.theta.size());
  double l = 0, p = 0;
  const bool cpu = be.name() == "cpu";
  const int reps = cpu ? (quick ? 2 : 3) : (quick ? 5 : 30);
  const double rejected = median_host_us([&] { s->try_step(mu, l, p); }, 1, reps);
  const double accepted = median_host_us(
      [&] {
        s->try_step(mu, l, p);
        s->accept(theta);
      },
      1, reps);
  std::printf("lm iteration: %s %s darcy-twoscale 4x40 N=%d (%s form): rejected %.3f ms, accepted %.3f ms\n",
              be.name().c_str(), be.precision().c_str(), pts.size(), s->sample_form() ? "sample" : "parameter",
              rejected * 1e-3, accepted * 1e-3);
  std::fflush(stdout);
  return {{"backend", be.name()},
          {"precision", be.precision()},
          {"n", pts.size()},
          {"form", s->sample_form() ? "sample" : "parameter"},
          {"rejected_ms", rejected * 1e-3},
          {"accepted_ms", accepted * 1e-3}};
}

// The chunked NTK on the device (issue 14 goal: norms and spectra of 4x40 at N = 2^20 in under 2 s on an H100/H200):
// one call of ntk_chunked after a warm-up at a smaller N, wall-clock seconds.
json bench_ntk_chunked(Backend& be, int nc, long chunk_rows) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  const Mlp net = init_mlp({1, 40, 40, 40, 40, 1}, "glorot-normal", 1);
  const auto run = [&](int rows) {
    spec.nc = rows;
    const PointSet pts = build_points(spec);
    const std::vector<double> d = ntk_row_weights(pts, NtkScaling::Lemma);
    const auto t0 = std::chrono::steady_clock::now();
    const NtkResult r = ntk_chunked(be, net, pts, d, chunk_rows);
    return std::pair(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), r);
  };
  run(std::min(nc, 16384));
  const auto [seconds, r] = run(nc);
  std::printf(
      "chunked ntk: %s %s darcy-twoscale 4x40 N=%d P=%d chunks of %ld rows: %.3f s (lambda_1 %.6e, ||K||_F %.6e)\n",
      be.name().c_str(), be.precision().c_str(), r.nc + r.nb, r.n_params, chunk_rows, seconds, r.spectrum_K.front(),
      r.frobenius_K);
  std::fflush(stdout);
  return {{"backend", be.name()},
          {"precision", be.precision()},
          {"n", r.nc + r.nb},
          {"p", r.n_params},
          {"chunk_rows", chunk_rows},
          {"seconds", seconds},
          {"lambda_1", r.spectrum_K.front()}};
}

// One matrix-free K_s v product of Lanczos (DESIGN.md section 8): J^T y then J u through the backend's interface
// (host copies of the vectors included, as ntk_lanczos makes them), darcy-twoscale 4 x width at N rows; after two
// warm-up products (the first uploads the rows), the median of reps, wall-clock milliseconds. `how` names the path
// the caller chose (set_layerwise_products).
json bench_ntk_products(Backend& be, int n, bool quick, int width, const std::string& how) {
  ProblemSpec spec = problem_preset("darcy-twoscale");
  spec.nc = n - spec.nb;
  const PointSet pts = build_points(spec);
  const Mlp net = init_mlp({1, width, width, width, width, 1}, "glorot-normal", 1);
  std::vector<double> y(pts.size(), 1.0), params(net.n_params()), rows(pts.size());
  const auto product = [&] {
    be.jacobian_transpose_times(net, pts, y, params);
    be.jacobian_times(net, pts, params, rows);
    const double scale = 1.0 / std::max(1e-300, std::fabs(rows[0]));
    for (size_t i = 0; i < rows.size(); ++i) y[i] = rows[i] * scale;  // the next product's vector, bounded
  };
  product();
  product();
  std::vector<double> ms;
  for (int i = 0; i < (quick ? 5 : 20); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    product();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("ntk product J^T y + J u (%s): %s %s darcy-twoscale 4x%d N=%d P=%d: %.3f ms\n", how.c_str(),
              be.name().c_str(), be.precision().c_str(), width, pts.size(), net.n_params(), median);
  std::fflush(stdout);
  return {{"backend", be.name()}, {"precision", be.precision()},
          {"n", pts.size()},      {"p", net.n_params()},
          {"width", width},       {"path", how},
          {"ms", median}};
}

}  // namespace

int main(int argc, char** argv) {
  ensure_fast_openblas_kernels(argv);
  // Line by line, so that a run killed or crashed part-way leaves every finished line in its log.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string json_path, only;
  bool quick = false, cpu_only = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) {
      only = std::string(",") + argv[++i] + ",";
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--cpu-only")) {
      cpu_only = true;
    } else if (!std::strcmp(argv[i], "--profile")) {
      profile = true;
    } else {
      std::fprintf(stderr,
                   "usage: pinntk-bench [--json FILE] [--quick] [--cpu-only] [--profile] [--only SECTION,...]\n"
                   "  sections: cpu lm batch tile cases lbfgs ntk (default: all, in that order)\n");
      return 2;
    }
  }
  static const char* const kSections[] = {"cpu", "lm", "batch", "tile", "cases", "lbfgs", "ntk"};
  for (size_t a = 1; a + 1 < only.size();) {
    const size_t b = only.find(',', a);
    const std::string name = only.substr(a, b - a);
    if (std::find(std::begin(kSections), std::end(kSections), name) == std::end(kSections)) {
      std::fprintf(stderr, "pinntk-bench: --only: unknown section '%s' (cpu lm batch tile cases lbfgs ntk)\n",
                   name.c_str());
      return 2;
    }
    a = b + 1;
  }
  const auto want = [&](const char* section) {
    return only.empty() || only.find(std::string(",") + section + ",") != std::string::npos;
  };
  try {
    if (profile) {
      profile_launches();
      return 0;
    }
    json out;
    if (want("cpu")) {
      out["cpu"] = bench_cpu_step(quick);
      out["cpu"]["evaluate"] = bench_cpu_evaluate(quick);
      out["cpu"]["jacobian"] = bench_cpu_jacobian(quick);
    }
    out["lm"] = json::array();
    if (want("lm")) out["lm"].push_back(bench_lm(*make_cpu_backend(0), 1024, quick));
    if (!cpu_only) {
      if (cuda_device_count() == 0) {
        std::fprintf(stderr, "pinntk-bench: no CUDA device answers; only the CPU step was timed\n");
      } else {
        cudaDeviceProp prop;
        PINNTK_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        out["device"] = prop.name;
        const Ceilings c = measure_ceilings(quick);
        out["ceilings"] = {
            {"copy_GBps", c.copy_gbs}, {"dgemm_GFLOPs", c.gemm_gflops64}, {"sgemm_GFLOPs", c.gemm_gflops32}};
        std::printf("%s: copy %.0f GB/s (read+write), dgemm %.0f GFLOP/s, sgemm %.0f GFLOP/s\n", prop.name, c.copy_gbs,
                    c.gemm_gflops64, c.gemm_gflops32);
        const std::vector<Case> cases = {{"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 1024},
                                         {"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 4096},
                                         {"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 16384},
                                         {"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 65536},
                                         {"darcy-ntk", {1, 50, 1}, 256}};
        if (want("lm"))
          for (const bool single : {false, true}) {
            auto gpu = make_cuda_backend(single);
            for (const int nc : {1024, 4096}) out["lm"].push_back(bench_lm(*gpu, nc, quick));
          }
        if (want("batch")) out["batch"] = bench_batch(quick);
        if (want("tile")) out["tile_sweep"] = tile_sweep(quick);
        if (want("cases")) {
          out["cases"] = json::array();
          for (const auto& cs : cases) {
            out["cases"].push_back(bench_kernels<double>(cs, c, quick));
            out["cases"].push_back(bench_kernels<float>(cs, c, quick));
          }
        }
        if (want("lbfgs")) out["lbfgs"] = bench_lbfgs(quick);
        if (want("ntk")) {
          out["ntk_chunked"] = bench_ntk_chunked(*make_cuda_backend(false), quick ? 1 << 16 : 1 << 20, 65536);
          // One K_s v product by the tile kernels and a layer at a time (cuda/layerwise.hpp), 4x40 and 4x160 at
          // N = 2^16 (the automatic choice is one of the two: tiles at width 40, layers at 160).
          out["ntk_product_paths"] = json::array();
          for (const int width : {40, 160})
            for (const LayerwiseProducts mode : {LayerwiseProducts::kOff, LayerwiseProducts::kOn}) {
              set_layerwise_products(mode);
              out["ntk_product_paths"].push_back(
                  bench_ntk_products(*make_cuda_backend(false), 1 << 16, quick, width,
                                     mode == LayerwiseProducts::kOn ? "layers" : "tile"));
            }
          set_layerwise_products(LayerwiseProducts::kAuto);
        }
      }
    }
    if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinntk-bench: failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
