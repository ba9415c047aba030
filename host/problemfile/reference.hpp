// Reference solutions computed with classical methods when a problem gives no exact solution (issue 15):
// adaptive quadrature for the 1-D divergence form, finite differences on a grid refined until two resolutions
// agree for the 1-D general form and the n-D problems. Each comes with its estimated error.
#pragma once

#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

namespace pinntk {

// A scalar field at a point (dim coordinates). May be called from several threads at once.
using ScalarField = std::function<double(const double* x)>;

struct ReferenceResult {
  std::vector<double> u;        // the solution at the requested points
  double error_estimate = 0.0;  // estimated max-norm error at those points
  std::string method;           // e.g. "quadrature (Gauss-Kronrod, 2048 panels)", "finite differences 512x512"
  long resolution = 0;          // panels or grid cells per axis of the final solution
  bool converged = false;       // whether error_estimate <= tol was reached within max_unknowns
};

struct ReferenceOptions {
  double tol = 1e-10;             // target estimated max-norm error (absolute, relative to max |u| when > 1)
  double smallest_scale = 0.0;    // the coefficient's smallest period (e.g. 2 pi eps / omega); 0 = none known
  long max_unknowns = 4'000'000;  // finite differences: refuse (UsageError) a grid that would exceed this
};

// -(a u')' = f on [xa, xb] with u(xa) = ga, u(xb) = gb, at the points xs (inside [xa, xb], any order):
// u(x) = ga + int_xa^x (C - F(s)) / a(s) ds, F(s) = int_xa^s f, C from u(xb) = gb. Throws UsageError when a
// vanishes or changes sign, NumericalError when a value is not finite.
ReferenceResult reference_divergence_1d(const ScalarField& a, const ScalarField& f, double xa, double xb, double ga,
                                        double gb, const std::vector<double>& xs, const ReferenceOptions& opt);

// alpha u'' + beta u' + gamma u = f on [xa, xb] with u(xa) = ga, u(xb) = gb (pinntk's sign convention: Poisson
// is alpha = -1), by second-order finite differences refined until two resolutions agree.
ReferenceResult reference_general_1d(const ScalarField& alpha, const ScalarField& beta, const ScalarField& gamma,
                                     const ScalarField& f, double xa, double xb, double ga, double gb,
                                     const std::vector<double>& xs, const ReferenceOptions& opt);

// -sum_k d_k(a_k d_k u) = f on the box [lo, hi] (dim = lo.size() = 1, 2 or 3) with u = g on its boundary; a holds one
// field (isotropic) or dim fields (a diagonal tensor). Finite differences in flux form with a evaluated at the
// half points, refined until two resolutions agree; xs holds N x dim points (row-major).
ReferenceResult reference_divergence_nd(const std::vector<double>& lo, const std::vector<double>& hi,
                                        const std::vector<ScalarField>& a, const ScalarField& f, const ScalarField& g,
                                        const std::vector<double>& xs, const ReferenceOptions& opt);

// sum_k (alpha_k d_k^2 u + beta_k d_k u) + gamma u = f on the box with u = g on its boundary (alpha, beta: dim
// fields each), by central finite differences refined until two resolutions agree.
ReferenceResult reference_general_nd(const std::vector<double>& lo, const std::vector<double>& hi,
                                     const std::vector<ScalarField>& alpha, const std::vector<ScalarField>& beta,
                                     const ScalarField& gamma, const ScalarField& f, const ScalarField& g,
                                     const std::vector<double>& xs, const ReferenceOptions& opt);

// -div(A grad u) = f on the box [lo, hi] (dim 2 or 3) with u = g on its boundary; A symmetric positive definite,
// given by its upper triangle row by row (dim (dim + 1) / 2 fields: a11, a12, a22 in 2-D; a11, a12, a13, a22, a23,
// a33 in 3-D). Finite differences: the diagonal terms in flux form with a_kk at the half points (as
// reference_divergence_nd), the mixed terms by central differences with a_ij at the grid points (a 9-point stencil in
// 2-D, 19-point in 3-D, not symmetric in general), refined until two resolutions agree. Throws UsageError when dim
// is not 2 or 3, the field count is wrong, or A is not positive definite at a grid point (named in the message).
ReferenceResult reference_divergence_tensor_nd(const std::vector<double>& lo, const std::vector<double>& hi,
                                               const std::vector<ScalarField>& a_upper, const ScalarField& f,
                                               const ScalarField& g, const std::vector<double>& xs,
                                               const ReferenceOptions& opt);

}  // namespace pinntk
