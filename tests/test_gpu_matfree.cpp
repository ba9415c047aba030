// The CUDA backend's matrix-free NTK products (DESIGN.md section 8; label gpu, skipped without a device): J u by the
// warp tangent kernel (cuda/matvec.cu) and J^T y by the seeded loss-gradient kernel (launch_seeded_partials) against
// the CPU backend's products and against the formed Jacobian (residuals_jacobian), on 1-, 2- and 3-D presets with row
// counts no block size divides; the rows kept on the device across calls (a new theta, then new rows); J^T y cut into
// chunks of rows; and Lanczos (ntk_top_eigen) on the CUDA products against the CPU backend's. The same checks a layer
// at a time (cuda/layerwise.hpp: cuBLAS GEMMs between elementwise kernels), in one chunk and in several.
#include <gtest/gtest.h>

#include <cmath>      // std::sqrt, NAN
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string
#include <vector>     // std::vector

#include "host/backend.hpp"            // make_cuda_backend, make_cpu_backend
#include "host/cuda/cuda_backend.hpp"  // set_layerwise_products, LayerwiseProducts
#include "host/mlp.hpp"                // init_mlp
#include "host/ntk.hpp"                // ntk_row_weights, NtkScaling
#include "host/ntk_lanczos.hpp"        // ntk_top_eigen
#include "host/problem.hpp"            // problem_preset, build_points
#include "host/rng.hpp"                // Rng
#include "tests/gpu_skip.hpp"          // SKIP_WITHOUT_GPU
#include "tests/near.hpp"              // all_near
#include "tests/random_net.hpp"        // random_net: nonzero biases

