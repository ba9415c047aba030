#include "host/problemfile/problem_file.hpp"

#include <Eigen/Eigenvalues>  // Eigen::SelfAdjointEigenSolver
#include <algorithm>          // std::min, std::max
#include <cmath>              // std::isfinite, std::fabs, std::pow
#include <cstdio>             // std::fprintf
#include <functional>         // std::function
#include <list>               // std::list
#include <map>                // std::map
#include <mutex>              // std::mutex, std::lock_guard
#include <set>                // std::set
#include <sstream>            // std::ostringstream

#include "common/errors.hpp"               // UsageError, NumericalError
#include "common/residual.hpp"             // row_residual_nd
#include "host/io/files.hpp"               // read_regular_file
#include "host/parse.hpp"                  // fmt17
#include "host/problem.hpp"                // ProblemSpec, Grid
#include "host/problemfile/formula.hpp"    // Formula, resolve_constants
#include "host/problemfile/toml_json.hpp"  // toml_to_json

namespace pinntk {

namespace {

using nlohmann::json;

enum class OperatorForm { Divergence, Diagonal, Tensor, General, Regression };

const char* form_name(OperatorForm f) {
  switch (f) {
    case OperatorForm::Divergence:
      return "divergence";
    case OperatorForm::Diagonal:
      return "divergence (diagonal tensor)";
    case OperatorForm::Tensor:
      return "divergence (full tensor)";
    case OperatorForm::General:
      return "general";
    case OperatorForm::Regression:
      return "regression";
  }
  return "";
}

// The formulas of a file compiled at one value of eps.
struct Compiled {
  std::map<std::string, double> constants;
  // Divergence form: a (1 or dim fields) and d_k a (scalar) or d_k a_k (diagonal); a full tensor: a_ij (dim x dim,
  // row-major) and d_i a_ij at a_grad[i * dim + j].
  std::vector<Formula> a, a_grad;
  std::vector<Formula> alpha, beta;
  Formula gamma;
  bool has_f = false, has_g = false, has_exact = false;
  Formula f, g, u;
  std::vector<Formula> du, d2u;
  std::vector<Formula> hess;  // a full tensor's exact solution: every second derivative d_i d_j u (dim x dim)
  double scale = 0.0;         // the smallest period, 0 when not given
};

}  // namespace

struct ProblemFile {
  std::string path, name, description;
  int dim = 1;
  OperatorForm form = OperatorForm::Divergence;
  std::map<std::string, std::string> constants;
  std::vector<std::string> a, alpha, beta;
  std::string gamma, f, g, exact, scale;
  std::vector<double> lo, hi;  // the box
  double ref_tol = 0.0;
  long ref_max_unknowns = 4'000'000;

