// The two-loop kernel of the device L-BFGS (cuda/two_loop.cuh) run on the CPU, each thread of a block a host thread
// (tests/block_emulator.hpp): against the two-loop recursion written out (the arithmetic of HostLbfgsOps::two_loop),
// with ring positions that wrap, a member without pairs, a masked-out member, P not a multiple of the block.
// It found the kernel reading the first loop's last alpha before the barrier that publishes it.
#include <gtest/gtest.h>

#include <algorithm>  // std::copy
#include <random>     // std::mt19937, std::normal_distribution
#include <vector>     // std::vector

#include "tests/block_emulator.hpp"
// The emulator first: the device code is compiled against it.
#include "cuda/two_loop.cuh"  // two_loop_kernel, TwoLoopArgs, kTwoLoopThreads
#include "tests/near.hpp"     // all_near

namespace pinntk {
namespace {

struct Ring {
  int B, m, P;
  std::vector<double> g, s, y, rho, gamma;
  std::vector<int> newest, count, mask;
};

// Pairs of a convex quadratic (y = A s, A = diag(1 + p / P)), rho = 1 / (s . y).
Ring make_ring(int B, int m, int P, unsigned seed) {
  Ring r{B, m, P, {}, {}, {}, {}, {}, {3, 6, 0}, {7, 2, 0}, {1, 0, 1}};
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd;
  r.g.resize(static_cast<size_t>(B) * P);
  for (double& v : r.g) v = nd(gen);
  r.s.resize(static_cast<size_t>(B) * m * P);
  r.y.resize(r.s.size());
  r.rho.resize(static_cast<size_t>(B) * m);
  for (int b = 0; b < B; ++b)
    for (int j = 0; j < m; ++j) {
      double sy = 0.0;
      for (int p = 0; p < P; ++p) {
        const size_t k = (static_cast<size_t>(b) * m + j) * P + p;
        r.s[k] = nd(gen);
        r.y[k] = (1.0 + static_cast<double>(p) / P) * r.s[k];
        sy += r.s[k] * r.y[k];
      }
      r.rho[static_cast<size_t>(b) * m + j] = 1.0 / sy;
    }
  for (int b = 0; b < B; ++b) r.gamma.push_back(0.5 + 0.25 * b);
  return r;
}

// d = -H g by the recursion as Nocedal & Wright write it (Algorithm 7.4), in double; masked-out members keep d.
std::vector<double> reference(const Ring& r, std::vector<double> d) {
  for (int b = 0; b < r.B; ++b) {
    if (!r.mask[b]) continue;
    std::vector<double> alpha(r.m);
    double* db = &d[static_cast<size_t>(b) * r.P];
    std::copy(&r.g[static_cast<size_t>(b) * r.P], &r.g[static_cast<size_t>(b) * r.P] + r.P, db);
    const auto row = [&](const std::vector<double>& v, int j) { return &v[(static_cast<size_t>(b) * r.m + j) * r.P]; };
    for (int i = 0; i < r.count[b]; ++i) {
      const int j = (r.newest[b] - i + r.m) % r.m;
      double sd = 0.0;
      for (int p = 0; p < r.P; ++p) sd += row(r.s, j)[p] * db[p];
      alpha[i] = r.rho[static_cast<size_t>(b) * r.m + j] * sd;
      for (int p = 0; p < r.P; ++p) db[p] -= alpha[i] * row(r.y, j)[p];
    }
    for (int p = 0; p < r.P; ++p) db[p] *= r.gamma[b];
    for (int i = r.count[b] - 1; i >= 0; --i) {
      const int j = (r.newest[b] - i + r.m) % r.m;
      double yd = 0.0;
      for (int p = 0; p < r.P; ++p) yd += row(r.y, j)[p] * db[p];
      const double c = alpha[i] - r.rho[static_cast<size_t>(b) * r.m + j] * yd;
      for (int p = 0; p < r.P; ++p) db[p] += c * row(r.s, j)[p];
    }
    for (int p = 0; p < r.P; ++p) db[p] = -db[p];
  }
  return d;
}

template <class Real>
std::vector<double> run_kernel(const Ring& r, const std::vector<double>& d0) {
  std::vector<Real> d(d0.begin(), d0.end()), g(r.g.begin(), r.g.end()), s(r.s.begin(), r.s.end()),
      y(r.y.begin(), r.y.end());
  std::vector<double> alpha(static_cast<size_t>(r.B) * r.m, 0.0);
  std::vector<int> count = r.count;
  for (int b = 0; b < r.B; ++b)
    if (!r.mask[b]) count[b] = 0;  // as CudaLbfgsOps::two_loop uploads a masked-out member
  const cudaimpl::TwoLoopArgs<Real> a{d.data(),        g.data(),     s.data(),      y.data(),
                                      r.newest.data(), count.data(), r.mask.data(), r.gamma.data(),
                                      r.rho.data(),    alpha.data(), r.m,           static_cast<size_t>(r.P)};
  emu::run_blocks(static_cast<unsigned>(r.B), cudaimpl::kTwoLoopThreads,
                  [&] { cudaimpl::two_loop_kernel<Real, cudaimpl::kTwoLoopThreads>(a); });
  return std::vector<double>(d.begin(), d.end());
}

TEST(TwoLoopKernel, MatchesTheRecursionOnTheCpuEmulatedBlock) {
  const Ring r = make_ring(3, 7, 1100, 5);
  const std::vector<double> d0(static_cast<size_t>(r.B) * r.P, 0.25);  // member 1's must stay
  const std::vector<double> ref = reference(r, d0);
  const std::vector<double> d64 = run_kernel<double>(r, d0);
  EXPECT_TRUE(testing::all_near(d64, ref, 1e-13));
  for (int p = 0; p < r.P; ++p) ASSERT_EQ(d64[static_cast<size_t>(r.P) + p], 0.25) << "masked-out member, p " << p;
  EXPECT_EQ(run_kernel<double>(r, d0), d64);  // a fixed order: the same bits again
  EXPECT_TRUE(testing::all_near(run_kernel<float>(r, d0), ref, 1e-5));
}

}  // namespace
}  // namespace pinntk