namespace pinntk {
namespace {

using testing::all_near;

struct Case {
  Mlp net;
  PointSet pts;
};

Case preset_case(const std::string& preset, int nc, int nb, const std::vector<int>& layers, uint64_t seed = 5) {
  ProblemSpec spec = problem_preset(preset);
  spec.nc = nc;
  spec.nb = nb;
  return {testing::random_net(layers, static_cast<unsigned>(seed)), build_points(spec)};
}

std::vector<double> normals(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& e : v) e = rng.normal();
  return v;
}

// J u and J^T y of the CUDA backend (fp64) against the CPU backend's and the formed J's, each entry within rtol of
// its product's rounding bound (a row of J u: |J_i| |u|; J^T y: |J|_F |y|), whatever the cancellation in it.
void check_products(Backend& gpu, Backend& cpu, const Case& c, uint64_t seed, double rtol = 1e-12) {
  const int n = c.pts.size(), P = c.net.n_params();
  SCOPED_TRACE("dim " + std::to_string(c.pts.dim) + ", N = " + std::to_string(n) + ", P = " + std::to_string(P));
  const std::vector<double> y = normals(n, seed), u = normals(P, seed + 1);
  std::vector<double> ju(n, NAN), jty(P, NAN), ju_cpu(n), jty_cpu(P);
  gpu.jacobian_times(c.net, c.pts, u, ju);
  gpu.jacobian_transpose_times(c.net, c.pts, y, jty);
  cpu.jacobian_times(c.net, c.pts, u, ju_cpu);
  cpu.jacobian_transpose_times(c.net, c.pts, y, jty_cpu);

  std::vector<double> r(n), J(static_cast<size_t>(n) * P), gr(n), gJ(J.size());
  cpu.residuals_jacobian(c.net, c.pts, r, J);
  gpu.residuals_jacobian(c.net, c.pts, gr, gJ);
  double norm_u2 = 0.0, norm_y2 = 0.0, norm_J2 = 0.0;
  for (const double e : u) norm_u2 += e * e;
  for (const double e : y) norm_y2 += e * e;
  std::vector<double> jty_formed(P, 0.0);
  for (int i = 0; i < n; ++i) {
    double row2 = 0.0, ju_formed = 0.0;
    for (int q = 0; q < P; ++q) {
      const double Jiq = J[static_cast<size_t>(i) * P + q];
      row2 += Jiq * Jiq;
      ju_formed += Jiq * u[q];
      jty_formed[q] += Jiq * y[i];
    }
    norm_J2 += row2;
    const double bound = rtol * std::sqrt(row2 * norm_u2);
    EXPECT_NEAR(ju[i], ju_cpu[i], bound) << "J u, row " << i << " (CPU backend)";
    EXPECT_NEAR(ju[i], ju_formed, bound) << "J u, row " << i << " (formed J)";
  }
  const double bound = rtol * std::sqrt(norm_J2 * norm_y2);
  for (int q = 0; q < P; ++q) {
    EXPECT_NEAR(jty[q], jty_cpu[q], bound) << "J^T y, parameter " << q << " (CPU backend)";
    EXPECT_NEAR(jty[q], jty_formed[q], bound) << "J^T y, parameter " << q << " (formed J)";
  }
  EXPECT_TRUE(all_near(gJ, J, 1e-12)) << "the GPU's formed J";

  // The same call again: the cached rows and the fixed-order reduction give the same bits.
  std::vector<double> again(P, NAN);
  gpu.jacobian_transpose_times(c.net, c.pts, y, again);
  EXPECT_EQ(again, jty);
}

TEST(GpuMatfree, ProductsMatchCpuAndFormedJacobian) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  auto cpu = make_cpu_backend(0);
  // 1-D: a small darcy-twoscale, the 1x50 and 4x40 networks (4x40: the width-40 layers of 32 + 8 lanes); 2-D and 3-D
  // presets; row counts of 39, 203, 97 and 118 (no warp count per block divides them).
  const std::vector<Case> cases = {preset_case("darcy-twoscale", 37, 2, {1, 8, 8, 1}),
                                   preset_case("darcy-twoscale", 201, 2, {1, 50, 1}),
                                   preset_case("darcy-twoscale", 201, 2, {1, 40, 40, 40, 40, 1}),
                                   preset_case("darcy2d-twoscale", 49, 48, {2, 6, 5, 1}),
                                   preset_case("darcy2d-twoscale", 49, 48, {2, 40, 40, 40, 40, 1}),
                                   preset_case("poisson3d-sines", 64, 54, {3, 5, 4, 1}),
                                   preset_case("poisson3d-sines", 64, 54, {3, 40, 40, 1})};
  uint64_t seed = 11;
  for (const Case& c : cases) check_products(*gpu, *cpu, c, seed += 2);
}

// The rows stay on the device between calls: a new theta of the same shape, new rows, another shape, then the first
// case again each give the CPU backend's products.
TEST(GpuMatfree, CachedRowsFollowTheArguments) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  auto cpu = make_cpu_backend(0);
  const Case a = preset_case("darcy-twoscale", 60, 2, {1, 9, 7, 1});
  Case b = a;
  b.net = init_mlp(a.net.layers, "glorot-normal", 99);  // another theta
  Case c = a;
  c.pts.x[3] += 0.125;  // one row moved
  c.pts.gamma[61] = 2.0;
  const Case d = preset_case("darcy2d-twoscale", 49, 48, {2, 7, 1});
  uint64_t seed = 41;
  for (const Case* k : std::vector<const Case*>{&a, &b, &c, &d, &a}) check_products(*gpu, *cpu, *k, seed += 2);
}