  mutable std::mutex mu;
  mutable std::map<double, std::shared_ptr<const Compiled>> compiled;
  struct CachedReference {
    double eps;
    std::vector<double> xs;
    ReferenceResult result;
  };
  mutable std::list<CachedReference> references;
};

namespace {

const std::vector<std::string>& var_names(int dim) {
  static const std::vector<std::string> names[3] = {{"x"}, {"x", "y"}, {"x", "y", "z"}};
  return names[dim - 1];
}

std::string where(const ProblemFile& pf, const std::string& field) { return "problem file " + pf.path + ": " + field; }

std::string point_text(const double* x, int n) {
  static const char* names[] = {"x", "y", "z"};
  std::string t;
  for (int k = 0; k < n; ++k) t += std::string(k ? ", " : "") + names[k] + " = " + fmt17(x[k]);
  return t;
}

// The eigenvalues (ascending) and unit eigenvectors (v_k at v[k * n]) of the symmetric n x n matrix A (row-major),
// n = 2 or 3.
template <int N>
void tensor_eigen_n(const double* A, double* lambda, double* v) {
  Eigen::Matrix<double, N, N> m;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) m(i, j) = 0.5 * (A[i * N + j] + A[j * N + i]);
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix<double, N, N>> es(m);
  for (int k = 0; k < N; ++k) {
    lambda[k] = es.eigenvalues()(k);
    for (int j = 0; j < N; ++j) v[k * N + j] = es.eigenvectors()(j, k);
  }
}
void tensor_eigen(const double* A, int n, double* lambda, double* v) {
  if (n == 2)
    tensor_eigen_n<2>(A, lambda, v);
  else
    tensor_eigen_n<3>(A, lambda, v);
}

// The formulas on a fine sample of the box (a closed grid resolving the smallest scale, at most about 2^20 points):
// the divergence form's coefficients positive, the general form's second-order coefficients of one sign and nonzero,
// every value finite (the boundary data on the box's faces only). The first failure in grid order is named.
void check_sample(const ProblemFile& pf, const Compiled& c) {
  const int n = pf.dim;
  const long cap = n == 1 ? 1L << 20 : n == 2 ? 1024 : 101;
  std::vector<long> m(n);
  long total = 1;
  for (int k = 0; k < n; ++k) {
    const double len = pf.hi[k] - pf.lo[k];
    const double want = c.scale > 0.0 ? 16.0 * len / c.scale + 1.0 : 257.0;
    m[k] = std::max(65L, std::min(cap, static_cast<long>(want)));
    total *= m[k];
  }
  auto point = [&](long i, double* x, bool* on_face) {
    *on_face = false;
    for (int k = n - 1; k >= 0; --k) {
      const long j = i % m[k];
      i /= m[k];
      x[k] = j == m[k] - 1 ? pf.hi[k] : pf.lo[k] + (pf.hi[k] - pf.lo[k]) * static_cast<double>(j) / (m[k] - 1);
      if (j == 0 || j == m[k] - 1) *on_face = true;
    }
  };
  // Each test gives a message for the point, or "" when it passes.
  auto first_failure = [&](const std::function<std::string(const double*, bool)>& test) {
    long first = total;
#pragma omp parallel for schedule(static) reduction(min : first)
    for (long i = 0; i < total; ++i) {
      double x[kMaxDim];
      bool face;
      point(i, x, &face);
      if (i < first && !test(x, face).empty()) first = i;
    }
    if (first == total) return;
    double x[kMaxDim];
    bool face;
    point(first, x, &face);
    throw UsageError(where(pf, test(x, face) + " at " + point_text(x, n) + " (checked on a grid of " +
                                   std::to_string(total) + " points over the box)"));
  };
  auto finite = [](const char* what, double v) {
    return std::isfinite(v) ? std::string() : std::string("the ") + what + " is not finite (" + fmt17(v) + ")";
  };
  if (pf.form == OperatorForm::Divergence || pf.form == OperatorForm::Diagonal) {
    first_failure([&](const double* x, bool) {
      for (size_t k = 0; k < c.a.size(); ++k) {
        const double v = c.a[k](x);
        const std::string name = c.a.size() == 1 ? "a" : "a[" + std::to_string(k) + "]";
        if (!std::isfinite(v)) return "the coefficient " + name + " is not finite (" + fmt17(v) + ")";
        if (!(v > 0.0)) return "the coefficient " + name + " must be positive on the box, it is " + fmt17(v);
      }
      for (int k = 0; k < n; ++k) {
        const std::string e = finite("coefficient's derivative", c.a_grad[k](x));
        if (!e.empty()) return e;
      }
      return std::string();
    });
  } else if (pf.form == OperatorForm::Tensor) {
    first_failure([&](const double* x, bool) {
      double A[kMaxDim * kMaxDim];
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          const double v = c.a[i * n + j](x);
          const std::string name = "a[" + std::to_string(i) + "][" + std::to_string(j) + "]";
          if (!std::isfinite(v)) return "the coefficient " + name + " is not finite (" + fmt17(v) + ")";
          A[i * n + j] = v;
          const std::string e = finite("coefficient's derivative", c.a_grad[i * n + j](x));
          if (!e.empty()) return e;
        }
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < i; ++j)
          if (std::fabs(A[i * n + j] - A[j * n + i]) >
              1e-13 * std::max(std::fabs(A[i * n + j]), std::fabs(A[j * n + i])))
            return "the tensor must be symmetric: a[" + std::to_string(i) + "][" + std::to_string(j) +
                   "] = " + fmt17(A[i * n + j]) + " but a[" + std::to_string(j) + "][" + std::to_string(i) +
                   "] = " + fmt17(A[j * n + i]);
      double lambda[kMaxDim], v[kMaxDim * kMaxDim];
      tensor_eigen(A, n, lambda, v);
      if (!(lambda[0] > 0.0))
        return "the tensor a must be positive definite on the box, its smallest eigenvalue is " + fmt17(lambda[0]);
      return std::string();
    });
  } else if (pf.form == OperatorForm::General) {
    double x0[kMaxDim];
    for (int k = 0; k < n; ++k) x0[k] = pf.lo[k];
    const double sign = c.alpha[0](x0) < 0.0 ? -1.0 : 1.0;
    first_failure([&](const double* x, bool) {
      for (int k = 0; k < n; ++k) {
        const double v = c.alpha[k](x);
        const std::string name = n == 1 ? "alpha" : "alpha[" + std::to_string(k) + "]";
        if (!std::isfinite(v)) return "the coefficient " + name + " is not finite (" + fmt17(v) + ")";
        if (!(sign * v > 0.0))
          return "the coefficient " + name + " must be nonzero and of one sign on the box (elliptic), it is " +
                 fmt17(v);
        std::string e = finite("coefficient beta", c.beta[k](x));
        if (!e.empty()) return e;
      }
      return finite("coefficient gamma", c.gamma(x));
    });
  }
  first_failure([&](const double* x, bool face) {
    if (c.has_f) {
      const std::string e = finite("forcing", c.f(x));
      if (!e.empty()) return e;
    }
    if (c.has_g && face) {
      const std::string e = finite("boundary data", c.g(x));
      if (!e.empty()) return e;
    }
    if (c.has_exact) {
      std::string e = finite("exact solution", c.u(x));
      for (int k = 0; k < n && e.empty(); ++k) e = finite("exact solution's derivative", c.du[k](x));
      for (int k = 0; k < n && e.empty(); ++k) e = finite("exact solution's second derivative", c.d2u[k](x));
      return e;
    }
    return std::string();
  });
}

// The file's formulas at eps (the file's own eps when the spec does not change it).
std::shared_ptr<const Compiled> compile(const ProblemFile& pf, double eps) {
  std::lock_guard<std::mutex> lock(pf.mu);
  auto it = pf.compiled.find(eps);
  if (it != pf.compiled.end()) return it->second;
  auto c = std::make_shared<Compiled>();
  std::map<std::string, std::string> texts = pf.constants;
  if (texts.count("eps") != 0 && eps > 0.0) texts["eps"] = fmt17(eps);
  c->constants = resolve_constants(texts);
  const std::vector<std::string>& vars = var_names(pf.dim);
  auto parse = [&](const std::string& what, const std::string& text) {
    return Formula::parse(what, text, vars, c->constants);
  };
  const int n = pf.dim;
  if (pf.form == OperatorForm::Divergence || pf.form == OperatorForm::Diagonal) {
    for (size_t k = 0; k < pf.a.size(); ++k)
      c->a.push_back(parse(pf.a.size() == 1 ? "a" : "a[" + std::to_string(k) + "]", pf.a[k]));
    for (int k = 0; k < n; ++k) c->a_grad.push_back(c->a[pf.form == OperatorForm::Diagonal ? k : 0].derivative(k));
  } else if (pf.form == OperatorForm::Tensor) {
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        c->a.push_back(parse("a[" + std::to_string(i) + "][" + std::to_string(j) + "]", pf.a[i * n + j]));
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) c->a_grad.push_back(c->a[i * n + j].derivative(i));
  } else if (pf.form == OperatorForm::General) {
    for (int k = 0; k < n; ++k) {
      const std::string suffix = n == 1 ? "" : "[" + std::to_string(k) + "]";
      c->alpha.push_back(parse("alpha" + suffix, pf.alpha[k]));
      c->beta.push_back(parse("beta" + suffix, pf.beta[k]));
    }
    c->gamma = parse("gamma", pf.gamma);
  }
  c->has_f = !pf.f.empty();
  if (c->has_f) c->f = parse("forcing", pf.f);
  c->has_g = !pf.g.empty();
  if (c->has_g) c->g = parse("boundary", pf.g);
  c->has_exact = !pf.exact.empty();
  if (c->has_exact) {
    c->u = parse("exact", pf.exact);
    for (int k = 0; k < n; ++k) {
      c->du.push_back(c->u.derivative(k));
      c->d2u.push_back(c->du.back().derivative(k));
    }
    if (pf.form == OperatorForm::Tensor)
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) c->hess.push_back(c->du[i].derivative(j));
  }
  if (!pf.scale.empty()) {
    const Formula s = Formula::parse("scale", pf.scale, {}, c->constants);
    c->scale = s(nullptr);
    if (!(c->scale > 0.0 && std::isfinite(c->scale)))
      throw UsageError(where(pf, "\"scale\" must be a positive number, got " + fmt17(c->scale)));
  }
  check_sample(pf, *c);
  pf.compiled.emplace(eps, c);
  return c;
}

