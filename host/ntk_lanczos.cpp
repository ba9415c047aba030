#include "host/ntk_lanczos.hpp"

#include <Spectra/SymEigsSolver.h>  // Spectra::SymEigsSolver

#include <Eigen/Core>         // Eigen::VectorXd, Eigen::MatrixXd
#include <Eigen/Eigenvalues>  // Eigen::SelfAdjointEigenSolver
#include <algorithm>          // std::min, std::max, std::sort
#include <cmath>              // std::sqrt, std::isfinite
#include <numeric>            // std::iota
#include <stdexcept>          // std::invalid_argument
#include <string>             // std::to_string

#include "common/errors.hpp"  // UsageError, NumericalError

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
    for (Eigen::Index q = 0; q < rows(); ++q)
      if (!std::isfinite(y_out[q]))
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
};

}  // namespace

void check_top_eigen_count(int k, long n, long p) {
  const long rank = std::min(n, p);
  if (k < 1 || k > rank)
    throw UsageError("--eigen top:K: K must lie in [1, min(N, P) = " + std::to_string(rank) + "], got " +
                     std::to_string(k));
}

TopEigen ntk_top_eigen(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, int k,
                       bool want_vectors, double tol) {
  const int n = pts.size(), p = net.n_params();
  if (static_cast<int>(d.size()) != n)
    throw std::invalid_argument("ntk_top_eigen: " + std::to_string(d.size()) + " row weights for " + std::to_string(n) +
                                " rows");
  for (const double w : d)
    if (!(w >= 0.0) || !std::isfinite(w))
      throw std::invalid_argument("ntk_top_eigen: a row weight is negative or not finite");
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
    const int ncv = std::min(dim, std::max(2 * k + 1, k + 20));
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

}  // namespace pinntk
