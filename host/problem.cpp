#include "host/problem.hpp"

#include <algorithm>  // std::copy
#include <cmath>      // M_PI, std::isfinite, std::lround, std::pow, std::sqrt
#include <utility>    // std::pair

#include "common/errors.hpp"    // UsageError
#include "common/residual.hpp"  // row_residual, row_residual_nd, row_loss
#include "host/points.hpp"      // Box, grid_points, sobol_points, uniform_points, face_points, read_points_npy
#include "host/problemfile/problem_file.hpp"  // fill_file_rows, file_exact, file_solution_values, file_uses_eps

namespace pinntk {

std::vector<std::string> problem_names() {
  return {"poisson-sines", "poisson-twoscale", "darcy-twoscale", "darcy-ntk", "regression-twoscale"};
}

std::vector<std::string> problem_names_nd() {
  return {"poisson2d-sines", "poisson2d-twoscale", "darcy2d-twoscale", "darcy2d-ntk", "poisson3d-sines"};
}

namespace {

// The n-dimensional presets (DESIGN.md section 7).
bool preset_nd(const std::string& name, ProblemSpec& s) {
  if (name == "poisson2d-sines" || name == "poisson3d-sines") {
    // -Laplace u = n pi^2 prod sin(pi x_i) on [0,1]^n. In 2-D the benchmark of Mueller & Zeinhofer (2023) and
    // Dangel et al. (2024): 900 interior and 120 boundary points uniform at random, relative L2 error on 9000
    // uniform test points, loss 1/(2 Nc) sum r^2 + 1/(2 Nb) sum u^2.
    s.kind = ProblemKind::SinesProduct;
    s.dim = name == "poisson2d-sines" ? 2 : 3;
    s.lo.assign(s.dim, 0.0);
    s.hi.assign(s.dim, 1.0);
    s.lambda = 1.0;
    if (s.dim == 2) {
      s.nc = 900;
      s.nb = 120;
      s.grid = Grid::Uniform;
      s.boundary_random = true;
      s.test_uniform = 9000;
      s.default_layers = {2, 64, 1};
    } else {
      s.nc = 4096;
      s.nb = 6 * 64;  // an 8 x 8 grid on each face
      s.grid = Grid::Sobol;
      s.test_per_axis = 21;
      s.default_layers = {3, 32, 32, 1};
    }
    s.default_init = "glorot-normal";
    return true;
  }
  if (name == "poisson2d-twoscale" || name == "darcy2d-twoscale" || name == "darcy2d-ntk") {
    // The 2-D analogues of eqs. (27), (28) and of Sec. 4.1 on [-pi, pi]^2 with u* = v(x) v(y), v of eq. (26), and
    // the isotropic a(y) = 1/(2.1 + sin(omega y1) + sin(omega y2)) at y = x/eps; interior 64 x 64 grid, 64 grid
    // points on each side.
    s.kind = name == "poisson2d-twoscale" ? ProblemKind::PoissonTwoscale
             : name == "darcy2d-twoscale" ? ProblemKind::DarcyTwoscale
                                          : ProblemKind::DarcyNtk;
    s.dim = 2;
    s.lo.assign(2, -M_PI);
    s.hi.assign(2, M_PI);
    s.eps = 1.0 / 8;
    s.omega = s.kind == ProblemKind::DarcyNtk ? 2.0 * M_PI : 1.0;
    s.nc = 64 * 64;
    s.nb = 4 * 64;
    s.grid = Grid::Interior;
    s.lambda = 1.0;
    s.default_layers =
        s.kind == ProblemKind::DarcyNtk ? std::vector<int>{2, 50, 1} : std::vector<int>{2, 40, 40, 40, 40, 1};
    s.default_init = s.kind == ProblemKind::DarcyNtk ? "normal" : "glorot-normal";
    return true;
  }
  return false;
}

// Seeds of the interior, boundary and test points, apart from one another.
uint64_t derived_seed(uint64_t seed, uint64_t stream) { return seed * 0x9E3779B97F4A7C15ull + stream; }

Box box_of(const ProblemSpec& s) { return Box{s.lo, s.hi}; }

}  // namespace

ProblemSpec problem_preset(const std::string& name) {
  ProblemSpec s;
  s.name = name;
  s.xa = -M_PI;
  s.xb = M_PI;
  s.nb = 2;
  if (name == "poisson-sines") {  // Section 2 and Appendix A, eq. (4)-(5)
    s.kind = ProblemKind::PoissonSines;
    s.nc = 512;
    s.lambda = 80.0;
    s.default_layers = {1, 60, 60, 60, 60, 1};
    s.default_init = "glorot-normal";
  } else if (name == "poisson-twoscale") {  // Section 4.2, eq. (27); boundary term 1/2 (u(-pi)^2 + u(pi)^2)
    s.kind = ProblemKind::PoissonTwoscale;
    s.eps = 1.0 / 32;
    s.nc = 1024;
    s.lambda = 2.0;
    s.default_layers = {1, 40, 40, 40, 40, 1};
    s.default_init = "glorot-normal";
  } else if (name == "darcy-twoscale") {  // Section 4.2, eq. (28), omega = 1, forcing of Appendix D
    s.kind = ProblemKind::DarcyTwoscale;
    s.eps = 1.0 / 32;
    s.nc = 1024;
    s.lambda = 2.0;
    s.default_layers = {1, 40, 40, 40, 40, 1};
    s.default_init = "glorot-normal";
  } else if (name == "darcy-ntk") {  // Section 4.1: a = 1/(2.1 + 2 sin(2 pi x/eps)), forcing from eq. (26)
    s.kind = ProblemKind::DarcyNtk;
    s.eps = 1.0 / 80;
    s.omega = 2.0 * M_PI;
    s.nc = 256;
    s.lambda = 1.0;
    s.default_layers = {1, 50, 1};
    s.default_init = "normal";
  } else if (name == "regression-twoscale") {  // Section 4.2 regression of eq. (26): (1/N) sum (u - u*)^2
    s.kind = ProblemKind::RegressionTwoscale;
    s.eps = 1.0 / 32;
    s.nc = 403;  // ceil(2 pi / (eps/2))
    s.nb = 0;
    s.lambda = 0.0;
    s.default_layers = {1, 40, 40, 40, 40, 1};
    s.default_init = "glorot-normal";
  } else if (!preset_nd(name, s)) {
    std::string list;
    for (const auto& n : problem_names()) list += (list.empty() ? "" : ", ") + n;
    for (const auto& n : problem_names_nd()) list += ", " + n;
    throw UsageError("unknown problem '" + name + "' (known: " + list + ")");
  }
  return s;
}

bool uses_eps(const ProblemSpec& spec) {
  if (spec.kind == ProblemKind::File) return file_uses_eps(*spec.file);
  return spec.kind != ProblemKind::PoissonSines && spec.kind != ProblemKind::SinesProduct;
}

const char* grid_name(Grid g) {
  switch (g) {
    case Grid::Linspace:
      return "linspace";
    case Grid::Interior:
      return "interior";
    case Grid::Sobol:
      return "sobol";
    case Grid::Uniform:
      return "uniform";
  }
  return "";
}

void validate(const ProblemSpec& s) {
  if (s.dim < 1 || s.dim > kMaxDim) throw UsageError("the problem's dimension must be 1, 2 or 3");
  if (s.dim > 1) {
    validate(box_of(s));
    if (s.kind == ProblemKind::PoissonSines || s.kind == ProblemKind::RegressionTwoscale)
      throw UsageError("problem " + s.name + " is one-dimensional");
    if (s.grid == Grid::Linspace) throw UsageError("--grid linspace is for 1-D problems (use grid, sobol or uniform)");
    if (s.nb % (2 * s.dim) != 0)
      throw UsageError("--nb must be a multiple of " + std::to_string(2 * s.dim) + " (the same count on each face)");
    if (s.test_uniform < 0 || s.test_per_axis < 2) throw UsageError("the test set needs at least 2 points per axis");
  } else if (s.grid == Grid::Sobol || s.grid == Grid::Uniform) {
    throw UsageError("--grid sobol and uniform are for n-dimensional problems (1-D: linspace or interior)");
  } else if (s.kind == ProblemKind::SinesProduct) {
    throw UsageError("problem " + s.name + " needs 2 or 3 dimensions");
  }
  if (uses_eps(s) && !(s.eps > 0.0 && std::isfinite(s.eps)))
    throw UsageError("--eps must be positive, got " + std::to_string(s.eps));
  if (!(s.omega > 0.0 && std::isfinite(s.omega))) throw UsageError("--omega must be positive");
  if (!(s.xa < s.xb)) throw UsageError("--domain: the left end must be smaller than the right end");
  if (!std::isfinite(s.xb - s.xa)) throw UsageError("--domain: the interval's length is beyond double precision");
  if (s.nc < 1) throw UsageError("--nc must be at least 1, got " + std::to_string(s.nc));
  if (s.nb < 0) throw UsageError("--nb must be non-negative, got " + std::to_string(s.nb));
  if (static_cast<long>(s.nc) + s.nb > 1L << 24) throw UsageError("--nc + --nb exceeds the limit of 16777216 points");
  if (!(s.lambda >= 0.0 && std::isfinite(s.lambda)))
    throw UsageError("--lambda must be non-negative, got " + std::to_string(s.lambda));
  if (s.kind == ProblemKind::RegressionTwoscale && s.nb != 0)
    throw UsageError("--nb: the regression problem has no boundary rows");
}

Jet3<double> exact_solution(const ProblemSpec& s, double x) {
  if (s.kind == ProblemKind::File) {
    const JetNd<double> u = file_exact(s, &x);
    return Jet3<double>{u.v, u.d1[0], u.d2[0]};
  }
  if (s.kind == ProblemKind::PoissonSines) return exact_sines(x);
  return exact_twoscale(x, s.eps);
}

JetNd<double> exact_solution_nd(const ProblemSpec& s, const double* x) {
  if (s.kind == ProblemKind::File) return file_exact(s, x);
  if (s.dim == 1) {
    const Jet3<double> u = exact_solution(s, x[0]);
    return JetNd<double>{u.v, {u.d1}, {u.d2}};
  }
  if (s.kind == ProblemKind::SinesProduct) return exact_sines_nd(x, s.dim);
  return exact_twoscale_nd(x, s.dim, s.eps);
}

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> x(n);
  if (n == 1) {
    x[0] = 0.5 * (a + b);
    return x;
  }
  const double h = (b - a) / (n - 1);
  for (int i = 0; i < n; ++i) x[i] = a + i * h;
  x[n - 1] = b;
  return x;
}