std::shared_ptr<const Compiled> compile(const ProblemSpec& spec) { return compile(*spec.file, spec.eps); }

// A formula's text: a string, or a number written as one.
std::string formula_text(const ProblemFile& pf, const json& v, const std::string& field) {
  if (v.is_string()) {
    const std::string t = v.get<std::string>();
    if (t.find_first_not_of(" \t") == std::string::npos) throw UsageError(where(pf, "\"" + field + "\" is empty"));
    return t;
  }
  if (v.is_number()) return fmt17(v.get<double>());
  throw UsageError(where(pf, "\"" + field + "\" must be a formula (a string) or a number"));
}

// One formula, or one per axis when the field holds a list of dim of them.
std::vector<std::string> formula_list(const ProblemFile& pf, const json& v, const std::string& field, int dim,
                                      bool allow_scalar) {
  if (v.is_array()) {
    if (static_cast<int>(v.size()) != dim)
      throw UsageError(where(pf, "\"" + field + "\" needs " + std::to_string(dim) + " formulas (one per axis), got " +
                                     std::to_string(v.size())));
    std::vector<std::string> out;
    for (size_t k = 0; k < v.size(); ++k) out.push_back(formula_text(pf, v[k], field + "[" + std::to_string(k) + "]"));
    return out;
  }
  std::string t = formula_text(pf, v, field);
  if (allow_scalar) return {t};
  return std::vector<std::string>(dim, t);
}

void check_keys(const ProblemFile& pf, const json& obj, const std::string& field,
                const std::vector<std::string>& known) {
  if (!obj.is_object()) throw UsageError(where(pf, "\"" + field + "\" must be an object"));
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw UsageError(where(pf, "unknown key \"" + it.key() + "\" in " + field + " (known: " + list + ")"));
  }
}

int int_field(const ProblemFile& pf, const json& obj, const std::string& key, int lo, int hi) {
  const json& v = obj.at(key);
  if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
    throw UsageError(
        where(pf, "\"" + key + "\" must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"));
  return static_cast<int>(v.get<long long>());
}

double number_field(const ProblemFile& pf, const json& obj, const std::string& key,
                    const std::map<std::string, double>& constants) {
  const std::string t = formula_text(pf, obj.at(key), key);
  const double v = Formula::parse(key, t, {}, constants)(nullptr);
  if (!std::isfinite(v)) throw UsageError(where(pf, "\"" + key + "\" is not finite"));
  return v;
}

}  // namespace

namespace {

ProblemSpec load_problem_file_unprefixed(const std::string& path);

}  // namespace

// A formula's or a constant's own message gains the file's name: every refusal names the file.
ProblemSpec load_problem_file(const std::string& path) {
  try {
    return load_problem_file_unprefixed(path);
  } catch (const UsageError& e) {
    const std::string what = e.what(), head = "problem file " + path;
    if (what.compare(0, head.size(), head) == 0 || what.find(path) != std::string::npos) throw;
    throw UsageError(head + ": " + what);
  }
}

