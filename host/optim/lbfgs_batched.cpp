// Batched L-BFGS: the driver, a state machine per member (direction, then its line search's bracketing and zoom
// phases) whose rounds gather every member that needs an evaluation into one LbfgsOps::evaluate, and HostLbfgsOps,
// the vector algebra on host arrays.
#include "host/optim/lbfgs_batched.hpp"

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::fabs, std::isfinite, std::sqrt, std::copysign
#include <limits>     // std::numeric_limits
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string
#include <utility>    // std::move

#include "common/errors.hpp"  // UsageError

namespace pinntk {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The longest first step along -g (liblbfgsb's stpmx).
constexpr double kMaxFirstStep = 1e10;
// A zoom bracket narrower than this fraction of its larger end holds no new trial point.
constexpr double kBracketRtol = 1e-12;

// A point of the line search: step t, loss f and slope g.d there.
struct LinePoint {
  double t, f, gtd;
};

enum class Phase { Direction, Search, Done };
enum class Outcome { Accept, Continue, TooManyEvaluations, BracketCollapsed };

struct Member {
  Phase phase = Phase::Direction;
  bool zoom = false;
  double f = 0.0;        // loss at x, the last accepted iterate
  double gtd0 = 0.0;     // g . d at x
  double t = 0.0;        // the step of the pending (or last evaluated) trial point
  double f_trial = 0.0;  // the loss there, once evaluated
  int ls_evals = 0;
  LinePoint prev{}, lo{}, hi{};  // bracketing: the previous trial (t = 0: x); zoom: the ends, lo the lower loss
  LbfgsResult res;
};

// The minimizer of the cubic that matches f and slope at p and q, clamped to [lo, hi]; `fallback` when the cubic has
// no minimizer or the numbers are degenerate.
double cubic_minimizer(const LinePoint& p, const LinePoint& q, double lo, double hi, double fallback) {
  const double d1 = p.gtd + q.gtd - 3.0 * (p.f - q.f) / (p.t - q.t);
  const double disc = d1 * d1 - p.gtd * q.gtd;
  if (!(disc >= 0.0)) return fallback;
  const double d2 = std::copysign(std::sqrt(disc), q.t - p.t);
  const double t = q.t - (q.t - p.t) * (q.gtd + d2 - d1) / (q.gtd - p.gtd + 2.0 * d2);
  if (!std::isfinite(t)) return fallback;
  return std::min(std::max(t, lo), hi);
}

// The next trial of the zoom phase: the cubic's minimizer on the bracket, kept a tenth of its width from either end so
// that every trial shrinks the bracket by at least that much; bisection when the cubic has no minimizer there.
Outcome next_zoom_trial(Member& m) {
  const double a = std::min(m.lo.t, m.hi.t), b = std::max(m.lo.t, m.hi.t), w = b - a;
  if (!(w > kBracketRtol * b)) return Outcome::BracketCollapsed;
  m.t = cubic_minimizer(m.lo, m.hi, a + 0.1 * w, b - 0.1 * w, a + 0.5 * w);
  return Outcome::Continue;
}

// Takes in the trial point just evaluated (loss fn, slope gn) and sets the next one (Nocedal & Wright, Algorithms 3.5
// and 3.6 for the strong Wolfe conditions).
Outcome advance(Member& m, const BatchedLbfgsConfig& cfg, double fn, double gn) {
  const LinePoint cur{m.t, fn, gn};
  const bool decrease = fn <= m.f + cfg.c1 * m.t * m.gtd0;
  const bool curvature = std::fabs(gn) <= -cfg.c2 * m.gtd0;
  if (!m.zoom) {
    if (!decrease || fn >= m.prev.f) {  // a minimizer lies between the previous trial and this one
      m.lo = m.prev;
      m.hi = cur;
      m.zoom = true;
    } else if (curvature) {
      return Outcome::Accept;
    } else if (gn >= 0.0) {  // the slope turned: a minimizer lies between this trial and the previous one
      m.lo = cur;
      m.hi = m.prev;
      m.zoom = true;
    }
  } else if (!decrease || fn >= m.lo.f) {
    m.hi = cur;
  } else {
    if (curvature) return Outcome::Accept;
    if (gn * (m.hi.t - m.lo.t) >= 0.0) m.hi = m.lo;
    m.lo = cur;
  }
  if (m.ls_evals >= cfg.max_line_search) return Outcome::TooManyEvaluations;
  if (m.zoom) return next_zoom_trial(m);
  // Still descending with a steep slope: extrapolate, at least 1% of the last increment and at most 10 times as far.
  const double lo = m.t + 0.01 * (m.t - m.prev.t), hi = 10.0 * m.t;
  m.t = cubic_minimizer(m.prev, cur, lo, hi, hi);
  m.prev = cur;
  return Outcome::Continue;
}

std::vector<LbfgsResult> results_of(std::vector<Member>& mem) {
  std::vector<LbfgsResult> out(mem.size());
  for (size_t b = 0; b < mem.size(); ++b) out[b] = std::move(mem[b].res);
  return out;
}

bool any(const LbfgsMask& k) {
  for (char c : k)
    if (c) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// HostLbfgsOps

HostLbfgsOps::HostLbfgsOps(int members, int params, int history, MemberLossGradientFn fg)
    : B_(members), P_(params), m_(history), fg_(std::move(fg)) {
  if (members < 1) throw std::invalid_argument("HostLbfgsOps: the batch needs at least one member");
  if (params < 1) throw std::invalid_argument("HostLbfgsOps: a member needs at least one parameter");
  if (history < 1 || history > kMaxHistory)
    throw std::invalid_argument("HostLbfgsOps: the history must lie in [1, " + std::to_string(kMaxHistory) + "]");
  if (!fg_) throw std::invalid_argument("HostLbfgsOps: no loss and gradient function");
  const size_t bp = static_cast<size_t>(B_) * P_;
  vectors_.assign(5 * bp, 0.0);
  s_.assign(bp * m_, 0.0);
  y_.assign(bp * m_, 0.0);
}

double* HostLbfgsOps::row(LbfgsVector v, int b) { return &vectors_[(static_cast<size_t>(v) * B_ + b) * P_]; }

const double* HostLbfgsOps::row(LbfgsVector v, int b) const {
  return &vectors_[(static_cast<size_t>(v) * B_ + b) * P_];
}

void HostLbfgsOps::check_mask(const LbfgsMask& active) const {
  if (active.size() != static_cast<size_t>(B_))
    throw std::invalid_argument("HostLbfgsOps: a mask of " + std::to_string(active.size()) + " entries for " +
                                std::to_string(B_) + " members");
}

void HostLbfgsOps::load(int b, span<const double> theta) {
  if (b < 0 || b >= B_ || theta.size() != static_cast<size_t>(P_))
    throw std::invalid_argument("HostLbfgsOps::load: member " + std::to_string(b) + " with " +
                                std::to_string(theta.size()) + " parameters (B = " + std::to_string(B_) +
                                ", P = " + std::to_string(P_) + ")");
  std::copy(theta.begin(), theta.end(), row(LbfgsVector::X, b));
}

void HostLbfgsOps::store(int b, span<double> theta) const {
  if (b < 0 || b >= B_ || theta.size() != static_cast<size_t>(P_))
    throw std::invalid_argument("HostLbfgsOps::store: member " + std::to_string(b) + " with " +
                                std::to_string(theta.size()) + " parameters (B = " + std::to_string(B_) +
                                ", P = " + std::to_string(P_) + ")");
  const double* x = row(LbfgsVector::X, b);
  std::copy(x, x + P_, theta.begin());
}

std::vector<double> HostLbfgsOps::dot(LbfgsVector a, LbfgsVector v, const LbfgsMask& active) {
  check_mask(active);
  std::vector<double> out(B_, kNaN);
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    const double *pa = row(a, b), *pv = row(v, b);
    double s = 0.0;
    for (int p = 0; p < P_; ++p) s += pa[p] * pv[p];
    out[b] = s;
  }
  return out;
}

void HostLbfgsOps::axpy(LbfgsVector y, const std::vector<double>& alpha, LbfgsVector x, const LbfgsMask& active) {
  check_mask(active);
  if (alpha.size() != static_cast<size_t>(B_)) throw std::invalid_argument("HostLbfgsOps::axpy: alpha needs B entries");
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    double* py = row(y, b);
    const double* px = row(x, b);
    for (int p = 0; p < P_; ++p) py[p] += alpha[b] * px[p];
  }
}

void HostLbfgsOps::scale(LbfgsVector y, const std::vector<double>& alpha, const LbfgsMask& active) {
  check_mask(active);
  if (alpha.size() != static_cast<size_t>(B_))
    throw std::invalid_argument("HostLbfgsOps::scale: alpha needs B entries");
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    double* py = row(y, b);
    for (int p = 0; p < P_; ++p) py[p] *= alpha[b];
  }
}

