#include "host/ntk_lanczos.hpp"

#include <Spectra/SymEigsSolver.h>  // Spectra::SymEigsSolver
#include <lapacke.h>                // LAPACKE_dstev

#include <Eigen/Core>         // Eigen::VectorXd, Eigen::MatrixXd
#include <Eigen/Eigenvalues>  // Eigen::SelfAdjointEigenSolver
#include <algorithm>          // std::min, std::max, std::sort, std::max_element
#include <cmath>              // std::sqrt, std::isfinite, std::log10, std::abs
#include <limits>             // std::numeric_limits
#include <numeric>            // std::iota
#include <stdexcept>          // std::invalid_argument
#include <string>             // std::to_string

#include "common/errors.hpp"       // UsageError, NumericalError
#include "host/rng.hpp"            // Rng
#include "host/work_progress.hpp"  // work_progress

namespace pinntk {
namespace {

// K_s (N <= P) or the Gram (N > P) as Spectra's operator: one jacobian_times and one jacobian_transpose_times per
// product, O(N + P) scratch.
class NtkOperator {
 public:
  using Scalar = double;
  NtkOperator(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, bool gram)
      : be_(be),
        net_(net),
        pts_(pts),
        gram_(gram),
        n_(pts.size()),
        p_(net.n_params()),
        sqrt_d_(n_),
        rows_(n_),
        params_(p_) {
    for (int i = 0; i < n_; ++i) sqrt_d_[i] = std::sqrt(d[i]);
  }
  Eigen::Index rows() const { return gram_ ? p_ : n_; }
  Eigen::Index cols() const { return rows(); }

  void perform_op(const Scalar* x_in, Scalar* y_out) const {
    work_progress("ntk: kernel products (Lanczos)", products_, 0);
    ++products_;
    if (gram_) {  // G u = J^T (D (J u))
      be_.jacobian_times(net_, pts_, span<const double>(x_in, p_), rows_);
      for (int i = 0; i < n_; ++i) rows_[i] *= sqrt_d_[i] * sqrt_d_[i];
      be_.jacobian_transpose_times(net_, pts_, rows_, span<double>(y_out, p_));
    } else {  // K_s v = D^1/2 J (J^T (D^1/2 v))
      for (int i = 0; i < n_; ++i) rows_[i] = sqrt_d_[i] * x_in[i];
      be_.jacobian_transpose_times(net_, pts_, rows_, params_);
      be_.jacobian_times(net_, pts_, params_, span<double>(y_out, n_));
      for (int i = 0; i < n_; ++i) y_out[i] *= sqrt_d_[i];
    }
    bool finite = true, zero = true, input_finite = true;
    for (Eigen::Index q = 0; q < rows(); ++q) {
      finite = finite && std::isfinite(y_out[q]);
      zero = zero && y_out[q] == 0.0;
      input_finite = input_finite && std::isfinite(x_in[q]);
    }
    // A zero kernel maps every vector to 0; the Krylov method then normalizes a zero vector, and its next input is
    // NaN: that is a zero NTK, not an overflow.
    if (zero) zero_product_ = true;
    if (!finite && !input_finite && zero_product_)
      throw NumericalError(
          "the NTK is zero (a product K v is exactly 0): the network's output does not depend on its parameters at "
          "these points (all-zero weights?)");
    if (!finite)
      throw NumericalError(
          "the NTK's products are not finite in double precision (the problem's coefficients or "
          "the network's weights are too large)");
  }
  long products() const { return products_; }