namespace {

ProblemSpec load_problem_file_unprefixed(const std::string& path) {
  if (!formulas_available())
    throw UsageError("problem files need GiNaC: this pinntk was built without it (install libginac-dev and rebuild)");
  auto pf = std::make_shared<ProblemFile>();
  pf->path = path;
  const std::string text = read_regular_file(path, "problem file", 1 << 20);
  json j;
  const bool toml = path.size() > 5 && path.compare(path.size() - 5, 5, ".toml") == 0;
  // A key twice in one object is refused (JSON parsers keep one of the two silently); TOML refuses it itself.
  std::vector<std::set<std::string>> keys;
  std::string twice;
  const json::parser_callback_t note_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
        twice.empty())
      twice = parsed.get<std::string>();
    return true;
  };
  try {
    j = toml ? toml_to_json(text, path) : json::parse(text, note_keys);
  } catch (const json::parse_error& e) {
    throw UsageError(where(*pf, std::string("not valid JSON: ") + e.what()));
  } catch (const UsageError& e) {
    throw UsageError(where(*pf, e.what()));
  }
  if (!twice.empty()) throw UsageError(where(*pf, "the key \"" + twice + "\" appears twice in one object"));
  check_keys(*pf, j, "the file",
             {"name", "description", "dimension", "box", "constants", "operator", "forcing", "boundary", "exact",
              "scale", "points", "network", "reference"});
  for (const char* required : {"dimension", "box", "operator"})
    if (!j.contains(required)) throw UsageError(where(*pf, std::string("\"") + required + "\" is missing"));
  pf->dim = int_field(*pf, j, "dimension", 1, kMaxDim);
  const int n = pf->dim;
  std::string stem = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  for (const char* ext : {".json", ".toml"})
    if (stem.size() > 5 && stem.substr(stem.size() - 5) == ext) stem.resize(stem.size() - 5);
  pf->name = j.value("name", stem);
  pf->description = j.value("description", "");
  if (j.contains("constants")) {
    if (!j["constants"].is_object()) throw UsageError(where(*pf, "\"constants\" must be an object of name: value"));
    for (auto it = j["constants"].begin(); it != j["constants"].end(); ++it)
      pf->constants[it.key()] = formula_text(*pf, it.value(), "constants." + it.key());
  }
  const std::map<std::string, double> constants = resolve_constants(pf->constants);

  // The operator.
  const json& op = j["operator"];
  if (!op.is_object() || !op.contains("form") || !op["form"].is_string())
    throw UsageError(where(*pf, "\"operator\" needs a \"form\": divergence, general or regression"));
  const std::string form = op["form"].get<std::string>();
  if (form == "divergence") {
    check_keys(*pf, op, "operator", {"form", "a"});
    if (!op.contains("a")) throw UsageError(where(*pf, "the divergence form needs the coefficient \"a\""));
    const json& a = op["a"];
    if (a.is_array() && !a.empty() && a[0].is_array()) {  // a full tensor: dim rows of dim formulas
      if (n == 1) throw UsageError(where(*pf, "a full tensor \"a\" needs dimension 2 or 3; in 1-D give one formula"));
      if (static_cast<int>(a.size()) != n)
        throw UsageError(
            where(*pf, "the tensor \"a\" needs " + std::to_string(n) + " rows, got " + std::to_string(a.size())));
      for (int i = 0; i < n; ++i) {
        const std::vector<std::string> row = formula_list(*pf, a[i], "a[" + std::to_string(i) + "]", n, false);
        if (!a[i].is_array())
          throw UsageError(where(
              *pf, "the tensor \"a\" needs " + std::to_string(n) + " rows of " + std::to_string(n) + " formulas"));
        pf->a.insert(pf->a.end(), row.begin(), row.end());
      }
      pf->form = OperatorForm::Tensor;
    } else {
      pf->a = formula_list(*pf, a, "a", n, true);
      pf->form = pf->a.size() == 1 ? OperatorForm::Divergence : OperatorForm::Diagonal;
    }
  } else if (form == "general") {
    check_keys(*pf, op, "operator", {"form", "alpha", "beta", "gamma"});
    pf->alpha =
        op.contains("alpha") ? formula_list(*pf, op["alpha"], "alpha", n, false) : std::vector<std::string>(n, "0");
    pf->beta = op.contains("beta") ? formula_list(*pf, op["beta"], "beta", n, false) : std::vector<std::string>(n, "0");
    pf->gamma = op.contains("gamma") ? formula_text(*pf, op["gamma"], "gamma") : "0";
    pf->form = OperatorForm::General;
  } else if (form == "regression") {
    check_keys(*pf, op, "operator", {"form"});
    pf->form = OperatorForm::Regression;
  } else if (form == "full" || form == "tensor") {
    throw UsageError(where(*pf,
                           "a full coefficient tensor is the divergence form with \"a\" as a list of rows, e.g. "
                           "\"a\": [[\"2\", \"1\"], [\"1\", \"2\"]]"));
  } else {
    throw UsageError(where(*pf, "unknown operator form \"" + form + "\" (known: divergence, general, regression)"));
  }
  if (j.contains("forcing")) pf->f = formula_text(*pf, j["forcing"], "forcing");
  if (j.contains("boundary")) pf->g = formula_text(*pf, j["boundary"], "boundary");
  if (j.contains("exact")) pf->exact = formula_text(*pf, j["exact"], "exact");
  if (j.contains("scale")) pf->scale = formula_text(*pf, j["scale"], "scale");
  if (pf->exact.empty() && pf->f.empty())
    throw UsageError(where(*pf, pf->form == OperatorForm::Regression
                                    ? "the regression needs its target: \"exact\" (or \"forcing\")"
                                    : "give the forcing \"forcing\", the exact solution \"exact\", or both"));
  if (pf->exact.empty() && pf->g.empty() && pf->form != OperatorForm::Regression)
    throw UsageError(where(*pf, "give the Dirichlet data \"boundary\" (or the exact solution \"exact\")"));

  ProblemSpec s;
  s.name = pf->name;
  s.kind = ProblemKind::File;
  s.dim = n;
  s.eps = constants.count("eps") != 0 ? constants.at("eps") : 0.0;
  if (constants.count("eps") != 0 && !(s.eps > 0.0)) throw UsageError(where(*pf, "the constant eps must be positive"));

  // The box: one [lo, hi] per axis (numbers or formulas of the constants).
  const json& box = j["box"];
  if (!box.is_array() || static_cast<int>(box.size()) != n)
    throw UsageError(where(*pf, "\"box\" needs " + std::to_string(n) + " intervals [lo, hi], one per axis"));
  for (int k = 0; k < n; ++k) {
    if (!box[k].is_array() || box[k].size() != 2)
      throw UsageError(where(*pf, "\"box\"[" + std::to_string(k) + "] must be an interval [lo, hi]"));
    json ends = {{"lo", box[k][0]}, {"hi", box[k][1]}};
    const double lo = number_field(*pf, ends, "lo", constants), hi = number_field(*pf, ends, "hi", constants);
    if (!(lo < hi)) throw UsageError(where(*pf, "\"box\"[" + std::to_string(k) + "]: lo must be smaller than hi"));
    s.lo.push_back(lo);
    s.hi.push_back(hi);
  }
  pf->lo = s.lo;
  pf->hi = s.hi;
  if (n == 1) {
    s.xa = s.lo[0];
    s.xb = s.hi[0];
    s.lo.clear();
    s.hi.clear();
  } else {
    s.xa = -M_PI;  // unused in n-D; kept valid for validate()
    s.xb = M_PI;
  }

  // Points: the presets' defaults unless the file says otherwise.
  s.nc = n == 1 ? 1024 : (n == 2 ? 64 * 64 : 16 * 16 * 16);
  s.nb = n == 1 ? 2 : 2 * n * 64;
  s.lambda = 1.0;
  s.grid = n == 1 ? Grid::Linspace : Grid::Interior;
  if (pf->form == OperatorForm::Regression) s.nb = 0;
  if (j.contains("points")) {
    const json& p = j["points"];
    check_keys(*pf, p, "points", {"nc", "nb", "lambda", "grid", "boundary", "seed", "test_uniform", "test_per_axis"});
    if (p.contains("nc")) s.nc = int_field(*pf, p, "nc", 1, 1 << 24);
    if (p.contains("nb")) s.nb = int_field(*pf, p, "nb", 0, 1 << 24);
    if (p.contains("lambda")) s.lambda = number_field(*pf, p, "lambda", constants);
    if (p.contains("grid")) {
      const std::string g = p["grid"].is_string() ? p["grid"].get<std::string>() : "";
      if (g == "linspace") {
        s.grid = Grid::Linspace;
      } else if (g == "interior" || g == "grid") {
        s.grid = Grid::Interior;
      } else if (g == "sobol") {
        s.grid = Grid::Sobol;
      } else if (g == "uniform") {
        s.grid = Grid::Uniform;
      } else {
        throw UsageError(where(*pf, "\"grid\" must be linspace, interior (1-D), grid, sobol or uniform (n-D)"));
      }
    }
    if (p.contains("boundary")) {
      const std::string b = p["boundary"].is_string() ? p["boundary"].get<std::string>() : "";
      if (b != "grid" && b != "uniform") throw UsageError(where(*pf, "\"boundary\" must be grid or uniform"));
      s.boundary_random = b == "uniform";
    }
    if (p.contains("seed")) s.point_seed = static_cast<uint64_t>(int_field(*pf, p, "seed", 0, 1 << 30));
    if (p.contains("test_uniform")) s.test_uniform = int_field(*pf, p, "test_uniform", 0, 1 << 24);
    if (p.contains("test_per_axis")) s.test_per_axis = int_field(*pf, p, "test_per_axis", 2, 1 << 12);
  }
  s.default_layers = {n, 40, 40, 40, 40, 1};
  s.default_init = "glorot-normal";
  if (j.contains("network")) {
    const json& nw = j["network"];
    check_keys(*pf, nw, "network", {"layers", "init"});
    if (nw.contains("layers")) {
      if (!nw["layers"].is_array() || nw["layers"].size() < 3)
        throw UsageError(where(*pf, "\"layers\" must be a list of widths such as [1, 40, 40, 1]"));
      s.default_layers.clear();
      for (const auto& w : nw["layers"]) {
        if (!w.is_number_integer() || w.get<long long>() < 1 || w.get<long long>() > 4096)
          throw UsageError(where(*pf, "\"layers\" must hold widths in [1, 4096]"));
        s.default_layers.push_back(static_cast<int>(w.get<long long>()));
      }
      if (s.default_layers.front() != n || s.default_layers.back() != 1)
        throw UsageError(
            where(*pf, "\"layers\" must start with the dimension " + std::to_string(n) + " and end with 1"));
    }
    if (nw.contains("init")) {
      if (!nw["init"].is_string()) throw UsageError(where(*pf, "\"init\" must be a string"));
      s.default_init = nw["init"].get<std::string>();
    }
  }
  pf->ref_tol = n == 1 && pf->form != OperatorForm::General ? 1e-10 : 1e-6;
  if (j.contains("reference")) {
    const json& r = j["reference"];
    check_keys(*pf, r, "reference", {"tol", "max_unknowns"});
    if (r.contains("tol")) {
      pf->ref_tol = number_field(*pf, r, "tol", constants);
      if (!(pf->ref_tol > 0.0)) throw UsageError(where(*pf, "\"reference\".\"tol\" must be positive"));
    }
    if (r.contains("max_unknowns")) pf->ref_max_unknowns = int_field(*pf, r, "max_unknowns", 16, 1 << 30);
  }
  s.file = pf;
  compile(*pf, s.eps);  // every formula parsed and differentiated now: a mistake stops here
  return s;
}

}  // namespace