// J^T y in several chunks of rows (the partials of 4x40 at N = 20000 exceed one chunk's budget: full chunks and a
// short tail, each reduced and added in order) against the CPU backend; J u over the same rows.
TEST(GpuMatfree, ChunkedTransposeProductMatchesCpu) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  auto cpu = make_cpu_backend(0);
  const Case c = preset_case("darcy-twoscale", 19998, 2, {1, 40, 40, 40, 40, 1});
  const int n = c.pts.size(), P = c.net.n_params();
  const std::vector<double> y = normals(n, 3), u = normals(P, 4);
  std::vector<double> jty(P, NAN), jty_cpu(P), ju(n, NAN), ju_cpu(n);
  gpu->jacobian_transpose_times(c.net, c.pts, y, jty);
  cpu->jacobian_transpose_times(c.net, c.pts, y, jty_cpu);
  gpu->jacobian_times(c.net, c.pts, u, ju);
  cpu->jacobian_times(c.net, c.pts, u, ju_cpu);
  EXPECT_TRUE(all_near(jty, jty_cpu, 1e-12));
  EXPECT_TRUE(all_near(ju, ju_cpu, 1e-12));
  std::vector<double> again(P, NAN);
  gpu->jacobian_transpose_times(c.net, c.pts, y, again);
  EXPECT_EQ(again, jty);
}

// J u and J^T y of a fp32 backend against the CPU backend's, to about 1e-5 of the products' magnitude.
void check_single(Backend& gpu, Backend& cpu, const Case& c) {
  const int n = c.pts.size(), P = c.net.n_params();
  const std::vector<double> y = normals(n, 7), u = normals(P, 8);
  std::vector<double> jty(P, NAN), jty_cpu(P), ju(n, NAN), ju_cpu(n);
  gpu.jacobian_transpose_times(c.net, c.pts, y, jty);
  cpu.jacobian_transpose_times(c.net, c.pts, y, jty_cpu);
  gpu.jacobian_times(c.net, c.pts, u, ju);
  cpu.jacobian_times(c.net, c.pts, u, ju_cpu);
  EXPECT_TRUE(all_near(jty, jty_cpu, 1e-4)) << "J^T y, dim " << c.pts.dim;
  EXPECT_TRUE(all_near(ju, ju_cpu, 1e-4)) << "J u, dim " << c.pts.dim;
}

// fp32: the same kernels in single precision.
TEST(GpuMatfree, SinglePrecisionProductsMatchCpu) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(true);
  auto cpu = make_cpu_backend(0);
  for (const Case& c :
       {preset_case("darcy-twoscale", 101, 2, {1, 40, 40, 1}), preset_case("poisson3d-sines", 64, 54, {3, 6, 6, 1})})
    check_single(*gpu, *cpu, c);
}

// Vectors of the wrong size are refused before anything runs.
TEST(GpuMatfree, RefusesVectorsOfTheWrongSize) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const Case c = preset_case("darcy-twoscale", 20, 2, {1, 5, 1});
  const int n = c.pts.size(), P = c.net.n_params();
  std::vector<double> rows(n), params(P), short_rows(n - 1), short_params(P - 1);
  EXPECT_THROW(gpu->jacobian_times(c.net, c.pts, short_params, rows), std::invalid_argument);
  EXPECT_THROW(gpu->jacobian_times(c.net, c.pts, params, short_rows), std::invalid_argument);
  EXPECT_THROW(gpu->jacobian_transpose_times(c.net, c.pts, short_rows, params), std::invalid_argument);
  EXPECT_THROW(gpu->jacobian_transpose_times(c.net, c.pts, rows, short_params), std::invalid_argument);
}

