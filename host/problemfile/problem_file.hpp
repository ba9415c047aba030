// Problems described in a file (issue 15): a JSON file gives the dimension, the box, the operator (divergence form
// with a scalar or diagonal coefficient, general coefficients, or regression), the forcing, the Dirichlet data and
// optionally the exact solution, as formulas in x, y, z and named constants (host/problemfile/formula.hpp). The
// formulas are evaluated on the host into the per-row coefficients of a PointSet, so every backend and kernel serves
// them unchanged. When no exact solution is given, the error is measured against a reference solution computed
// with a classical method (host/problemfile/reference.hpp). The format is described in problems/README.md.
#pragma once

#include <memory>             // std::shared_ptr
#include <nlohmann/json.hpp>  // nlohmann::json
#include <string>             // std::string
#include <vector>             // std::vector

#include "common/point_set.hpp"            // PointSet
#include "common/problems_nd.hpp"          // JetNd
#include "host/problemfile/reference.hpp"  // ReferenceResult

namespace pinntk {

struct ProblemSpec;
struct ProblemFile;

// Reads and checks a problem file: its JSON, every formula (parsed once here so that a mistake is reported before
// any work) and its settings. The ProblemSpec carries the file (spec.file) and the file's points and network
// settings, which the command line may then override (--eps when the file defines the constant eps). Throws
// UsageError with one line naming the file and the field for anything wrong.
ProblemSpec load_problem_file(const std::string& path);

// Whether the file's problem has the constant eps (so --eps applies).
bool file_uses_eps(const ProblemFile& file);
// Whether the file gives the exact solution.
bool file_has_exact(const ProblemFile& file);

// Fills the rows of pts whose points pts.x (nc collocation points, then nb boundary points) are set: the operator's
// coefficients, the forcing (given, or manufactured from the exact solution) and the loss weights.
void fill_file_rows(const ProblemSpec& spec, PointSet& pts);

// The exact solution's value, gradient and Hessian diagonal at x; UsageError when the file gives none.
JetNd<double> file_exact(const ProblemSpec& spec, const double* x);

// The solution the error is measured against at the points xs (N x dim): the exact solution when the file gives
// one (error_estimate 0, method "exact"), else the reference solution (computed once per set of points and eps).
const ReferenceResult& file_solution_values(const ProblemSpec& spec, const std::vector<double>& xs);

// `pinntk problem check`: what the file defines, the coefficient's range and contrast at the collocation points,
// the smallest scale and the collocation points per period (the scale estimated from the coefficient when the file
// gives none), and, when both the exact solution and the forcing are given, max |L u* - f| over the collocation rows
// and max |u* - g| over the boundary rows. One line per fact. `flagged` (when given) is set to one line saying what
// failed when the forcing or the boundary data contradict the exact solution, else emptied.
std::string problem_check_report(const ProblemSpec& spec, const PointSet& pts, std::string* flagged = nullptr);

// The one line problem_check_report's `flagged` gets, alone (without the report's other facts): "" when the file
// gives no exact solution or its forcing and boundary data match it.
std::string problem_file_mismatch(const ProblemSpec& spec, const PointSet& pts);

// The summary.json description of the file's problem: path, operator form, the constants' values, the formulas.
nlohmann::json problem_file_json(const ProblemSpec& spec);

}  // namespace pinntk
