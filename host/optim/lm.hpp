// Levenberg-Marquardt in function space: the damped Gauss-Newton step that inverts the NTK's spectrum instead of
// crawling along its small eigenvalues. With rh = D^1/2 r and Jh = D^1/2 J (D the loss weights, L = 1/2 |rh|^2):
//   sample space (N <= P):    delta = -Jh^T (Jh Jh^T + mu I)^-1 rh     (Jh Jh^T is the NTK K_s)
//   parameter space (N > P):  (Jh^T Jh + mu I) delta = -Jh^T rh
// both by Cholesky (LAPACKE dpotrf/dpotrs on the host, cuSOLVER potrf/potrs on the GPU: Backend::lm_session). The
// damping follows Nielsen's gain-ratio rule; a failed Cholesky raises mu instead of stopping. LM after Adam and over
// a sequence of eps is host/optim/lm_continuation.hpp.
#pragma once

#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

#include "host/backend.hpp"  // Backend, LmSession, Mlp, PointSet

namespace pinntk {

struct LmConfig {
  long max_iter = 0;
  double mu0 = 1e-6;      // initial damping, relative to the largest diagonal entry of the Gram
  double loss_tol = 0.0;  // stop when the loss falls below it
  double mu_max = 1e20;   // stop when the relative damping leaves [mu_min, mu_max]
  double mu_min = 1e-20;
  std::string form = "auto";  // "auto", "sample" or "parameter"
  long cond_every = 0;        // the NTK condition number every this many iterations (0: never)
  // "nielsen": accepted steps scale mu by max(1/3, 1 - (2 rho - 1)^3), rejections by 2, 4, 8, ... in a row;
  // "delayed": delayed gratification (Transtrum and Sethna), mu / 3 on acceptance, mu * 2 on rejection.
  std::string damping = "nielsen";
  // Asked after every iteration (when set): true stops the run there, e.g. when a time budget is spent; `stop_reason`
  // is then LmResult::stop.
  std::function<bool()> stop_when;
  std::string stop_reason = "stopped by the caller";
};

struct LmRow {
  long iteration;
  double loss, mu, rho;  // mu absolute; rho the gain ratio of the step tried at this iteration
  bool accepted;
  double cond;  // lambda_max / lambda_min of the Gram when computed, else NaN
};

struct LmResult {
  long iterations = 0, accepted = 0, rejected = 0, cholesky_failures = 0;
  double loss = 0.0, mu = 0.0;
  std::string form, stop;
  std::vector<LmRow> rows;
};

// Throws UsageError unless mu0 > 0, loss_tol >= 0, and damping and form name known rules.
void validate(const LmConfig& cfg);

// The form an LM run uses: "sample", "parameter", or "auto" (sample when n <= p). Throws UsageError otherwise.
bool lm_sample_form(const std::string& form, int n, int p);

// lambda_max over the smallest eigenvalue above the rounding level m eps lambda_max (the part of the spectrum the
// arithmetic resolves); e descending, m its size.
double resolved_condition_number(const std::vector<double>& e);

// One Levenberg-Marquardt step's linear algebra at fixed parameters on host arrays (built once per accepted
// point); the default Backend::lm_session runs on it.
class GaussNewtonSystem {
 public:
  GaussNewtonSystem(Backend& be, const Mlp& net, const PointSet& pts, const std::string& form);
  // The system at another network of the same shape, in the same storage (no second J or Gram, no fresh pages).
  void relinearize(const Mlp& net);
  double loss() const { return loss_; }
  bool sample_form() const { return sample_; }
  double max_diagonal() const;
  // delta for damping mu; false when the Cholesky factorization fails (mu too small for the rounding).
  bool solve(double mu, std::vector<double>& delta) const;
  // L - 1/2 |rh + Jh delta|^2: the reduction the Gauss-Newton model predicts.
  double predicted_reduction(const std::vector<double>& delta) const;
  // The Gram's eigenvalues, descending.
  std::vector<double> gram_eigenvalues() const;

 private:
  Backend& be_;
  int n_, p_;
  bool sample_;
  double loss_ = 0.0;
  std::vector<double> Jh_, rh_, G_, g_;  // g = Jh^T rh (parameter form)
  std::vector<double> sw_;               // sqrt(w_k): Jh = diag(sw) J
  mutable std::vector<double> A_;        // solve's factorization (and gram_eigenvalues' copy), kept between calls
  // The sample form without J where the backend builds the Gram itself (Backend::residuals_sample_gram): the
  // products with Jh are then the backend's matrix-free ones, at a copy of the network and rows, scaled by sw.
  bool matrix_free_ = false;
  Mlp net_;
  PointSet pts_;
};

// The loss 1/2 sum w r^2 of net (a forward pass only).
double loss_of(Backend& be, const Mlp& net, const PointSet& pts);

// Runs LM from net (replaced by the last accepted iterate). on_iterate sees each iteration's row.
LmResult minimize_lm(Backend& be, Mlp& net, const PointSet& pts, const LmConfig& cfg,
                     const std::function<void(const LmRow&, const Mlp&)>& on_iterate = nullptr);

}  // namespace pinntk
