// Formulas of a problem file (issue 15): text in the coordinates x, y, z and named constants, parsed and
// differentiated symbolically by GiNaC, and evaluated at many points by a flat program compiled once from GiNaC's
// expression tree (no hand-written parser).
#pragma once

#include <map>     // std::map
#include <memory>  // std::shared_ptr
#include <string>  // std::string
#include <vector>  // std::vector

namespace pinntk {

// Whether this build has GiNaC (problem files need it); without it every function below throws UsageError.
bool formulas_available();

class Formula {
 public:
  Formula();  // the constant 0

  // Parses text in the variables vars (e.g. {"x"} or {"x", "y"}) and the named constants (name -> value; "pi" is
  // always known and means GiNaC's Pi). what names the formula in messages. Throws UsageError with one line
  // saying what and why for a syntax error, an unknown name, or a function outside the supported set (sin, cos,
  // tan, exp, log, sqrt, abs, tanh, sinh, cosh, atan, asin, acos, powers), e.g.
  //   formula "a": unknown name 'q' in "1/(2+q)" (known: x, eps, pi)
  static Formula parse(const std::string& what, const std::string& text, const std::vector<std::string>& vars,
                       const std::map<std::string, double>& constants);

  // The exact symbolic derivative in variable var (an index into vars).
  Formula derivative(int var) const;

  // The value at the point x (vars.size() coordinates). Thread-safe; allocates nothing.
  double operator()(const double* x) const;

  // The formula as GiNaC prints it (after substituting the constants).
  std::string str() const;
  // Whether the formula does not depend on any variable.
  bool is_constant() const;
  int num_vars() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Resolves constants given as formulas of one another and of pi (e.g. {"omega": "2*pi", "eps": "1/8",
// "k": "omega/eps"}) to numbers, in any order. Throws UsageError for a cycle, an unknown name, a non-finite value.
std::map<std::string, double> resolve_constants(const std::map<std::string, std::string>& constants);

}  // namespace pinntk
