#include "host/optim/lm_continuation.hpp"

#include <chrono>  // std::chrono::steady_clock
#include <cmath>   // std::isfinite

#include "host/timing.hpp"  // seconds_since

namespace pinntk {

LmTrainResult train_lm(Backend& be, Mlp& net, ProblemSpec& spec, PointSet& pts, const LmConfig& cfg,
                       const std::vector<LmStage>& stages,
                       const std::function<void(size_t, const LmRow&, const Mlp&)>& on_row) {
  const auto t0 = std::chrono::steady_clock::now();
  LmTrainResult res;
  for (size_t s = 0; s < stages.size(); ++s) {
    if (spec.eps != stages[s].eps) {
      spec.eps = stages[s].eps;
      pts = build_points(spec);
    }
    LmConfig c = cfg;
    c.max_iter = stages[s].iterations;
    res.stages.push_back(minimize_lm(be, net, pts, c, [&](const LmRow& row, const Mlp& m) {
      if (on_row) on_row(s, row, m);
    }));
    res.iterations += res.stages.back().iterations;
  }
  res.wall_time_s = seconds_since(t0);
  return res;
}

LmTrainResult continue_with_lm(Backend& be, Mlp& net, ProblemSpec& spec, PointSet& pts, const LmConfig& cfg,
                               const std::vector<LmStage>& stages, long history_every, TrainResult& res,
                               std::ostream* lm_csv, const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return res.wall_time_s + seconds_since(t0); };
  long total = res.iterations, it = res.iterations;
  for (const auto& st : stages) total += st.iterations;
  auto eval_of = [&be](const Mlp& m) {
    return [&be, &m](span<const double> x, span<double> u, span<double> du, span<double> d2u) {
      be.evaluate(m, x, u, du, d2u);
    };
  };
  if (lm_csv != nullptr) *lm_csv << "stage,eps,iteration,loss,mu,rho,accepted,cond\n";
  LmTrainResult lm = train_lm(be, net, spec, pts, cfg, stages, [&](size_t st, const LmRow& row, const Mlp& m) {
    ++it;
    if (lm_csv != nullptr) {
      *lm_csv << st << ',' << spec.eps << ',' << it << ',' << row.loss << ',' << row.mu << ',' << row.rho << ','
              << (row.accepted ? 1 : 0) << ',';
      if (std::isfinite(row.cond)) *lm_csv << row.cond;  // empty where it was not computed
      *lm_csv << '\n';
    }
    if (history_every > 0 && it % history_every == 0) {
      res.history.push_back(history_row(eval_of(m), spec, pts, it, "lm", row.mu, [&m] { return m; }));
      res.history.back().time_s = elapsed();
    }
    if (progress) progress(it, total, row.loss);
  });
  // The final row; it replaces an LM row of the same iteration (one row per iteration, as Adam's and L-BFGS's).
  if (!res.history.empty() && res.history.back().iteration == it && res.history.back().optimizer == "lm")
    res.history.pop_back();
  res.history.push_back(history_row(eval_of(net), spec, pts, it, "lm", lm.stages.empty() ? 0.0 : lm.stages.back().mu,
                                    [&net] { return net; }));
  res.history.back().time_s = elapsed();
  res.iterations = it;
  res.final_loss = res.history.back().loss;
  res.max_error = res.history.back().max_error;
  res.rel_l2_error = res.history.back().rel_l2_error;
  res.wall_time_s += lm.wall_time_s;
  return lm;
}

}  // namespace pinntk
