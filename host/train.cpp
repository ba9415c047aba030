#include "host/train.hpp"

#include <unistd.h>  // access

#include <algorithm>          // std::max, std::min
#include <chrono>             // std::chrono::steady_clock
#include <cmath>              // std::fabs, std::isfinite, NAN
#include <cstdio>             // std::snprintf
#include <functional>         // std::function
#include <memory>             // std::unique_ptr
#include <nlohmann/json.hpp>  // nlohmann::json
#include <stdexcept>          // std::invalid_argument
#include <utility>            // std::move, std::swap

#include "common/errors.hpp"             // UsageError, NumericalError
#include "common/residual.hpp"           // row_residual, row_loss
#include "host/io/files.hpp"             // read_regular_file
#include "host/member_batch.hpp"         // MemberBatchTrainSession
#include "host/optim/lbfgs_batched.hpp"  // minimize_lbfgs_batched, LbfgsOps
#include "host/timing.hpp"               // seconds_since

namespace pinntk {

double loss_of_network(const EvalFn& eval, const PointSet& pts, double* pde, double* bnd, const NetworkFn& network) {
  const size_t n = pts.size(), m = pts.dim;
  std::vector<double> u(n), du(n * m), d2u(n * m);
  if (pts.has_directions()) {
    if (!network) throw std::invalid_argument("loss_of_network: rows with directions need the network's parameters");
    evaluate_rows(network(), pts, u, du, d2u);
  } else {
    eval(pts.x, u, du, d2u);
  }
  return rows_loss(pts, u, du, d2u, pde, bnd);
}

SolutionError error_of_network(const EvalFn& eval, const ProblemSpec& spec, const std::vector<double>& x) {
  std::vector<double> u(x.size() / spec.dim), du(x.size()), d2u(x.size());
  eval(x, u, du, d2u);
  return solution_error(spec, x, u);
}

HistoryRow history_row(const EvalFn& eval, const ProblemSpec& spec, const PointSet& pts, long it,
                       const std::string& optimizer, double lr, const NetworkFn& network) {
  double pde = 0.0, bnd = 0.0;
  loss_of_network(eval, pts, &pde, &bnd, network);
  const SolutionError e = error_of_network(eval, spec, test_points(spec));
  HistoryRow row{it, optimizer, lr, pde + bnd, pde, bnd, e.max_error};
  row.rel_l2_error = e.rel_l2;
  return row;
}

std::string train_state_json(const TrainState& st, const std::string& settings_json, const nlohmann::json& more) {
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
    h.push_back(
        {r.iteration, r.optimizer, r.lr, r.loss, r.loss_pde, r.loss_boundary, r.max_error, r.time_s, r.rel_l2_error});
  j["history"] = h;
  j["elapsed_s"] = st.elapsed_s;
  for (const auto& [key, value] : more.items()) {
    if (j.contains(key)) throw std::invalid_argument("train_state_json: \"" + key + "\" is a field of the state");
    j[key] = value;
  }
  return j.dump() + "\n";
}

namespace {

// The checks of a resume file's fields; `what` prefixes every message.
struct StateReader {
  std::string what;
  long integer(const nlohmann::json& v, const std::string& name, long lo, long hi) const {
    if (!v.is_number_integer() || v.get<long>() < lo || v.get<long>() > hi)
      throw UsageError(what + ": \"" + name + "\" must be an integer in [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
    return v.get<long>();
  }
  double finite(const nlohmann::json& v, const std::string& name) const {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      throw UsageError(what + ": \"" + name + "\" must hold finite numbers");
    return v.get<double>();
  }
  std::vector<double> vector(const nlohmann::json& j, const char* name, long n) const {
    if (!j.contains(name) || !j[name].is_array() || static_cast<long>(j[name].size()) != n)
      throw UsageError(what + ": \"" + name + "\" must hold " + std::to_string(n) + " numbers (the network's " +
                       "parameter count)");
    std::vector<double> out;
    out.reserve(n);
    for (const auto& v : j[name]) out.push_back(finite(v, name));
    return out;
  }
};

}  // namespace

TrainState load_train_state(const std::string& path, const std::string& settings_json, long n_params,
                            long adam_iterations, long history_every, nlohmann::json* file) {
  if (access(path.c_str(), F_OK) != 0)
    throw UsageError("--resume: no saved state at " + path + " (it is written every --checkpoint-every steps)");
  // Bounded: the numbers of theta, m and v and the history rows, at well under 100 bytes each.
  const size_t limit = (size_t{1} << 30) + 300 * static_cast<size_t>(n_params);
  const std::string text = read_regular_file(path, "--resume", limit);
  const StateReader in{"--resume: " + path};
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "pinntk-train-state-v1")
    throw UsageError(in.what + " is not a pinntk-train-state-v1 file");
  if (!j.contains("settings") || j["settings"] != nlohmann::json::parse(settings_json))
    throw UsageError(in.what + " was written by a run with other settings; use the same flags");
  TrainState st;
  st.iteration = in.integer(j.value("iteration", nlohmann::json()), "iteration", 0, adam_iterations);
  // Adam's step count is the number of Adam steps taken: the schedule's phases change lr, never reset it.
  st.adam_step = in.integer(j.value("adam_step", nlohmann::json()), "adam_step", st.iteration, st.iteration);
  st.theta = in.vector(j, "theta", n_params);
  st.m = in.vector(j, "m", n_params);
  st.v = in.vector(j, "v", n_params);
  for (double v : st.v)
    if (v < 0.0) throw UsageError(in.what + ": \"v\" (Adam's second moments) must be non-negative");
  if (!j.contains("history") || !j["history"].is_array())
    throw UsageError(in.what + ": \"history\" must be a list of rows");
  long last = 0;
  for (const auto& r : j["history"]) {
    if (!r.is_array() || r.size() != 9 || !r[1].is_string() || r[1].get<std::string>() != "adam")
      throw UsageError(in.what +
                       ": every \"history\" row must be [iteration, \"adam\", lr, loss, loss_pde, "
                       "loss_boundary, max_error, time_s, rel_l2_error]");
    HistoryRow h{in.integer(r[0], "history", last, st.iteration), "adam", 0, 0, 0, 0, 0};
    last = h.iteration;
    h.lr = in.finite(r[2], "history");
    h.loss = in.finite(r[3], "history");
    h.loss_pde = in.finite(r[4], "history");
    h.loss_boundary = in.finite(r[5], "history");
    h.max_error = in.finite(r[6], "history");
    h.time_s = in.finite(r[7], "history");
    h.rel_l2_error = in.finite(r[8], "history");
    st.history.push_back(h);
  }
  // The rows a run saved by this iteration: every multiple of history_every below it (the row at the iteration itself
  // comes when the run goes on). Anything else was edited: the resumed history.csv would lack rows.
  if (history_every > 0) {
    const long want = (st.iteration + history_every - 1) / history_every;
    bool exact = static_cast<long>(st.history.size()) == want;
    for (size_t k = 0; exact && k < st.history.size(); ++k)
      exact = st.history[k].iteration == static_cast<long>(k) * history_every;
    if (!exact)
      throw UsageError(in.what + ": \"history\" holds " + std::to_string(st.history.size()) +
                       " rows; a run at iteration " + std::to_string(st.iteration) + " with --history-every " +
                       std::to_string(history_every) + " saved " + std::to_string(want) + " (one every " +
                       std::to_string(history_every) + " from 0)");
  }
  // The wall time so far (files of earlier versions lack it: their last history row's time then).
  if (j.contains("elapsed_s")) {
    st.elapsed_s = in.finite(j["elapsed_s"], "elapsed_s");
    if (st.elapsed_s < 0.0) throw UsageError(in.what + ": \"elapsed_s\" must be non-negative");
  } else if (!st.history.empty()) {
    st.elapsed_s = st.history.back().time_s;
  }
  if (file != nullptr) *file = std::move(j);
  return st;
}

namespace {

bool all_finite(span<const double> x) {
  for (double v : x)
    if (!std::isfinite(v)) return false;
  return true;
}

// Adam's state at the start of a chunk of steps: what the search for the first non-finite loss replays from.
struct Snapshot {
  long it = -1;  // -1: none taken
  long t = 0;
  std::vector<double> theta, m, v;
};

}  // namespace

namespace {

// One member of a batch under training: its session view, its result so far and the snapshots the divergence search
// replays from.
struct MemberRun {
  TrainSession* s = nullptr;
  TrainResult res;
  Snapshot prev, cur;
  long it = 0;         // iterations done (the batch's while active; where it stopped after)
  bool active = true;  // still taking the batch's Adam steps
  std::string failed;  // a NumericalError's message: not even the initial network had a finite loss
};

// The Adam phases and L-BFGS of TrainConfig on every member of `batch` (whose member b trains nets[b] on pts[b]
// against specs[b]): the batch advances all active members chunk by chunk; a member whose loss stops being finite is
// searched for its first non-finite network alone (its member session) and leaves the batch; L-BFGS then runs
// member by member. The logic of one member is exactly train_adam's.
std::vector<TrainResult> run_batch(BatchTrainSession& batch, std::vector<Mlp>& nets,
                                   const std::vector<ProblemSpec>& specs, const std::vector<PointSet>& pts,
                                   const TrainConfig& cfg, const BatchProgressFn& progress,
                                   std::chrono::steady_clock::time_point t0) {
  const int B = batch.size();
  const long total = total_iterations(cfg.schedule);
  const size_t np = static_cast<size_t>(nets[0].n_params());
  if (cfg.resume != nullptr)  // the run's clock goes on from the saved state's
    t0 -= std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(cfg.resume->elapsed_s));
  std::vector<MemberRun> mr(B);
  for (int b = 0; b < B; ++b) mr[b].s = &batch.member(b);

