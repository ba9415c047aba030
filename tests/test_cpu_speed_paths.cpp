// The fast paths of the CPU gradient (host/cpu_batched.cpp) against the full one: rows grouped by the derivative
// order they need (1-channel chunks for boundary and regression rows, no second-derivative channels where alpha = 0),
// the vectorized instruction sets, the OpenMP split of the rows, and the chunk size; the matrix-free products J u and
// J^T y through the same passes.
#include <gtest/gtest.h>
#include <omp.h>  // omp_get_max_threads, omp_set_num_threads

#include <algorithm>  // std::max
#include <cmath>      // std::fabs, std::sqrt, std::sin, std::cos, std::nan
#include <cstdint>    // uint64_t
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string
#include <vector>     // std::vector

#include "common/errors.hpp"           // UsageError
#include "common/mlp_math_nd.hpp"      // mlp_forward_point_nd, mlp_tape_size_nd
#include "host/backend.hpp"            // make_cpu_backend
#include "host/cpu_batched.hpp"        // batched_loss_gradient, batched_sample_gram, BatchedWorkspace, ...
#include "host/mlp.hpp"                // init_mlp
#include "host/ntk.hpp"                // ntk_exact_memory_bytes, ntk_memory_bytes, plan_ntk
#include "host/problem.hpp"            // build_points, problem_preset
#include "tests/batched_settings.hpp"  // testing::for_each_batched_setting
#include "tests/near.hpp"              // testing::near, testing::all_near

