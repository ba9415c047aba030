// The layer-at-a-time matrix-free products (cuda/layerwise.hpp) on the CPU: the same sequence of GEMMs and kernels the
// CUDA backend runs, with CBLAS for the GEMMs and the elementwise kernels' own code on host threads
// (tests/block_emulator.hpp), against the CPU backend's per-point J u and J^T y: 1-D, 2-D and 3-D inputs, the axes and
// rows with their own directions, widths of any size, chunks that do not divide the rows, fp64 and fp32. The scratch
// is poisoned with NaN: a block read before it is written fails.
#include <cblas.h>  // cblas_dgemm, cblas_sgemm, cblas_dgemv, cblas_sgemv
#include <gtest/gtest.h>

#include <algorithm>    // std::min
#include <cmath>        // std::cos, std::sin, NAN
#include <random>       // std::mt19937, std::normal_distribution
#include <string>       // std::string
#include <type_traits>  // std::is_same_v
#include <vector>       // std::vector

#include "tests/block_emulator.hpp"
// The emulator first: the device code is compiled against it.
#include "cuda/layerwise.hpp"    // layerwise::jacobian_times, jacobian_transpose_times, scratch_per_row
#include "cuda/tile_plan.hpp"    // make_net_desc, DeviceRows, slice_rows
#include "host/backend.hpp"      // make_cpu_backend
#include "host/mlp.hpp"          // init_mlp
#include "host/problem.hpp"      // problem_preset, build_points
#include "tests/near.hpp"        // all_near
#include "tests/random_net.hpp"  // random_net