  auto record = [&](int b, long it, const char* optimizer, double lr) {
    MemberRun& m = mr[b];
    m.res.history.push_back(history_row(
        [&](span<const double> x, span<double> u, span<double> du, span<double> d2u) { m.s->evaluate(x, u, du, d2u); },
        specs[b], pts[b], it, optimizer, lr,
        [&] {
          Mlp now = nets[b];
          m.s->parameters(now.theta);
          return now;
        }));
    m.res.history.back().time_s = seconds_since(t0);
    const HistoryRow& h = m.res.history.back();
    if (!std::isfinite(h.loss) || !std::isfinite(h.max_error) || !std::isfinite(h.rel_l2_error))
      return false;  // the caller decides what it means
    if (cfg.on_record) cfg.on_record(it, *m.s);
    return true;
  };
  // The row where L-BFGS starts; a network whose loss there is not finite is a NumericalError.
  auto record_lbfgs_start = [&](int b, long it) {
    if (!record(b, it, "lbfgs", 0.0))
      throw NumericalError("the loss of the network at iteration " + std::to_string(it) + " is not finite");
  };
  auto lr_at = [&](long it) {  // the schedule's learning rate of the step from iteration it
    for (const auto& ph : cfg.schedule) {
      if (it < ph.iterations) return ph.lr;
      it -= ph.iterations;
    }
    return cfg.schedule.empty() ? 0.0 : cfg.schedule.back().lr;
  };

