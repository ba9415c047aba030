// pinntk-bench: times the CUDA kernels and library calls with CUDA events (warm-up, then the median of many runs)
// and prints achieved GB/s and GFLOP/s next to the two floors of DESIGN.md section 6: the fewest bytes over the
// measured copy bandwidth, and the flops over the measured matrix-product rate. Also times the CPU backend's Adam
// step and a Levenberg-Marquardt iteration on both backends. Writes every number to --json.
//
//   pinntk-bench [--json FILE] [--quick] [--cpu-only] [--profile]
// --profile launches only the main kernels once each (4x40: the Jacobian at 65536 points, one Adam step at 1024),
// for Nsight Compute (benchmarks/profile.sh).
#include <cuda_runtime.h>  // cudaEvent_t

#include <algorithm>          // std::sort
#include <chrono>             // std::chrono
#include <cstdio>             // std::printf
#include <cstring>            // std::strcmp
#include <fstream>            // std::ofstream
#include <functional>         // std::function
#include <nlohmann/json.hpp>  // nlohmann::json
#include <string>             // std::string
#include <vector>             // std::vector

#include "cuda/check.cuh"          // PINNTK_CUDA_CHECK
#include "cuda/device_buffer.cuh"  // DeviceBuffer, kLegacyStream
#include "cuda/device_points.hpp"  // DevicePoints, to_device, enqueue_loss_gradient
#include "cuda/handles.cuh"        // make_blas, make_solver, make_solver_params
#include "cuda/linalg.cuh"         // linalg::syrk, PINNTK_CUBLAS_CHECK
#include "cuda/mlp_tile.hpp"       // launch_jacobian, launch_gradient, launch_reduce_adam
#include "host/backend.hpp"        // make_cuda_backend, make_cpu_backend
#include "host/blas_setup.hpp"     // ensure_fast_openblas_kernels
#include "host/optim/lm.hpp"        // lm_sample_form
#include "host/problem.hpp"        // problem_preset, build_points

using nlohmann::json;
using namespace pinntk;

namespace {

// Median milliseconds of fn over `reps` runs, each timed with CUDA events, after `warm` untimed runs.
double time_ms(const std::function<void()>& fn, int warm, int reps, cudaStream_t s = nullptr) {
  for (int i = 0; i < warm; ++i) fn();
  cudaEvent_t a, b;
  PINNTK_CUDA_CHECK(cudaEventCreate(&a));
  PINNTK_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> t(reps);
  for (int i = 0; i < reps; ++i) {
    PINNTK_CUDA_CHECK(cudaEventRecord(a, s));
    fn();
    PINNTK_CUDA_CHECK(cudaEventRecord(b, s));
    PINNTK_CUDA_CHECK(cudaEventSynchronize(b));
    PINNTK_CUDA_CHECK(cudaEventElapsedTime(&t[i], a, b));
  }
  PINNTK_CUDA_CHECK(cudaEventDestroy(a));
  PINNTK_CUDA_CHECK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[reps / 2];
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
  const int reps = quick ? 5 : 50;
  const double flop = flops_per_point(c.layers) * n;
  const double gemm = sizeof(Real) == 8 ? ceil.gemm_gflops64 : ceil.gemm_gflops32;

  json out;
  out["problem"] = c.problem;
  out["layers"] = c.layers;
  out["n"] = n;
  out["P"] = P;
  out["precision"] = prec;
  const TilePlan plan = plan_tiles<Real>(nd, n);
  out["tile"] = {{"points_per_block", plan.T}, {"threads", plan.threads}, {"blocks", plan.blocks}, {"smem", plan.smem}};

  const double tj = time_ms([&] { launch_jacobian<Real>(nd, th, rows, r.data(), J.data(), nullptr); }, 3, reps);
  const double bytes_j = double(n) * P * sizeof(Real);
  out["jacobian"] = {{"ms", tj}, {"GBps", bytes_j / (tj * 1e-3) / 1e9}, {"GFLOPs", flop / (tj * 1e-3) / 1e9},
                     {"floor_bytes_ms", bytes_j / (ceil.copy_gbs * 1e9) * 1e3}, {"floor_flops_ms", flop / (gemm * 1e9) * 1e3}};

  DeviceBuffer<Real> partial(size_t(plan.blocks) * P, kLegacyStream), ploss(plan.blocks, kLegacyStream),
      grad(P, kLegacyStream);
  DeviceBuffer<double> loss(1, kLegacyStream);
  const double tg = time_ms([&] {
    cudaimpl::enqueue_loss_gradient<Real>(nd, plan.blocks, th, rows, partial.data(), ploss.data(), nullptr, grad.data(),
                                          loss.data(), nullptr);
  }, 3, reps);
  out["gradient"] = {{"us", tg * 1e3}, {"GFLOPs", flop / (tg * 1e-3) / 1e9}};

  const cudaimpl::UniqueBlas h = cudaimpl::make_blas(nullptr);
  DeviceBuffer<Real> K(size_t(n) * n, kLegacyStream);
  const double ts = time_ms(
      [&] { PINNTK_CUBLAS_CHECK(linalg::syrk(h.get(), CUBLAS_OP_T, n, P, J.data(), P, K.data(), n)); }, 2,
      quick ? 3 : 20);
  const double flop_syrk = double(n) * n * P;  // n^2 P multiply-adds over the triangle
  out["syrk"] = {{"ms", ts}, {"GFLOPs", flop_syrk / (ts * 1e-3) / 1e9}, {"floor_flops_ms", flop_syrk / (gemm * 1e9) * 1e3}};
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
    const double te = time_ms([&] {
      PINNTK_CUDA_CHECK(cudaMemcpy(A.data(), A0.data(), A.size() * sizeof(Real), cudaMemcpyDeviceToDevice));
      PINNTK_CUSOLVER_CHECK(linalg::syevd(sh.get(), params.get(), n, A.data(), W.data(), work.data(), device_bytes,
                                          host_work.data(), host_bytes, info.data()));
    }, 1, quick ? 2 : 5);
    out["syevd"] = {{"ms", te}};
  }