namespace pinntk {
namespace {

struct Result {
  double loss;
  std::vector<double> r, g;
};

Result run(const Mlp& net, const PointSet& pts, BatchedWorkspace& ws, int chunk = 256) {
  Result out{0.0, std::vector<double>(pts.size()), std::vector<double>(net.n_params())};
  out.loss = batched_loss_gradient(net, pts, out.r, out.g, ws, chunk);
  return out;
}

// loss relative to itself, residuals and gradient relative to their largest entries.
void expect_close(const Result& a, const Result& b, double rtol, const std::string& what) {
  EXPECT_TRUE(testing::near(a.loss, b.loss, b.loss, rtol)) << what;
  EXPECT_TRUE(testing::all_near(a.r, b.r, rtol)) << what;
  EXPECT_TRUE(testing::all_near(a.g, b.g, rtol)) << what;
}

// Sets the OpenMP thread count for the scope.
struct Threads {
  explicit Threads(int n) : saved(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~Threads() { omp_set_num_threads(saved); }
  int saved;
};

PointSet points(const std::string& preset, int nc) {
  ProblemSpec spec = problem_preset(preset);
  spec.nc = nc;
  return build_points(spec);
}

// Gives every row of `rows` Taylor directions of its own: row k's direction i is the unit vector along
// cos(0.9 (k dim + i) + 1.3 j + 0.2), j = 0 .. dim-1.
void add_unit_directions(PointSet& rows) {
  const int m = rows.dim;
  for (int k = 0; k < rows.size() * m; ++k) {  // row k / m's direction k % m
    double v[3], s = 0.0;
    for (int j = 0; j < m; ++j) {
      v[j] = std::cos(0.9 * k + 1.3 * j + 0.2);
      s += v[j] * v[j];
    }
    for (int j = 0; j < m; ++j) rows.dirs.push_back(v[j] / std::sqrt(s));
  }
}

TEST(CpuSpeedPaths, OrderSplitEqualsAllChannels) {
  // Darcy (boundary rows: 1 channel), regression (every row 1 channel), 2-D and 3-D Poisson (2n boundary faces),
  // and a problem with first-derivative-only rows (alpha = 0, beta != 0: no second-derivative channels).
  struct Case {
    std::string preset;
    int nc;
    std::vector<int> layers;
  };
  const std::vector<Case> cases = {{"darcy-twoscale", 301, {1, 9, 7, 5, 1}},
                                   {"regression-twoscale", 203, {1, 8, 6, 1}},
                                   {"poisson2d-sines", 150, {2, 7, 6, 1}},
                                   {"poisson3d-sines", 90, {3, 6, 5, 1}},
                                   {"darcy-twoscale", 64, {1, 10, 1}}};
  for (const Case& c : cases) {
    PointSet pts = points(c.preset, c.nc);
    const Mlp net = init_mlp(c.layers, "glorot-normal", 5);
    for (int variant = 0; variant < 2; ++variant) {
      if (variant == 1) {  // every third row: alpha = 0 (first order), every fifth also beta = 0 (value only)
        for (int k = 0; k < pts.size(); k += 3)
          for (int i = 0; i < pts.dim; ++i) {
            pts.alpha[static_cast<size_t>(k) * pts.dim + i] = 0.0;
            pts.beta[static_cast<size_t>(k) * pts.dim + i] = k % 5 == 0 ? 0.0 : 0.25 + 0.1 * i;
          }
      }
      for (int threads : {1, 2}) {
        Threads t(threads);
        BatchedWorkspace fast, full;
        full.all_channels = true;
        const std::string what =
            c.preset + " variant " + std::to_string(variant) + ", threads " + std::to_string(threads);
        // The same products in another grouping of columns: agreement to a few ulps of the magnitudes.
        expect_close(run(net, pts, fast), run(net, pts, full), 1e-14, what);
      }
    }
  }
}

TEST(CpuSpeedPaths, FastPathAgreesWithThePerPointJacobian) {
  // The order-split gradient against J^T (w r) of the per-point reverse pass (residuals_jacobian_per_point).
  for (const std::string preset : {"darcy-twoscale", "regression-twoscale", "poisson2d-twoscale"}) {
    const PointSet pts = points(preset, 64);
    const Mlp net = init_mlp({pts.dim, 8, 8, 1}, "glorot-normal", 9);
    const int n = pts.size(), P = net.n_params();
    std::vector<double> r(n), J(static_cast<size_t>(n) * P);
    residuals_jacobian_per_point(net, pts, r, J);
    BatchedWorkspace ws;
    const Result fast = run(net, pts, ws, 16);
    EXPECT_TRUE(testing::all_near(fast.r, r)) << preset;
    for (int p = 0; p < P; ++p) {
      double g = 0.0, scale = 0.0;
      for (int k = 0; k < n; ++k) {
        const double term = J[static_cast<size_t>(k) * P + p] * pts.w[k] * r[k];
        g += term;
        scale += std::fabs(term);
      }
      EXPECT_TRUE(testing::near(fast.g[p], g, scale, testing::kRoundingRtol, 1e-300)) << preset << " parameter " << p;
    }
  }
}

TEST(CpuSpeedPaths, InstructionSetsAgree) {
  // Generic (scalar std::tanh, OpenBLAS), AVX2 (vector tanh, about 1 ulp) and AVX-512 (its own blocked products)
  // where this CPU has them; widths and chunks that leave partial register blocks, 1 to 3 directions.
  struct Case {
    std::string preset;
    int nc, chunk;
    std::vector<int> layers;
  };
  const std::vector<Case> cases = {{"darcy-twoscale", 257, 100, {1, 12, 13, 11, 1}},
                                   {"regression-twoscale", 99, 37, {1, 17, 9, 1}},
                                   {"poisson2d-twoscale", 64, 19, {2, 10, 9, 1}},
                                   {"poisson3d-sines", 64, 50, {3, 7, 6, 1}}};
  for (const Case& c : cases) {
    const PointSet pts = points(c.preset, c.nc);
    const Mlp net = init_mlp(c.layers, "glorot-normal", 3);
    BatchedWorkspace ref;
    ref.isa = BatchedIsa::kGeneric;
    const Result base = run(net, pts, ref, c.chunk);
    for (BatchedIsa isa : {BatchedIsa::kAvx2, BatchedIsa::kAvx512, BatchedIsa::kAuto}) {
      if (!batched_isa_available(isa)) continue;
      BatchedWorkspace ws;
      ws.isa = isa;
      expect_close(run(net, pts, ws, c.chunk), base, testing::kRoundingRtol,
                   c.preset + ", isa " + std::to_string(static_cast<int>(isa)));
    }
  }
  EXPECT_TRUE(batched_isa_available(batched_isa_auto()));
}

TEST(CpuSpeedPaths, ThreadCountsAndChunksAgreeAndRepeatBitwise) {
  const PointSet pts = points("poisson2d-twoscale", 196);
  const Mlp net = init_mlp({2, 10, 9, 1}, "glorot-normal", 6);
  Result one;
  {
    Threads t(1);
    BatchedWorkspace ws;
    one = run(net, pts, ws);
  }
  for (int threads : {2, 3}) {
    for (int chunk : {1, 7, 4096}) {
      Threads t(threads);
      BatchedWorkspace ws;
      const Result a = run(net, pts, ws, chunk), b = run(net, pts, ws, chunk);
      const std::string what = "threads " + std::to_string(threads) + ", chunk " + std::to_string(chunk);
      expect_close(a, one, testing::kRoundingRtol, what);
      // The same call again (same thread count, chunk and instruction set) is bit for bit the same.
      EXPECT_EQ(a.loss, b.loss) << what;
      EXPECT_EQ(a.r, b.r) << what;
      EXPECT_EQ(a.g, b.g) << what;
    }
  }
}

// The matrix-free products through the batched passes (the CPU backend's jacobian_times and
// jacobian_transpose_times) against the per-point reverse pass's formed J: every derivative order of rows (and all
// channels for all rows), each instruction set this CPU has, chunks that do not divide the rows, one and two
// threads; the same call again bit for bit. Bounds by norms, as Ntk.MatrixFreeProductsMatchTheFormedJacobian: a row
// of J u against |J_k| |u|, an entry of J^T y against |J|_F |y|.
void expect_products_match(const Mlp& net, const PointSet& pts, const std::string& what) {
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * P), u(P), y(n);
  residuals_jacobian_per_point(net, pts, r, J);
  for (int q = 0; q < P; ++q) u[q] = std::cos(0.7 * q + 0.3);
  for (int k = 0; k < n; ++k) y[k] = std::sin(1.3 * k + 0.1);
  std::vector<double> ju_ref(n, 0.0), jty_ref(P, 0.0), row_norm(n, 0.0);
  double norm_u = 0.0, norm_y = 0.0, norm_J = 0.0;
  for (const double e : u) norm_u += e * e;
  for (const double e : y) norm_y += e * e;
  for (int k = 0; k < n; ++k)
    for (int q = 0; q < P; ++q) {
      const double Jkq = J[static_cast<size_t>(k) * P + q];
      ju_ref[k] += Jkq * u[q];
      jty_ref[q] += Jkq * y[k];
      row_norm[k] += Jkq * Jkq;
    }
  for (const double e : row_norm) norm_J += e;
  const double bound_y = std::sqrt(norm_J * norm_y);
  testing::for_each_batched_setting([&](BatchedWorkspace& ws, int chunk, const std::string& setting) {
    for (int threads : {1, 2}) {
      Threads t(threads);
      std::vector<double> ju(n), jty(P), ju2(n), jty2(P);
      batched_jacobian_times(net, pts, u, ju, ws, chunk);
      batched_jacobian_transpose_times(net, pts, y, jty, ws, chunk);
      batched_jacobian_times(net, pts, u, ju2, ws, chunk);
      batched_jacobian_transpose_times(net, pts, y, jty2, ws, chunk);
      const std::string w = what + ", " + setting + ", threads " + std::to_string(threads);
      for (int k = 0; k < n; ++k)
        ASSERT_NEAR(ju[k], ju_ref[k], 1e-13 * std::sqrt(row_norm[k] * norm_u)) << w << ": J u, row " << k;
      for (int q = 0; q < P; ++q) ASSERT_NEAR(jty[q], jty_ref[q], 1e-13 * bound_y) << w << ": J^T y, entry " << q;
      EXPECT_EQ(ju, ju2) << w;
      EXPECT_EQ(jty, jty2) << w;
    }
  });
}

// Small networks in 1-D, 2-D and 3-D on their presets' rows, then the same rows with every third of first order
// (alpha = 0) and every fifth of those of value only (beta = 0 too): f(net, rows, description) for each.
template <class F>
void for_each_small_case_and_row_orders(F f) {
  struct Case {
    std::string preset;
    int nc;
    std::vector<int> layers;
  };
  const std::vector<Case> cases = {{"darcy-twoscale", 61, {1, 9, 7, 5, 1}},
                                   {"regression-twoscale", 40, {1, 8, 6, 1}},
                                   {"poisson2d-sines", 49, {2, 7, 6, 1}},
                                   {"poisson3d-sines", 27, {3, 6, 5, 1}},
                                   {"darcy-twoscale", 30, {1, 10, 1}}};
  for (const Case& c : cases) {
    PointSet pts = points(c.preset, c.nc);
    const Mlp net = init_mlp(c.layers, "glorot-normal", 4);
    f(net, pts, c.preset);
    for (int k = 0; k < pts.size(); k += 3)
      for (int i = 0; i < pts.dim; ++i) {
        pts.alpha[static_cast<size_t>(k) * pts.dim + i] = 0.0;
        pts.beta[static_cast<size_t>(k) * pts.dim + i] = k % 5 == 0 ? 0.0 : 0.25 + 0.1 * i;
      }
    f(net, pts, c.preset + " with rows of each order");
  }
}

TEST(CpuSpeedPaths, MatrixFreeProductsMatchTheFormedJacobian) {
  for_each_small_case_and_row_orders(expect_products_match);
}

// The Jacobian pass (batched_residuals_jacobian) against the per-point reverse pass, entry by entry relative to its
// row's norm, under every setting and thread count, bitwise the same when repeated; the CPU backend takes it.
void expect_jacobian_pass_matches(const Mlp& net, const PointSet& pts, const std::string& what) {
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r_ref(n), J_ref(static_cast<size_t>(n) * P), row_norm(n, 0.0);
  residuals_jacobian_per_point(net, pts, r_ref, J_ref);
  for (int k = 0; k < n; ++k)
    for (int q = 0; q < P; ++q)
      row_norm[k] += J_ref[static_cast<size_t>(k) * P + q] * J_ref[static_cast<size_t>(k) * P + q];
  const auto expect_near_ref = [&](const std::vector<double>& r, const std::vector<double>& J, const std::string& w) {
    EXPECT_TRUE(testing::all_near(r, r_ref)) << w;
    for (int k = 0; k < n; ++k)
      for (int q = 0; q < P; ++q)
        ASSERT_NEAR(J[static_cast<size_t>(k) * P + q], J_ref[static_cast<size_t>(k) * P + q],
                    1e-14 * std::sqrt(row_norm[k]))
            << w << ": row " << k << ", parameter " << q;
  };
  testing::for_each_batched_setting([&](BatchedWorkspace& ws, int chunk, const std::string& setting) {
    for (int threads : {1, 2}) {
      Threads t(threads);
      // Poisoned outputs: every entry must be written.
      std::vector<double> r(n, std::nan("")), J(J_ref.size(), std::nan("")), r2(n), J2(J.size());
      batched_residuals_jacobian(net, pts, r, J, ws, chunk);
      batched_residuals_jacobian(net, pts, r2, J2, ws, chunk);
      const std::string w = what + ", " + setting + ", threads " + std::to_string(threads);
      expect_near_ref(r, J, w);
      EXPECT_EQ(r, r2) << w;
      EXPECT_EQ(J, J2) << w;
    }
  });
  auto be = make_cpu_backend(0);
  std::vector<double> r(n), J(J_ref.size()), r2(n), J2(J.size());
  be->residuals_jacobian(net, pts, r, J);
  expect_near_ref(r, J, what + ", the CPU backend");
  BatchedWorkspace ws;
  batched_residuals_jacobian(net, pts, r2, J2, ws);
  EXPECT_EQ(J, J2) << what << ": the CPU backend's Jacobian is the batched pass's";
}

TEST(CpuSpeedPaths, JacobianPassMatchesThePerPointJacobian) {
  for_each_small_case_and_row_orders(expect_jacobian_pass_matches);
}

TEST(CpuSpeedPaths, JacobianPassTakesTheRowsOwnDirections) {
  for (const int m : {2, 3}) {
    PointSet pts = points(m == 2 ? "poisson2d-sines" : "poisson3d-sines", m == 2 ? 40 : 27);
    add_unit_directions(pts);
    const Mlp net = init_mlp({m, 7, 6, 1}, "glorot-normal", 3);
    expect_jacobian_pass_matches(net, pts, std::to_string(m) + "-D, own directions");
  }
}

// The loss pass (batched_loss: the gradient pass's forward half) gives the gradient pass's loss and residuals bit for
// bit under every setting and thread count; so does the CPU backend's loss against its loss_gradient.
TEST(CpuSpeedPaths, LossPassIsTheGradientPassWithoutTheGradient) {
  for_each_small_case_and_row_orders([](const Mlp& net, const PointSet& pts, const std::string& what) {
    testing::for_each_batched_setting([&](BatchedWorkspace& ws, int chunk, const std::string& setting) {
      for (int threads : {1, 2}) {
        Threads t(threads);
        const Result full = run(net, pts, ws, chunk);
        std::vector<double> r(pts.size(), NAN);
        const double loss = batched_loss(net, pts, r, ws, chunk);
        const std::string w = what + ", " + setting + ", threads " + std::to_string(threads);
        EXPECT_EQ(loss, full.loss) << w;
        EXPECT_EQ(r, full.r) << w;
      }
    });
    auto be = make_cpu_backend(0);
    std::vector<double> r1(pts.size()), r2(pts.size()), g(net.n_params());
    EXPECT_EQ(be->loss(net, pts, r1), be->loss_gradient(net, pts, r2, g)) << what;
    EXPECT_EQ(r1, r2) << what;
  });
  std::vector<double> r(3);
  BatchedWorkspace ws;
  EXPECT_THROW(batched_loss(init_mlp({1, 4, 1}, "glorot-normal", 1), points("darcy-twoscale", 30), r, ws),
               std::invalid_argument);
}

// The evaluation pass (batched_evaluate, which the CPU backend's evaluate takes) against the per-point forward pass of
// common/mlp_math_nd.hpp: u and the derivatives along the axes in 1-D, 2-D and 3-D, along each row's own directions
// (random unit vectors, not orthogonal) in 2-D and 3-D, under every setting of the passes and one and two threads;
// the same call again bit for bit; the rows' coefficients are not read (empty here).
TEST(CpuSpeedPaths, EvaluationPassMatchesThePerPointForward) {
  struct Case {
    int dim, n;
    std::vector<int> layers;
    bool dirs;
  };
  const std::vector<Case> cases = {{1, 61, {1, 9, 7, 5, 1}, false}, {1, 30, {1, 10, 1}, false},
                                   {2, 49, {2, 7, 6, 1}, false},    {2, 40, {2, 8, 5, 1}, true},
                                   {3, 27, {3, 6, 5, 1}, false},    {3, 33, {3, 5, 7, 1}, true}};
  for (const Case& c : cases) {
    const int m = c.dim, n = c.n;
    const Mlp net = init_mlp(c.layers, "glorot-normal", 5);
    PointSet rows;
    rows.dim = m;
    rows.nc = n;
    for (int k = 0; k < n * m; ++k) rows.x.push_back(std::sin(1.7 * k + 0.4));
    if (c.dirs) add_unit_directions(rows);
    std::vector<double> u_ref(n), du_ref(static_cast<size_t>(n) * m), d2u_ref(du_ref.size());
    std::vector<double> axes(static_cast<size_t>(m) * m, 0.0), tape(mlp_tape_size_nd(net.shape(), m));
    for (int j = 0; j < m; ++j) axes[static_cast<size_t>(j) * m + j] = 1.0;
    for (int k = 0; k < n; ++k) {
      double out[7];
      mlp_forward_point_nd(net.shape(), net.theta.data(), rows.x.data() + static_cast<size_t>(k) * m, m,
                           rows.directions(k, axes.data()), tape.data(), out);
      u_ref[k] = out[0];
      for (int j = 0; j < m; ++j) {
        du_ref[static_cast<size_t>(k) * m + j] = out[1 + j];
        d2u_ref[static_cast<size_t>(k) * m + j] = out[1 + m + j];
      }
    }
    const std::string what = std::to_string(m) + "-D" + (c.dirs ? ", own directions" : "");
    {  // the per-point fallback is that loop, row by row
      std::vector<double> u(n), du(du_ref.size()), d2u(du_ref.size());
      evaluate_rows_per_point(net, rows, u, du, d2u);
      EXPECT_EQ(u, u_ref) << what;
      EXPECT_EQ(du, du_ref) << what;
      EXPECT_EQ(d2u, d2u_ref) << what;
    }
    testing::for_each_batched_setting([&](BatchedWorkspace& ws, int chunk, const std::string& setting) {
      for (int threads : {1, 2}) {
        Threads t(threads);
        const bool all = ws.all_channels;
        std::vector<double> u(n), du(du_ref.size()), d2u(du_ref.size()), u2(n), du2(du.size()), d2u2(du.size());
        batched_evaluate(net, rows, u, du, d2u, ws, chunk);
        batched_evaluate(net, rows, u2, du2, d2u2, ws, chunk);
        const std::string w = what + ", " + setting + ", threads " + std::to_string(threads);
        EXPECT_TRUE(testing::all_near(u, u_ref)) << w;
        EXPECT_TRUE(testing::all_near(du, du_ref)) << w;
        EXPECT_TRUE(testing::all_near(d2u, d2u_ref)) << w;
        EXPECT_EQ(u, u2) << w;
        EXPECT_EQ(du, du2) << w;
        EXPECT_EQ(d2u, d2u2) << w;
        EXPECT_EQ(ws.all_channels, all) << w;  // the workspace's switch as it was
      }
    });
    if (!c.dirs) {  // the CPU backend's evaluate at the same points
      auto be = make_cpu_backend(0);
      std::vector<double> u(n), du(du_ref.size()), d2u(du_ref.size());
      be->evaluate(net, rows.x, u, du, d2u);
      EXPECT_TRUE(testing::all_near(u, u_ref)) << what;
      EXPECT_TRUE(testing::all_near(du, du_ref)) << what;
      EXPECT_TRUE(testing::all_near(d2u, d2u_ref)) << what;
    } else {  // evaluate_rows, along the rows' own directions
      std::vector<double> u(n), du(du_ref.size()), d2u(du_ref.size());
      evaluate_rows(net, rows, u, du, d2u);
      EXPECT_TRUE(testing::all_near(du, du_ref)) << what;
      EXPECT_TRUE(testing::all_near(d2u, d2u_ref)) << what;
    }
  }
  const Mlp net = init_mlp({2, 4, 1}, "glorot-normal", 1);
  PointSet rows;
  rows.dim = 2;
  rows.nc = 3;
  rows.x.assign(6, 0.5);
  std::vector<double> u(3), du(5), d2u(6);
  BatchedWorkspace ws;
  EXPECT_THROW(batched_evaluate(net, rows, u, du, d2u, ws), std::invalid_argument);
  EXPECT_FALSE(batched_evaluation_fits(init_mlp({4, 5, 1}, "glorot-normal", 1)));
  EXPECT_FALSE(batched_evaluation_fits(init_mlp({1, 1}, "glorot-normal", 1)));
  EXPECT_TRUE(batched_evaluation_fits(net));
}

// batched_sample_gram (K_s = Jh Jh^T without J, host/cpu_batched.hpp) against the Gram of the per-point reverse
// pass's formed J, every layer in the direct form and every layer in the factored form, under each setting of the
// batched passes and one and two threads; the same call again bit for bit. Bound: an entry against |Jh_k| |Jh_m|.
void expect_sample_gram_matches(const Mlp& net, const PointSet& pts, const std::string& what) {
  auto be = make_cpu_backend(0);
  const int n = pts.size(), P = net.n_params();
  std::vector<double> r_ref(n), J(static_cast<size_t>(n) * P), K_ref(static_cast<size_t>(n) * n, 0.0);
  be->residuals_jacobian(net, pts, r_ref, J);
  for (int k = 0; k < n; ++k)
    for (int q = 0; q < P; ++q) J[static_cast<size_t>(k) * P + q] *= std::sqrt(pts.w[k]);
  for (int k = 0; k < n; ++k)
    for (int m = 0; m < n; ++m)
      for (int q = 0; q < P; ++q)
        K_ref[static_cast<size_t>(k) * n + m] += J[static_cast<size_t>(k) * P + q] * J[static_cast<size_t>(m) * P + q];
  double r_scale = 0.0;
  for (const double v : r_ref) r_scale = std::max(r_scale, std::fabs(v));
  auto check = [&](BatchedWorkspace& ws, int chunk, int form, int threads, const std::string& setting) {
    Threads t(threads);
    ws.gram_form = form;
    ws.gram_block_rows = 13;  // blocks that do not divide the rows
    std::vector<double> r(n), K(static_cast<size_t>(n) * n), r2(n), K2(K.size());
    batched_sample_gram(net, pts, pts.w, r, K, ws, chunk);
    batched_sample_gram(net, pts, pts.w, r2, K2, ws, chunk);
    const std::string w =
        what + ", " + setting + (form == 1 ? ", direct" : ", factored") + ", threads " + std::to_string(threads);
    for (int k = 0; k < n; ++k) {
      ASSERT_NEAR(r[k], r_ref[k], 1e-13 * r_scale) << w << ": residual " << k;
      for (int m = 0; m < n; ++m) {
        const size_t e = static_cast<size_t>(k) * n + m;
        const double bound =
            1e-13 * std::sqrt(K_ref[static_cast<size_t>(k) * n + k] * K_ref[static_cast<size_t>(m) * n + m]);
        if (std::fabs(K[e] - K_ref[e]) > bound || K[e] != K[static_cast<size_t>(m) * n + k])
          FAIL() << w << ": entry " << k << ", " << m << ": " << K[e] << " against " << K_ref[e] << " (transposed "
                 << K[static_cast<size_t>(m) * n + k] << ")";
      }
    }
    EXPECT_EQ(K, K2) << w;
    EXPECT_EQ(r, r2) << w;
  };
  // Both forms on one and two threads; the factored form under every setting of the passes (the capture).
  for (int form : {1, 2})
    for (int threads : {1, 2}) {
      BatchedWorkspace ws;
      check(ws, 256, form, threads, "default setting");
    }
  testing::for_each_batched_setting(
      [&](BatchedWorkspace& ws, int chunk, const std::string& setting) { check(ws, chunk, 2, 2, setting); });
}

TEST(CpuSpeedPaths, SampleGramWithoutJacobianMatchesTheFormedGram) {
  for_each_small_case_and_row_orders(expect_sample_gram_matches);
}

// The CPU backend builds the sample Gram without J where a layer is wide enough for the factored form to gain, and
// leaves narrow networks (and the 40-wide ones of the paper) to the formed J.
TEST(CpuSpeedPaths, SampleGramWithoutJacobianIsTakenWhereItPays) {
  auto be = make_cpu_backend(0);
  const PointSet pts1 = points("darcy-twoscale", 100), pts2 = points("poisson2d-sines", 100);
  const Mlp narrow = init_mlp({1, 40, 40, 40, 40, 1}, "glorot-normal", 1),
            wide = init_mlp({1, 48, 48, 1}, "glorot-normal", 1);
  const Mlp narrow2 = init_mlp({2, 64, 64, 48, 48, 1}, "glorot-normal", 1),
            wide2 = init_mlp({2, 256, 256, 128, 128, 1}, "glorot-normal", 1);
  EXPECT_FALSE(batched_sample_gram_pays(narrow, pts1));
  EXPECT_TRUE(batched_sample_gram_pays(wide, pts1));
  EXPECT_FALSE(batched_sample_gram_pays(narrow2, pts2));
  EXPECT_TRUE(batched_sample_gram_pays(wide2, pts2));
  const int n = pts1.size();
  std::vector<double> r(n), K(static_cast<size_t>(n) * n);
  EXPECT_FALSE(be->residuals_sample_gram(narrow, pts1, pts1.w, r, K));
  ASSERT_TRUE(be->residuals_sample_gram(wide, pts1, pts1.w, r, K));
  EXPECT_GT(batched_sample_gram_bytes(wide2, pts2), 8.0 * pts2.size() * (1 + 2 * 2) * 512);  // the captured channels
}

// The NTK's one-shot path without J on the CPU (N <= P, a wide layer) counts its own memory, far below the formed
// J's: a budget between the two lets it run where the plan of J's estimate refuses; elsewhere J's estimate stands.
TEST(CpuSpeedPaths, NtkWithoutTheJacobianPlansItsOwnMemory) {
  const PointSet pts = points("darcy-twoscale", 1000);
  const Mlp wide = init_mlp({1, 64, 64, 1}, "glorot-normal", 1), narrow = init_mlp({1, 20, 20, 1}, "glorot-normal", 1);
  const long n = pts.size(), p = static_cast<long>(wide.n_params());
  const double formed = ntk_memory_bytes(n, p, false), own = ntk_exact_memory_bytes(wide, pts, false, true);
  EXPECT_LT(own, 0.5 * formed);
  EXPECT_GT(own, 8.0 * n * n);                                         // K_s at least
  EXPECT_EQ(ntk_exact_memory_bytes(wide, pts, false, false), formed);  // another backend forms J
  // J is written, or no layer gains: the CPU forms J through its batched Jacobian pass, with that pass's buffers.
  EXPECT_EQ(ntk_exact_memory_bytes(wide, pts, true, true),
            ntk_memory_bytes(n, p, true) + batched_workspace_bytes(wide, pts, 0));
  EXPECT_EQ(ntk_exact_memory_bytes(narrow, pts, false, true),
            ntk_memory_bytes(n, narrow.n_params(), false) + batched_workspace_bytes(narrow, pts, 0));
  const auto budget = static_cast<uint64_t>(0.5 * (own + formed));
  const NtkPlan plan = plan_ntk(NtkPath::Auto, pts.nc, pts.nb, p, 1, true, 0, false, budget, false, own);
  EXPECT_FALSE(plan.chunked);
  EXPECT_EQ(plan.peak_bytes, own);
  EXPECT_THROW(plan_ntk(NtkPath::Auto, pts.nc, pts.nb, p, 1, true, 0, false, budget), UsageError);
}

// batched_workspace_bytes bounds what the passes allocate (the workspace's capacities after the gradient, both
// products and the Jacobian pass; the memory checks of the Lanczos paths and of the formed J count it), and not by
// much.
TEST(CpuSpeedPaths, WorkspaceEstimateBoundsWhatThePassesAllocate) {
  struct Case {
    std::string preset;
    int nc;
    std::vector<int> layers;
  };
  for (const Case& c : std::vector<Case>{{"darcy-twoscale", 700, {1, 30, 20, 1}},
                                         {"poisson3d-sines", 300, {3, 16, 12, 9, 1}},
                                         {"darcy-twoscale", 40, {1, 8, 1}}}) {
    const PointSet pts = points(c.preset, c.nc);
    const Mlp net = init_mlp(c.layers, "glorot-normal", 2);
    for (int threads : {1, 2}) {
      Threads t(threads);
      BatchedWorkspace ws;
      const size_t n = pts.size(), P = net.n_params();
      std::vector<double> r(n), g(P), u(P, 0.5), y(n, 1.0), J(n * P);
      batched_residuals_jacobian(net, pts, r, J, ws);
      batched_loss_gradient(net, pts, r, g, ws);
      batched_jacobian_times(net, pts, u, r, ws);
      batched_jacobian_transpose_times(net, pts, y, g, ws);
      double held = 4.0 * ws.rows.capacity() + 8.0 * ws.residuals.capacity();
      for (const auto& th : ws.threads) held += 8.0 * (th.buf.capacity() + th.grad.capacity());
      const double est = batched_workspace_bytes(net, pts, threads);
      EXPECT_LE(held, est) << c.preset << ", threads " << threads;
      EXPECT_GE(held, 0.5 * est) << c.preset << ", threads " << threads;
    }
  }
}

TEST(CpuSpeedPaths, RejectsNetworksWithoutAHiddenLayerOrOfTheWrongWidth) {
  const PointSet pts = points("darcy-twoscale", 20);
  BatchedWorkspace ws;
  std::vector<double> r(pts.size()), g(2);
  Mlp lin;
  lin.layers = {1, 1};
  lin.theta = {1.0, 0.0};
  EXPECT_THROW(batched_loss_gradient(lin, pts, r, g, ws), std::invalid_argument);
  const Mlp two = init_mlp({2, 4, 1}, "glorot-normal", 1);
  std::vector<double> g2(two.n_params());
  EXPECT_THROW(batched_loss_gradient(two, pts, r, g2, ws), std::invalid_argument);
  std::vector<double> y(pts.size()), out(pts.size());
  EXPECT_THROW(batched_jacobian_transpose_times(lin, pts, y, g, ws), std::invalid_argument);
  EXPECT_THROW(batched_jacobian_times(lin, pts, g, out, ws), std::invalid_argument);
  EXPECT_THROW(batched_jacobian_times(two, pts, g2, out, ws), std::invalid_argument);
  // Sizes that do not match the rows or the parameters.
  EXPECT_THROW(batched_jacobian_times(two, pts, g, out, ws), std::invalid_argument);
  EXPECT_THROW(batched_jacobian_transpose_times(two, pts, g2, g2, ws), std::invalid_argument);
  // The Jacobian pass likewise; the CPU backend takes the per-point pass for a network without a hidden layer.
  std::vector<double> J(static_cast<size_t>(pts.size()) * 2), J2(J.size()), r2(r.size());
  EXPECT_THROW(batched_residuals_jacobian(lin, pts, r, J, ws), std::invalid_argument);
  std::vector<double> J_two(static_cast<size_t>(pts.size()) * two.n_params());
  EXPECT_THROW(batched_residuals_jacobian(two, pts, r, J_two, ws), std::invalid_argument);
  const Mlp one = init_mlp({1, 4, 1}, "glorot-normal", 1);
  EXPECT_THROW(batched_residuals_jacobian(one, pts, r, J, ws), std::invalid_argument);  // J of the wrong size
  make_cpu_backend(0)->residuals_jacobian(lin, pts, r, J);
  residuals_jacobian_per_point(lin, pts, r2, J2);
  EXPECT_EQ(J, J2);
  EXPECT_EQ(r, r2);
}

}  // namespace
}  // namespace pinntk