  const long every = std::max(1L, cfg.history_every);
  const long log_every = cfg.log_every > 0 ? cfg.log_every : every;
  long it = 0;
  if (cfg.resume != nullptr) {
    const TrainState& st = *cfg.resume;
    mr[0].s->set_adam_state(st.theta, st.m, st.v, st.adam_step);
    it = st.iteration;
    mr[0].res.history = st.history;
  }
  const long ckpt = cfg.checkpoint_every > 0 ? cfg.checkpoint_every : total + 1;
  auto snapshot = [&](MemberRun& m, Snapshot& s) {
    s.it = it;
    s.theta.resize(np);
    s.m.resize(np);
    s.v.resize(np);
    m.s->parameters(s.theta);
    s.t = m.s->adam_state(s.m, s.v);
  };
  auto save_state = [&]() {
    const MemberRun& m = mr[0];
    TrainState st;
    st.iteration = m.cur.it;
    st.adam_step = m.cur.t;
    st.theta = m.cur.theta;
    st.m = m.cur.m;
    st.v = m.cur.v;
    st.history = m.res.history;
    st.elapsed_s = seconds_since(t0);
    // A state that is no longer finite is not saved: the next chunk finds the divergence.
    if (all_finite(st.theta) && all_finite(st.m) && all_finite(st.v)) cfg.on_checkpoint(st);
  };
  // Member b's loss stopped being finite somewhere after its older snapshot (a NaN or infinity, once in the
  // parameters, stays there). Replay from it step by step to the first network with a non-finite loss, keep the one
  // before; the member leaves the batch.
  auto stop_diverged = [&](int b, long upto) {
    MemberRun& m = mr[b];
    m.active = false;
    batch.set_active(b, false);
    TrainSession& session = *m.s;
    const Snapshot& from = m.prev.it >= 0 ? m.prev : m.cur;
    session.set_adam_state(from.theta, from.m, from.v, from.t);
    std::vector<double> now(np), last;
    long k = from.it;
    for (; k < upto; ++k) {
      session.parameters(now);
      const double loss = session.run(1, lr_at(k));  // the loss of `now`
      if (!std::isfinite(loss)) break;
      last = now;
    }
    if (last.empty())
      throw NumericalError("the loss of the network at iteration " + std::to_string(k) +
                           " is not finite (the problem's scale overflows double precision)");
    TrainResult& res = m.res;
    res.diverged_at = k;
    char lr_text[32];
    std::snprintf(lr_text, sizeof lr_text, "%g", lr_at(k - 1));
    res.diverged = "Adam: the loss is not finite at iteration " + std::to_string(k) + " (learning rate " + lr_text +
                   "); kept the network of iteration " + std::to_string(k - 1) + ", the last with a finite loss";
    session.set_adam_state(last, from.m, from.v, from.t);  // from here on only evaluated: the moments do not matter
    while (!res.history.empty() && res.history.back().iteration >= k - 1) res.history.pop_back();
    m.it = k - 1;
    if (!record(b, m.it, "adam", lr_at(m.it)))  // the replay disagrees with the run: refuse rather than report it
      throw NumericalError(res.diverged + ", whose loss is not finite either");
  };
  // Runs f() for member b; a NumericalError (even its first network's loss is not finite) ends that member.
  auto guarded = [&](int b, const std::function<void()>& f) {
    try {
      f();
    } catch (const NumericalError& e) {
      if (B == 1) throw;
      mr[b].failed = e.what();
      mr[b].active = false;
      batch.set_active(b, false);
    }
  };
  auto any_active = [&] {
    for (const MemberRun& m : mr)
      if (m.active) return true;
    return false;
  };