bool file_uses_eps(const ProblemFile& file) { return file.constants.count("eps") != 0; }
bool file_has_exact(const ProblemFile& file) { return !file.exact.empty(); }

namespace {

// The operator's coefficients at x along each axis (pinntk's rows, common/problems_nd.hpp): lambda_k D_k^2 u +
// c_k D_k u + gamma u. Divergence form: -div(A grad u) = -sum_k (a_k D_k^2 u + (D_k a_k) D_k u) for A = diag(a_k).
// A full tensor (DESIGN.md section 7): -div(A grad u) = -sum_ij a_ij d_i d_j u - sum_j b_j d_j u with
// b_j = sum_i d_i a_ij; along the eigenvectors v_k of A (into dirs, n x n), lambda_k = -(eigenvalue k) and
// c_k = -b . v_k. dirs is left alone for the other forms.
void row_at(const ProblemFile& pf, const Compiled& c, const double* x, double* lambda, double* cc, double* gamma,
            double* dirs = nullptr) {
  const int n = pf.dim;
  *gamma = 0.0;
  switch (pf.form) {
    case OperatorForm::Tensor: {
      double A[kMaxDim * kMaxDim], v[kMaxDim * kMaxDim], ev[kMaxDim], b[kMaxDim];
      for (int q = 0; q < n * n; ++q) A[q] = c.a[q](x);
      tensor_eigen(A, n, ev, v);
      for (int j = 0; j < n; ++j) {
        b[j] = 0.0;
        for (int i = 0; i < n; ++i) b[j] += c.a_grad[i * n + j](x);
      }
      for (int k = 0; k < n; ++k) {
        double bv = 0.0;
        for (int j = 0; j < n; ++j) bv += b[j] * v[k * n + j];
        lambda[k] = -ev[k];
        cc[k] = -bv;
      }
      if (dirs != nullptr)
        for (int q = 0; q < n * n; ++q) dirs[q] = v[q];
      break;
    }
    case OperatorForm::Divergence:
    case OperatorForm::Diagonal:
      for (int k = 0; k < n; ++k) {
        lambda[k] = -c.a[pf.form == OperatorForm::Diagonal ? k : 0](x);
        cc[k] = -c.a_grad[k](x);
      }
      break;
    case OperatorForm::General:
      for (int k = 0; k < n; ++k) {
        lambda[k] = c.alpha[k](x);
        cc[k] = c.beta[k](x);
      }
      *gamma = c.gamma(x);
      break;
    case OperatorForm::Regression:
      for (int k = 0; k < n; ++k) lambda[k] = cc[k] = 0.0;
      *gamma = 1.0;
      break;
  }
}

JetNd<double> exact_jet(const Compiled& c, int n, const double* x) {
  JetNd<double> u{c.u(x), {}, {}};
  for (int k = 0; k < n; ++k) {
    u.d1[k] = c.du[k](x);
    u.d2[k] = c.d2u[k](x);
  }
  return u;
}

// The exact solution and its first and second derivatives along the directions v (n x n; v_k at v[k * n]):
// D_k u = v_k . grad u, D_k^2 u = v_k^T H v_k (the full Hessian, c.hess). v null: the axes (exact_jet).
JetNd<double> exact_along(const Compiled& c, int n, const double* x, const double* v) {
  JetNd<double> u = exact_jet(c, n, x);
  if (v == nullptr) return u;
  double g[kMaxDim], H[kMaxDim * kMaxDim];
  for (int i = 0; i < n; ++i) g[i] = u.d1[i];
  for (int q = 0; q < n * n; ++q) H[q] = c.hess[q](x);
  for (int k = 0; k < n; ++k) {
    const double* vk = v + k * n;
    double d1 = 0.0, d2 = 0.0;
    for (int i = 0; i < n; ++i) {
      d1 += vk[i] * g[i];
      for (int j = 0; j < n; ++j) d2 += vk[i] * H[i * n + j] * vk[j];
    }
    u.d1[k] = d1;
    u.d2[k] = d2;
  }
  return u;
}

}  // namespace

