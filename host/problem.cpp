#include "host/problem.hpp"

#include <cmath>    // M_PI, std::isfinite
#include <utility>  // std::pair

#include "common/errors.hpp"    // UsageError
#include "common/residual.hpp"  // row_residual

namespace pinntk {

std::vector<std::string> problem_names() {
  return {"poisson-sines", "poisson-twoscale", "darcy-twoscale", "darcy-ntk", "regression-twoscale"};
}

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
  } else {
    std::string list;
    for (const auto& n : problem_names()) list += (list.empty() ? "" : ", ") + n;
    throw UsageError("unknown problem '" + name + "' (known: " + list + ")");
  }
  return s;
}

bool uses_eps(const ProblemSpec& spec) { return spec.kind != ProblemKind::PoissonSines; }

const char* grid_name(Grid g) { return g == Grid::Linspace ? "linspace" : "interior"; }

void validate(const ProblemSpec& s) {
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
  if (s.kind == ProblemKind::PoissonSines) return exact_sines(x);
  return exact_twoscale(x, s.eps);
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

PointSet build_points(const ProblemSpec& s) {
  validate(s);
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
  const bool regression = s.kind == ProblemKind::RegressionTwoscale;
  for (int i = 0; i < s.nc; ++i) {
    const double x = xc[i];
    p.x[i] = x;
    switch (s.kind) {
      case ProblemKind::PoissonSines:
      case ProblemKind::PoissonTwoscale:
        p.alpha[i] = -1.0;  // -u'' = f
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
  // An eps, omega or domain at the edge of double precision overflows the coefficients or the forcing (e.g. the
  // 1/eps^2 of u*'' at eps = 1e-300): refuse it here rather than train on infinities.
  const std::pair<const char*, const std::vector<double>*> rows[] = {
      {"point", &p.x},           {"coefficient", &p.alpha}, {"coefficient", &p.beta},
      {"coefficient", &p.gamma}, {"forcing", &p.f},         {"loss weight", &p.w}};
  for (const auto& r : rows)
    for (int k = 0; k < n; ++k)
      if (!std::isfinite((*r.second)[k]))
        throw UsageError("problem " + s.name + ": the " + r.first + " at row " + std::to_string(k) +
                         " is not finite in double precision (eps, omega or the domain out of range)");
  return p;
}

}  // namespace pinntk
