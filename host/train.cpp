#include "host/train.hpp"

#include <algorithm>  // std::max
#include <chrono>     // std::chrono::steady_clock
#include <cmath>      // std::fabs

namespace pinntk {

double max_error(Backend& be, const Mlp& net, const ProblemSpec& spec, const std::vector<double>& x) {
  std::vector<double> u(x.size()), du(x.size()), d2u(x.size());
  be.evaluate(net, x, u, du, d2u);
  double e = 0.0;
  for (size_t i = 0; i < x.size(); ++i) e = std::max(e, std::fabs(u[i] - exact_solution(spec, x[i]).v));
  return e;
}

TrainResult train_adam(Backend& be, Mlp& net, const ProblemSpec& spec, const PointSet& pts, const TrainConfig& cfg,
                       const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<double> grid = linspace(spec.xa, spec.xb, 1000);
  const int n = pts.size();
  std::vector<double> r(n), grad(net.n_params());
  Adam adam(net.n_params(), cfg.adam);
  TrainResult res;
  long total = 0;
  for (const auto& ph : cfg.schedule) total += ph.iterations;

  auto record = [&](long it, double lr, double loss) {
    double pde = 0.0;
    for (int k = 0; k < pts.nc; ++k) pde += 0.5 * pts.w[k] * r[k] * r[k];
    res.history.push_back({it, lr, loss, pde, loss - pde, max_error(be, net, spec, grid)});
  };

  long it = 0;
  double lr = cfg.schedule.empty() ? 0.0 : cfg.schedule.front().lr;
  for (const auto& ph : cfg.schedule) {
    lr = ph.lr;
    for (long s = 0; s < ph.iterations; ++s, ++it) {
      const double loss = be.loss_gradient(net, pts, r, grad);
      if (cfg.history_every > 0 && it % cfg.history_every == 0) record(it, lr, loss);
      adam.step(net.theta, grad, lr);
      if (progress) progress(it + 1, total, loss);
    }
  }
  // The loss after the last step.
  res.final_loss = be.loss_gradient(net, pts, r, grad);
  record(it, lr, res.final_loss);
  res.iterations = it;
  res.max_error = res.history.back().max_error;
  res.wall_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace pinntk