void fill_file_rows(const ProblemSpec& spec, PointSet& p) {
  const ProblemFile& pf = *spec.file;
  const auto c = compile(spec);
  const int n = pf.dim, N = p.size();
  p.alpha.assign(static_cast<size_t>(N) * n, 0.0);
  p.beta.assign(static_cast<size_t>(N) * n, 0.0);
  p.gamma.assign(N, 0.0);
  p.f.assign(N, 0.0);
  p.w.assign(N, 0.0);
  const bool regression = pf.form == OperatorForm::Regression, tensor = pf.form == OperatorForm::Tensor;
  p.dirs.clear();
  if (tensor) {  // each row's own directions; the boundary rows (u alone) keep the axes
    p.dirs.assign(static_cast<size_t>(N) * n * n, 0.0);
    for (int k = 0; k < N; ++k)
      for (int i = 0; i < n; ++i) p.dirs[(static_cast<size_t>(k) * n + i) * n + i] = 1.0;
  }
#pragma omp parallel for schedule(static)
  for (int k = 0; k < p.nc; ++k) {
    const double* x = p.x.data() + static_cast<size_t>(k) * n;
    double* lambda = p.alpha.data() + static_cast<size_t>(k) * n;
    double* cc = p.beta.data() + static_cast<size_t>(k) * n;
    double* dirs = tensor ? p.dirs.data() + static_cast<size_t>(k) * n * n : nullptr;
    row_at(pf, *c, x, lambda, cc, &p.gamma[k], dirs);
    if (regression) {
      p.f[k] = c->has_exact ? c->u(x) : c->f(x);  // the target
    } else if (c->has_f) {
      p.f[k] = c->f(x);
    } else {  // manufactured: the operator applied to the exact solution
      const JetNd<double> u = exact_along(*c, n, x, dirs);
      p.f[k] = row_residual_nd(n, lambda, cc, p.gamma[k], 0.0, u.v, u.d1, u.d2);
    }
    p.w[k] = (regression ? 2.0 : 1.0) / p.nc;  // the regression loss (1/N) sum (u - u*)^2 has no 1/2
  }
  for (int j = 0; j < p.nb; ++j) {
    const int k = p.nc + j;
    const double* x = p.x.data() + static_cast<size_t>(k) * n;
    p.gamma[k] = 1.0;
    p.f[k] = c->has_g ? c->g(x) : c->u(x);
    p.w[k] = spec.lambda / p.nb;
  }
}

JetNd<double> file_exact(const ProblemSpec& spec, const double* x) {
  const auto c = compile(spec);
  if (!c->has_exact) throw UsageError("problem " + spec.name + ": the file gives no exact solution");
  return exact_jet(*c, spec.dim, x);
}

