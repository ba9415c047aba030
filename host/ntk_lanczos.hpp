// The top eigenpairs of the NTK by Lanczos on matrix-free products (issue 14 item 3, DESIGN.md section 8): Spectra's
// SymEigsSolver on K_s = D^1/2 J J^T D^1/2 (N x N) or on the Gram Jh^T Jh = J^T D J (P x P), whichever is smaller;
// neither K nor J is formed on a backend whose jacobian_times and jacobian_transpose_times form no J (the CPU's and the
// CUDA one's).
#pragma once

#include <cstdint>  // uint64_t
#include <string>   // std::string
#include <vector>   // std::vector

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

// The Lanczos vectors of ntk_top_eigen for the k largest eigenvalues of a dim x dim operator: min(dim, max(2k + 1,
// k + 8)). The NTK's spectrum decays fast: the first factorization of that size held the top k in every case
// measured (benchmarks/NOTES.md, "The matrix-free products on the CPU"), and a larger one spends products on restarts
// from random vectors once its residual reaches the rounding level.
long lanczos_vectors(long k, long dim);

// The k largest eigenvalues (and eigenvectors when want_vectors) of K = J J^T diag(d) by Lanczos with relative
// tolerance tol, d the row weights (N, non-negative). The operator is K_s v = D^1/2 J (J^T (D^1/2 v)) when N <= P,
// else G u = J^T (D (J u)), with lanczos_vectors(k, dim) Lanczos vectors; k = dim (every eigenvalue)
// applies the operator to the dim unit vectors and solves the dense dim x dim problem instead (Spectra needs
// k < dim). UsageError for k outside [1, min(N, P)], std::invalid_argument for a d of the wrong size or with
// negative or non-finite entries, NumericalError when a product is not finite or fewer than k pairs converge.
TopEigen ntk_top_eigen(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d, int k,
                       bool want_vectors, double tol = 1e-12);

// The spectral density of the NTK by stochastic Lanczos quadrature (issue 14 item 4; Ubaru, Chen and Saad, SIAM J.
// Matrix Anal. Appl. 38 (2017)), on the operator of ntk_top_eigen (K_s or the Gram, dim = min(N, P)).
//
// What it estimates: the counts of eigenvalues of K in intervals, tr 1_[a,b)(A) = sum over probes z of
// z^T 1_[a,b)(A) z / probes, each quadratic form replaced by the Gauss quadrature of the measure of v = z / ||z||
// on A's spectrum: m Lanczos steps from v give a tridiagonal T_m whose eigenvalues theta_j (nodes) and first
// eigenvector components squared tau_j (weights, summing to 1) integrate polynomials of degree up to 2m - 1 exactly.
// Each probe thus contributes dim * tau_j / probes at theta_j; the masses sum to dim (to rounding), and the N - dim
// eigenvalues the Gram side does not see are exactly zero and added as known mass below the lowest bin.
//
// Resolution: (1) statistical: for Rademacher probes the variance of z^T P z is at most 2 ||P||_F^2 = 2c for the
// projector P onto c eigenvalues, so a count c carries an error of about sqrt(2 c / probes) (16 probes: sqrt(c / 8),
// +-1.6 on a count of 20; the cumulative count below an edge has the same bound); (2) quadrature: with m < dim steps
// the nodes resolve the spectrum's extremes first (the top eigenvalues converge in a few tens of steps) and smear the
// interior over the node spacing, so a bin narrower than the gap between neighbouring nodes is not resolved; m = dim is
// exact in exact arithmetic (every probe's measure is reproduced, up to the probe average); (3) rounding: eigenvalues
// below about 1e-15 lambda_max are rounding-level in any method (syevd included) and land in the lowest bins or
// "below". Full reorthogonalization keeps the Krylov basis (steps x dim doubles) so no ghost copies of converged values
// inflate the top bins.
struct DensityConfig {
  int probes = 16;        // Rademacher probe vectors
  int steps = 80;         // Lanczos steps per probe (capped at dim)
  int bins = 64;          // bins in log10(lambda)
  double decades = 16.0;  // the axis: [log10(lambda_max) - decades, log10(lambda_max)]
  uint64_t seed = 1;      // the probes' generator (host/rng.hpp)
};

struct NtkDensity {
  std::vector<double> edges;    // bins + 1 edges in log10(lambda), ascending; the last is log10(lambda_max)
  std::vector<double> counts;   // bins masses (estimated counts of eigenvalues of K in [edge_b, edge_b+1))
  double below = 0.0;           // the mass below edges.front() (nonpositive Ritz values and the N - dim zeros)
  double zeros = 0.0;           // N - dim: the known zero eigenvalues when the Gram is the operator (in below)
  std::vector<double> nodes;    // every probe's Ritz values theta_j, probe after probe (probes x steps_used)
  std::vector<double> weights;  // their masses dim * tau_j / probes (with the zeros' mass: sum = N)
  double lambda_max = 0.0;      // the largest Ritz value over the probes
  int n = 0;                    // N, the kernel's size: counts + below sum to N
  int dim = 0;                  // the operator's size
  int steps = 0;                // Lanczos steps per probe (cfg.steps capped at dim)
  bool steps_capped = false;    // cfg.steps > dim
  int breakdowns = 0;           // probes whose Krylov space closed before steps (an invariant subspace: exact)
  long products = 0;            // operator products (probes x steps at most)
  bool gram = false;
  std::string op;
  DensityConfig cfg;  // the settings asked for
};

// The largest bins and probes a density takes.
constexpr int kMaxDensityBins = 1000000;
constexpr int kMaxDensityProbes = 100000;

// UsageError (one line) for probes, steps or bins below 1, bins or probes above their limits, or decades not
// positive and finite.
void check_density_config(const DensityConfig& cfg);

// The density of K = J J^T diag(d)'s spectrum by SLQ (above). UsageError for bad settings (check_density_config),
// std::invalid_argument for a d of the wrong size or with negative or non-finite entries, NumericalError when a
// product is not finite or the kernel is zero (no log axis).
NtkDensity ntk_spectral_density(Backend& be, const Mlp& net, const PointSet& pts, const std::vector<double>& d,
                                const DensityConfig& cfg);

}  // namespace pinntk