  for (int b = 0; b < B; ++b) snapshot(mr[b], mr[b].cur);
  long done = it;  // iterations already taken before this call (a resumed run)
  double lr = cfg.schedule.empty() ? 0.0 : cfg.schedule.front().lr;
  for (const auto& ph : cfg.schedule) {
    if (!any_active()) break;
    lr = ph.lr;
    long left = ph.iterations;
    const long skip = std::min(left, done);
    done -= skip;
    left -= skip;
    while (left > 0 && any_active()) {
      if (it % every == 0) {
        for (int b = 0; b < B; ++b)
          if (mr[b].active && !record(b, it, "adam", lr)) {
            mr[b].res.history.pop_back();
            guarded(b, [&] { stop_diverged(b, it + 1); });
          }
        if (!any_active()) break;
      }
      // Run up to the next history row, progress line or checkpoint, whichever comes first.
      const long chunk = std::min({left, every - it % every, log_every - it % log_every, ckpt - it % ckpt});
      const std::vector<double> losses = batch.run(chunk, lr);
      double worst = 0.0;
      for (int b = 0; b < B; ++b) {
        if (!mr[b].active) continue;
        if (!std::isfinite(losses[b])) {
          guarded(b, [&] { stop_diverged(b, it + chunk); });
        } else {
          worst = std::max(worst, losses[b]);
        }
      }
      it += chunk;
      left -= chunk;
      for (MemberRun& m : mr) {
        if (!m.active) continue;
        m.it = it;
        std::swap(m.prev, m.cur);
        snapshot(m, m.cur);
      }
      if (!any_active()) break;
      if (progress) progress(-1, it, total, worst);
      if (cfg.on_checkpoint && it % ckpt == 0 && it < total) save_state();
    }
  }
  for (MemberRun& m : mr)
    if (m.active) m.it = it;

