// L-BFGS-B through liblbfgsb: problems with known minima, the iteration limit, and a PINN whose loss it lowers.
#include <gtest/gtest.h>

#include <cmath>  // std::fabs

#include "host/optim/lbfgs.hpp"  // minimize_lbfgs
#include "host/train.hpp"        // train_adam
#include "tests/objectives.hpp"  // rosenbrock

namespace pinntk {
namespace {

using testing::rosenbrock;

TEST(Lbfgs, FindsTheRosenbrockMinimum) {
  for (int n : {2, 10}) {
    std::vector<double> x(n, -1.2);
    LbfgsConfig cfg;
    cfg.history = 10;
    cfg.gtol = 1e-10;
    const LbfgsResult r = minimize_lbfgs(x, rosenbrock, cfg);
    EXPECT_NE(r.stop.find("CONVERGENCE"), std::string::npos) << r.stop;
    for (double v : x) EXPECT_NEAR(v, 1.0, 1e-6);
    EXPECT_LT(r.loss, 1e-12);
    EXPECT_GT(r.iterations, 10);
    EXPECT_GE(r.evaluations, r.iterations);
  }
}

TEST(Lbfgs, SolvesAQuadraticAndStopsAtTheIterationLimit) {
  const std::vector<double> c = {1.0, -2.0, 0.5, 3.0}, s = {1.0, 10.0, 100.0, 0.1};
  auto quad = [&](span<const double> x, span<double> g) {
    double f = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      f += 0.5 * s[i] * (x[i] - c[i]) * (x[i] - c[i]);
      g[i] = s[i] * (x[i] - c[i]);
    }
    return f;
  };
  std::vector<double> x(4, 0.0);
  minimize_lbfgs(x, quad, LbfgsConfig{});
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(x[i], c[i], 1e-8);
  std::vector<double> y(10, -1.2);
  LbfgsConfig few;
  few.max_iter = 3;
  const LbfgsResult r = minimize_lbfgs(y, rosenbrock, few);
  EXPECT_EQ(r.iterations, 3);
  EXPECT_NE(r.stop.find("3 iterations"), std::string::npos) << r.stop;
}

TEST(Lbfgs, LowersThePinnLossAfterAdam) {
  ProblemSpec spec = problem_preset("poisson-twoscale");
  spec.eps = 1.0 / 4;
  spec.nc = 64;
  const PointSet pts = build_points(spec);
  Mlp net = init_mlp({1, 10, 10, 1}, "glorot-normal", 2);
  TrainConfig cfg;
  cfg.schedule = {{50, 1e-2}};
  cfg.history_every = 10;
  cfg.lbfgs.max_iter = 200;
  auto be = make_cpu_backend(0);
  const TrainResult res = train_adam(*be, net, spec, pts, cfg, nullptr);
  EXPECT_EQ(res.adam_iterations, 50);
  EXPECT_GT(res.lbfgs.iterations, 0);
  EXPECT_EQ(res.iterations, 50 + res.lbfgs.iterations);
  double adam_loss = 0.0;
  for (const auto& h : res.history)
    if (h.iteration == 50) adam_loss = h.loss;
  EXPECT_LT(res.final_loss, 0.1 * adam_loss);
  EXPECT_NEAR(res.final_loss, res.lbfgs.loss, 1e-12 * res.lbfgs.loss);
  EXPECT_EQ(res.history.back().optimizer, "lbfgs");
}

}  // namespace
}  // namespace pinntk