  // A whole Adam step through the device-resident session (a CUDA graph per step), over many steps.
  auto be = make_cuda_backend(sizeof(Real) == 4);
  auto session = be->train_session(net, pts, AdamConfig{});
  const long steps = quick ? 200 : 2000;
  session->run(50, 1e-4);
  const double t_step = median_host_us([&] { session->run(steps, 1e-4); }, 1, quick ? 2 : 5) / steps;
  out["adam_step_us"] = t_step;
  std::printf("%-15s %-16s N=%-6d P=%-5d %s | J %8.3f ms %7.0f GB/s %6.0f GF/s (floors %.3f/%.3f ms) | grad %7.1f us | "
              "adam step %6.2f us | syrk %7.3f ms %6.0f GF/s%s\n",
              c.problem, std::string(json(c.layers).dump()).c_str(), n, P, prec, tj, bytes_j / (tj * 1e-3) / 1e9,
              flop / (tj * 1e-3) / 1e9, bytes_j / (ceil.copy_gbs * 1e9) * 1e3, flop / (gemm * 1e9) * 1e3, tg * 1e3,
              t_step, ts, flop_syrk / (ts * 1e-3) / 1e9,
              out.contains("syevd") ? (" | syevd " + std::to_string(out["syevd"]["ms"].get<double>()) + " ms").c_str() : "");
  std::fflush(stdout);
  return out;
}