 private:
  Backend& be_;
  const Mlp& net_;
  const PointSet& pts_;
  bool gram_;
  int n_, p_;
  std::vector<double> sqrt_d_;
  mutable std::vector<double> rows_, params_;
  mutable long products_ = 0;
  mutable bool zero_product_ = false;
};

// d: one non-negative finite weight per row, else std::invalid_argument naming who.
void check_row_weights(const std::vector<double>& d, int n, const std::string& who) {
  if (static_cast<int>(d.size()) != n)
    throw std::invalid_argument(who + ": " + std::to_string(d.size()) + " row weights for " + std::to_string(n) +
                                " rows");
  for (const double w : d)
    if (!(w >= 0.0) || !std::isfinite(w)) throw std::invalid_argument(who + ": a row weight is negative or not finite");
}

}  // namespace

void check_top_eigen_count(int k, long n, long p) {
  const long rank = std::min(n, p);
  if (k < 1 || k > rank)
    throw UsageError("--eigen top:K: K must lie in [1, min(N, P) = " + std::to_string(rank) + "], got " +
                     std::to_string(k));
}

long lanczos_vectors(long k, long dim) { return std::min(dim, std::max(2 * k + 1, k + 8)); }

TopEigen ntk_top_eigen(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, int k,
                       bool want_vectors, double tol) {
  const int n = pts.size(), p = net.n_params();
  check_row_weights(d, n, "ntk_top_eigen");
  if (!(tol > 0.0)) throw std::invalid_argument("ntk_top_eigen: tol must be positive");
  check_top_eigen_count(k, n, p);

  TopEigen out;
  out.gram = n > p;
  out.dim = out.gram ? p : n;
  out.op = out.gram ? "Jh^T Jh (P x P)" : "K_s (N x N)";
  NtkOperator op(be, net, pts, d, out.gram);
  const int dim = out.dim;
  Eigen::VectorXd values;
  Eigen::MatrixXd vectors;
  if (k == dim) {
    // Every eigenvalue: Spectra needs k < dim, so the operator's columns and a dense symmetric solve.
    Eigen::MatrixXd A(dim, dim);
    Eigen::VectorXd e = Eigen::VectorXd::Zero(dim);
    for (int c = 0; c < dim; ++c) {
      e[c] = 1.0;
      op.perform_op(e.data(), A.col(c).data());
      e[c] = 0.0;
    }
    const Eigen::MatrixXd S = 0.5 * (A + A.transpose());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(
        S, want_vectors ? Eigen::ComputeEigenvectors : Eigen::EigenvaluesOnly);
    if (es.info() != Eigen::Success) throw NumericalError("ntk_top_eigen: the dense eigensolver failed");
    values = es.eigenvalues();
    if (want_vectors) vectors = es.eigenvectors();
    out.converged = dim;
  } else {
    const int ncv = static_cast<int>(lanczos_vectors(k, dim));
    Spectra::SymEigsSolver<NtkOperator> solver(op, k, ncv);
    solver.init();
    const Eigen::Index nconv =
        solver.compute(Spectra::SortRule::LargestAlge, 1000, tol, Spectra::SortRule::LargestAlge);
    out.converged = static_cast<int>(nconv);
    if (solver.info() != Spectra::CompInfo::Successful || nconv < k)
      throw NumericalError("Lanczos: " + std::to_string(nconv) + " of " + std::to_string(k) +
                           " eigenpairs converged to tolerance " + std::to_string(tol) + " in 1000 restarts");
    values = solver.eigenvalues();
    if (want_vectors) vectors = solver.eigenvectors();
  }
  out.products = op.products();

  // Descending, the k largest.
  std::vector<int> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return values[a] > values[b]; });
  order.resize(k);
  for (const int i : order) out.values.push_back(values[i]);
  if (want_vectors) {
    out.vectors.resize(static_cast<size_t>(dim) * k);
    for (int q = 0; q < dim; ++q)
      for (int c = 0; c < k; ++c) out.vectors[static_cast<size_t>(q) * k + c] = vectors(q, order[c]);
  }
  return out;
}

void check_density_config(const DensityConfig& cfg) {
  const auto positive = [](int v, const char* flag) {
    if (v < 1) throw UsageError(std::string(flag) + " must be at least 1, got " + std::to_string(v));
  };
  positive(cfg.probes, "--density-probes");
  positive(cfg.steps, "--density-steps");
  positive(cfg.bins, "--density-bins");
  // A histogram over 16 decades needs no more bins than this, and each probe costs `steps` kernel products.
  if (cfg.bins > kMaxDensityBins)
    throw UsageError("--density-bins must lie in [1, " + std::to_string(kMaxDensityBins) + "], got " +
                     std::to_string(cfg.bins));
  if (cfg.probes > kMaxDensityProbes)
    throw UsageError("--density-probes must lie in [1, " + std::to_string(kMaxDensityProbes) + "], got " +
                     std::to_string(cfg.probes));
  if (!(cfg.decades > 0.0) || !std::isfinite(cfg.decades))
    throw UsageError("the density's axis must span a positive, finite number of decades");
}