namespace {

// The n-dimensional rows: interior points (grid, Sobol, uniform or a file) with the operator of DESIGN.md section 7
// and its manufactured forcing, then nb / 2n boundary points on each face with u = u* (zero for these presets).
PointSet build_points_nd(const ProblemSpec& s) {
  const int n = s.dim;
  const Box box = box_of(s);
  std::vector<double> xc;
  if (!s.points_file.empty()) {
    xc = read_points_npy(s.points_file, box);
  } else if (s.grid == Grid::Interior) {
    const int side = static_cast<int>(std::lround(std::pow(s.nc, 1.0 / n)));
    long check = 1;
    for (int i = 0; i < n; ++i) check *= side;
    if (check != s.nc)
      throw UsageError("--nc: an interior grid in " + std::to_string(n) + "-D needs a perfect " + std::to_string(n) +
                       (n == 2 ? "nd" : "rd") + " power (e.g. " + std::to_string(n == 2 ? 4096 : 4913) + "), got " +
                       std::to_string(s.nc));
    xc = grid_points(box, std::vector<int>(n, side));
  } else if (s.grid == Grid::Sobol) {
    xc = sobol_points(box, s.nc, derived_seed(s.point_seed, 1));
  } else {
    xc = uniform_points(box, s.nc, derived_seed(s.point_seed, 1));
  }
  const int nc = static_cast<int>(xc.size() / n);
  std::vector<double> xb;
  if (s.nb > 0) xb = face_points(box, s.nb / (2 * n), s.boundary_random, derived_seed(s.point_seed, 2));
  if (static_cast<long>(nc) + s.nb > 1L << 24) throw UsageError("--nc + --nb exceeds the limit of 16777216 points");
  PointSet p;
  p.dim = n;
  p.nc = nc;
  p.nb = s.nb;
  const int N = nc + s.nb;
  p.x = xc;
  p.x.insert(p.x.end(), xb.begin(), xb.end());
  p.alpha.assign(static_cast<size_t>(N) * n, 0.0);
  p.beta.assign(static_cast<size_t>(N) * n, 0.0);
  p.gamma.assign(N, 0.0);
  p.f.assign(N, 0.0);
  p.w.assign(N, 0.0);
  if (s.kind == ProblemKind::File) {
    fill_file_rows(s, p);
    return p;
  }
  for (int k = 0; k < nc; ++k) {
    const double* x = p.x.data() + static_cast<size_t>(k) * n;
    double grad[kMaxDim] = {};
    // -div(a grad u) = -a Laplace u - grad a . grad u; Poisson: a = 1.
    const bool darcy = s.kind == ProblemKind::DarcyTwoscale || s.kind == ProblemKind::DarcyNtk;
    const RowNd<double> row = divergence_row(darcy ? darcy_nd_a(x, n, s.eps, s.omega, grad) : 1.0, grad, n);
    for (int i = 0; i < n; ++i) {
      p.alpha[static_cast<size_t>(k) * n + i] = row.lambda[i];
      p.beta[static_cast<size_t>(k) * n + i] = row.c[i];
    }
    p.f[k] = manufactured_forcing(row, exact_solution_nd(s, x), n);  // the operator applied to u*
    p.w[k] = 1.0 / nc;
  }
  for (int j = 0; j < s.nb; ++j) {
    const int k = nc + j;
    p.gamma[k] = 1.0;
    p.f[k] = exact_solution_nd(s, p.x.data() + static_cast<size_t>(k) * n).v;
    p.w[k] = s.lambda / s.nb;
  }
  return p;
}

// Refuses coefficients, forcing or points that overflowed (e.g. the 1/eps^2 of u*'' at eps = 1e-300).
void require_finite_rows(const ProblemSpec& s, const PointSet& p) {
  const std::pair<const char*, const std::vector<double>*> rows[] = {
      {"point", &p.x},           {"coefficient", &p.alpha}, {"coefficient", &p.beta},
      {"coefficient", &p.gamma}, {"forcing", &p.f},         {"loss weight", &p.w}};
  for (const auto& r : rows) {
    const size_t per_row = r.second->size() / p.size();
    for (size_t q = 0; q < r.second->size(); ++q)
      if (!std::isfinite((*r.second)[q]))
        throw UsageError("problem " + s.name + ": the " + r.first + " at row " + std::to_string(q / per_row) +
                         " is not finite in double precision (eps, omega or the domain out of range)");
  }
}

}  // namespace

