#include "host/ensemble.hpp"

#include <algorithm>  // std::sort, std::min, std::max
#include <cmath>      // std::isfinite, std::sqrt, NAN
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::invalid_argument
#include <utility>    // std::move
#include <vector>     // std::vector

#include "common/errors.hpp"  // NumericalError

namespace pinntk {

void train_ensemble(Backend& be, ProblemSpec& spec, PointSet& pts, const MemberTraining& how, int count, uint64_t seed,
                    const EnsembleHooks& hooks) {
  if (count < 1) throw std::invalid_argument("train_ensemble: at least one member");
  // LM changes eps (and the points) stage by stage: every member's LM starts again from the first stage's.
  const ProblemSpec spec0 = spec;
  const PointSet pts0 = pts;
  std::vector<Mlp> nets;
  for (int i = 0; i < count; ++i) nets.push_back(hooks.initial_net(seed + static_cast<uint64_t>(i)));
  if (hooks.on_start) hooks.on_start(-1, seed);
  // Adam and L-BFGS: one network through its own session (resumable); an ensemble as one batch.
  std::vector<TrainResult> results;
  if (count == 1) {
    results.push_back(train_adam(be, nets[0], spec, pts, how.adam, [&](long it, long total, double loss) {
      if (hooks.progress) hooks.progress(-1, it, total, loss);
    }));
  } else {
    results = train_adam_batch(be, nets, std::vector<ProblemSpec>(count, spec), std::vector<PointSet>(count, pts),
                               how.adam, hooks.progress);
  }
  std::string not_finite;  // the first failed member's reason
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    EnsembleMember m;
    m.index = i;
    m.seed = seed + static_cast<uint64_t>(i);
    m.net = std::move(nets[i]);
    m.result = std::move(results[i]);
    if (!m.result.failed && how.use_lm && m.result.diverged.empty()) {
      if (i > 0) {
        spec = spec0;
        pts = pts0;
      }
      if (hooks.on_start) hooks.on_start(i, m.seed);
      try {
        LmConfig lcfg = how.lm;
        if (lcfg.cond_every == 0) lcfg.cond_every = how.history_every;
        std::ostringstream lmcsv;
        lmcsv.precision(17);
        m.lm = continue_with_lm(be, m.net, spec, pts, lcfg, how.stages, how.history_every, m.result, &lmcsv,
                                [&](long it, long total, double loss) {
                                  if (hooks.progress) hooks.progress(i, it, total, loss);
                                });
        m.lm_history_csv = lmcsv.str();
      } catch (const NumericalError& e) {
        if (count == 1) throw;
        m.result.failed = true;
        m.result.diverged = e.what();
      }
    }
    if (m.result.failed) {
      if (failed++ == 0) not_finite = m.result.diverged;
      m.net = hooks.initial_net(m.seed);
      m.lm = LmTrainResult{};
      m.lm_history_csv.clear();
      m.result.diverged_at = 0;
      m.result.final_loss = m.result.max_error = m.result.rel_l2_error = NAN;
    }
    hooks.on_done(m);
  }
  // Not one member had a finite loss to start from: nothing to keep, as for a single run.
  if (failed == count) throw NumericalError(not_finite + " (every member)");
}

Spread spread(const std::vector<double>& values) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  Spread s;
  s.count = static_cast<long>(v.size());
  if (v.empty()) {
    s.min = s.median = s.mean = s.max = s.std = NAN;
    return s;
  }
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  double sum = 0.0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(n);
  double ss = 0.0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(n));
  return s;
}

void PointwiseMean::add(const std::vector<double>& u) {
  if (n_ == 0) {
    mean_.assign(u.size(), 0.0);
    m2_.assign(u.size(), 0.0);
  } else if (u.size() != mean_.size()) {
    throw std::invalid_argument("PointwiseMean::add: a member with another number of points");
  }
  ++n_;
  for (size_t i = 0; i < u.size(); ++i) {
    const double d = u[i] - mean_[i];
    mean_[i] += d / static_cast<double>(n_);
    m2_[i] += d * (u[i] - mean_[i]);
  }
}

std::vector<double> PointwiseMean::std_dev() const {
  std::vector<double> s(m2_.size());
  for (size_t i = 0; i < s.size(); ++i) s[i] = std::sqrt(std::max(0.0, m2_[i]) / static_cast<double>(n_));
  return s;
}

}  // namespace pinntk
