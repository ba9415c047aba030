// The CUDA backend on networks of n = 2 and 3 inputs (DESIGN.md section 7: rows along the coordinate axes, the tile
// kernels' direction-count instances M = n) against the CPU backend on random points and coefficients (label gpu;
// skipped without a device): evaluation, residuals and Jacobian, loss and gradient, the sessions; every tile size,
// weight placement and compile-time path; n = 1 through the same tests; refusals of shapes and points the kernels do
// not take. fp64 agrees to about 1e-12 of the quantity's magnitude, fp32 to about 1e-5 (1e-4 for the gradient).
#include <gtest/gtest.h>

#include <cmath>      // NAN
#include <cstdint>    // uint64_t
#include <random>     // std::mt19937_64, std::uniform_real_distribution
#include <stdexcept>  // std::invalid_argument
#include <vector>     // std::vector

#include "cuda/tile_plan.hpp"    // make_net_desc, set_tile_points_override, set_weight_staging, set_fast_paths
#include "host/backend.hpp"      // make_cuda_backend, make_cpu_backend, cuda_device_count
#include "tests/gpu_skip.hpp"    // SKIP_WITHOUT_GPU
#include "tests/near.hpp"        // all_near, near
#include "tests/random_net.hpp"  // random_net: nonzero biases