void HostLbfgsOps::copy(LbfgsVector dst, LbfgsVector src, const LbfgsMask& active) {
  check_mask(active);
  for (int b = 0; b < B_; ++b)
    if (active[b]) std::copy(row(src, b), row(src, b) + P_, row(dst, b));
}

std::vector<double> HostLbfgsOps::max_abs(LbfgsVector a, const LbfgsMask& active) {
  check_mask(active);
  std::vector<double> out(B_, kNaN);
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    const double* pa = row(a, b);
    double mx = 0.0;
    for (int p = 0; p < P_ && !std::isnan(mx); ++p) mx = std::isnan(pa[p]) ? kNaN : std::max(mx, std::fabs(pa[p]));
    out[b] = mx;
  }
  return out;
}

void HostLbfgsOps::two_loop(const LbfgsRing& ring, const LbfgsMask& active) {
  check_mask(active);
  const size_t B = static_cast<size_t>(B_);
  if (ring.newest.size() != B || ring.count.size() != B || ring.gamma.size() != B || ring.rho.size() != B * m_)
    throw std::invalid_argument("HostLbfgsOps::two_loop: the ring needs B newest, count, gamma and B x m rho");
  std::vector<double> alpha(m_);
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    const int newest = ring.newest[b], count = ring.count[b];
    if (newest < 0 || newest >= m_ || count < 0 || count > m_)
      throw std::invalid_argument("HostLbfgsOps::two_loop: a ring position or count outside the history");
    const double* rho = &ring.rho[static_cast<size_t>(b) * m_];
    const double* g = row(LbfgsVector::G, b);
    double* d = row(LbfgsVector::D, b);
    std::copy(g, g + P_, d);
    for (int i = 0; i < count; ++i) {  // newest to oldest
      const int j = (newest - i + m_) % m_;
      const double *s = s_row(b, j), *y = y_row(b, j);
      double sq = 0.0;
      for (int p = 0; p < P_; ++p) sq += s[p] * d[p];
      alpha[i] = rho[j] * sq;
      for (int p = 0; p < P_; ++p) d[p] -= alpha[i] * y[p];
    }
    for (int p = 0; p < P_; ++p) d[p] *= ring.gamma[b];
    for (int i = count - 1; i >= 0; --i) {  // oldest to newest
      const int j = (newest - i + m_) % m_;
      const double *s = s_row(b, j), *y = y_row(b, j);
      double yr = 0.0;
      for (int p = 0; p < P_; ++p) yr += y[p] * d[p];
      const double c = alpha[i] - rho[j] * yr;
      for (int p = 0; p < P_; ++p) d[p] += c * s[p];
    }
    for (int p = 0; p < P_; ++p) d[p] = -d[p];
  }
}