PointSet build_points(const ProblemSpec& s) {
  validate(s);
  if (s.dim > 1) {
    PointSet p = build_points_nd(s);
    require_finite_rows(s, p);
    return p;
  }
  PointSet p;
  p.nc = s.nc;
  p.nb = s.nb;
  const int n = s.nc + s.nb;
  p.x.resize(n);
  p.alpha.assign(n, 0.0);
  p.beta.assign(n, 0.0);
  p.gamma.assign(n, 0.0);
  p.f.resize(n);
  p.w.resize(n);
  std::vector<double> xc;
  if (s.grid == Grid::Linspace) {
    xc = linspace(s.xa, s.xb, s.nc);
  } else {
    xc.resize(s.nc);
    const double h = (s.xb - s.xa) / (s.nc + 1);
    for (int i = 0; i < s.nc; ++i) xc[i] = s.xa + (i + 1) * h;
  }
  if (s.kind == ProblemKind::File) {
    std::copy(xc.begin(), xc.end(), p.x.begin());
    for (int j = 0; j < s.nb; ++j) p.x[s.nc + j] = (j % 2 == 0) ? s.xa : s.xb;
    fill_file_rows(s, p);
    require_finite_rows(s, p);
    return p;
  }
  const bool regression = s.kind == ProblemKind::RegressionTwoscale;
  for (int i = 0; i < s.nc; ++i) {
    const double x = xc[i];
    p.x[i] = x;
    switch (s.kind) {
      case ProblemKind::PoissonSines:
      case ProblemKind::PoissonTwoscale:
      case ProblemKind::SinesProduct:  // refused in 1-D by validate
        p.alpha[i] = -1.0;             // -u'' = f
        break;
      case ProblemKind::DarcyTwoscale:
      case ProblemKind::DarcyNtk:
        // -(a(x/eps) u')' = -a u'' - a'(x/eps)/eps u'   (eq. 28, Sec. 4.1)
        p.alpha[i] = -darcy_a(x / s.eps, s.omega);
        p.beta[i] = -darcy_a_prime(x / s.eps, s.omega) / s.eps;
        break;
      case ProblemKind::RegressionTwoscale:
        p.gamma[i] = 1.0;
        break;
      case ProblemKind::File:  // handled above
        break;
    }
    const Jet3<double> u = exact_solution(s, x);
    // Manufactured forcing: the operator applied to the exact solution, i.e. its residual against a zero target.
    p.f[i] = row_residual(p.alpha[i], p.beta[i], p.gamma[i], 0.0, u.v, u.d1, u.d2);
    p.w[i] = regression ? 2.0 / s.nc : 1.0 / s.nc;  // regression loss has no 1/2
  }
  for (int j = 0; j < s.nb; ++j) {
    const int k = s.nc + j;
    p.x[k] = (j % 2 == 0) ? s.xa : s.xb;
    p.gamma[k] = 1.0;
    p.f[k] = exact_solution(s, p.x[k]).v;
    p.w[k] = s.lambda / s.nb;
  }
  // An eps, omega or domain at the edge of double precision overflows the coefficients or the forcing.
  require_finite_rows(s, p);
  return p;
}

