// Plain L-BFGS (no bounds) advancing B independent problems (networks) in lockstep: the two-loop recursion and a
// strong-Wolfe line search with cubic interpolation (Nocedal & Wright, Algorithms 3.5 and 3.6). Every vector (the
// iterate, its gradient, the trial point, the direction and the S/Y history of B x m x P numbers) lives behind an
// LbfgsOps, so a device implementation keeps them on the device and only arrays of B scalars cross to the host; the
// host implementation is HostLbfgsOps. Each member runs its own line search and stops on its own; its arithmetic
// depends on its own numbers only, so a member's result does not depend on the others in the batch.
#pragma once

#include <functional>  // std::function
#include <vector>      // std::vector

#include "common/span.hpp"       // span
#include "host/optim/lbfgs.hpp"  // LbfgsConfig, LbfgsResult

namespace pinntk {

// The B x P vectors an LbfgsOps holds besides the history: the accepted iterate x and its gradient g, the trial
// point x_trial = x + t d and its gradient g_trial, and the search direction d.
enum class LbfgsVector { X, G, XTrial, GTrial, D };

// Which members an operation touches (B entries, non-zero: touched). Untouched members keep their numbers, and
// their entries of a returned array are unspecified.
using LbfgsMask = std::vector<char>;

// The history of curvature pairs (s_i, y_i) = (x_{i+1} - x_i, g_{i+1} - g_i), a ring of `history` positions per
// member kept by the driver: member b's newest pair sits at ring position newest[b], the one before at newest[b] - 1
// (mod history), count[b] pairs in all; rho[b * history + i] = 1 / (s_i . y_i) at ring position i, and gamma[b] =
// s.y / y.y of the newest pair (1 while count[b] = 0) scales the initial inverse Hessian.
// Between two calls of two_loop only rho at the members' newest positions changes, so a device implementation may copy
// just those B numbers.
struct LbfgsRing {
  std::vector<int> newest, count;
  std::vector<double> rho, gamma;
};

// s . y and y . y of the pair just stored (B entries each).
struct LbfgsPairProducts {
  std::vector<double> sy, yy;
};

// The vector algebra of minimize_lbfgs_batched, batched over the B members. Every array of per-member numbers has B
// entries; every mask has B entries. Host round trips per iteration of the driver: one dot after the direction, an
// evaluate and a dot per trial point, a store_pair and a max_abs per accepted step.
class LbfgsOps {
 public:
  virtual ~LbfgsOps() = default;
  virtual int members() const = 0;  // B
  virtual int params() const = 0;   // P
  virtual int history() const = 0;  // m, the ring positions of S and Y per member

  // Sets member b's x to theta / writes member b's x into theta (P numbers). std::invalid_argument for a member
  // outside [0, B) or a theta of another length.
  virtual void load(int b, span<const double> theta) = 0;
  virtual void store(int b, span<double> theta) const = 0;

  // a_b . v_b for every active member b.
  virtual std::vector<double> dot(LbfgsVector a, LbfgsVector v, const LbfgsMask& active) = 0;
  // y_b += alpha_b x_b.
  virtual void axpy(LbfgsVector y, const std::vector<double>& alpha, LbfgsVector x, const LbfgsMask& active) = 0;
  // y_b *= alpha_b.
  virtual void scale(LbfgsVector y, const std::vector<double>& alpha, const LbfgsMask& active) = 0;
  // dst_b = src_b.
  virtual void copy(LbfgsVector dst, LbfgsVector src, const LbfgsMask& active) = 0;
  // max_p |a_bp|; NaN when an entry is NaN.
  virtual std::vector<double> max_abs(LbfgsVector a, const LbfgsMask& active) = 0;

  // The two-loop recursion: d = -H g with H the L-BFGS inverse Hessian of the member's ring (d = -g when its count
  // is 0). One operation, so a device implementation keeps its 2 count dot products and 2 count axpys on the device
  // instead of returning each dot product to the host.
  virtual void two_loop(const LbfgsRing& ring, const LbfgsMask& active) = 0;
  // Stores the pair s = x_trial - x, y = g_trial - g at ring position position[b] of every active member and returns
  // their products.
  virtual LbfgsPairProducts store_pair(const std::vector<int>& position, const LbfgsMask& active) = 0;