  for (MemberRun& m : mr) m.res.adam_iterations = m.it;

  // L-BFGS of the two-loop method (host/optim/lbfgs_batched.hpp): every member that finished Adam at once, with
  // the vectors where the batch keeps them (on the device for a device batch).
  const bool lbfgs = cfg.lbfgs.max_iter > 0;
  const bool two_loop = lbfgs && cfg.lbfgs.method == "two-loop";
  if (two_loop) {
    LbfgsMask asked(B, 0);
    std::vector<long> it0(B, 0);
    for (int b = 0; b < B; ++b) {
      MemberRun& m = mr[b];
      if (!m.failed.empty() || !m.res.diverged.empty()) continue;
      guarded(b, [&] {
        record_lbfgs_start(b, m.it);
        asked[b] = 1;
        it0[b] = m.it;
      });
    }
    int lead = -1;  // the member whose iterations the progress line shows
    for (int b = 0; b < B && lead < 0; ++b)
      if (asked[b]) lead = b;
    if (lead >= 0) {
      std::unique_ptr<LbfgsOps> ops = batch.lbfgs_ops(static_cast<int>(np), cfg.lbfgs.history);
      std::vector<double> x(np), g(np);
      for (int b = 0; b < B; ++b)
        if (asked[b]) {
          mr[b].s->parameters(x);
          ops->load(b, x);
        }
      BatchedLbfgsConfig bcfg;
      static_cast<LbfgsConfig&>(bcfg) = cfg.lbfgs;
      const std::vector<LbfgsResult> got = minimize_lbfgs_batched(
          *ops, bcfg,
          [&](int b, long k, double loss) {
            if (k % every == 0) {  // the member's session takes the iterate for its history row
              ops->store(b, x);
              mr[b].s->loss_gradient_at(x, g);
              record(b, it0[b] + k, "lbfgs", 0.0);
            }
            // Progress at the run's own multiples of log_every (iterations counted from the first Adam step).
            if (progress && b == lead && (it0[b] + k) % log_every == 0)
              progress(-1, it0[b] + k, total + cfg.lbfgs.max_iter, loss);
          },
          &asked);
      for (int b = 0; b < B; ++b) {
        if (!asked[b]) continue;
        MemberRun& m = mr[b];
        guarded(b, [&] {
          if (got[b].non_finite && got[b].evaluations == 1)
            throw NumericalError("L-BFGS: the loss or its gradient at the start is not finite");
          m.res.lbfgs = got[b];
          ops->store(b, x);
          m.s->loss_gradient_at(x, g);  // leave the session at the last accepted iterate
          m.it += got[b].iterations;
        });
      }
    }
  }