// Points per block against time, for the Jacobian at 65536 points and the fused gradient at 1024 (fp64, 4x40).
json tile_sweep(bool quick) {
  json out = json::array();
  const std::vector<int> layers = {1, 40, 40, 40, 40, 1};
  const Mlp net = init_mlp(layers, "glorot-normal", 1);
  const NetDesc nd = make_net_desc(layers);
  for (int nc : {65536, 1024}) {
    const PointSet pts = darcy_points(nc);
    const int n = pts.size(), P = nd.P;
    const DeviceCase<double> dc(net, pts);
    const double* th = dc.th.data();
    const DeviceRows<double>& rows = dc.rows;
    DeviceBuffer<double> r(n, kLegacyStream), J(nc > 4096 ? size_t(n) * P : 0, kLegacyStream),
        partial(size_t(n) * P, kLegacyStream), ploss(n, kLegacyStream), grad(P, kLegacyStream);
    DeviceBuffer<double> loss(1, kLegacyStream);
    for (int T : {1, 2, 4, 8, 16, 32}) {
      set_tile_points_override(T);
      const TilePlan plan = plan_tiles<double>(nd, n);
      double ms = 0;
      if (nc > 4096) {
        ms = time_ms([&] { launch_jacobian<double>(nd, th, rows, r.data(), J.data(), nullptr); }, 2, quick ? 3 : 20);
      } else {
        ms = time_ms([&] {
          cudaimpl::enqueue_loss_gradient<double>(nd, plan.blocks, th, rows, partial.data(), ploss.data(), nullptr,
                                                  grad.data(), loss.data(), nullptr);
        }, 3, quick ? 5 : 50);
      }
      std::printf("tile sweep: %s N=%d T=%d (T used %d, %d blocks): %.4f ms\n", nc > 4096 ? "jacobian" : "gradient", n, T,
                  plan.T, plan.blocks, ms);
      out.push_back({{"kernel", nc > 4096 ? "jacobian" : "gradient"}, {"n", n}, {"T", plan.T}, {"ms", ms}});
    }
    set_tile_points_override(0);
  }
  // Hidden weights staged in shared memory (the default) against read from global memory, and the compile-time
  // width path (the default) against the generic one, at the default tiles.
  for (int variant = 0; variant < 3; ++variant) {
    const bool staged = variant != 1, fast = variant != 2;
    set_weight_staging(staged);
    set_fast_paths(fast);
    for (int nc : {65536, 1024}) {
      const PointSet pts = darcy_points(nc);
      const int n = pts.size(), P = nd.P;
      const DeviceCase<double> dc(net, pts);
      const double* th = dc.th.data();
      const DeviceRows<double>& rows = dc.rows;
      const TilePlan plan = plan_tiles<double>(nd, n);
      DeviceBuffer<double> r(n, kLegacyStream), J(size_t(n) * P, kLegacyStream),
          partial(size_t(plan.blocks) * P, kLegacyStream), ploss(plan.blocks, kLegacyStream), grad(P, kLegacyStream),
          loss(1, kLegacyStream);
      const double tj = time_ms([&] { launch_jacobian<double>(nd, th, rows, r.data(), J.data(), nullptr); }, 2,
                                quick ? 3 : 20);
      const double tg = time_ms([&] {
        cudaimpl::enqueue_loss_gradient<double>(nd, plan.blocks, th, rows, partial.data(), ploss.data(), nullptr,
                                                grad.data(), loss.data(), nullptr);
      }, 3, quick ? 5 : 50);
      std::printf("weights %s, %s path: N=%d T=%d jacobian %.4f ms, gradient+reduce %.4f ms\n",
                  plan.staged ? "staged in shared memory" : "read from global memory", fast ? "width-40" : "generic", n,
                  plan.T, tj, tg);
      out.push_back({{"kernel", "variants"}, {"staged", plan.staged}, {"fast_path", fast}, {"n", n}, {"T", plan.T},
                     {"jacobian_ms", tj}, {"gradient_ms", tg}});
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
    }
  }
  PINNTK_CUDA_CHECK(cudaDeviceSynchronize());
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
  return {{"problem", "darcy-twoscale"}, {"layers", {1, 40, 40, 40, 40, 1}}, {"n", pts.size()}, {"adam_step_us", us}};
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
  const double accepted = median_host_us([&] {
    s->try_step(mu, l, p);
    s->accept(theta);
  }, 1, reps);
  std::printf("lm iteration: %s %s darcy-twoscale 4x40 N=%d (%s form): rejected %.3f ms, accepted %.3f ms\n",
              be.name().c_str(), be.precision().c_str(), pts.size(), s->sample_form() ? "sample" : "parameter",
              rejected * 1e-3, accepted * 1e-3);
  std::fflush(stdout);
  return {{"backend", be.name()}, {"precision", be.precision()}, {"n", pts.size()},
          {"form", s->sample_form() ? "sample" : "parameter"}, {"rejected_ms", rejected * 1e-3},
          {"accepted_ms", accepted * 1e-3}};
}

}  // namespace

int main(int argc, char** argv) {
  ensure_fast_openblas_kernels(argv);
  std::string json_path;
  bool quick = false, cpu_only = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--cpu-only")) {
      cpu_only = true;
    } else if (!std::strcmp(argv[i], "--profile")) {
      profile = true;
    } else {
      std::fprintf(stderr, "usage: pinntk-bench [--json FILE] [--quick] [--cpu-only] [--profile]\n");
      return 2;
    }
  }
  try {
    if (profile) {
      profile_launches();
      return 0;
    }
    json out;
    out["cpu"] = bench_cpu_step(quick);
    out["lm"] = json::array();
    out["lm"].push_back(bench_lm(*make_cpu_backend(0), 1024, quick));
    if (!cpu_only) {
      if (cuda_device_count() == 0) {
        std::fprintf(stderr, "pinntk-bench: no CUDA device answers; only the CPU step was timed\n");
      } else {
        cudaDeviceProp prop;
        PINNTK_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        out["device"] = prop.name;
        const Ceilings c = measure_ceilings(quick);
        out["ceilings"] = {{"copy_GBps", c.copy_gbs}, {"dgemm_GFLOPs", c.gemm_gflops64}, {"sgemm_GFLOPs", c.gemm_gflops32}};
        std::printf("%s: copy %.0f GB/s (read+write), dgemm %.0f GFLOP/s, sgemm %.0f GFLOP/s\n", prop.name, c.copy_gbs,
                    c.gemm_gflops64, c.gemm_gflops32);
        const std::vector<Case> cases = {{"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 1024},
                                         {"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 4096},
                                         {"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 16384},
                                         {"darcy-twoscale", {1, 40, 40, 40, 40, 1}, 65536},
                                         {"darcy-ntk", {1, 50, 1}, 256}};
        for (const bool single : {false, true}) {
          auto gpu = make_cuda_backend(single);
          for (const int nc : {1024, 4096}) out["lm"].push_back(bench_lm(*gpu, nc, quick));
        }
        out["tile_sweep"] = tile_sweep(quick);
        out["cases"] = json::array();
        for (const auto& cs : cases) {
          out["cases"].push_back(bench_kernels<double>(cs, c, quick));
          out["cases"].push_back(bench_kernels<float>(cs, c, quick));
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
