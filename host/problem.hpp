// The paper's problems (DESIGN.md section 1) as presets, and the per-row coefficient triples, targets and
// loss weights that the backends consume.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "common/coefficients.hpp"  // Jet3
#include "common/point_set.hpp"     // PointSet

namespace pinntk {

enum class ProblemKind { PoissonSines, PoissonTwoscale, DarcyTwoscale, DarcyNtk, RegressionTwoscale };

enum class Grid { Linspace, Interior };

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
};

// Names accepted by `--problem`.
std::vector<std::string> problem_names();

// The preset of that name with the paper's settings; throws UsageError for an unknown name.
ProblemSpec problem_preset(const std::string& name);

// Throws UsageError when a field is out of range (eps <= 0, nc < 1, ...).
void validate(const ProblemSpec& spec);

bool uses_eps(const ProblemSpec& spec);
const char* grid_name(Grid g);

// u*, u*', u*'' of the problem's exact solution at x.
Jet3<double> exact_solution(const ProblemSpec& spec, double x);

PointSet build_points(const ProblemSpec& spec);

// n equispaced points of the closed interval [a, b].
std::vector<double> linspace(double a, double b, int n);

}  // namespace pinntk