  std::vector<TrainResult> out(B);
  for (int b = 0; b < B; ++b) {
    MemberRun& m = mr[b];
    TrainResult& res = m.res;
    if (m.failed.empty())
      guarded(b, [&] {
        long mit = m.it;
        const char* last = "adam";
        double mlr = res.diverged.empty() ? lr : lr_at(mit);
        if (lbfgs && res.diverged.empty()) {
          if (!two_loop) {  // liblbfgsb, member by member
            TrainSession& session = *m.s;
            std::vector<double> x(np), g(np);
            session.parameters(x);
            const long it0 = mit;
            record_lbfgs_start(b, mit);
            if (progress) progress(b, it0, total + cfg.lbfgs.max_iter, res.history.back().loss);  // names the member
            res.lbfgs = minimize_lbfgs(
                x, [&](span<const double> theta, span<double> grad) { return session.loss_gradient_at(theta, grad); },
                cfg.lbfgs,
                [&](long k, double loss) {
                  // At an accepted iterate the session holds that iterate's parameters.
                  if (k % every == 0) record(b, it0 + k, "lbfgs", 0.0);
                  if (progress && (it0 + k) % log_every == 0) progress(b, it0 + k, total + cfg.lbfgs.max_iter, loss);
                });
            session.loss_gradient_at(x, g);  // leave the session at the last accepted iterate
            mit += res.lbfgs.iterations;
          }
          last = "lbfgs";
          mlr = 0.0;
          if (res.lbfgs.non_finite) {
            res.diverged_at = mit + 1;
            res.diverged = "L-BFGS: the loss or its gradient is not finite at a trial point of iteration " +
                           std::to_string(mit + 1) + "; kept the network of iteration " + std::to_string(mit) +
                           ", its last accepted iterate";
          }
        }
        if (res.history.empty() || res.history.back().iteration != mit || res.history.back().optimizer != last)
          record(b, mit, last, mlr);  // the final network, unless the last row already is it
        m.s->parameters(nets[b].theta);
        res.iterations = mit;
        res.final_loss = res.history.back().loss;
        res.max_error = res.history.back().max_error;
        res.rel_l2_error = res.history.back().rel_l2_error;
        res.wall_time_s = seconds_since(t0);
      });
    if (!m.failed.empty()) {  // nothing trained: nets[b] is the initial network
      res.diverged = m.failed;
      res.diverged_at = 0;
      res.history.clear();
      res.final_loss = res.max_error = res.rel_l2_error = NAN;
      res.failed = true;
      res.wall_time_s = seconds_since(t0);
    }
    out[b] = std::move(res);
  }
  return out;
}

}  // namespace

TrainResult train_adam(Backend& be, Mlp& net, const ProblemSpec& spec, const PointSet& pts, const TrainConfig& cfg,
                       const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(cfg.adam);
  validate(cfg.lbfgs);
  std::vector<Mlp> nets{net};
  const std::vector<ProblemSpec> specs{spec};
  const std::vector<PointSet> rows{pts};
  // A batch of one on the backend's own train_session (resumable, as before batches).
  MemberBatchTrainSession batch({&be}, {}, nets, rows, cfg.adam, 1);
  std::vector<TrainResult> res = run_batch(
      batch, nets, specs, rows, cfg,
      [&](int, long it, long total, double loss) {
        if (progress) progress(it, total, loss);
      },
      t0);
  net.theta = nets[0].theta;
  return std::move(res[0]);
}

std::vector<TrainResult> train_adam_batch(Backend& be, std::vector<Mlp>& nets, const std::vector<ProblemSpec>& specs,
                                          const std::vector<PointSet>& pts, const TrainConfig& cfg,
                                          const BatchProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(cfg.adam);
  validate(cfg.lbfgs);
  check_batch(nets, pts);
  if (specs.size() != nets.size())
    throw std::invalid_argument("train_adam_batch: " + std::to_string(nets.size()) + " networks but " +
                                std::to_string(specs.size()) + " problems");
  if (nets.size() > 1 && (cfg.resume != nullptr || cfg.on_checkpoint || cfg.on_record))
    throw std::invalid_argument("train_adam_batch: resume, checkpoints and on_record are for one network");
  std::unique_ptr<BatchTrainSession> batch = be.batch_train_session(nets, pts, cfg.adam);
  return run_batch(*batch, nets, specs, pts, cfg, progress, t0);
}

}  // namespace pinntk