const ReferenceResult& file_solution_values(const ProblemSpec& spec, const std::vector<double>& xs) {
  const ProblemFile& pf = *spec.file;
  {
    std::lock_guard<std::mutex> lock(pf.mu);
    for (const auto& r : pf.references)
      if (r.eps == spec.eps && r.xs == xs) return r.result;
  }
  const auto c = compile(spec);
  const int n = pf.dim;
  const size_t np = xs.size() / n;
  ReferenceResult res;
  if (c->has_exact || pf.form == OperatorForm::Regression) {
    const Formula& u = c->has_exact ? c->u : c->f;
    res.u.resize(np);
    for (size_t i = 0; i < np; ++i) res.u[i] = u(xs.data() + i * n);
    res.method = c->has_exact ? "exact" : "regression target";
    res.converged = true;
  } else {
    std::fprintf(stderr, "pinntk: %s: computing a reference solution (%s, tolerance %.1e)...\n", spec.name.c_str(),
                 n == 1 && pf.form != OperatorForm::General ? "quadrature" : "finite differences", pf.ref_tol);
    ReferenceOptions opt;
    opt.tol = pf.ref_tol;
    opt.smallest_scale = c->scale;
    opt.max_unknowns = pf.ref_max_unknowns;
    auto field = [](const Formula& f) { return ScalarField([f](const double* x) { return f(x); }); };
    auto fields = [&](const std::vector<Formula>& fs) {
      std::vector<ScalarField> out;
      for (const auto& f : fs) out.push_back(field(f));
      return out;
    };
    const ScalarField g = field(c->g);
    if (n == 1) {
      const double xa = spec.xa, xb = spec.xb, ga = g(&xa), gb = g(&xb);
      if (pf.form == OperatorForm::General) {
        res = reference_general_1d(field(c->alpha[0]), field(c->beta[0]), field(c->gamma), field(c->f), xa, xb, ga, gb,
                                   xs, opt);
      } else {
        res = reference_divergence_1d(field(c->a[0]), field(c->f), xa, xb, ga, gb, xs, opt);
      }
    } else if (pf.form == OperatorForm::Tensor) {
      std::vector<ScalarField> upper;  // a11, a12, (a13,) a22, ...
      for (int i = 0; i < n; ++i)
        for (int j = i; j < n; ++j) upper.push_back(field(c->a[i * n + j]));
      res = reference_divergence_tensor_nd(spec.lo, spec.hi, upper, field(c->f), g, xs, opt);
    } else if (pf.form == OperatorForm::General) {
      res = reference_general_nd(spec.lo, spec.hi, fields(c->alpha), fields(c->beta), field(c->gamma), field(c->f), g,
                                 xs, opt);
    } else {
      res = reference_divergence_nd(spec.lo, spec.hi, fields(c->a), field(c->f), g, xs, opt);
    }
  }
  if (!c->has_exact && pf.form != OperatorForm::Regression)
    std::fprintf(stderr, "pinntk: %s: errors against a reference solution: %s, estimated error %.2e%s\n",
                 spec.name.c_str(), res.method.c_str(), res.error_estimate,
                 res.converged ? "" : " (NOT converged to the file's tolerance)");
  for (size_t i = 0; i < res.u.size(); ++i)
    if (!std::isfinite(res.u[i]))
      throw NumericalError("problem " + spec.name + ": the " + res.method + " solution is not finite at test point " +
                           std::to_string(i));
  std::lock_guard<std::mutex> lock(pf.mu);
  pf.references.push_back({spec.eps, xs, std::move(res)});
  return pf.references.back().result;
}

namespace {

// Twice the shortest mean distance between local extrema of the second-order coefficient along the lines through the
// box's centre parallel to the axes, sampled at 2^16 points each; 0 when it has fewer than 3 extrema on every line.
double oscillation_scale(const ProblemFile& pf, const Compiled& c) {
  const int n = pf.dim;
  const long m = 1L << 16;
  double best = 0.0;
  for (int axis = 0; axis < n; ++axis) {
    double x[kMaxDim], lambda[kMaxDim], cc[kMaxDim], gamma;
    for (int k = 0; k < n; ++k) x[k] = 0.5 * (pf.lo[k] + pf.hi[k]);
    long extrema = 0;
    double prev = 0.0, prev_diff = 0.0;
    for (long i = 0; i < m; ++i) {
      x[axis] = pf.lo[axis] + (pf.hi[axis] - pf.lo[axis]) * static_cast<double>(i) / (m - 1);
      row_at(pf, c, x, lambda, cc, &gamma);
      const double v = pf.form == OperatorForm::Tensor ? c.a[axis * n + axis](x) : lambda[axis];
      if (i > 0) {
        const double diff = v - prev;
        if (i > 1 && diff * prev_diff < 0.0) ++extrema;
        if (diff != 0.0) prev_diff = diff;
      }
      prev = v;
    }
    if (extrema >= 3) {
      const double s = 2.0 * (pf.hi[axis] - pf.lo[axis]) / static_cast<double>(extrema);
      best = best > 0.0 ? std::min(best, s) : s;
    }
  }
  return best;
}

// The exact solution against the file's forcing and boundary data at the rows (both checks need "exact").
struct FileResiduals {
  double worst_f = 0.0, fmax = 0.0, worst_g = 0.0;
  int at = -1;  // the collocation row of worst_f
  bool forcing_flagged = false, boundary_flagged = false;
};

FileResiduals file_residuals(const Compiled& c, int n, const PointSet& pts) {
  FileResiduals r;
  if (c.has_f) {
    for (int k = 0; k < pts.nc; ++k) {
      const double* x = pts.x.data() + static_cast<size_t>(k) * n;
      const JetNd<double> u = exact_along(c, n, x, pts.has_directions() ? pts.directions(k, nullptr) : nullptr);
      const size_t o = static_cast<size_t>(k) * n;
      const double res = std::fabs(
          row_residual_nd(n, pts.alpha.data() + o, pts.beta.data() + o, pts.gamma[k], pts.f[k], u.v, u.d1, u.d2));
      r.fmax = std::max(r.fmax, std::fabs(pts.f[k]));
      if (!(res <= r.worst_f)) {
        r.worst_f = res;
        r.at = k;
      }
    }
    r.forcing_flagged = r.at >= 0 && r.worst_f > 1e-8 * std::max(1.0, r.fmax);
  }
  if (c.has_g && pts.nb > 0) {
    for (int j = 0; j < pts.nb; ++j) {
      const int k = pts.nc + j;
      r.worst_g = std::max(r.worst_g, std::fabs(c.u(pts.x.data() + static_cast<size_t>(k) * n) - pts.f[k]));
    }
    r.boundary_flagged = r.worst_g > 1e-8;
  }
  return r;
}

// One line saying what the residuals flag, or "".
std::string mismatch_line(const FileResiduals& r) {
  std::ostringstream why;
  if (r.forcing_flagged)
    why << "the forcing does not match the exact solution: max |L u* - f| = " << r.worst_f
        << " over the collocation rows (largest at row " << r.at << ")";
  else if (r.boundary_flagged)
    why << "the boundary data do not match the exact solution: max |u* - g| = " << r.worst_g
        << " over the boundary rows";
  return why.str();
}

}  // namespace

std::string problem_file_mismatch(const ProblemSpec& spec, const PointSet& pts) {
  const auto c = compile(spec);
  return c->has_exact ? mismatch_line(file_residuals(*c, spec.file->dim, pts)) : std::string();
}