NtkDensity ntk_spectral_density(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d,
                                const DensityConfig& cfg) {
  check_density_config(cfg);
  const int n = pts.size(), p = net.n_params();
  check_row_weights(d, n, "ntk_spectral_density");

  NtkDensity out;
  out.cfg = cfg;
  out.n = n;
  out.gram = n > p;
  out.dim = out.gram ? p : n;
  out.op = out.gram ? "Jh^T Jh (P x P)" : "K_s (N x N)";
  out.zeros = n - out.dim;
  out.steps = std::min(cfg.steps, out.dim);
  out.steps_capped = cfg.steps > out.dim;
  NtkOperator op(be, net, pts, d, out.gram);
  const int dim = out.dim, m = out.steps;
  const double mass = static_cast<double>(dim) / cfg.probes;

  // Lanczos with full reorthogonalization (classical Gram-Schmidt twice against the kept basis).
  std::vector<double> V(static_cast<size_t>(m) * dim), w(dim);
  std::vector<double> alpha(m), beta(m), z(static_cast<size_t>(m) * m);
  Rng rng(cfg.seed);
  const auto orthogonalize = [&](int k) {  // w minus its components on V's first k rows
    for (int pass = 0; pass < 2; ++pass)
      for (int r = 0; r < k; ++r) {
        const double* v = &V[static_cast<size_t>(r) * dim];
        double c = 0.0;
        for (int q = 0; q < dim; ++q) c += v[q] * w[q];
        for (int q = 0; q < dim; ++q) w[q] -= c * v[q];
      }
  };
  for (int probe = 0; probe < cfg.probes; ++probe) {
    const double unit = 1.0 / std::sqrt(static_cast<double>(dim));
    for (int q = 0; q < dim; ++q) V[q] = (rng.next() >> 63) ? unit : -unit;
    double scale = 0.0;  // the largest |alpha|, |beta| so far: the breakdown's yardstick
    int k = 0;
    while (true) {
      op.perform_op(&V[static_cast<size_t>(k) * dim], w.data());
      double a = 0.0;
      for (int q = 0; q < dim; ++q) a += V[static_cast<size_t>(k) * dim + q] * w[q];
      alpha[k] = a;
      scale = std::max(scale, std::abs(a));
      ++k;
      if (k == m) break;
      orthogonalize(k);
      double b = 0.0;
      for (const double e : w) b += e * e;
      b = std::sqrt(b);
      // An invariant subspace (to rounding): the quadrature of this probe is exact with k nodes.
      if (!(b > 1e-14 * scale)) {
        ++out.breakdowns;
        break;
      }
      beta[k - 1] = b;
      scale = std::max(scale, b);
      for (int q = 0; q < dim; ++q) V[static_cast<size_t>(k) * dim + q] = w[q] / b;
    }
    // T_k's eigenpairs: nodes theta_j, weights tau_j = (first component)^2.
    std::vector<double> theta(alpha.begin(), alpha.begin() + k), off(beta.begin(), beta.begin() + std::max(k - 1, 0));
    const lapack_int info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', k, theta.data(), off.data(), z.data(), k);
    if (info != 0) throw NumericalError("LAPACKE_dstev failed (info " + std::to_string(info) + ")");
    for (int j = 0; j < k; ++j) {
      out.nodes.push_back(theta[j]);
      out.weights.push_back(mass * z[static_cast<size_t>(j) * k] * z[static_cast<size_t>(j) * k]);
    }
  }
  out.products = op.products();

  out.lambda_max = *std::max_element(out.nodes.begin(), out.nodes.end());
  if (!(out.lambda_max > 0.0))
    throw NumericalError("the NTK is zero (its largest Ritz value is " + std::to_string(out.lambda_max) +
                         "): no log axis for its density");
  const double hi = std::log10(out.lambda_max), lo = hi - cfg.decades, width = cfg.decades / cfg.bins;
  out.edges.resize(cfg.bins + 1);
  for (int b = 0; b <= cfg.bins; ++b) out.edges[b] = lo + width * b;
  out.edges.back() = hi;
  out.counts.assign(cfg.bins, 0.0);
  out.below = out.zeros;
  for (size_t j = 0; j < out.nodes.size(); ++j) {
    const double t = out.nodes[j];
    const double x = t > 0.0 ? std::log10(t) : -std::numeric_limits<double>::infinity();
    if (x < lo) {
      out.below += out.weights[j];
    } else {
      const int b = std::min(cfg.bins - 1, static_cast<int>((x - lo) / width));
      out.counts[b] += out.weights[j];
    }
  }
  if (out.zeros > 0) {  // the known zeros: a node at 0 with their mass
    out.nodes.push_back(0.0);
    out.weights.push_back(out.zeros);
  }
  return out;
}

}  // namespace pinntk