LbfgsPairProducts HostLbfgsOps::store_pair(const std::vector<int>& position, const LbfgsMask& active) {
  check_mask(active);
  if (position.size() != static_cast<size_t>(B_))
    throw std::invalid_argument("HostLbfgsOps::store_pair: position needs B entries");
  LbfgsPairProducts out{std::vector<double>(B_, kNaN), std::vector<double>(B_, kNaN)};
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    if (position[b] < 0 || position[b] >= m_)
      throw std::invalid_argument("HostLbfgsOps::store_pair: a ring position outside the history");
    double *s = s_row(b, position[b]), *y = y_row(b, position[b]);
    const double *x = row(LbfgsVector::X, b), *xt = row(LbfgsVector::XTrial, b);
    const double *g = row(LbfgsVector::G, b), *gt = row(LbfgsVector::GTrial, b);
    double sy = 0.0, yy = 0.0;
    for (int p = 0; p < P_; ++p) {
      s[p] = xt[p] - x[p];
      y[p] = gt[p] - g[p];
      sy += s[p] * y[p];
      yy += y[p] * y[p];
    }
    out.sy[b] = sy;
    out.yy[b] = yy;
  }
  return out;
}

std::vector<double> HostLbfgsOps::evaluate(const LbfgsMask& active) {
  check_mask(active);
  std::vector<double> out(B_, kNaN);
  for (int b = 0; b < B_; ++b) {
    if (!active[b]) continue;
    double* g = row(LbfgsVector::GTrial, b);
    double f = fg_(b, span<const double>(row(LbfgsVector::XTrial, b), P_), span<double>(g, P_));
    for (int p = 0; p < P_; ++p)
      if (!std::isfinite(g[p])) f = kNaN;
    out[b] = f;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The driver

void validate(const BatchedLbfgsConfig& cfg) {
  validate(static_cast<const LbfgsConfig&>(cfg));
  if (!(cfg.c1 > 0.0) || !(cfg.c1 < cfg.c2) || !(cfg.c2 < 1.0))
    throw UsageError("L-BFGS: the line search needs 0 < c1 < c2 < 1");
  if (cfg.max_line_search < 1 || cfg.max_line_search > 1000)
    throw UsageError("L-BFGS: the evaluations per line search must lie in [1, 1000]");
}

std::vector<LbfgsResult> minimize_lbfgs_batched(LbfgsOps& ops, const BatchedLbfgsConfig& cfg,
                                                const BatchIterateFn& on_iterate, const LbfgsMask* members) {
  validate(cfg);
  const int B = ops.members(), m = cfg.history;
  if (B < 1 || ops.params() < 1)
    throw std::invalid_argument("L-BFGS: a batch of " + std::to_string(B) + " members of " +
                                std::to_string(ops.params()) + " parameters");
  if (ops.history() != m)
    throw std::invalid_argument("L-BFGS: the ops hold a history of " + std::to_string(ops.history()) +
                                " pairs, the config asks for " + std::to_string(m));
  const long max_fun = cfg.max_fun > 0 ? cfg.max_fun : static_cast<long>(1.25 * cfg.max_iter) + 1;
  std::vector<Member> mem(B);
  LbfgsRing ring{std::vector<int>(B, m - 1), std::vector<int>(B, 0), std::vector<double>(static_cast<size_t>(B) * m),
                 std::vector<double>(B, 1.0)};
  auto stop = [&](int b, std::string why) {
    mem[b].phase = Phase::Done;
    mem[b].res.stop = std::move(why);
  };
  auto select = [&](Phase phase) {
    LbfgsMask k(B, 0);
    for (int b = 0; b < B; ++b) k[b] = mem[b].phase == phase;
    return k;
  };
  auto drop_history = [&](int b) {
    ring.count[b] = 0;
    ring.gamma[b] = 1.0;
  };

  // The start: every member's loss and gradient at its x (of the members asked for).
  if (members != nullptr && members->size() != static_cast<size_t>(B))
    throw std::invalid_argument("L-BFGS: the member mask needs " + std::to_string(B) + " entries");
  const LbfgsMask all = members != nullptr ? *members : LbfgsMask(B, 1);
  for (int b = 0; b < B; ++b)
    if (!all[b]) stop(b, "not asked");
  if (!any(all)) return results_of(mem);
  ops.copy(LbfgsVector::XTrial, LbfgsVector::X, all);
  const std::vector<double> f0 = ops.evaluate(all);
  for (int b = 0; b < B; ++b) {
    if (!all[b]) continue;
    mem[b].res.evaluations = 1;
    mem[b].res.loss = mem[b].f = f0[b];
    if (!std::isfinite(f0[b])) {
      mem[b].res.non_finite = true;
      stop(b, "the loss or its gradient at the start is not finite");
    }
  }
  const LbfgsMask started = select(Phase::Direction);
  if (any(started)) {
    ops.copy(LbfgsVector::G, LbfgsVector::GTrial, started);
    const std::vector<double> gmax = ops.max_abs(LbfgsVector::G, started);
    for (int b = 0; b < B; ++b) {
      if (!started[b]) continue;
      if (cfg.max_iter == 0)
        stop(b, "no iterations asked");
      else if (gmax[b] <= cfg.gtol)
        stop(b, "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL");
    }
  }

  for (;;) {
    // Directions: d = -H g; a member whose d is not a descent direction drops its history and takes -g.
    const LbfgsMask dir = select(Phase::Direction);
    if (any(dir)) {
      ops.two_loop(ring, dir);
      std::vector<double> gtd = ops.dot(LbfgsVector::G, LbfgsVector::D, dir);
      LbfgsMask again(B, 0);
      for (int b = 0; b < B; ++b)
        if (dir[b] && !(gtd[b] < 0.0) && ring.count[b] > 0) {
          again[b] = 1;
          drop_history(b);
        }
      if (any(again)) {
        ops.two_loop(ring, again);
        const std::vector<double> gtd2 = ops.dot(LbfgsVector::G, LbfgsVector::D, again);
        for (int b = 0; b < B; ++b)
          if (again[b]) gtd[b] = gtd2[b];
      }
      for (int b = 0; b < B; ++b) {
        if (!dir[b]) continue;
        Member& mb = mem[b];
        if (!(gtd[b] < 0.0)) {
          stop(b, "the search direction is not a descent direction");
          continue;
        }
        mb.phase = Phase::Search;
        mb.zoom = false;
        mb.ls_evals = 0;
        mb.gtd0 = gtd[b];
        mb.t =
            ring.count[b] == 0 ? std::min(1.0 / std::sqrt(-gtd[b]), kMaxFirstStep) : 1.0;  // d = -g: |d| = sqrt(-g.d)
        mb.prev = LinePoint{0.0, mb.f, mb.gtd0};
      }
    }

    // One evaluation for every member with a trial point.
    LbfgsMask ev(B, 0);
    for (int b = 0; b < B; ++b) {
      if (mem[b].phase != Phase::Search) continue;
      if (mem[b].res.evaluations >= max_fun)
        stop(b, "reached the limit of " + std::to_string(max_fun) + " evaluations");
      else
        ev[b] = 1;
    }
    if (!any(ev)) break;
    std::vector<double> t(B, 0.0);
    for (int b = 0; b < B; ++b) t[b] = mem[b].t;
    ops.copy(LbfgsVector::XTrial, LbfgsVector::X, ev);
    ops.axpy(LbfgsVector::XTrial, t, LbfgsVector::D, ev);
    const std::vector<double> fn = ops.evaluate(ev);
    const std::vector<double> gn = ops.dot(LbfgsVector::GTrial, LbfgsVector::D, ev);

    LbfgsMask acc(B, 0);
    for (int b = 0; b < B; ++b) {
      if (!ev[b]) continue;
      Member& mb = mem[b];
      ++mb.res.evaluations;
      ++mb.ls_evals;
      if (!std::isfinite(fn[b]) || !std::isfinite(gn[b])) {
        mb.res.non_finite = true;
        stop(b, "the loss or its gradient is not finite at a trial point");
        continue;
      }
      const Outcome o = advance(mb, cfg, fn[b], gn[b]);
      if (o == Outcome::Accept) {
        acc[b] = 1;
        mb.f_trial = fn[b];
      } else if (o != Outcome::Continue) {
        if (ring.count[b] > 0) {  // retry along -g
          drop_history(b);
          mb.phase = Phase::Direction;
        } else if (o == Outcome::TooManyEvaluations) {
          stop(b, "the line search found no strong Wolfe point in " + std::to_string(cfg.max_line_search) +
                      " evaluations along -g");
        } else {
          stop(b, "the line search's bracket shrank to rounding without a strong Wolfe point along -g");
        }
      }
    }
    if (!any(acc)) continue;

    // The accepted steps: their curvature pairs, then x, g = x_trial, g_trial.
    std::vector<int> pos(B, 0);
    for (int b = 0; b < B; ++b)
      if (acc[b]) pos[b] = (ring.newest[b] + 1) % m;
    const LbfgsPairProducts pp = ops.store_pair(pos, acc);
    ops.copy(LbfgsVector::X, LbfgsVector::XTrial, acc);
    ops.copy(LbfgsVector::G, LbfgsVector::GTrial, acc);
    const std::vector<double> gmax = ops.max_abs(LbfgsVector::G, acc);
    for (int b = 0; b < B; ++b) {
      if (!acc[b]) continue;
      Member& mb = mem[b];
      const double f_old = mb.f;
      mb.f = mb.res.loss = mb.f_trial;
      const long it = ++mb.res.iterations;
      // liblbfgsb's test: keep the pair when s.y > eps (-g.s), s = t d.
      if (pp.sy[b] > kEps * mb.t * -mb.gtd0) {
        ring.newest[b] = pos[b];
        ring.count[b] = std::min(ring.count[b] + 1, m);
        ring.rho[static_cast<size_t>(b) * m + pos[b]] = 1.0 / pp.sy[b];
        ring.gamma[b] = pp.sy[b] / pp.yy[b];
      } else {
        ring.count[b] = std::min(ring.count[b], m - 1);  // a full ring lost its oldest pair at pos
      }
      if (on_iterate) on_iterate(b, it, mb.f);
      if (gmax[b] <= cfg.gtol)
        stop(b, "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL");
      else if (f_old - mb.f <= cfg.ftol * std::max({std::fabs(f_old), std::fabs(mb.f), 1.0}))
        stop(b, "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH");
      else if (it >= cfg.max_iter)
        stop(b, "reached the limit of " + std::to_string(cfg.max_iter) + " iterations");
      else
        mb.phase = Phase::Direction;
    }
  }

  return results_of(mem);
}

}  // namespace pinntk