  // The loss and gradient of every active member at its x_trial: the gradient into g_trial, the loss returned. A
  // member whose loss or any gradient entry is not finite gets a non-finite entry (NaN when only the gradient is).
  virtual std::vector<double> evaluate(const LbfgsMask& active) = 0;
};

// The loss of member `member` at theta, its gradient written into grad.
using MemberLossGradientFn = std::function<double(int member, span<const double> theta, span<double> grad)>;

// LbfgsOps on host arrays: plain loops, member by member, so a member's numbers are those of a batch of one.
// Memory: (5 + 2 history) B P doubles.
class HostLbfgsOps : public LbfgsOps {
 public:
  // std::invalid_argument unless members >= 1, params >= 1, history in [1, kMaxHistory] and fg is set.
  HostLbfgsOps(int members, int params, int history, MemberLossGradientFn fg);
  int members() const override { return B_; }
  int params() const override { return P_; }
  int history() const override { return m_; }
  void load(int b, span<const double> theta) override;
  void store(int b, span<double> theta) const override;
  std::vector<double> dot(LbfgsVector a, LbfgsVector v, const LbfgsMask& active) override;
  void axpy(LbfgsVector y, const std::vector<double>& alpha, LbfgsVector x, const LbfgsMask& active) override;
  void scale(LbfgsVector y, const std::vector<double>& alpha, const LbfgsMask& active) override;
  void copy(LbfgsVector dst, LbfgsVector src, const LbfgsMask& active) override;
  std::vector<double> max_abs(LbfgsVector a, const LbfgsMask& active) override;
  void two_loop(const LbfgsRing& ring, const LbfgsMask& active) override;
  LbfgsPairProducts store_pair(const std::vector<int>& position, const LbfgsMask& active) override;
  std::vector<double> evaluate(const LbfgsMask& active) override;

 private:
  double* row(LbfgsVector v, int b);
  const double* row(LbfgsVector v, int b) const;
  double* s_row(int b, int i) { return &s_[(static_cast<size_t>(b) * m_ + i) * P_]; }
  double* y_row(int b, int i) { return &y_[(static_cast<size_t>(b) * m_ + i) * P_]; }
  void check_mask(const LbfgsMask& active) const;

  int B_, P_, m_;
  MemberLossGradientFn fg_;
  std::vector<double> vectors_;  // the five LbfgsVector, each B x P
  std::vector<double> s_, y_;    // B x m x P, member-major
};

// LbfgsConfig's limits and tolerances (history 100, gtol 1e-8 on max |g| as liblbfgsb's pgtol without bounds, ftol
// as factr * eps: stop when (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol, max_iter, max_fun per member with 0
// meaning 1.25 max_iter + 1), and the line search's: sufficient decrease c1, curvature c2 (strong Wolfe:
// |g(t).d| <= c2 |g(0).d|) and at most max_line_search evaluations per line search (20, as liblbfgsb 3.0).
struct BatchedLbfgsConfig : LbfgsConfig {
  double c1 = 1e-4, c2 = 0.9;
  int max_line_search = 20;
};

// UsageError as validate(const LbfgsConfig&), and unless 0 < c1 < c2 < 1 and max_line_search lies in [1, 1000].
void validate(const BatchedLbfgsConfig& cfg);

// Called after every accepted iterate with (member, iteration, loss), while the ops' x of that member holds it.
using BatchIterateFn = std::function<void(int member, long iteration, double loss)>;

// Minimizes every member from the x loaded into ops; on return ops' x of each member holds its last accepted
// iterate. Results per member (B entries), with the stop texts:
//   "CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL", "CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH" (the texts
//   of liblbfgsb), "reached the limit of N iterations", "reached the limit of N evaluations", "no iterations asked"
//   (max_iter = 0: one evaluation), a failed line search, a direction that is not a descent direction, and with
//   non_finite set: a non-finite loss or gradient at a trial point or at the start.
// The line search of a member (strong Wolfe, Nocedal & Wright 3.5 and 3.6): trial steps t grow while the loss keeps
// decreasing with a steep slope, each the minimizer of the cubic through the last two trials, kept in
// [t + 0.01 (t - t_prev), 10 t]; once a trial brackets a strong Wolfe point the bracket shrinks by the cubic's
// minimizer on it, kept a tenth of its width from either end (bisection when the cubic has none). The first trial is
// t = 1, or t = min(1 / |g|_2, 1e10) (a step of length 1) along -g: at the first iteration as liblbfgsb, and also
// after the history was dropped. A pair with s.y <= eps (-g.s) is not kept (liblbfgsb's test). A line search fails
// after max_line_search evaluations without a strong Wolfe point, or when its bracket is narrower than 1e-12 of its
// larger end. When it fails, or the direction is not a descent direction, while the member has curvature pairs, its
// history is dropped and it goes on along -g; with an empty history it stops. A start without a finite loss and
// gradient stops that member at once (iterations 0, evaluations 1, non_finite, loss NaN or the non-finite loss) while
// the others go on: the caller decides what that means (minimize_lbfgs throws NumericalError there). UsageError for a
// config that validate refuses, std::invalid_argument when ops.history() differs from cfg.history.
// With `members` (B entries) only the members it marks run; the others are left untouched (stop "not asked").
std::vector<LbfgsResult> minimize_lbfgs_batched(LbfgsOps& ops, const BatchedLbfgsConfig& cfg,
                                                const BatchIterateFn& on_iterate = nullptr,
                                                const LbfgsMask* members = nullptr);

}  // namespace pinntk
