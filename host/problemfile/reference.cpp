// Reference solutions by classical methods (issue 15, reference.hpp): composite Gauss-Legendre quadrature for the 1-D
// divergence form, finite differences on grids refined until two resolutions agree for everything else.
#include "host/problemfile/reference.hpp"

#include <Eigen/IterativeLinearSolvers>     // ConjugateGradient, BiCGSTAB, IncompleteCholesky, IncompleteLUT
#include <Eigen/Sparse>                     // Eigen::SparseMatrix
#include <Eigen/SparseCholesky>             // Eigen::SimplicialLDLT
#include <Eigen/SparseLU>                   // Eigen::SparseLU
#include <algorithm>                        // std::max, std::min, std::clamp, std::sort
#include <array>                            // std::array
#include <boost/math/quadrature/gauss.hpp>  // boost::math::quadrature::gauss
#include <cmath>                            // std::abs, std::isfinite, std::ceil, std::floor
#include <exception>                        // std::exception_ptr
#include <limits>                           // std::numeric_limits
#include <string>                           // std::string, std::to_string
#include <utility>                          // std::swap
#include <vector>                           // std::vector

#include "common/errors.hpp"  // UsageError, NumericalError

namespace pinntk {
namespace {

// Runs body(i) for i in [0, n) on the OpenMP threads. A field that throws cannot let the exception cross the
// parallel region, so the first one is kept and rethrown afterwards.
template <class Body>
void parallel_for(long n, const Body& body) {
  std::exception_ptr failure;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(pinntk_reference_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

void require_finite(const std::vector<double>& v, const char* what) {
  for (double x : v)
    if (!std::isfinite(x)) throw NumericalError(std::string("reference solution: ") + what + " is not finite");
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// The tolerance is absolute while the solution is O(1) and relative to max |u| beyond (ReferenceOptions::tol).
double effective_tol(const ReferenceOptions& opt, const std::vector<double>& u) {
  return opt.tol * std::max(1.0, max_abs(u));
}

// ---------------------------------------------------------------------------------------------------------------
// 1-D divergence form by quadrature.

// A Gauss-Legendre rule on [-1, 1] and its spectral integration matrix S (S[i][j] = int_-1^t_i L_j, L_j the
// Lagrange basis through the nodes), so that int_-1^t_i p = sum_j S[i][j] p(t_j) for every p of degree < q: the
// antiderivative F of f at all nodes of a panel costs one small matrix-vector product instead of a nested rule.
struct GaussRule {
  static constexpr int q = 30;
  std::array<double, q> t{}, w{};
  std::array<std::array<double, q>, q> S{};

  GaussRule() {
    using Rule = boost::math::quadrature::gauss<double, q>;
    const auto& ab = Rule::abscissa();
    const auto& wt = Rule::weights();
    std::vector<std::pair<double, double>> nodes;
    for (std::size_t i = 0; i < ab.size(); ++i) {
      nodes.emplace_back(ab[i], wt[i]);
      if (ab[i] != 0.0) nodes.emplace_back(-ab[i], wt[i]);
    }
    std::sort(nodes.begin(), nodes.end());
    for (int i = 0; i < q; ++i) t[i] = nodes[i].first, w[i] = nodes[i].second;
    std::array<double, q> bary{};
    for (int j = 0; j < q; ++j) {
      double p = 1.0;
      for (int k = 0; k < q; ++k)
        if (k != j) p *= t[j] - t[k];
      bary[j] = 1.0 / p;
    }
    // The q-point rule mapped onto [-1, t_i] integrates the degree q-1 basis exactly.
    for (int i = 0; i < q; ++i) {
      const double half = 0.5 * (t[i] + 1.0);
      for (int k = 0; k < q; ++k) {
        const double s = -1.0 + half * (t[k] + 1.0);
        double denom = 0.0;
        std::array<double, q> terms{};
        for (int j = 0; j < q; ++j) {
          terms[j] = bary[j] / (s - t[j]);
          denom += terms[j];
        }
        for (int j = 0; j < q; ++j) S[i][j] += half * w[k] * terms[j] / denom;
      }
    }
  }
};

const GaussRule& gauss_rule() {
  static const GaussRule rule;
  return rule;
}

// Quadrature on one subinterval [s0, s1] (a panel, or a panel's start to a query point) given F(s0): adds
// int 1/a and int F/a over it. The caller checks signs and finiteness of the values it returns.
// Sums are in long double: f may be large with strong cancellation (f ~ 1/eps^2 while F stays O(1)), and each
// panel's rounding would otherwise accumulate over thousands of panels to ~1e-10 in u.
struct PieceIntegrals {
  long double inv_a = 0.0L, f_over_a = 0.0L, f_total = 0.0L;
  double a_min = std::numeric_limits<double>::infinity(), a_max = -std::numeric_limits<double>::infinity();
  bool finite = true;
};

PieceIntegrals integrate_piece(const ScalarField& a, const ScalarField& f, double s0, double s1, long double F0) {
  const GaussRule& g = gauss_rule();
  constexpr int q = GaussRule::q;
  const double half_d = 0.5 * (s1 - s0);
  const long double half = half_d;
  std::array<double, q> av{}, fv{};
  for (int k = 0; k < q; ++k) {
    const double s = s0 + half_d * (g.t[k] + 1.0);
    av[k] = a(&s);
    fv[k] = f(&s);
  }
  PieceIntegrals r;
  for (int k = 0; k < q; ++k) {
    if (!std::isfinite(av[k]) || !std::isfinite(fv[k])) r.finite = false;
    r.a_min = std::min(r.a_min, av[k]);
    r.a_max = std::max(r.a_max, av[k]);
  }
  for (int i = 0; i < q; ++i) {
    long double local = 0.0L;
    for (int j = 0; j < q; ++j) local += static_cast<long double>(g.S[i][j]) * fv[j];
    const long double F = F0 + half * local;
    r.inv_a += half * g.w[i] / av[i];
    r.f_over_a += half * g.w[i] * F / av[i];
    r.f_total += half * g.w[i] * fv[i];
  }
  return r;
}

void check_piece(const PieceIntegrals& p, double& a_min, double& a_max) {
  if (!p.finite) throw NumericalError("reference solution: a or f is not finite at a quadrature node");
  a_min = std::min(a_min, p.a_min);
  a_max = std::max(a_max, p.a_max);
}

void check_sign(double a_min, double a_max) {
  if (!(a_min > 0.0) && !(a_max < 0.0))
    throw UsageError("reference solution: the coefficient a vanishes or changes sign on [xa, xb] (min " +
                     std::to_string(a_min) + ", max " + std::to_string(a_max) + ")");
}

// u at xs with `panels` equal panels: u(x) = ga + C A(x) - B(x), A = int 1/a, B = int F/a.
std::vector<double> divergence_1d_at(const ScalarField& a, const ScalarField& f, double xa, double xb, double ga,
                                     double gb, const std::vector<double>& xs, long panels) {
  const double h = (xb - xa) / static_cast<double>(panels);
  std::vector<PieceIntegrals> piece(panels);
  // The panel integrals of f first (F at each panel start is their prefix sum), then the F-dependent ones.
  parallel_for(panels, [&](long p) {
    const double s0 = xa + static_cast<double>(p) * h, s1 = p + 1 == panels ? xb : xa + static_cast<double>(p + 1) * h;
    piece[p] = integrate_piece(a, f, s0, s1, 0.0);
  });
  double a_min = std::numeric_limits<double>::infinity(), a_max = -a_min;
  std::vector<long double> F0(panels + 1, 0.0L), A0(panels + 1, 0.0L), B0(panels + 1, 0.0L);
  for (long p = 0; p < panels; ++p) {
    check_piece(piece[p], a_min, a_max);
    F0[p + 1] = F0[p] + piece[p].f_total;
  }
  check_sign(a_min, a_max);
  // int F/a over a panel is linear in F(s0): int (F0 + local)/a = F0 int 1/a + int local/a.
  for (long p = 0; p < panels; ++p) {
    A0[p + 1] = A0[p] + piece[p].inv_a;
    B0[p + 1] = B0[p] + piece[p].f_over_a + F0[p] * piece[p].inv_a;
  }
  const long double C = (gb - ga + B0[panels]) / A0[panels];
  std::vector<double> u(xs.size());
  std::vector<PieceIntegrals> tail(xs.size());
  parallel_for(static_cast<long>(xs.size()), [&](long i) {
    const long p = std::clamp(static_cast<long>(std::floor((xs[i] - xa) / h)), 0L, panels - 1);
    const double s0 = xa + static_cast<double>(p) * h;
    tail[i] = integrate_piece(a, f, s0, xs[i], F0[p]);
    u[i] = static_cast<double>(ga + C * (A0[p] + tail[i].inv_a) - (B0[p] + tail[i].f_over_a));
  });
  for (const PieceIntegrals& t : tail) check_piece(t, a_min, a_max);
  check_sign(a_min, a_max);
  require_finite(u, "the quadrature solution");
  return u;
}

// ---------------------------------------------------------------------------------------------------------------
// Finite differences on a cell-vertex grid of the box: points lo + i h per axis (axis 0 fastest), unknowns at the
// interior points, u = g on the boundary.

struct Grid {
  int dim = 1;
  std::array<long, 3> n{1, 1, 1};  // cells per axis
  std::array<double, 3> lo{}, h{};
  std::array<long, 3> stride{};   // full grid (n + 1 points per axis)
  std::array<long, 3> istride{};  // interior unknowns (n - 1 per axis)
  long points = 1, unknowns = 1;

  Grid(const std::vector<double>& lo_, const std::vector<double>& hi_, const std::array<long, 3>& cells) {
    dim = static_cast<int>(lo_.size());
    long s = 1, is = 1;
    for (int k = 0; k < 3; ++k) {
      n[k] = k < dim ? cells[k] : 0;
      lo[k] = k < dim ? lo_[k] : 0.0;
      h[k] = k < dim ? (hi_[k] - lo_[k]) / static_cast<double>(n[k]) : 1.0;
      stride[k] = s;
      istride[k] = is;
      if (k < dim) s *= n[k] + 1, is *= n[k] - 1;
    }
    points = s;
    unknowns = is;
  }
  void index(long p, std::array<long, 3>& i) const {
    for (int k = 0; k < 3; ++k) i[k] = k < dim ? (p / stride[k]) % (n[k] + 1) : 0;
  }
  void coords(const std::array<long, 3>& i, double* x) const {
    for (int k = 0; k < dim; ++k) x[k] = lo[k] + static_cast<double>(i[k]) * h[k];
  }
  bool boundary(const std::array<long, 3>& i) const {
    for (int k = 0; k < dim; ++k)
      if (i[k] == 0 || i[k] == n[k]) return true;
    return false;
  }
  long full_of_interior(long r) const {
    long p = 0;
    for (int k = 0; k < dim; ++k) p += ((r / istride[k]) % (n[k] - 1) + 1) * stride[k];
    return p;
  }
};

// Interpolation of a full-grid function: 4-point Lagrange (cubic) in 1-D, so that interpolation stays far below the
// O(h^2) discretization error there; multilinear in 2-D and 3-D (O(h^2), covered by the Richardson estimate).
double interpolate(const Grid& g, const std::vector<double>& u, const double* x) {
  if (g.dim == 1) {
    const double s = (x[0] - g.lo[0]) / g.h[0];
    const long i0 = std::clamp(static_cast<long>(std::floor(s)) - 1, 0L, g.n[0] - 3);
    double v = 0.0;
    for (int j = 0; j < 4; ++j) {
      double l = 1.0;
      for (int m = 0; m < 4; ++m)
        if (m != j) l *= (s - static_cast<double>(i0 + m)) / static_cast<double>(j - m);
      v += l * u[i0 + j];
    }
    return v;
  }
  std::array<long, 3> c{};
  std::array<double, 3> t{};
  for (int k = 0; k < g.dim; ++k) {
    const double s = (x[k] - g.lo[k]) / g.h[k];
    c[k] = std::clamp(static_cast<long>(std::floor(s)), 0L, g.n[k] - 1);
    t[k] = s - static_cast<double>(c[k]);
  }
  double v = 0.0;
  for (int corner = 0; corner < (1 << g.dim); ++corner) {
    double wgt = 1.0;
    long p = 0;
    for (int k = 0; k < g.dim; ++k) {
      const int b = (corner >> k) & 1;
      wgt *= b ? t[k] : 1.0 - t[k];
      p += (c[k] + b) * g.stride[k];
    }
    v += wgt * u[p];
  }
  return v;
}

using RowMatrix = Eigen::SparseMatrix<double, Eigen::RowMajor>;

// Sizes A (m x m, row-major) for rows with count[r + 1] nonzeros each (turned into the prefix sums: row r's entries
// start at count[r]; refused past 32-bit indices), sets its row starts and sizes b; the caller fills the columns and
// values row by row.
void size_csr(std::vector<long>& count, long m, RowMatrix& A, Eigen::VectorXd& b) {
  for (long r = 0; r < m; ++r) count[r + 1] += count[r];
  if (count[m] > static_cast<long>(std::numeric_limits<int>::max()))
    throw UsageError("reference solution: the grid is too large for 32-bit sparse indices");
  A.resize(m, m);
  A.resizeNonZeros(count[m]);
  b.resize(m);
  int* outer = A.outerIndexPtr();
  for (long r = 0; r <= m; ++r) outer[r] = static_cast<int>(count[r]);
}

// The stencil of one interior row: coefficients of the minus and plus neighbours along each axis, the diagonal and
// the right-hand side before the boundary values move into it.
struct Row {
  std::array<double, 3> minus{}, plus{};
  double diag = 0.0, rhs = 0.0;
};

// Assembles the (2 dim + 1)-point matrix in CSR directly (rows in parallel, columns sorted because the interior
// strides grow with the axis), moving neighbours on the boundary into the right-hand side.
template <class RowFn>
void assemble(const Grid& g, const std::vector<double>& u_full, const RowFn& row_of, RowMatrix& A, Eigen::VectorXd& b) {
  const long m = g.unknowns;
  std::vector<long> count(m + 1, 0);
  parallel_for(m, [&](long r) {
    const long p = g.full_of_interior(r);
    std::array<long, 3> i{};
    g.index(p, i);
    long c = 1;
    for (int k = 0; k < g.dim; ++k) c += (i[k] > 1) + (i[k] < g.n[k] - 1);
    count[r + 1] = c;
  });
  size_csr(count, m, A, b);
  int* inner = A.innerIndexPtr();
  double* val = A.valuePtr();
  parallel_for(m, [&](long r) {
    const long p = g.full_of_interior(r);
    std::array<long, 3> i{};
    g.index(p, i);
    const Row row = row_of(p, i);
    double rhs = row.rhs;
    long at = count[r];
    for (int k = g.dim - 1; k >= 0; --k) {
      if (i[k] > 1) {
        inner[at] = static_cast<int>(r - g.istride[k]);
        val[at++] = row.minus[k];
      } else {
        rhs -= row.minus[k] * u_full[p - g.stride[k]];
      }
    }
    inner[at] = static_cast<int>(r);
    val[at++] = row.diag;
    for (int k = 0; k < g.dim; ++k) {
      if (i[k] < g.n[k] - 1) {
        inner[at] = static_cast<int>(r + g.istride[k]);
        val[at++] = row.plus[k];
      } else {
        rhs -= row.plus[k] * u_full[p + g.stride[k]];
      }
    }
    b[r] = rhs;
  });
}

// Evaluates field at every full-grid point with flag(i) true (others left at 0), offset by shift[k] h[k] per axis.
std::vector<double> sample(const Grid& g, const ScalarField& field, const std::array<double, 3>& shift,
                           const char* what) {
  std::vector<double> v(g.points, 0.0);
  parallel_for(g.points, [&](long p) {
    std::array<long, 3> i{};
    g.index(p, i);
    double x[3];
    g.coords(i, x);
    for (int k = 0; k < g.dim; ++k) {
      if (shift[k] != 0.0 && i[k] == g.n[k]) return;  // no half point beyond the last one
      x[k] += shift[k] * g.h[k];
    }
    v[p] = field(x);
  });
  require_finite(v, what);
  return v;
}

// The full-grid start: g on the boundary, and in the interior the previous (coarser) solution interpolated when
// there is one, as the iterative solvers' initial guess.
std::vector<double> boundary_and_guess(const Grid& g, const ScalarField& gfield, const Grid* coarse,
                                       const std::vector<double>* coarse_u) {
  std::vector<double> u(g.points, 0.0);
  parallel_for(g.points, [&](long p) {
    std::array<long, 3> i{};
    g.index(p, i);
    double x[3];
    g.coords(i, x);
    if (g.boundary(i))
      u[p] = gfield(x);
    else if (coarse != nullptr)
      u[p] = interpolate(*coarse, *coarse_u, x);
  });
  require_finite(u, "the boundary value g");
  return u;
}

// Cells per axis of the coarsest grid: at least 16 per smallest scale and at least min_cells.
std::array<long, 3> coarsest_cells(const std::vector<double>& lo, const std::vector<double>& hi,
                                   const ReferenceOptions& opt, long min_cells) {
  std::array<long, 3> n{1, 1, 1};
  for (std::size_t k = 0; k < lo.size(); ++k) {
    long c = min_cells;
    if (opt.smallest_scale > 0.0)
      c = std::max(c, static_cast<long>(std::ceil(16.0 * (hi[k] - lo[k]) / opt.smallest_scale)));
    n[k] = c;
  }
  return n;
}

double interior_count(const std::array<long, 3>& n, int dim) {
  double c = 1.0;
  for (int k = 0; k < dim; ++k) c *= static_cast<double>(n[k] - 1);
  return c;
}

void check_box(const std::vector<double>& lo, const std::vector<double>& hi, const std::vector<double>& xs) {
  const std::size_t dim = lo.size();
  if (dim < 1 || dim > 3) throw UsageError("reference solution: the box must have 1, 2 or 3 dimensions");
  if (hi.size() != dim) throw UsageError("reference solution: lo and hi have different dimensions");
  for (std::size_t k = 0; k < dim; ++k)
    if (!(hi[k] > lo[k]) || !std::isfinite(lo[k]) || !std::isfinite(hi[k]))
      throw UsageError("reference solution: the box needs lo < hi on every axis");
  if (xs.size() % dim != 0) throw UsageError("reference solution: the points are not N x dim coordinates");
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::size_t k = i % dim;
    const double slack = 1e-12 * std::max(1.0, std::max(std::abs(lo[k]), std::abs(hi[k])));
    if (!(xs[i] >= lo[k] - slack && xs[i] <= hi[k] + slack))
      throw UsageError("reference solution: point " + std::to_string(i / dim) + " lies outside the box");
  }
}

// One grid's solve: returns the full-grid solution given the coarser one (or none) and says which solver it used.
struct GridSolve {
  virtual ~GridSolve() = default;
  virtual std::vector<double> solve(const Grid& g, const Grid* coarse, const std::vector<double>* coarse_u,
                                    std::string& solver) const = 0;
};

// Halves h until two successive grids agree at the query points to within tol (Richardson for a second-order
// scheme: the finer grid's error is about |u_h - u_h/2| / 3) or the next grid would exceed max_unknowns.
ReferenceResult refine(const std::vector<double>& lo, const std::vector<double>& hi, const std::vector<double>& xs,
                       const ReferenceOptions& opt, long min_cells, const GridSolve& solver, const std::string& what) {
  const int dim = static_cast<int>(lo.size());
  std::array<long, 3> n = coarsest_cells(lo, hi, opt, min_cells);
  std::array<long, 3> n2 = n;
  for (int k = 0; k < dim; ++k) n2[k] *= 2;
  if (interior_count(n2, dim) > static_cast<double>(opt.max_unknowns))
    throw UsageError("reference solution: max_unknowns (" + std::to_string(opt.max_unknowns) +
                     ") is too small for the two coarsest grids (" +
                     std::to_string(static_cast<long>(interior_count(n2, dim))) + " unknowns on the finer one)");
  // Eigen's sparse matrices index with int: up to 7 nonzeros a row.
  const double index_limit = static_cast<double>(std::numeric_limits<int>::max()) / 8;
  if (interior_count(n2, dim) > index_limit)
    throw UsageError("reference solution: the grid is too large for 32-bit sparse indices");
  const long npts = static_cast<long>(xs.size()) / dim;
  auto at_points = [&](const Grid& g, const std::vector<double>& u) {
    std::vector<double> v(npts);
    parallel_for(npts, [&](long i) { v[i] = interpolate(g, u, &xs[i * dim]); });
    return v;
  };
  std::string solver_name;
  Grid g_prev(lo, hi, n);
  std::vector<double> u_prev = solver.solve(g_prev, nullptr, nullptr, solver_name);
  std::vector<double> v_prev = at_points(g_prev, u_prev);
  ReferenceResult res;
  while (true) {
    for (int k = 0; k < dim; ++k) n[k] *= 2;
    Grid g(lo, hi, n);
    std::vector<double> u = solver.solve(g, &g_prev, &u_prev, solver_name);
    std::vector<double> v = at_points(g, u);
    res.error_estimate = max_abs_difference(v, v_prev) / 3.0;
    res.u = v;
    res.resolution = n[0];
    res.converged = res.error_estimate <= effective_tol(opt, v);
    std::array<long, 3> next = n;
    for (int k = 0; k < dim; ++k) next[k] *= 2;
    const double next_unknowns = interior_count(next, dim);
    if (res.converged || next_unknowns > static_cast<double>(opt.max_unknowns) || next_unknowns > index_limit) break;
    g_prev = g;
    u_prev = std::move(u);
    v_prev = std::move(v);
  }
  std::string cells = std::to_string(n[0]);
  for (int k = 1; k < dim; ++k) cells += "x" + std::to_string(n[k]);
  res.method = "finite differences " + cells + " (" + what + ", " + solver_name +
               "; error estimated by Richardson against " + std::to_string(n[0] / 2) + " cells)";
  return res;
}

// Grids up to this many unknowns use a sparse direct solver; beyond, a preconditioned Krylov method started from
// the coarser grid's solution. 1-D systems are tridiagonal, so direct at every size. In 2-D the fill-reduced LDLT
// stays cheap far longer than Eigen's incomplete Cholesky pays off (511^2 unknowns: 1.4 s against 10 s for CG on
// 2 cores); LU keeps more fill, and 3-D grids fill in much faster (31^3: LDLT 2.5 s, CG 0.5 s). The incomplete
// Cholesky keeps the grid's natural order: AMD made its factorization cost more than the iterations it saved.
long direct_limit(int dim, bool symmetric) {
  if (dim == 1) return std::numeric_limits<long>::max();
  if (dim == 2) return symmetric ? 1'100'000 : 300'000;
  return 20'000;
}

void scatter(const Grid& g, const Eigen::VectorXd& x, std::vector<double>& u) {
  require_finite(std::vector<double>(x.data(), x.data() + x.size()), "the finite-difference solution");
  parallel_for(g.unknowns, [&](long r) { u[g.full_of_interior(r)] = x[r]; });
}

// A nonsymmetric finite-difference system: sparse LU up to direct_limit, BiCGSTAB with incomplete LU (started from
// the interior of u, the coarser grid's interpolated solution) beyond.
// ilut_droptol and ilut_fill are IncompleteLUT's drop tolerance and fill factor (Eigen's defaults unless given).
Eigen::VectorXd solve_nonsymmetric(const Grid& g, const RowMatrix& A, const Eigen::VectorXd& b,
                                   const std::vector<double>& u, std::string& solver,
                                   double ilut_droptol = Eigen::NumTraits<double>::dummy_precision(),
                                   int ilut_fill = 10) {
  Eigen::VectorXd x;
  if (g.unknowns <= direct_limit(g.dim, false)) {
    solver = g.dim == 1 ? "sparse LU (tridiagonal)" : "sparse LU";
    Eigen::SparseMatrix<double> Ac = A;
    Eigen::SparseLU<Eigen::SparseMatrix<double>> lu;
    lu.compute(Ac);
    if (lu.info() != Eigen::Success)
      throw NumericalError("reference solution: the finite-difference matrix is singular (" + lu.lastErrorMessage() +
                           ")");
    x = lu.solve(b);
  } else {
    solver = "BiCGSTAB with incomplete LU";
    Eigen::BiCGSTAB<RowMatrix, Eigen::IncompleteLUT<double>> it;
    it.setTolerance(1e-11);
    it.setMaxIterations(20'000);
    it.preconditioner().setDroptol(ilut_droptol);
    it.preconditioner().setFillfactor(ilut_fill);
    it.compute(A);
    if (it.info() != Eigen::Success) throw NumericalError("reference solution: the incomplete LU factorization failed");
    Eigen::VectorXd x0(g.unknowns);
    for (long r = 0; r < g.unknowns; ++r) x0[r] = u[g.full_of_interior(r)];
    x = it.solveWithGuess(b, x0);
    if (it.info() != Eigen::Success)
      throw NumericalError("reference solution: BiCGSTAB did not converge (" + std::to_string(it.iterations()) +
                           " iterations, residual " + std::to_string(it.error()) + ")");
  }
  return x;
}

struct DivergenceSolve : GridSolve {
  const std::vector<ScalarField>& a;
  const ScalarField &f, &gfield;
  DivergenceSolve(const std::vector<ScalarField>& a_, const ScalarField& f_, const ScalarField& g_)
      : a(a_), f(f_), gfield(g_) {}

  std::vector<double> solve(const Grid& g, const Grid* coarse, const std::vector<double>* coarse_u,
                            std::string& solver) const override {
    // a_k at the half points between i and i + e_k, evaluated there directly rather than as the harmonic mean of
    // the neighbouring point values: both are second order for smooth a, and the direct value drops the harmonic
    // mean's extra O(h^2 a'^2 / a) term (the harmonic mean would win for a jumping between grid points, which the
    // problems here do not have).
    std::array<std::vector<double>, 3> am;
    double a_min = std::numeric_limits<double>::infinity(), a_max = -a_min;
    for (int k = 0; k < g.dim; ++k) {
      std::array<double, 3> shift{};
      shift[k] = 0.5;
      am[k] = sample(g, a[a.size() == 1 ? 0 : k], shift, "the coefficient a");
      std::array<long, 3> i{};
      for (long p = 0; p < g.points; ++p) {
        g.index(p, i);
        if (i[k] == g.n[k]) continue;
        a_min = std::min(a_min, am[k][p]);
        a_max = std::max(a_max, am[k][p]);
      }
    }
    if (!(a_min > 0.0) && !(a_max < 0.0))
      throw UsageError("reference solution: the coefficient a vanishes or changes sign in the box");
    // A negative a is the same problem with both sides negated; the system stays positive definite.
    const double sign = a_max < 0.0 ? -1.0 : 1.0;
    const std::vector<double> fv = sample(g, f, {}, "the source f");
    std::vector<double> u = boundary_and_guess(g, gfield, coarse, coarse_u);
    RowMatrix A;
    Eigen::VectorXd b;
    assemble(
        g, u,
        [&](long p, const std::array<long, 3>&) {
          Row row;
          for (int k = 0; k < g.dim; ++k) {
            const double ih2 = sign / (g.h[k] * g.h[k]);
            row.minus[k] = -ih2 * am[k][p - g.stride[k]];
            row.plus[k] = -ih2 * am[k][p];
            row.diag -= row.minus[k] + row.plus[k];
          }
          row.rhs = sign * fv[p];
          return row;
        },
        A, b);
    Eigen::VectorXd x;
    if (g.unknowns <= direct_limit(g.dim, true)) {
      solver = "sparse LDLT";
      Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> ldlt(A);
      if (ldlt.info() != Eigen::Success) throw NumericalError("reference solution: the LDLT factorization failed");
      x = ldlt.solve(b);
    } else {
      solver = "conjugate gradients with incomplete Cholesky";
      Eigen::ConjugateGradient<RowMatrix, Eigen::Lower | Eigen::Upper,
                               Eigen::IncompleteCholesky<double, Eigen::Lower, Eigen::NaturalOrdering<int>>>
          cg;
      cg.setTolerance(1e-11);
      cg.setMaxIterations(20'000);
      cg.compute(A);
      if (cg.info() != Eigen::Success)
        throw NumericalError("reference solution: the incomplete Cholesky factorization failed");
      Eigen::VectorXd x0(g.unknowns);
      for (long r = 0; r < g.unknowns; ++r) x0[r] = u[g.full_of_interior(r)];
      x = cg.solveWithGuess(b, x0);
      if (cg.info() != Eigen::Success)
        throw NumericalError("reference solution: conjugate gradients did not converge (" +
                             std::to_string(cg.iterations()) + " iterations, residual " + std::to_string(cg.error()) +
                             ")");
    }
    scatter(g, x, u);
    return u;
  }
};

struct GeneralSolve : GridSolve {
  const std::vector<ScalarField>&alpha, &beta;
  const ScalarField &gamma, &f, &gfield;
  GeneralSolve(const std::vector<ScalarField>& al, const std::vector<ScalarField>& be, const ScalarField& ga,
               const ScalarField& f_, const ScalarField& g_)
      : alpha(al), beta(be), gamma(ga), f(f_), gfield(g_) {}

  std::vector<double> solve(const Grid& g, const Grid* coarse, const std::vector<double>* coarse_u,
                            std::string& solver) const override {
    std::array<std::vector<double>, 3> av, bv;
    for (int k = 0; k < g.dim; ++k) {
      av[k] = sample(g, alpha[k], {}, "the coefficient alpha");
      bv[k] = sample(g, beta[k], {}, "the coefficient beta");
    }
    const std::vector<double> cv = sample(g, gamma, {}, "the coefficient gamma");
    const std::vector<double> fv = sample(g, f, {}, "the source f");
    std::vector<double> u = boundary_and_guess(g, gfield, coarse, coarse_u);
    RowMatrix A;
    Eigen::VectorXd b;
    assemble(
        g, u,
        [&](long p, const std::array<long, 3>&) {
          Row row;
          row.diag = cv[p];
          for (int k = 0; k < g.dim; ++k) {
            const double ih2 = 1.0 / (g.h[k] * g.h[k]), i2h = 0.5 / g.h[k];
            row.minus[k] = av[k][p] * ih2 - bv[k][p] * i2h;
            row.plus[k] = av[k][p] * ih2 + bv[k][p] * i2h;
            row.diag -= 2.0 * av[k][p] * ih2;
          }
          row.rhs = fv[p];
          return row;
        },
        A, b);
    scatter(g, solve_nonsymmetric(g, A, b, u, solver), u);
    return u;
  }
};

// -div(A grad u) = f with a full symmetric A (upper triangle row by row). Diagonal terms in flux form with a_kk at
// the half points (as DivergenceSolve); each mixed pair d_i(a_ij d_j u) + d_j(a_ij d_i u) by central differences
// of the central first differences, a_ij at the grid points where the outer difference is taken:
//   d_i(a_ij d_j u) ~ [a_ij(p + e_i) (u(p + e_i + e_j) - u(p + e_i - e_j)) - a_ij(p - e_i) (...)] / (4 h_i h_j),
// second order for smooth A. The 4 corner points make a (2 dim^2 + 1)-point stencil (9 in 2-D, 19 in 3-D); the
// matrix is not symmetric when a_ij varies, so the general-form solvers are used.
struct TensorSolve : GridSolve {
  const std::vector<ScalarField>& a;  // upper triangle, dim (dim + 1) / 2 fields
  const ScalarField &f, &gfield;
  TensorSolve(const std::vector<ScalarField>& a_, const ScalarField& f_, const ScalarField& g_)
      : a(a_), f(f_), gfield(g_) {}

  static int upper(int dim, int i, int j) {
    if (i > j) std::swap(i, j);
    return i * dim - i * (i - 1) / 2 + (j - i);
  }

  // Refuses A that is not positive definite at some grid point (leading principal minors), naming the point.
  static void check_positive_definite(const Grid& g, const std::vector<std::vector<double>>& av) {
    std::array<long, 3> i{};
    for (long p = 0; p < g.points; ++p) {
      double m[3][3] = {};  // entries past dim stay zero; only the first dim minors are checked
      for (int r = 0; r < g.dim; ++r)
        for (int c = 0; c < g.dim; ++c) m[r][c] = av[upper(g.dim, r, c)][p];
      double minors[3];
      minors[0] = m[0][0];
      minors[1] = m[0][0] * m[1][1] - m[0][1] * m[1][0];
      minors[2] = g.dim < 3 ? 1.0
                            : m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                                  m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                                  m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
      bool ok = true;
      for (int k = 0; k < g.dim; ++k) ok = ok && minors[k] > 0.0;
      if (ok) continue;
      g.index(p, i);
      double x[3];
      g.coords(i, x);
      std::string at = "(", mins;
      for (int k = 0; k < g.dim; ++k) {
        at += (k ? ", " : "") + std::to_string(x[k]);
        mins += (k ? ", " : "") + std::to_string(minors[k]);
      }
      throw UsageError("reference solution: the tensor A is not positive definite at " + at + ") (leading minors " +
                       mins + ")");
    }
  }

  std::vector<double> solve(const Grid& g, const Grid* coarse, const std::vector<double>* coarse_u,
                            std::string& solver) const override {
    const int dim = g.dim;
    // Every field at the grid points (the mixed coefficients, and the positive-definiteness check).
    std::vector<std::vector<double>> av(a.size());
    for (std::size_t q = 0; q < a.size(); ++q) av[q] = sample(g, a[q], {}, "the coefficient tensor A");
    check_positive_definite(g, av);
    // a_kk at the half points between i and i + e_k.
    std::array<std::vector<double>, 3> am;
    for (int k = 0; k < dim; ++k) {
      std::array<double, 3> shift{};
      shift[k] = 0.5;
      am[k] = sample(g, a[upper(dim, k, k)], shift, "the coefficient tensor A");
      std::array<long, 3> i{};
      for (long p = 0; p < g.points; ++p) {
        g.index(p, i);
        if (i[k] == g.n[k] || am[k][p] > 0.0) continue;
        double x[3];
        g.coords(i, x);
        x[k] += 0.5 * g.h[k];
        std::string at = "(";
        for (int j = 0; j < dim; ++j) at += (j ? ", " : "") + std::to_string(x[j]);
        throw UsageError("reference solution: the tensor A is not positive definite at " + at + ") (a_" +
                         std::to_string(k + 1) + std::to_string(k + 1) + " = " + std::to_string(am[k][p]) + ")");
      }
    }
    const std::vector<double> fv = sample(g, f, {}, "the source f");
    std::vector<double> u = boundary_and_guess(g, gfield, coarse, coarse_u);

    // The stencil pattern: offsets in {-1, 0, 1}^dim with at most two nonzero components, in the order that makes
    // the interior column indices increase (axis 0 fastest).
    std::vector<std::array<int, 3>> pattern;
    const int cube = dim == 2 ? 9 : 27;
    for (int o = 0; o < cube; ++o) {
      std::array<int, 3> d{0, 0, 0};
      int nonzero = 0;
      for (int k = 0, rest = o; k < dim; ++k, rest /= 3) {
        d[k] = rest % 3 - 1;
        nonzero += d[k] != 0;
      }
      if (nonzero <= 2) pattern.push_back(d);
    }
    const int width = static_cast<int>(pattern.size());
    auto slot = [&](const std::array<int, 3>& d) {  // position of an offset in pattern
      for (int s = 0; s < width; ++s)
        if (pattern[s] == d) return s;
      return -1;
    };
    const int center = slot({0, 0, 0});
    auto interior = [&](const std::array<long, 3>& i, const std::array<int, 3>& d) {
      for (int k = 0; k < dim; ++k)
        if (i[k] + d[k] < 1 || i[k] + d[k] > g.n[k] - 1) return false;
      return true;
    };
    auto offset = [&](const std::array<int, 3>& d, const std::array<long, 3>& stride) {
      long o = 0;
      for (int k = 0; k < dim; ++k) o += d[k] * stride[k];
      return o;
    };

    const long m = g.unknowns;
    std::vector<long> count(m + 1, 0);
    parallel_for(m, [&](long r) {
      std::array<long, 3> i{};
      g.index(g.full_of_interior(r), i);
      long c = 0;
      for (const auto& d : pattern) c += interior(i, d);
      count[r + 1] = c;
    });
    RowMatrix A;
    Eigen::VectorXd b;
    size_csr(count, m, A, b);
    int* inner = A.innerIndexPtr();
    double* val = A.valuePtr();
    parallel_for(m, [&](long r) {
      const long p = g.full_of_interior(r);
      std::array<long, 3> i{};
      g.index(p, i);
      std::array<double, 27> c{};
      for (int k = 0; k < dim; ++k) {
        const double ih2 = 1.0 / (g.h[k] * g.h[k]);
        std::array<int, 3> d{0, 0, 0};
        d[k] = -1;
        c[slot(d)] -= ih2 * am[k][p - g.stride[k]];
        d[k] = 1;
        c[slot(d)] -= ih2 * am[k][p];
        c[center] += ih2 * (am[k][p - g.stride[k]] + am[k][p]);
      }
      for (int ki = 0; ki < dim; ++ki)
        for (int kj = ki + 1; kj < dim; ++kj) {
          const std::vector<double>& aij = av[upper(dim, ki, kj)];
          const double w = 1.0 / (4.0 * g.h[ki] * g.h[kj]);
          const double ip = aij[p + g.stride[ki]], im = aij[p - g.stride[ki]];
          const double jp = aij[p + g.stride[kj]], jm = aij[p - g.stride[kj]];
          // The operator is minus the sum of the two mixed differences.
          for (int si = -1; si <= 1; si += 2)
            for (int sj = -1; sj <= 1; sj += 2) {
              std::array<int, 3> d{0, 0, 0};
              d[ki] = si;
              d[kj] = sj;
              c[slot(d)] -= w * si * sj * ((si > 0 ? ip : im) + (sj > 0 ? jp : jm));
            }
        }
      double rhs = fv[p];
      long at = count[r];
      for (int s = 0; s < width; ++s) {
        if (interior(i, pattern[s])) {
          inner[at] = static_cast<int>(r + offset(pattern[s], g.istride));
          val[at++] = c[s];
        } else {
          rhs -= c[s] * u[p + offset(pattern[s], g.stride)];
        }
      }
      b[r] = rhs;
    });
    // IncompleteLUT with Eigen's defaults (drop 1e-12, fill 10) keeps nearly the whole LU of the 19-point 3-D
    // stencil: 7.8 s for 31^3 unknowns on 2 cores, against 0.4 s with drop 1e-3 and fill 3 (same solution).
    scatter(g, solve_nonsymmetric(g, A, b, u, solver, 1e-3, 3), u);
    return u;
  }
};

}  // namespace

ReferenceResult reference_divergence_1d(const ScalarField& a, const ScalarField& f, double xa, double xb, double ga,
                                        double gb, const std::vector<double>& xs, const ReferenceOptions& opt) {
  check_box({xa}, {xb}, xs);
  if (!std::isfinite(ga) || !std::isfinite(gb))
    throw UsageError("reference solution: the boundary values are not finite");
  // Start with panels no longer than a quarter of the smallest scale, then double: a's features can be much finer
  // than its period (1 / (2.1 + 2 sin(x/eps)) has poles 0.32 eps off the real axis, so the 30-point rule is at
  // round-off only once panels are about eps / 8 long).
  long panels = 64;
  if (opt.smallest_scale > 0.0)
    panels = std::max(panels, static_cast<long>(std::ceil(4.0 * (xb - xa) / opt.smallest_scale)));
  const long max_panels = std::max(2 * panels, opt.max_unknowns / GaussRule::q);
  std::vector<double> coarse = divergence_1d_at(a, f, xa, xb, ga, gb, xs, panels);
  ReferenceResult res;
  double previous_estimate = std::numeric_limits<double>::infinity();
  while (true) {
    panels *= 2;
    std::vector<double> fine = divergence_1d_at(a, f, xa, xb, ga, gb, xs, panels);
    // The difference bounds the coarser solution's error; the finer one is at least as good.
    res.error_estimate = max_abs_difference(fine, coarse);
    res.u = std::move(fine);
    res.resolution = panels;
    res.converged = res.error_estimate <= effective_tol(opt, res.u);
    // An estimate that no longer decreases has reached round-off: more panels would only add to it.
    const bool stalled = res.error_estimate >= previous_estimate;
    if (res.converged || stalled || 2 * panels > max_panels) break;
    previous_estimate = res.error_estimate;
    coarse = res.u;
  }
  res.method = "composite Gauss-Legendre quadrature (" + std::to_string(GaussRule::q) + " points), " +
               std::to_string(panels) + " panels, error estimated against " + std::to_string(panels / 2);
  return res;
}

ReferenceResult reference_general_1d(const ScalarField& alpha, const ScalarField& beta, const ScalarField& gamma,
                                     const ScalarField& f, double xa, double xb, double ga, double gb,
                                     const std::vector<double>& xs, const ReferenceOptions& opt) {
  check_box({xa}, {xb}, xs);
  if (!std::isfinite(ga) || !std::isfinite(gb))
    throw UsageError("reference solution: the boundary values are not finite");
  const double mid = 0.5 * (xa + xb);
  const ScalarField g = [=](const double* x) { return x[0] < mid ? ga : gb; };
  const std::vector<ScalarField> al{alpha}, be{beta};
  return refine({xa}, {xb}, xs, opt, 64, GeneralSolve(al, be, gamma, f, g), "central differences");
}

ReferenceResult reference_divergence_nd(const std::vector<double>& lo, const std::vector<double>& hi,
                                        const std::vector<ScalarField>& a, const ScalarField& f, const ScalarField& g,
                                        const std::vector<double>& xs, const ReferenceOptions& opt) {
  check_box(lo, hi, xs);
  if (a.size() != 1 && a.size() != lo.size())
    throw UsageError("reference solution: a needs 1 field (isotropic) or " + std::to_string(lo.size()) +
                     " (diagonal tensor), got " + std::to_string(a.size()));
  const long min_cells = lo.size() == 1 ? 64 : lo.size() == 2 ? 32 : 16;
  return refine(lo, hi, xs, opt, min_cells, DivergenceSolve(a, f, g), "flux form, a evaluated at the half points");
}

ReferenceResult reference_general_nd(const std::vector<double>& lo, const std::vector<double>& hi,
                                     const std::vector<ScalarField>& alpha, const std::vector<ScalarField>& beta,
                                     const ScalarField& gamma, const ScalarField& f, const ScalarField& g,
                                     const std::vector<double>& xs, const ReferenceOptions& opt) {
  check_box(lo, hi, xs);
  if (alpha.size() != lo.size() || beta.size() != lo.size())
    throw UsageError("reference solution: alpha and beta need " + std::to_string(lo.size()) + " fields each");
  const long min_cells = lo.size() == 1 ? 64 : lo.size() == 2 ? 32 : 16;
  return refine(lo, hi, xs, opt, min_cells, GeneralSolve(alpha, beta, gamma, f, g), "central differences");
}

ReferenceResult reference_divergence_tensor_nd(const std::vector<double>& lo, const std::vector<double>& hi,
                                               const std::vector<ScalarField>& a_upper, const ScalarField& f,
                                               const ScalarField& g, const std::vector<double>& xs,
                                               const ReferenceOptions& opt) {
  if (lo.size() != 2 && lo.size() != 3)
    throw UsageError("reference solution: the full-tensor divergence form needs a box of 2 or 3 dimensions");
  check_box(lo, hi, xs);
  const std::size_t fields = lo.size() * (lo.size() + 1) / 2;
  if (a_upper.size() != fields)
    throw UsageError("reference solution: the tensor A needs its upper triangle, " + std::to_string(fields) +
                     " fields, got " + std::to_string(a_upper.size()));
  const long min_cells = lo.size() == 2 ? 32 : 16;
  return refine(lo, hi, xs, opt, min_cells, TensorSolve(a_upper, f, g),
                "flux form, a_kk at the half points, mixed terms by central differences");
}

}  // namespace pinntk