std::string problem_check_report(const ProblemSpec& spec, const PointSet& pts, std::string* flagged) {
  if (flagged != nullptr) flagged->clear();
  const ProblemFile& pf = *spec.file;
  const auto c = compile(spec);
  const int n = pf.dim;
  std::ostringstream os;
  os.precision(6);
  os << "problem        " << pf.name << (pf.description.empty() ? "" : " (" + pf.description + ")") << '\n';
  os << "file           " << pf.path << '\n';
  os << "dimension      " << n << ", box";
  for (int k = 0; k < n; ++k)
    os << (k ? " x " : " ") << '[' << (n == 1 ? spec.xa : spec.lo[k]) << ", " << (n == 1 ? spec.xb : spec.hi[k]) << ']';
  os << '\n';
  os << "operator       " << form_name(pf.form);
  if (pf.form == OperatorForm::Divergence || pf.form == OperatorForm::Diagonal) {
    os << ": -div(A grad u), A = " << (pf.form == OperatorForm::Divergence ? "a I" : "diag(a_k)") << '\n';
    for (size_t k = 0; k < c->a.size(); ++k)
      os << "  a" << (c->a.size() > 1 ? std::to_string(k) : "") << " = " << c->a[k].str() << '\n';
  } else if (pf.form == OperatorForm::Tensor) {
    os << ": -div(A grad u), A = (a_ij), along its eigenvectors at each point\n";
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) os << "  a" << i << j << " = " << c->a[i * n + j].str() << '\n';
  } else if (pf.form == OperatorForm::General) {
    os << ": sum_k (alpha_k D_k^2 u + beta_k D_k u) + gamma u\n";
  } else {
    os << ": u = target\n";
  }
  os << "constants     ";
  for (const auto& kv : c->constants) os << ' ' << kv.first << '=' << kv.second;
  os << (c->constants.empty() ? " none" : "") << '\n';
  // The coefficient of the second derivatives at the collocation points: its range and contrast.
  double lo = INFINITY, hi = -INFINITY;
  bool finite = true;
  for (int k = 0; k < pts.nc; ++k)
    for (int i = 0; i < n; ++i) {
      const double v = std::fabs(pts.alpha[static_cast<size_t>(k) * n + i]);
      if (!std::isfinite(v)) finite = false;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (pf.form != OperatorForm::Regression) {
    if (!finite) {
      os << "coefficient    NOT FINITE at some collocation point\n";
    } else {
      os << "coefficient    |second-order coefficient| in [" << lo << ", " << hi << "], contrast "
         << (lo > 0 ? hi / lo : INFINITY) << " at the " << pts.nc << " collocation points\n";
    }
  }
  // The smallest scale: the file's, else estimated from the coefficient's oscillations (twice the shortest mean
  // distance between its local extrema along the axes through the box's centre).
  double scale = c->scale;
  const bool estimated = !(scale > 0.0) && pf.form != OperatorForm::Regression;
  if (estimated) scale = oscillation_scale(pf, *c);
  if (scale > 0.0) {
    double per_period = INFINITY;
    const double per_axis = n == 1 ? pts.nc : std::pow(static_cast<double>(pts.nc), 1.0 / n);
    for (int k = 0; k < n; ++k) {
      const double len = n == 1 ? spec.xb - spec.xa : spec.hi[k] - spec.lo[k];
      per_period = std::min(per_period, per_axis * scale / len);
    }
    os << "smallest scale " << scale
       << (estimated ? " (estimated from the coefficient's oscillations; set \"scale\")" : "") << ": " << per_period
       << " collocation points per period" << (n > 1 ? " along each axis" : "")
       << (per_period < 4 ? " (too few to resolve it)" : "") << '\n';
  } else {
    os << "smallest scale not given, and the coefficient does not oscillate (set \"scale\" in the file)\n";
  }
  os << "points         nc=" << pts.nc << " nb=" << pts.nb << " lambda=" << spec.lambda
     << " grid=" << grid_name(spec.grid) << '\n';
  if (!c->has_exact) {
    os << "exact solution not given: errors are measured against a reference solution ("
       << (n == 1 && pf.form != OperatorForm::General ? "adaptive quadrature" : "finite differences") << ")\n";
    return os.str();
  }
  os << "exact solution " << c->u.str() << '\n';
  const FileResiduals r = file_residuals(*c, n, pts);
  if (flagged != nullptr) *flagged = mismatch_line(r);
  if (c->has_f) {
    os << "L u* - f       max " << r.worst_f;
    if (r.fmax > 0) os << " (" << r.worst_f / r.fmax << " of max |f| = " << r.fmax << ")";
    if (r.forcing_flagged) os << "  <- CHECK the forcing: largest at collocation row " << r.at;
    os << '\n';
  } else {
    os << "forcing        manufactured from the exact solution\n";
  }
  if (c->has_g && pts.nb > 0)
    os << "u* - g         max " << r.worst_g << " over the boundary rows"
       << (r.boundary_flagged ? "  <- CHECK the boundary data" : "") << '\n';
  return os.str();
}

nlohmann::json problem_file_json(const ProblemSpec& spec) {
  const ProblemFile& pf = *spec.file;
  const auto c = compile(spec);
  json j;
  j["file"] = pf.path;
  j["form"] = form_name(pf.form);
  j["constants"] = c->constants;
  json f;
  for (size_t k = 0; k < c->a.size(); ++k) {
    const std::string name = pf.form == OperatorForm::Tensor
                                 ? "a" + std::to_string(k / pf.dim) + std::to_string(k % pf.dim)
                                 : (c->a.size() == 1 ? "a" : "a" + std::to_string(k));
    f[name] = c->a[k].str();
  }
  for (size_t k = 0; k < c->alpha.size(); ++k) {
    f["alpha" + std::to_string(k)] = c->alpha[k].str();
    f["beta" + std::to_string(k)] = c->beta[k].str();
  }
  if (pf.form == OperatorForm::General) f["gamma"] = c->gamma.str();
  if (c->has_f) f["forcing"] = c->f.str();
  if (c->has_g) f["boundary"] = c->g.str();
  if (c->has_exact) f["exact"] = c->u.str();
  j["formulas"] = f;
  j["exact_solution"] = c->has_exact;
  if (c->scale > 0.0) j["scale"] = c->scale;
  return j;
}

}  // namespace pinntk
