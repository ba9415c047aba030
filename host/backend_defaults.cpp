// The default implementations of Backend's composed operations (host/backend.hpp): the Gram accumulation, the
// Jacobian products, the NTK analysis, the Adam session and the Levenberg-Marquardt session, all on host arrays over
// the backend's batch operations. A backend that keeps its data on a device (host/cuda/) overrides them.
#include <algorithm>  // std::copy, std::fill
#include <cmath>      // std::sqrt
#include <limits>     // std::numeric_limits
#include <memory>     // std::unique_ptr, std::make_unique, std::make_shared
#include <stdexcept>  // std::out_of_range
#include <string>     // std::string
#include <utility>    // std::move
#include <vector>     // std::vector

#include "host/backend.hpp"              // Backend, TrainSession, LmSession, NtkResult
#include "host/member_batch.hpp"         // MemberBatchTrainSession
#include "host/ntk.hpp"                  // gram_spectrum, scale_rows_sqrt, ntk_from_sample_gram, all_positive
#include "host/optim/adam.hpp"           // Adam
#include "host/optim/lbfgs_batched.hpp"  // HostLbfgsOps
#include "host/optim/lm.hpp"             // GaussNewtonSystem

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

// The default LM session: GaussNewtonSystem on host arrays, relinearized in place at every accepted point.
class HostLmSession final : public LmSession {
 public:
  HostLmSession(Backend& be, const Mlp& net, const PointSet& pts, bool sample)
      : be_(be),
        pts_(pts),
        form_(sample ? "sample" : "parameter"),
        net_(net),
        trial_(net),
        sys_(std::make_unique<GaussNewtonSystem>(be, net, pts, form_)) {}
  bool sample_form() const override { return sys_->sample_form(); }
  double loss() const override { return sys_->loss(); }
  double max_diagonal() const override { return sys_->max_diagonal(); }
  bool try_step(double mu, double& trial_loss, double& predicted) override {
    if (!sys_->solve(mu, delta_)) return false;
    for (size_t q = 0; q < delta_.size(); ++q) trial_.theta[q] = net_.theta[q] + delta_[q];
    // The backend's loss pass (the CPU's batched one, a few times faster than a forward pass per point).
    r_.resize(pts_.size());
    trial_loss = be_.loss(trial_, pts_, r_);
    predicted = sys_->predicted_reduction(delta_);
    return true;
  }
  void accept(span<double> theta) override {
    net_.theta = trial_.theta;
    sys_->relinearize(net_);
    std::copy(net_.theta.begin(), net_.theta.end(), theta.begin());
  }
  std::vector<double> gram_eigenvalues() override { return sys_->gram_eigenvalues(); }

 private:
  Backend& be_;
  const PointSet& pts_;
  std::string form_;
  Mlp net_, trial_;
  std::unique_ptr<GaussNewtonSystem> sys_;
  std::vector<double> delta_, r_;
};

// A row-major host matrix handed over as a MatrixBuffer that owns it.
MatrixBuffer host_matrix(std::vector<double>&& m, size_t rows, size_t cols) {
  auto owner = std::make_shared<std::vector<double>>(std::move(m));
  MatrixBuffer b;
  b.data = owner->data();
  b.rows = rows;
  b.cols = cols;
  b.release = [owner]() mutable { owner.reset(); };
  return b;
}

}  // namespace

void Backend::gram_cols_accumulate(span<const double> A, int n, int k, span<double> G) {
  std::vector<double> C(static_cast<size_t>(k) * k);
  gram_cols(A, n, k, C);
  for (size_t q = 0; q < C.size(); ++q) G[q] += C[q];
}

MatrixBuffer Backend::jacobian_buffer(const Mlp& net, const PointSet& pts, span<double> r) {
  std::vector<double> J(static_cast<size_t>(pts.size()) * net.n_params());
  residuals_jacobian(net, pts, r, J);
  return host_matrix(std::move(J), pts.size(), net.n_params());
}

MatrixBuffer Backend::kernel_buffer(const Mlp& net, const PointSet& pts, const std::vector<double>& d, span<double> r) {
  const int n = pts.size(), p = net.n_params();
  // Where the backend builds K_s = D^1/2 J J^T D^1/2 without J (weights positive): K = D^-1/2 K_s D^1/2.
  if (all_positive(d)) {
    std::vector<double> K(static_cast<size_t>(n) * n);
    if (residuals_sample_gram(net, pts, d, r, K)) {
      for (int k = 0; k < n; ++k)
        for (int m = 0; m < n; ++m) K[static_cast<size_t>(k) * n + m] *= std::sqrt(d[m] / d[k]);
      return host_matrix(std::move(K), n, n);
    }
  }
  std::vector<double> J(static_cast<size_t>(n) * p);
  residuals_jacobian(net, pts, r, J);
  return host_matrix(ntk_matrix(*this, J, n, p, d), n, n);
}

void Backend::jacobian_transpose_times(const Mlp& net, const PointSet& pts, span<const double> y, span<double> out) {
  const int n = pts.size(), p = net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * p);
  residuals_jacobian(net, pts, r, J);
  std::fill(out.begin(), out.end(), 0.0);
  for (int i = 0; i < n; ++i)
    for (int q = 0; q < p; ++q) out[q] += J[static_cast<size_t>(i) * p + q] * y[i];
}