// Lanczos on the CUDA products against the CPU backend's: the top eigenvalues of K_s (N <= P) and of the Gram
// (N > P), 1-D and 2-D.
TEST(GpuMatfree, LanczosTopEigenMatchesCpu) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  auto cpu = make_cpu_backend(0);
  const std::vector<Case> cases = {preset_case("darcy-twoscale", 30, 2, {1, 8, 8, 1}),
                                   preset_case("darcy-twoscale", 200, 2, {1, 6, 6, 1}),
                                   preset_case("darcy2d-twoscale", 49, 48, {2, 6, 5, 1})};
  const int k = 5;
  for (const Case& c : cases) {
    SCOPED_TRACE("dim " + std::to_string(c.pts.dim) + ", N = " + std::to_string(c.pts.size()) +
                 ", P = " + std::to_string(c.net.n_params()));
    const std::vector<double> d = ntk_row_weights(c.pts, NtkScaling::Lemma);
    const TopEigen g = ntk_top_eigen(*gpu, c.net, c.pts, d, k, false);
    const TopEigen h = ntk_top_eigen(*cpu, c.net, c.pts, d, k, false);
    EXPECT_EQ(g.dim, h.dim);
    EXPECT_EQ(g.gram, h.gram);
    EXPECT_EQ(g.converged, k);
    ASSERT_EQ(g.values.size(), h.values.size());
    for (int i = 0; i < k; ++i) EXPECT_NEAR(g.values[i], h.values[i], 1e-10 * h.values[0]) << i;
  }
}

// Restores the products' automatic choice however a test ends.
struct LayerwiseMode {
  LayerwiseMode(LayerwiseProducts mode, int chunk_rows) { set_layerwise_products(mode, chunk_rows); }
  LayerwiseMode(const LayerwiseMode&) = delete;
  LayerwiseMode& operator=(const LayerwiseMode&) = delete;
  ~LayerwiseMode() { set_layerwise_products(LayerwiseProducts::kAuto); }
};

// A layer at a time: the products of narrow and wide networks (width 160: the automatic choice's case), 1-, 2- and
// 3-D, rows with their own directions, in one chunk and in chunks of 23 rows (a short last one), against the CPU
// backend's and the formed J's; then fp32.
TEST(GpuMatfree, LayerwiseProductsMatchCpuAndFormedJacobian) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_cpu_backend(0);
  Case tensor = preset_case("poisson2d-sines", 49, 48, {2, 12, 70, 1});
  const std::vector<double> v = normals(static_cast<size_t>(tensor.pts.size()) * 4, 77);
  tensor.pts.dirs = v;  // each row's own two directions
  const std::vector<Case> cases = {preset_case("darcy-twoscale", 37, 2, {1, 8, 8, 1}),
                                   preset_case("darcy-twoscale", 201, 2, {1, 40, 40, 40, 40, 1}),
                                   preset_case("darcy-twoscale", 101, 2, {1, 160, 160, 1}),
                                   preset_case("darcy2d-twoscale", 49, 48, {2, 6, 5, 1}),
                                   preset_case("poisson3d-sines", 64, 54, {3, 40, 70, 1}),
                                   tensor};
  for (const int chunk : {0, 23}) {
    SCOPED_TRACE("chunk rows " + std::to_string(chunk));
    const LayerwiseMode on(LayerwiseProducts::kOn, chunk);
    auto gpu = make_cuda_backend(false);
    uint64_t seed = 61;
    for (const Case& c : cases) check_products(*gpu, *cpu, c, seed += 2);
    auto single = make_cuda_backend(true);
    for (const Case& c : {cases[1], tensor}) check_single(*single, *cpu, c);
  }
}

// Lanczos on the layer-at-a-time products of a wide network (the automatic choice) against the CPU backend's.
TEST(GpuMatfree, LanczosOnAWideNetworkMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const LayerwiseMode automatic(LayerwiseProducts::kAuto, 0);
  auto gpu = make_cuda_backend(false);
  auto cpu = make_cpu_backend(0);
  const Case c = preset_case("darcy-twoscale", 300, 2, {1, 96, 96, 1});
  const std::vector<double> d = ntk_row_weights(c.pts, NtkScaling::Lemma);
  const TopEigen g = ntk_top_eigen(*gpu, c.net, c.pts, d, 5, false);
  const TopEigen h = ntk_top_eigen(*cpu, c.net, c.pts, d, 5, false);
  EXPECT_EQ(g.converged, 5);
  ASSERT_EQ(g.values.size(), h.values.size());
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(g.values[i], h.values[i], 1e-10 * h.values[0]) << i;
}

}  // namespace
}  // namespace pinntk