double rows_loss(const PointSet& pts, const std::vector<double>& u, const std::vector<double>& du,
                 const std::vector<double>& d2u, double* pde, double* bnd) {
  const int m = pts.dim;
  double parts[2] = {0.0, 0.0};
  for (int k = 0; k < pts.size(); ++k) {
    const size_t o = static_cast<size_t>(k) * m;
    const double r = row_residual_nd(m, pts.alpha.data() + o, pts.beta.data() + o, pts.gamma[k], pts.f[k], u[k],
                                     du.data() + o, d2u.data() + o);
    parts[k < pts.nc ? 0 : 1] += row_loss(pts.w[k], r);
  }
  if (pde != nullptr) *pde = parts[0];
  if (bnd != nullptr) *bnd = parts[1];
  return parts[0] + parts[1];
}

std::vector<double> test_points(const ProblemSpec& s) {
  if (s.dim == 1) return linspace(s.xa, s.xb, 1000);
  const Box box = box_of(s);
  if (s.test_uniform > 0) return uniform_points(box, s.test_uniform, derived_seed(s.point_seed, 3));
  return closed_grid_points(box, std::vector<int>(s.dim, s.test_per_axis));
}

std::vector<double> solution_values(const ProblemSpec& s, const std::vector<double>& x, SolutionSource* source) {
  if (s.kind == ProblemKind::File) {
    const ReferenceResult& r = file_solution_values(s, x);
    if (source != nullptr) *source = SolutionSource{r.method, r.error_estimate, r.converged, r.resolution};
    return r.u;
  }
  const int n = s.dim;
  std::vector<double> v(x.size() / n);
  for (size_t i = 0; i < v.size(); ++i) v[i] = exact_solution_nd(s, x.data() + i * n).v;
  if (source != nullptr) *source = SolutionSource{};
  return v;
}

SolutionError solution_error(const ProblemSpec& s, const std::vector<double>& x, const std::vector<double>& u) {
  SolutionError e;
  double num = 0.0, den = 0.0;
  const std::vector<double> exact = solution_values(s, x);
  for (size_t i = 0; i < u.size(); ++i) {
    const double ex = exact[i], d = u[i] - ex;
    const double a = std::fabs(d);
    if (!(a <= e.max_error)) e.max_error = a;  // a NaN stays NaN (std::max would drop it and report 0)
    num += d * d;
    den += ex * ex;
  }
  e.rel_l2 = den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
  e.rms = u.empty() ? 0.0 : std::sqrt(num / static_cast<double>(u.size()));
  return e;
}

}  // namespace pinntk
