// The top eigenpairs of the NTK by Lanczos on matrix-free products (issue 14 item 3, DESIGN.md section 8): Spectra's
// SymEigsSolver on K_s = D^1/2 J J^T D^1/2 (N x N) or on the Gram Jh^T Jh = J^T D J (P x P), whichever is smaller;
// neither K nor J is formed on a backend whose jacobian_times and jacobian_transpose_times form no J (the CPU's).
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "host/backend.hpp"  // Backend

namespace pinntk {

struct TopEigen {
  std::vector<double> values;   // k eigenvalues, descending (those of K = J J^T D: K_s and the Gram share them)
  std::vector<double> vectors;  // dim x k row-major (column i is the eigenvector of values[i]), when asked for
  int dim = 0;                  // the operator's size: N for K_s, P for the Gram
  long products = 0;            // operator products; each is one jacobian_times and one jacobian_transpose_times
  int converged = 0;            // eigenpairs that converged (k on return)
  bool gram = false;            // the operator was the Gram (vectors are then in parameter space, of Jh^T Jh)
  std::string op;               // "K_s (N x N)" or "Jh^T Jh (P x P)"
};

// The "K" of --eigen top:K checked against the rank bound min(n, p): UsageError (one line) outside [1, min(n, p)].
void check_top_eigen_count(int k, long n, long p);

// The k largest eigenvalues (and eigenvectors when want_vectors) of K = J J^T diag(d) by Lanczos with relative
// tolerance tol, d the row weights (N, non-negative). The operator is K_s v = D^1/2 J (J^T (D^1/2 v)) when N <= P,
// else G u = J^T (D (J u)), with ncv = min(dim, max(2k + 1, k + 20)) Lanczos vectors; k = dim (every eigenvalue)
// applies the operator to the dim unit vectors and solves the dense dim x dim problem instead (Spectra needs
// k < dim). UsageError for k outside [1, min(N, P)], std::invalid_argument for a d of the wrong size or with
// negative or non-finite entries, NumericalError when a product is not finite or fewer than k pairs converge.
TopEigen ntk_top_eigen(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, int k,
                       bool want_vectors, double tol = 1e-12);

}  // namespace pinntk
