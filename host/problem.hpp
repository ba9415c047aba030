// The paper's problems (DESIGN.md section 1) as presets, and the per-row coefficient triples, targets and
// loss weights that the backends consume.
#pragma once

#include <cstdint>  // uint64_t
#include <memory>   // std::shared_ptr
#include <string>   // std::string
#include <vector>   // std::vector

#include "common/coefficients.hpp"  // Jet3
#include "common/point_set.hpp"     // PointSet
#include "common/problems_nd.hpp"   // JetNd

namespace pinntk {

struct ProblemFile;  // host/problemfile/problem_file.hpp

// In n > 1 dimensions (DESIGN.md section 7): SinesProduct is prod sin(pi x_i) (poisson2d-sines, poisson3d-sines);
// PoissonTwoscale, DarcyTwoscale and DarcyNtk use u* = prod v(x_i) with v of eq. (26) and the isotropic Darcy
// coefficient of common/problems_nd.hpp.
// File: a problem file's (host/problemfile/problem_file.hpp; spec.file holds it).
enum class ProblemKind {
  PoissonSines,
  PoissonTwoscale,
  DarcyTwoscale,
  DarcyNtk,
  RegressionTwoscale,
  SinesProduct,
  File
};

// 1-D collocation: linspace (ends included) or interior. n-D: Grid (the interior tensor grid), Sobol, Uniform.
enum class Grid { Linspace, Interior, Sobol, Uniform };

struct ProblemSpec {
  std::string name;
  ProblemKind kind = ProblemKind::PoissonSines;
  double eps = 0.0;    // unused by poisson-sines
  double omega = 1.0;  // Darcy coefficient frequency
  double xa = 0.0, xb = 0.0;
  int nc = 0;  // collocation (or regression) points
  int nb = 0;  // boundary rows, alternating xa, xb, xa, ...
  double lambda = 0.0;
  Grid grid = Grid::Linspace;
  std::vector<int> default_layers;
  std::string default_init;
  // n-dimensional problems (dim > 1): the box (dim = 1 uses [xa, xb]), the boundary points (nb in all, the same
  // number on each of the 2n faces, on a face grid or uniform at random), the seed of random or Sobol points, an
  // optional .npy file of interior points, and the test set of the error (test_uniform points uniform at random,
  // else a closed grid of test_per_axis points per axis).
  int dim = 1;
  std::vector<double> lo, hi;
  bool boundary_random = false;
  uint64_t point_seed = 0;
  std::string points_file;
  int test_uniform = 0;
  int test_per_axis = 101;
  // A problem read from a file (kind File): its formulas and settings, shared by the copies of the spec.
  std::shared_ptr<const ProblemFile> file;
};

// Names accepted by `--problem`: the paper's 1-D problems and the n-dimensional ones.
std::vector<std::string> problem_names();
std::vector<std::string> problem_names_nd();

// The preset of that name with the paper's settings; throws UsageError for an unknown name.
ProblemSpec problem_preset(const std::string& name);

// Throws UsageError when a field is out of range (eps <= 0, nc < 1, ...).
void validate(const ProblemSpec& spec);

bool uses_eps(const ProblemSpec& spec);
const char* grid_name(Grid g);

// u*, u*', u*'' of the problem's exact solution at x (1-D problems).
Jet3<double> exact_solution(const ProblemSpec& spec, double x);
// u*, its gradient and the diagonal of its Hessian at the point x (spec.dim coordinates; any dimension).
JetNd<double> exact_solution_nd(const ProblemSpec& spec, const double* x);

// The training rows (DESIGN.md sections 1 and 7): collocation rows, then boundary rows.
PointSet build_points(const ProblemSpec& spec);

// L = 1/2 sum_k w_k r_k^2 of the network whose u, D_i u, D_i^2 u at pts.x are given (du, d2u: N x dim), split into
// its collocation part (pde) and its boundary part (bnd) when those are not null.
double rows_loss(const PointSet& pts, const std::vector<double>& u, const std::vector<double>& du,
                 const std::vector<double>& d2u, double* pde = nullptr, double* bnd = nullptr);

// The points where the error against the exact solution is measured (N x dim): 1000 equispaced points in 1-D;
// in n-D test_uniform points uniform at random (from a seed apart from the training points') or the closed grid.
std::vector<double> test_points(const ProblemSpec& spec);

// What the error is measured against: the exact solution (method "exact"), or for a problem file without one a
// reference solution with its method, estimated max-norm error, convergence and resolution.
struct SolutionSource {
  std::string method = "exact";
  double error_estimate = 0.0;
  bool converged = true;
  long resolution = 0;
};
// The solution the error is measured against at the points x (N x dim), and where it came from when source is
// not null. A problem file's reference solution is computed once per set of points.
std::vector<double> solution_values(const ProblemSpec& spec, const std::vector<double>& x,
                                    SolutionSource* source = nullptr);

// The max-norm, relative L2 and root-mean-square errors of u (at test_points) against the exact solution:
// max |u - u*|, sqrt(sum (u - u*)^2 / sum u*^2) and sqrt(mean (u - u*)^2) (the absolute "l2_error" that Dangel et al.
// 2024 log). A NaN in u gives NaN, never 0.
struct SolutionError {
  double max_error = 0.0, rel_l2 = 0.0, rms = 0.0;
};
SolutionError solution_error(const ProblemSpec& spec, const std::vector<double>& x, const std::vector<double>& u);

// n equispaced points of the closed interval [a, b].
std::vector<double> linspace(double a, double b, int n);

}  // namespace pinntk
