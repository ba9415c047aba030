#include "host/train.hpp"

#include <algorithm>  // std::max, std::min
#include <chrono>     // std::chrono::steady_clock
#include <cmath>      // std::fabs
#include <fstream>    // std::ifstream
#include <nlohmann/json.hpp>  // nlohmann::json
#include <sstream>    // std::stringstream

#include "host/errors.hpp"  // UsageError
#include "host/timing.hpp"  // seconds_since

namespace pinntk {

namespace {

// The host Adam session of every backend that has no device-resident one.
class HostTrainSession final : public TrainSession {
 public:
  HostTrainSession(Backend& be, const Mlp& net, const PointSet& pts, const AdamConfig& cfg)
      : be_(be), net_(net), pts_(pts), adam_(net.n_params(), cfg), r_(pts.size()), grad_(net.n_params()) {}
  double run(long steps, double lr) override {
    double loss = 0.0;
    for (long s = 0; s < steps; ++s) {
      loss = be_.loss_gradient(net_, pts_, r_, grad_);
      adam_.step(net_.theta, grad_, lr);
    }
    return loss;
  }
  void evaluate(span<const double> x, span<double> u, span<double> du, span<double> d2u) override {
    be_.evaluate(net_, x, u, du, d2u);
  }
  void parameters(span<double> theta) override { std::copy(net_.theta.begin(), net_.theta.end(), theta.begin()); }
  double loss_gradient_at(span<const double> theta, span<double> grad) override {
    std::copy(theta.begin(), theta.end(), net_.theta.begin());
    return be_.loss_gradient(net_, pts_, r_, grad);
  }
  long adam_state(span<double> m, span<double> v) override {
    std::copy(adam_.m().begin(), adam_.m().end(), m.begin());
    std::copy(adam_.v().begin(), adam_.v().end(), v.begin());
    return adam_.steps();
  }
  void set_adam_state(span<const double> theta, span<const double> m, span<const double> v, long t) override {
    std::copy(theta.begin(), theta.end(), net_.theta.begin());
    adam_.set_state(m, v, t);
  }

