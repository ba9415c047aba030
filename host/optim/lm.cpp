#include "host/optim/lm.hpp"

#include <cblas.h>    // cblas_dgemv
#include <lapacke.h>  // LAPACKE_dpotrf, LAPACKE_dpotrs

#include <algorithm>  // std::max, std::min
#include <cmath>      // std::sqrt, std::isfinite, std::pow, NAN
#include <memory>     // std::unique_ptr
#include <stdexcept>  // std::invalid_argument

#include "common/errors.hpp"    // UsageError, NumericalError
#include "common/residual.hpp"  // row_residual, row_loss

namespace pinntk {

double loss_of(Backend& be, const Mlp& net, const PointSet& pts) {
  const int n = pts.size();
  std::vector<double> u(n), du(static_cast<size_t>(n) * pts.dim), d2u(du.size());
  if (pts.has_directions())
    evaluate_rows(net, pts, u, du, d2u);  // the derivatives along the rows' own directions
  else
    be.evaluate(net, pts.x, u, du, d2u);
  return rows_loss(pts, u, du, d2u);
}

void validate(const LmConfig& cfg) {
  if (!(cfg.mu0 > 0) || !std::isfinite(cfg.mu0)) throw UsageError("--lm-mu0 must be a positive finite number");
  if (!(cfg.loss_tol >= 0) || !std::isfinite(cfg.loss_tol)) throw UsageError("--lm-tol must be a finite number >= 0");
  if (cfg.cond_every < 0) throw UsageError("--lm-cond-every must be >= 0");
  if (cfg.damping != "nielsen" && cfg.damping != "delayed")
    throw UsageError("--lm-damping: unknown rule '" + cfg.damping + "' (known: nielsen, delayed)");
  lm_sample_form(cfg.form, 0, 0);
}

bool lm_sample_form(const std::string& form, int n, int p) {
  if (form != "auto" && form != "sample" && form != "parameter")
    throw UsageError("--lm-form: unknown form '" + form + "' (known: auto, sample, parameter)");
  return form == "sample" || (form == "auto" && n <= p);
}

double resolved_condition_number(const std::vector<double>& e) {
  if (e.empty()) return NAN;
  const double floor = static_cast<double>(e.size()) * 2.220446049250313e-16 * e.front();
  double lmin = e.front();
  for (double v : e)
    if (v > floor) lmin = std::min(lmin, v);
  return e.front() / lmin;
}

GaussNewtonSystem::GaussNewtonSystem(Backend& be, const Mlp& net, const PointSet& pts, const std::string& form)
    : be_(be), n_(pts.size()), p_(net.n_params()), pts_(pts) {
  sample_ = lm_sample_form(form, n_, p_);
  relinearize(net);
}

void GaussNewtonSystem::relinearize(const Mlp& net) {
  if (static_cast<int>(net.n_params()) != p_)
    throw std::invalid_argument("GaussNewtonSystem::relinearize: another network shape");
  const PointSet& pts = pts_;
  Backend& be = be_;
  rh_.resize(n_);
  loss_ = 0.0;
  matrix_free_ = false;
  if (sample_) {
    G_.resize(static_cast<size_t>(n_) * n_);
    matrix_free_ = be.residuals_sample_gram(net, pts, pts.w, rh_, G_);  // the NTK K_s = Jh Jh^T without J
  }
  if (!matrix_free_) {
    Jh_.resize(static_cast<size_t>(n_) * p_);
    be.residuals_jacobian(net, pts, rh_, Jh_);
  }
  sw_.resize(n_);
  for (int k = 0; k < n_; ++k) {
    sw_[k] = std::sqrt(pts.w[k]);
    rh_[k] *= sw_[k];
    if (!matrix_free_)
      for (int q = 0; q < p_; ++q) Jh_[static_cast<size_t>(k) * p_ + q] *= sw_[k];
    loss_ += row_loss(1.0, rh_[k]);  // rh carries the weight
  }
  if (matrix_free_) {  // the products with Jh are the backend's matrix-free ones, at a copy of the network
    net_ = net;
    return;
  }
  if (sample_) {
    be.gram_rows(Jh_, n_, p_, G_);  // the NTK K_s = Jh Jh^T
  } else {
    G_.resize(static_cast<size_t>(p_) * p_);
    be.gram_cols(Jh_, n_, p_, G_);
    g_.resize(p_);
    cblas_dgemv(CblasRowMajor, CblasTrans, n_, p_, 1.0, Jh_.data(), p_, rh_.data(), 1, 0.0, g_.data(), 1);
  }
}

double GaussNewtonSystem::max_diagonal() const {
  const int m = sample_ ? n_ : p_;
  double d = 0.0;
  for (int i = 0; i < m; ++i) d = std::max(d, G_[static_cast<size_t>(i) * m + i]);
  return d;
}

bool GaussNewtonSystem::solve(double mu, std::vector<double>& delta) const {
  const int m = sample_ ? n_ : p_;
  std::vector<double>& A = A_;
  A = G_;
  for (int i = 0; i < m; ++i) A[static_cast<size_t>(i) * m + i] += mu;
  // A is exactly symmetric (every Gram's lower triangle is a copy of its upper): handed over as column-major, LAPACK
  // reads the same numbers as for row-major input, without LAPACKE's transposed copy of A (m^2 numbers) each way.
  if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', m, A.data(), m) != 0) return false;
  std::vector<double> b = sample_ ? rh_ : g_;
  if (LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', m, 1, A.data(), m, b.data(), m) != 0) return false;
  delta.assign(p_, 0.0);
  if (sample_ && matrix_free_) {
    // delta = -Jh^T y = -J^T (D^1/2 y) with (Jh Jh^T + mu I) y = rh.
    for (int k = 0; k < n_; ++k) b[k] *= sw_[k];
    be_.jacobian_transpose_times(net_, pts_, b, delta);
    for (double& v : delta) v = -v;
  } else if (sample_) {
    // delta = -Jh^T y with (Jh Jh^T + mu I) y = rh.
    cblas_dgemv(CblasRowMajor, CblasTrans, n_, p_, -1.0, Jh_.data(), p_, b.data(), 1, 0.0, delta.data(), 1);
  } else {
    for (int q = 0; q < p_; ++q) delta[q] = -b[q];
  }
  for (double v : delta)
    if (!std::isfinite(v)) return false;
  return true;
}

double GaussNewtonSystem::predicted_reduction(const std::vector<double>& delta) const {
  // L - 1/2 |rh + v|^2 = -rh.v - 1/2 |v|^2 with v = Jh delta, formed without L: near convergence it is far below L
  // and the difference of the two would lose its digits (the CUDA session, cuda/cuda_lm.cu, does the same).
  std::vector<double> v(n_);
  if (matrix_free_) {
    be_.jacobian_times(net_, pts_, delta, v);
    for (int k = 0; k < n_; ++k) v[k] *= sw_[k];
  } else {
    cblas_dgemv(CblasRowMajor, CblasNoTrans, n_, p_, 1.0, Jh_.data(), p_, delta.data(), 1, 0.0, v.data(), 1);
  }
  double rv = 0.0, vv = 0.0;
  for (int k = 0; k < n_; ++k) {
    rv += rh_[k] * v[k];
    vv += v[k] * v[k];
  }
  return -rv - 0.5 * vv;
}

std::vector<double> GaussNewtonSystem::gram_eigenvalues() const {
  const int m = sample_ ? n_ : p_;
  std::vector<double> e(m);
  A_ = G_;  // solve's storage (it copies G again)
  be_.symmetric_eigenvalues(A_, m, e);
  return e;
}

LmResult minimize_lm(Backend& be, Mlp& net, const PointSet& pts, const LmConfig& cfg,
                     const std::function<void(const LmRow&, const Mlp&)>& on_iterate) {
  LmResult res;
  validate(cfg);
  const std::unique_ptr<LmSession> sess =
      be.lm_session(net, pts, lm_sample_form(cfg.form, pts.size(), static_cast<int>(net.n_params())));
  res.form = sess->sample_form() ? "sample" : "parameter";
  if (!std::isfinite(sess->loss()) || !std::isfinite(sess->max_diagonal()))
    throw NumericalError("LM: the loss or the Gram at the starting network is not finite");
  const double scale = std::max(sess->max_diagonal(), 1e-300);  // mu is relative to the Gram's largest diagonal
  double mu = cfg.mu0 * scale, nu = 2.0;
  const bool nielsen = cfg.damping == "nielsen";
  auto raise = [&] {  // after a rejected step or a failed factorization
    mu *= nielsen ? nu : 2.0;
    if (nielsen) nu *= 2.0;
  };
  res.loss = sess->loss();
  res.stop = "reached the limit of " + std::to_string(cfg.max_iter) + " iterations";
  for (long it = 1; it <= cfg.max_iter; ++it) {
    res.iterations = it;
    LmRow row{it, res.loss, mu, NAN, false, NAN};
    double new_loss = 0.0, pred = 0.0;
    if (!sess->try_step(mu, new_loss, pred)) {
      ++res.cholesky_failures;
      ++res.rejected;
      raise();
    } else {
      row.rho = pred > 0.0 ? (res.loss - new_loss) / pred : -1.0;
      if (std::isfinite(new_loss) && row.rho > 0.0) {
        sess->accept(net.theta);
        res.loss = new_loss;
        ++res.accepted;
        row.accepted = true;
        mu *= nielsen ? std::max(1.0 / 3.0, 1.0 - std::pow(2.0 * row.rho - 1.0, 3)) : 1.0 / 3.0;
        nu = 2.0;
      } else {
        ++res.rejected;
        raise();
      }
    }
    row.loss = res.loss;
    if (cfg.cond_every > 0 && it % cfg.cond_every == 0) row.cond = resolved_condition_number(sess->gram_eigenvalues());
    res.rows.push_back(row);
    if (on_iterate) on_iterate(row, net);
    if (res.loss <= cfg.loss_tol) {
      res.stop = "loss below the tolerance " + std::to_string(cfg.loss_tol);
      break;
    }
    if (mu > cfg.mu_max * scale || mu < cfg.mu_min * scale) {
      res.stop = "damping left its bounds (mu / max diag = " + std::to_string(mu / scale) + ")";
      break;
    }
    if (cfg.stop_when && cfg.stop_when()) {
      res.stop = cfg.stop_reason;
      break;
    }
  }
  res.mu = mu;
  return res;
}

}  // namespace pinntk