namespace pinntk {
namespace {

using testing::all_near;

// The executor of cuda/layerwise.hpp on the CPU: CBLAS (column-major) and the emulator, a few blocks of 32 threads
// striding over the elements.
template <class Real>
struct HostExec {
  static CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }
  void gemm(bool ta, bool tb, long m, long n, long k, const Real* A, long lda, const Real* B, long ldb, Real beta,
            Real* C, long ldc) {
    ++gemms;
    if constexpr (std::is_same_v<Real, double>) {
      cblas_dgemm(CblasColMajor, op(ta), op(tb), m, n, k, 1.0, A, lda, B, ldb, beta, C, ldc);
    } else {
      cblas_sgemm(CblasColMajor, op(ta), op(tb), m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
    }
  }
  void gemv(long m, long n, const Real* A, long lda, const Real* x, Real beta, Real* y) {
    if constexpr (std::is_same_v<Real, double>) {
      cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, A, lda, x, 1, beta, y, 1);
    } else {
      cblas_sgemv(CblasColMajor, CblasNoTrans, m, n, 1.0f, A, lda, x, 1, beta, y, 1);
    }
  }
  template <class... P, class... A>
  void run(void (*kernel)(P...), long elements, A... args) {
    const unsigned blocks = static_cast<unsigned>(std::min<long>(3, (elements + 31) / 32));
    emu::run_blocks(blocks, 32, [&] { kernel(args...); });
  }
  int gemms = 0;
};

template <class Real>
std::vector<Real> as(const std::vector<double>& v) {
  return std::vector<Real>(v.begin(), v.end());
}

// A problem's rows (nc collocation points; boundary rows in n-D), with random directions of their own when dirs.
PointSet rows_of(const std::string& problem, int nc, bool dirs) {
  ProblemSpec spec = problem_preset(problem);
  spec.nc = nc;
  if (spec.dim > 1) spec.nb = 8 * spec.dim;  // 4 a face in 2-D, a 2 x 2 grid a face in 3-D
  PointSet p = build_points(spec);
  if (dirs) {
    std::mt19937 gen(17);
    std::normal_distribution<double> g(0.0, 1.0);
    p.dirs.resize(static_cast<size_t>(p.size()) * p.dim * p.dim);
    for (double& v : p.dirs) v = g(gen);
  }
  return p;
}

// J u and J^T y chunk by chunk (chunk rows each, the last one shorter) against the CPU backend.
template <class Real>
void check(const std::string& problem, const std::vector<int>& layers, int nc, int chunk, bool dirs) {
  const PointSet pts = rows_of(problem, nc, dirs);
  const Mlp net = testing::random_net(layers, 21);
  const NetDesc nd = make_net_desc(layers);
  const int n = pts.size(), P = nd.P;
  std::vector<double> u(P), y(n);
  for (int p = 0; p < P; ++p) u[p] = std::cos(0.37 * p + 0.2);
  for (int k = 0; k < n; ++k) y[k] = std::sin(0.9 * k + 0.1);
  auto cpu = make_cpu_backend(1);
  std::vector<double> ju_ref(n), jty_ref(P);
  cpu->jacobian_times(net, pts, u, ju_ref);
  cpu->jacobian_transpose_times(net, pts, y, jty_ref);

  const std::vector<Real> theta = as<Real>(net.theta), ur = as<Real>(u), yr = as<Real>(y);
  const std::vector<Real> x = as<Real>(pts.x), alpha = as<Real>(pts.alpha), beta = as<Real>(pts.beta),
                          gamma = as<Real>(pts.gamma), f = as<Real>(pts.f), dv = as<Real>(pts.dirs);
  const DeviceRows<Real> all{x.data(), alpha.data(), beta.data(), gamma.data(),
                             f.data(), nullptr,      n,           dv.empty() ? nullptr : dv.data()};
  std::vector<Real> scratch(static_cast<size_t>(chunk) * layerwise::scratch_per_row(nd));
  std::vector<Real> ju(n, Real(-7)), jty(P, Real(-7));
  HostExec<Real> ex;
  for (int k0 = 0; k0 < n; k0 += chunk) {
    const int count = std::min(chunk, n - k0);
    const DeviceRows<Real> rows = slice_rows(all, static_cast<size_t>(k0), count, pts.dim);
    std::fill(scratch.begin(), scratch.end(), Real(NAN));
    layerwise::jacobian_times(ex, nd, theta.data(), ur.data(), rows, layerwise::Scratch<Real>{scratch.data(), count},
                              ju.data() + k0);
    std::fill(scratch.begin(), scratch.end(), Real(NAN));
    layerwise::jacobian_transpose_times(ex, nd, theta.data(), rows, yr.data() + k0,
                                        layerwise::Scratch<Real>{scratch.data(), count}, Real(k0 == 0 ? 0 : 1),
                                        jty.data());
  }
  const double rtol = sizeof(Real) == 8 ? 1e-12 : 2e-5;
  const std::string what = problem + (dirs ? " own directions" : "") + (sizeof(Real) == 8 ? " fp64" : " fp32") +
                           ", chunks of " + std::to_string(chunk);
  EXPECT_TRUE(all_near(std::vector<double>(ju.begin(), ju.end()), ju_ref, rtol)) << what << ": J u";
  EXPECT_TRUE(all_near(std::vector<double>(jty.begin(), jty.end()), jty_ref, rtol)) << what << ": J^T y";
  EXPECT_GT(ex.gemms, 0);
}

TEST(LayerwiseProducts, OneDimensionMatchesTheCpuBackend) {
  check<double>("darcy-twoscale", {1, 40, 40, 40, 1}, 37, 16, false);  // 39 rows: chunks of 16, 16, 7
  check<double>("darcy-twoscale", {1, 7, 9, 1}, 37, 39, false);        // one chunk
  check<float>("darcy-twoscale", {1, 40, 40, 1}, 37, 16, false);
}

TEST(LayerwiseProducts, TwoAndThreeDimensionsAlongTheAxesAndTheirOwnDirections) {
  for (const bool dirs : {false, true}) {
    check<double>("poisson2d-sines", {2, 12, 9, 1}, 20, 11, dirs);
    check<double>("poisson3d-sines", {3, 8, 10, 1}, 20, 9, dirs);
    check<float>("poisson2d-sines", {2, 12, 9, 1}, 20, 11, dirs);
  }
}

}  // namespace
}  // namespace pinntk