 private:
  Backend& be_;
  Mlp net_;
  const PointSet& pts_;
  Adam adam_;
  std::vector<double> r_, grad_;
};

}  // namespace

HistoryRow history_row(const EvalFn& eval, const ProblemSpec& spec, const PointSet& pts, long it,
                       const std::string& optimizer, double lr) {
  const int n = pts.size();
  std::vector<double> u(n), du(n), d2u(n);
  eval(pts.x, u, du, d2u);
  double pde = 0.0, bnd = 0.0;
  for (int k = 0; k < n; ++k) {
    const double r = pts.alpha[k] * d2u[k] + pts.beta[k] * du[k] + pts.gamma[k] * u[k] - pts.f[k];
    (k < pts.nc ? pde : bnd) += 0.5 * pts.w[k] * r * r;
  }
  const std::vector<double> grid = linspace(spec.xa, spec.xb, 1000);
  std::vector<double> ug(grid.size()), dug(grid.size()), d2ug(grid.size());
  eval(grid, ug, dug, d2ug);
  double err = 0.0;
  for (size_t i = 0; i < grid.size(); ++i) err = std::max(err, std::fabs(ug[i] - exact_solution(spec, grid[i]).v));
  return {it, optimizer, lr, pde + bnd, pde, bnd, err};
}

std::string train_state_json(const TrainState& st, const std::string& settings_json) {
  nlohmann::json j;
  j["format"] = "pinntk-train-state-v1";
  j["settings"] = nlohmann::json::parse(settings_json);
  j["iteration"] = st.iteration;
  j["adam_step"] = st.adam_step;
  j["theta"] = st.theta;
  j["m"] = st.m;
  j["v"] = st.v;
  nlohmann::json h = nlohmann::json::array();
  for (const auto& r : st.history)
    h.push_back({r.iteration, r.optimizer, r.lr, r.loss, r.loss_pde, r.loss_boundary, r.max_error, r.time_s});
  j["history"] = h;
  return j.dump() + "\n";
}

TrainState load_train_state(const std::string& path, const std::string& settings_json) {
  std::ifstream in(path);
  if (!in) throw UsageError("--resume: no saved state at " + path + " (it is written every --checkpoint-every steps)");
  std::stringstream ss;
  ss << in.rdbuf();
  TrainState st;
  try {
    const nlohmann::json j = nlohmann::json::parse(ss.str());
    if (j.value("format", "") != "pinntk-train-state-v1") throw UsageError("--resume: " + path + " is not a state file");
    if (j["settings"] != nlohmann::json::parse(settings_json))
      throw UsageError("--resume: " + path + " was written by a run with other settings; use the same flags");
    st.iteration = j["iteration"];
    st.adam_step = j["adam_step"];
    st.theta = j["theta"].get<std::vector<double>>();
    st.m = j["m"].get<std::vector<double>>();
    st.v = j["v"].get<std::vector<double>>();
    for (const auto& r : j["history"])
      st.history.push_back({r[0].get<long>(), r[1].get<std::string>(), r[2], r[3], r[4], r[5], r[6], r[7]});
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("--resume: " + path + " is damaged (" + e.what() + ")");
  }
  return st;
}

std::unique_ptr<TrainSession> Backend::train_session(const Mlp& net, const PointSet& pts, const AdamConfig& cfg) {
  return std::make_unique<HostTrainSession>(*this, net, pts, cfg);
}

TrainResult train_adam(Backend& be, Mlp& net, const ProblemSpec& spec, const PointSet& pts, const TrainConfig& cfg,
                       const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<TrainSession> session = be.train_session(net, pts, cfg.adam);
  TrainResult res;
  long total = 0;
  for (const auto& ph : cfg.schedule) total += ph.iterations;

  auto record = [&](long it, const char* optimizer, double lr) {
    res.history.push_back(history_row(
        [&](span<const double> x, span<double> u, span<double> du, span<double> d2u) {
          session->evaluate(x, u, du, d2u);
        },
        spec, pts, it, optimizer, lr));
    res.history.back().time_s = seconds_since(t0);
    if (cfg.on_record) cfg.on_record(it, *session);
  };

  const long every = std::max(1L, cfg.history_every);
  const long log_every = cfg.log_every > 0 ? cfg.log_every : every;
  long it = 0;
  if (cfg.resume != nullptr) {
    const TrainState& st = *cfg.resume;
    session->set_adam_state(st.theta, st.m, st.v, st.adam_step);
    it = st.iteration;
    res.history = st.history;
  }
  const long ckpt = cfg.checkpoint_every > 0 ? cfg.checkpoint_every : total + 1;
  auto save_state = [&]() {
    TrainState st;
    st.iteration = it;
    st.theta.resize(net.n_params());
    st.m.resize(net.n_params());
    st.v.resize(net.n_params());
    session->parameters(st.theta);
    st.adam_step = session->adam_state(st.m, st.v);
    st.history = res.history;
    cfg.on_checkpoint(st);
  };
  long done = it;  // iterations already taken before this call (a resumed run)
  double lr = cfg.schedule.empty() ? 0.0 : cfg.schedule.front().lr;
  for (const auto& ph : cfg.schedule) {
    lr = ph.lr;
    long left = ph.iterations;
    const long skip = std::min(left, done);
    done -= skip;
    left -= skip;
    while (left > 0) {
      if (it % every == 0) record(it, "adam", lr);
      // Run up to the next history row, progress line or checkpoint, whichever comes first.
      const long chunk = std::min({left, every - it % every, log_every - it % log_every, ckpt - it % ckpt});
      const double loss = session->run(chunk, lr);
      it += chunk;
      left -= chunk;
      if (progress) progress(it, total, loss);
      if (cfg.on_checkpoint && it % ckpt == 0 && it < total) save_state();
    }
  }
  res.adam_iterations = it;
  const char* last = "adam";
  if (cfg.lbfgs.max_iter > 0) {
    std::vector<double> x(net.n_params()), g(net.n_params());
    session->parameters(x);
    record(it, "lbfgs", 0.0);  // where L-BFGS starts
    const long it0 = it;
    res.lbfgs = minimize_lbfgs(
        x, [&](span<const double> theta, span<double> grad) { return session->loss_gradient_at(theta, grad); },
        cfg.lbfgs, [&](long k, double loss) {
          // At an accepted iterate the session holds that iterate's parameters.
          if (k % every == 0) record(it0 + k, "lbfgs", 0.0);
          if (progress && k % log_every == 0) progress(it0 + k, total + cfg.lbfgs.max_iter, loss);
        });
    session->loss_gradient_at(x, g);  // leave the session at the last accepted iterate
    it += res.lbfgs.iterations;
    last = "lbfgs";
    lr = 0.0;
  }
  if (res.history.empty() || res.history.back().iteration != it || res.history.back().optimizer != last)
    record(it, last, lr);  // the final network, unless the last row already is it
  session->parameters(net.theta);
  res.iterations = it;
  res.final_loss = res.history.back().loss;
  res.max_error = res.history.back().max_error;
  res.wall_time_s = seconds_since(t0);
  return res;
}

}  // namespace pinntk