void Backend::jacobian_times(const Mlp& net, const PointSet& pts, span<const double> u, span<double> out) {
  const int n = pts.size(), p = net.n_params();
  std::vector<double> r(n), J(static_cast<size_t>(n) * p);
  residuals_jacobian(net, pts, r, J);
  for (int i = 0; i < n; ++i) {
    double s = 0.0;
    for (int q = 0; q < p; ++q) s += J[static_cast<size_t>(i) * p + q] * u[q];
    out[i] = s;
  }
}

double Backend::loss(const Mlp& net, const PointSet& pts, span<double> r) {
  std::vector<double> grad(net.theta.size());
  return loss_gradient(net, pts, r, grad);
}

bool Backend::residuals_sample_gram(const Mlp&, const PointSet&, span<const double>, span<double>, span<double>) {
  return false;
}

NtkResult Backend::ntk(const Mlp& net, const PointSet& pts, const std::vector<double>& d, bool keep_jacobian) {
  Backend& be = *this;
  NtkResult res;
  const int n = pts.size(), p = net.n_params();
  res.nc = pts.nc;
  res.nb = pts.nb;
  res.n_params = p;
  res.residuals.resize(n);
  // N <= P: all four numbers from K_s = D^1/2 J J^T D^1/2 (ntk_from_sample_gram), built without J where the backend
  // can (the CPU, for networks with a wide layer), else from J by one syrk. The weights must be positive for
  // K = J J^T D to follow from K_s.
  const bool from_ks = n <= p && all_positive(d);
  if (from_ks && !keep_jacobian) {
    std::vector<double> Ks(static_cast<size_t>(n) * n);
    if (be.residuals_sample_gram(net, pts, d, res.residuals, Ks)) {
      ntk_from_sample_gram(be, std::move(Ks), d, pts.nc, res);
      return res;
    }
  }
  std::vector<double> J(static_cast<size_t>(n) * p);
  be.residuals_jacobian(net, pts, res.residuals, J);

  if (from_ks) {  // Jh = D^1/2 J: J itself, scaled, unless it is kept
    std::vector<double> Jh = keep_jacobian ? J : std::move(J);
    scale_rows_sqrt(Jh, d.data(), n, p);
    std::vector<double> Ks(static_cast<size_t>(n) * n);
    be.gram_rows(Jh, n, p, Ks);
    ntk_from_sample_gram(be, std::move(Ks), d, pts.nc, res);
    if (keep_jacobian) res.jacobian = std::move(J);
    return res;
  }
  std::vector<double> Jh(J);  // D^1/2 J: K's eigenvalues are those of Jh Jh^T (a similarity transform)
  scale_rows_sqrt(Jh, d.data(), n, p);
  const SymmetricSpectrum all = gram_spectrum(be, Jh, n, p);
  res.spectrum_K = all.eigenvalues;
  res.gram_trick = all.gram_trick;
  // Collocation and boundary rows are contiguous, and D is constant on each block, so K_uu and K_bb are the
  // symmetric products of the row blocks of Jh.
  const std::vector<double> Jhu(Jh.begin(), Jh.begin() + static_cast<size_t>(pts.nc) * p);
  const std::vector<double> Jhb(Jh.begin() + static_cast<size_t>(pts.nc) * p, Jh.end());
  const SymmetricSpectrum uu = gram_spectrum(be, Jhu, pts.nc, p);
  const SymmetricSpectrum bb = gram_spectrum(be, Jhb, pts.nb, p);
  res.spectrum_Kuu = uu.eigenvalues;
  res.frobenius_Kuu = uu.frobenius;
  res.spectrum_Kbb = bb.eigenvalues;
  res.frobenius_Kbb = bb.frobenius;
  res.frobenius_K = frobenius_weighted(be, J, d, n, p);
  if (keep_jacobian) res.jacobian = std::move(J);
  return res;
}

std::unique_ptr<TrainSession> Backend::train_session(const Mlp& net, const PointSet& pts, const AdamConfig& cfg) {
  return std::make_unique<HostTrainSession>(*this, net, pts, cfg);
}

std::unique_ptr<LbfgsOps> TrainSession::lbfgs_ops(int, int) { return nullptr; }

std::unique_ptr<LbfgsOps> BatchTrainSession::lbfgs_ops(int params, int history) {
  return std::make_unique<HostLbfgsOps>(
      size(), params, history,
      [this](int b, span<const double> theta, span<double> grad) { return member(b).loss_gradient_at(theta, grad); });
}

std::unique_ptr<BatchTrainSession> Backend::batch_train_session(const std::vector<Mlp>& nets,
                                                                const std::vector<PointSet>& pts,
                                                                const AdamConfig& cfg) {
  return std::make_unique<MemberBatchTrainSession>(std::vector<Backend*>(nets.size(), this),
                                                   std::vector<std::unique_ptr<Backend>>{}, nets, pts, cfg, 1);
}

std::unique_ptr<LmSession> Backend::lm_session(const Mlp& net, const PointSet& pts, bool sample_form) {
  return std::make_unique<HostLmSession>(*this, net, pts, sample_form);
}

}  // namespace pinntk