namespace pinntk {
namespace {

using testing::all_near;
using testing::near;

// nc collocation rows (alpha < 0 per axis as in divergence form, beta and gamma of either sign) and nb boundary rows
// (gamma = 1) at random points of [-1, 1]^dim; targets at random, weights 1/nc and 10/nb.
PointSet random_points(int dim, int nc, int nb, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  PointSet p;
  p.dim = dim;
  p.nc = nc;
  p.nb = nb;
  const int n = nc + nb;
  for (int k = 0; k < n; ++k) {
    const bool interior = k < nc;
    for (int i = 0; i < dim; ++i) {
      p.x.push_back(u(g));
      p.alpha.push_back(interior ? -1.25 + 0.75 * u(g) : 0.0);
      p.beta.push_back(interior ? u(g) : 0.0);
    }
    p.gamma.push_back(interior ? 0.5 * u(g) : 1.0);
    p.f.push_back(u(g));
    p.w.push_back(interior ? 1.0 / nc : 10.0 / nb);
  }
  return p;
}

// Tolerances relative to the quantity's magnitude: fp64 (rounding of other summation orders and FMA contraction),
// fp32 (the kernels' arithmetic in single precision), and the fp32 gradient (sums of N rounded terms).
double tol(bool single) { return single ? 1e-5 : 1e-12; }
double grad_tol(bool single) { return single ? 1e-4 : 1e-12; }

// evaluate, residuals_jacobian and loss_gradient of the CUDA backend against the CPU backend's, outputs poisoned with
// NaN so that an unwritten entry fails.
void check_backend(bool single, const std::vector<int>& layers, int nc, int nb, uint64_t seed) {
  const int dim = layers.front();
  const PointSet pts = random_points(dim, nc, nb, seed);
  const Mlp net = testing::random_net(layers, static_cast<unsigned>(seed + 7));
  const int n = pts.size();
  const size_t P = net.theta.size(), nd = static_cast<size_t>(n) * dim;
  auto cpu = make_cpu_backend(1);
  auto gpu = make_cuda_backend(single);
  SCOPED_TRACE(::testing::Message() << (single ? "fp32" : "fp64") << ", n = " << dim << ", layers[1] = " << layers[1]
                                    << ", " << layers.size() - 2 << " hidden layers, N = " << n);

  std::vector<double> u(n), du(nd), d2u(nd), gu(n, NAN), gdu(nd, NAN), gd2u(nd, NAN);
  cpu->evaluate(net, pts.x, u, du, d2u);
  gpu->evaluate(net, pts.x, gu, gdu, gd2u);
  EXPECT_TRUE(all_near(gu, u, tol(single))) << "u";
  EXPECT_TRUE(all_near(gdu, du, tol(single))) << "D_i u";
  EXPECT_TRUE(all_near(gd2u, d2u, tol(single))) << "D_i^2 u";

  std::vector<double> r(n), J(static_cast<size_t>(n) * P), gr(n, NAN), gJ(J.size(), NAN);
  cpu->residuals_jacobian(net, pts, r, J);
  gpu->residuals_jacobian(net, pts, gr, gJ);
  EXPECT_TRUE(all_near(gr, r, tol(single))) << "r";
  EXPECT_TRUE(all_near(gJ, J, tol(single))) << "J";

  std::vector<double> g(P), r2(n), gg(P, NAN), gr2(n, NAN);
  const double loss = cpu->loss_gradient(net, pts, r2, g);
  const double gloss = gpu->loss_gradient(net, pts, gr2, gg);
  EXPECT_TRUE(near(gloss, loss, loss, grad_tol(single))) << "loss";
  EXPECT_TRUE(all_near(gg, g, grad_tol(single))) << "gradient";
  EXPECT_TRUE(all_near(gr2, r, tol(single))) << "residuals of the gradient pass";
}

// The shapes: the generic kernel (odd widths), the compile-time width-40 path (hidden layers all 40 wide), widths
// that a tile cannot hold many points of.
const std::vector<std::vector<int>>& shapes(int n) {
  static const std::vector<std::vector<int>> s1 = {{1, 16, 16, 1}, {1, 40, 40, 1}, {1, 7, 5, 1}};
  static const std::vector<std::vector<int>> s2 = {{2, 16, 16, 1}, {2, 7, 5, 1}, {2, 40, 40, 40, 1}, {2, 64, 64, 1}};
  static const std::vector<std::vector<int>> s3 = {{3, 40, 40, 1}, {3, 7, 5, 1}, {3, 16, 16, 1}, {3, 33, 1}};
  return n == 1 ? s1 : n == 2 ? s2 : s3;
}

TEST(GpuNd, BackendMatchesCpuFp64) {
  SKIP_WITHOUT_GPU();
  for (int n : {2, 3})
    for (const auto& layers : shapes(n)) check_backend(false, layers, 301, 36, 10 * n + layers[1]);
}

TEST(GpuNd, BackendMatchesCpuFp32) {
  SKIP_WITHOUT_GPU();
  for (int n : {2, 3})
    for (const auto& layers : shapes(n)) check_backend(true, layers, 301, 36, 10 * n + layers[1]);
}

TEST(GpuNd, OneDimensionalRowsThroughTheSameChecks) {
  // n = 1 through the helpers above: the M = 1 kernels, which are the 1-D kernels (GpuKernels.* check them further).
  SKIP_WITHOUT_GPU();
  for (const bool single : {false, true})
    for (const auto& layers : shapes(1)) check_backend(single, layers, 301, 2, 5 + layers[1]);
}

// Restores the tiling knobs of cuda/tile_plan.hpp however the test ends.
struct TileKnobs {
  TileKnobs() = default;
  TileKnobs(const TileKnobs&) = delete;
  TileKnobs& operator=(const TileKnobs&) = delete;
  ~TileKnobs() {
    set_tile_points_override(0);
    set_weight_staging(true);
    set_fast_paths(true);
  }
};

TEST(GpuNd, EveryTileSizeWeightPlacementAndPathMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const TileKnobs restore;
  for (const bool fast : {true, false}) {
    set_fast_paths(fast);
    for (const bool staged : {true, false}) {
      set_weight_staging(staged);
      for (const int T : {1, 3, 8}) {
        set_tile_points_override(T);
        SCOPED_TRACE(::testing::Message() << "fast paths " << fast << ", staged " << staged << ", T = " << T);
        check_backend(false, {2, 40, 40, 40, 1}, 61, 8, 3);
        check_backend(false, {3, 7, 33, 1}, 29, 6, 4);
        check_backend(true, {3, 40, 40, 1}, 61, 6, 5);
      }
    }
  }
}

TEST(GpuNd, EveryFastWidthMatchesCpu) {
  // The compile-time width-40 path of n > 1 (tile_dispatch.cuh) and the generic kernel that the other widths of the
  // 1-D fast paths take in n-D.
  SKIP_WITHOUT_GPU();
  for (const int n : {2, 3})
    for (const int w : {40, 50, 60, 64, 128}) {
      check_backend(false, {n, w, 1}, 45, 6, 100 + w);
      check_backend(false, {n, w, w, 1}, 45, 6, 200 + w);
      check_backend(true, {n, w, w, 1}, 45, 6, 300 + w);
    }
}

TEST(GpuNd, SessionsMatchCpu) {
  // The Adam session (evaluate, loss_gradient_at) and the LM session (loss, Gram scale) on n-dimensional rows.
  SKIP_WITHOUT_GPU();
  for (const int n : {2, 3}) {
    const std::vector<int> layers = {n, 16, 16, 1};
    const PointSet pts = random_points(n, 120, 24, 40 + n);
    const Mlp net = init_mlp(layers, "glorot-normal", 9), at = init_mlp(layers, "glorot-normal", 10);
    const size_t P = net.theta.size(), nd = static_cast<size_t>(pts.size()) * n;
    auto cpu = make_cpu_backend(1);
    auto gpu = make_cuda_backend(false);
    auto s = gpu->train_session(net, pts, AdamConfig{});
    std::vector<double> u(pts.size()), du(nd), d2u(nd), gu(u.size(), NAN), gdu(nd, NAN), gd2u(nd, NAN);
    cpu->evaluate(net, pts.x, u, du, d2u);
    s->evaluate(pts.x, gu, gdu, gd2u);
    EXPECT_TRUE(all_near(gu, u, 1e-12)) << "n = " << n;
    EXPECT_TRUE(all_near(gdu, du, 1e-12)) << "n = " << n;
    EXPECT_TRUE(all_near(gd2u, d2u, 1e-12)) << "n = " << n;
    std::vector<double> r(pts.size()), g(P), gg(P, NAN);
    const double loss = cpu->loss_gradient(at, pts, r, g);
    const double gloss = s->loss_gradient_at(at.theta, gg);
    EXPECT_TRUE(near(gloss, loss, loss, 1e-12)) << "n = " << n;
    EXPECT_TRUE(all_near(gg, g, 1e-12)) << "n = " << n;
    EXPECT_TRUE(std::isfinite(s->run(5, 1e-3))) << "n = " << n;
    for (const bool sample : {true, false}) {
      auto a = cpu->lm_session(net, pts, sample), b = gpu->lm_session(net, pts, sample);
      EXPECT_TRUE(near(b->loss(), a->loss(), a->loss(), 1e-12)) << "n = " << n << ", sample " << sample;
      EXPECT_TRUE(near(b->max_diagonal(), a->max_diagonal(), a->max_diagonal(), 1e-12))
          << "n = " << n << ", sample " << sample;
    }
  }
}

TEST(GpuNd, ShapesAndPointsTheKernelsDoNotTakeAreRefused) {
  // Host-side checks of the descriptor, no device needed: 1 to 3 inputs, one output.
  EXPECT_THROW(make_net_desc({0, 8, 1}), std::invalid_argument);
  EXPECT_THROW(make_net_desc({4, 8, 1}), std::invalid_argument);
  EXPECT_THROW(make_net_desc({2, 8, 2}), std::invalid_argument);
  for (const int n : {1, 2, 3}) {
    const NetDesc d = make_net_desc({n, 8, 5, 1});
    EXPECT_EQ(d.n_in(), n);
    EXPECT_EQ(d.tape, (1 + 4 * n) * (8 + 5));
    EXPECT_EQ(d.adj(), 2 * (1 + 2 * n) * 8);
    EXPECT_EQ(d.P, 8 * n + 8 + 5 * 8 + 5 + 5 + 1);
  }
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const Mlp net2 = init_mlp({2, 8, 1}, "glorot-normal", 1);
  std::vector<double> r(20), J(20 * net2.theta.size()), g(net2.theta.size());
  // Points of another dimension than the network's input width.
  const PointSet p3 = random_points(3, 16, 4, 1);
  EXPECT_THROW(gpu->residuals_jacobian(net2, p3, r, J), std::invalid_argument);
  EXPECT_THROW(gpu->loss_gradient(net2, p3, r, g), std::invalid_argument);
  EXPECT_THROW(gpu->train_session(net2, p3, AdamConfig{}), std::invalid_argument);
  EXPECT_THROW(gpu->lm_session(net2, p3, true), std::invalid_argument);
  // Arrays that do not hold their rows.
  PointSet short_beta = random_points(2, 16, 4, 2);
  short_beta.beta.pop_back();
  EXPECT_THROW(gpu->residuals_jacobian(net2, short_beta, r, J), std::invalid_argument);
  // x not a whole number of points, and a network of four inputs.
  std::vector<double> x(7, 0.5), u(4), du(8), d2u(8);
  EXPECT_THROW(gpu->evaluate(net2, x, u, du, d2u), std::invalid_argument);
  Mlp net4;
  net4.layers = {4, 8, 1};
  net4.theta.assign(net4.n_params(), 0.1);
  std::vector<double> u2(2), du2(8), d2u2(8);
  EXPECT_THROW(gpu->evaluate(net4, std::vector<double>(8, 0.5), u2, du2, d2u2), std::invalid_argument);
}

// Rows with their own Taylor directions (a full coefficient tensor, PointSet::dirs; random, not orthonormal): the
// tile kernels' first layer along each row's v_k, J u's layer 0, the batch's concatenated directions (a member on
// the axes beside one with directions of its own), against the CPU backend.
PointSet with_directions(PointSet p, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  p.dirs.resize(static_cast<size_t>(p.size()) * p.dim * p.dim);
  for (double& v : p.dirs) v = u(g);
  return p;
}

TEST(GpuNd, RowsWithTheirOwnDirectionsMatchCpu) {
  SKIP_WITHOUT_GPU();
  auto cpu = make_cpu_backend(1);
  for (const int n : {2, 3})
    for (const bool single : {false, true})
      for (const std::vector<int>& layers : {std::vector<int>{n, 40, 40, 1}, std::vector<int>{n, 7, 33, 1}}) {
        SCOPED_TRACE(::testing::Message() << (single ? "fp32" : "fp64") << ", n = " << n << ", width " << layers[1]);
        const PointSet pts = with_directions(random_points(n, 97, 20, 50 + n), 60 + n);
        const Mlp net = testing::random_net(layers, 3);
        const size_t N = pts.size(), P = net.theta.size();
        auto gpu = make_cuda_backend(single);
        std::vector<double> r(N), J(N * P), gr(N, NAN), gJ(J.size(), NAN);
        cpu->residuals_jacobian(net, pts, r, J);
        gpu->residuals_jacobian(net, pts, gr, gJ);
        EXPECT_TRUE(all_near(gr, r, tol(single))) << "r";
        EXPECT_TRUE(all_near(gJ, J, tol(single))) << "J";
        std::vector<double> g(P), gg(P, NAN);
        const double loss = cpu->loss_gradient(net, pts, r, g);
        EXPECT_TRUE(near(gpu->loss_gradient(net, pts, gr, gg), loss, loss, grad_tol(single))) << "loss";
        EXPECT_TRUE(all_near(gg, g, grad_tol(single))) << "gradient";
        std::vector<double> y(N), v(P), jty(P), ju(N), gjty(P, NAN), gju(N, NAN);
        for (size_t k = 0; k < N; ++k) y[k] = std::sin(0.3 * static_cast<double>(k));
        for (size_t p = 0; p < P; ++p) v[p] = std::cos(0.7 * static_cast<double>(p));
        cpu->jacobian_transpose_times(net, pts, y, jty);
        gpu->jacobian_transpose_times(net, pts, y, gjty);
        cpu->jacobian_times(net, pts, v, ju);
        gpu->jacobian_times(net, pts, v, gju);
        EXPECT_TRUE(all_near(gjty, jty, grad_tol(single))) << "J^T y";
        EXPECT_TRUE(all_near(gju, ju, tol(single))) << "J u";
        if (single) continue;
        const Mlp small = init_mlp({n, 6, 6, 1}, "glorot-normal", 5);  // P < N: the chunked Gram's case
        const std::vector<double> d(N, 1.0);
        const NtkResult a = cpu->ntk_chunked(small, pts, d, 40), b = gpu->ntk_chunked(small, pts, d, 40);
        EXPECT_TRUE(near(b.frobenius_K, a.frobenius_K, a.frobenius_K, 1e-12)) << "||K||_F, chunked";
        EXPECT_TRUE(all_near(b.spectrum_Kuu, a.spectrum_Kuu, 1e-12)) << "spectrum of K_uu, chunked";
        auto la = cpu->lm_session(net, pts, true), lb = gpu->lm_session(net, pts, true);
        EXPECT_TRUE(near(lb->loss(), la->loss(), la->loss(), 1e-12)) << "LM loss";
        // A batch: member 0 on the rows' directions, member 1 on the axes (the batch fills in the identity).
        PointSet axes = pts;
        axes.dirs.clear();
        const Mlp other = init_mlp(layers, "glorot-normal", 4);
        auto batch = gpu->batch_train_session({net, other}, {pts, axes}, AdamConfig{});
        std::vector<double> g0(P, NAN), g1(P, NAN), ref1(P);
        const double l0 = batch->member(0).loss_gradient_at(net.theta, g0);
        const double l1 = batch->member(1).loss_gradient_at(other.theta, g1);
        const double ref_l1 = cpu->loss_gradient(other, axes, r, ref1);
        EXPECT_TRUE(near(l0, loss, loss, 1e-12)) << "batch member 0's loss";
        EXPECT_TRUE(all_near(g0, g, 1e-12)) << "batch member 0's gradient";
        EXPECT_TRUE(near(l1, ref_l1, ref_l1, 1e-12)) << "batch member 1's loss";
        EXPECT_TRUE(all_near(g1, ref1, 1e-12)) << "batch member 1's gradient";
      }
}

TEST(GpuNd, RowsWithDirectionsThatDoNotFitAreRefused) {
  SKIP_WITHOUT_GPU();
  auto gpu = make_cuda_backend(false);
  const Mlp net = init_mlp({2, 8, 1}, "glorot-normal", 1);
  PointSet p = with_directions(random_points(2, 16, 4, 1), 2);
  p.dirs.pop_back();
  std::vector<double> r(20), J(20 * net.theta.size());
  EXPECT_THROW(gpu->residuals_jacobian(net, p, r, J), std::invalid_argument);
  const Mlp net1 = init_mlp({1, 8, 1}, "glorot-normal", 1);
  PointSet one = random_points(1, 16, 4, 3);
  one.dirs.assign(20, 1.0);  // directions in one coordinate: nothing the kernels take
  EXPECT_THROW(gpu->residuals_jacobian(net1, one, r, J), std::invalid_argument);
}

}  // namespace
}  // namespace pinntk
