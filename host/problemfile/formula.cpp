// Formulas of a problem file (host/problemfile/formula.hpp). GiNaC parses and differentiates; evaluation never
// touches GiNaC: each expression is compiled once into a flat postfix program over doubles (Op below) that runs on a
// small stack array, so operator() is allocation-free and thread-safe.
//
// GiNaC's reference counts are plain integers, not atomics, so every call into GiNaC (parsing, diff, printing, and
// destroying a GiNaC expression) happens under one process-wide mutex; evaluation needs no lock because the program
// is immutable once built.
#include "host/problemfile/formula.hpp"

#include <algorithm>  // std::stable_sort, std::max, std::find
#include <cctype>     // std::isalpha, std::isdigit, std::isalnum
#include <cmath>      // std::sin, std::pow, std::isfinite, ...
#include <cstddef>    // std::size_t
#include <mutex>      // std::recursive_mutex, std::lock_guard
#include <set>        // std::set
#include <sstream>    // std::ostringstream
#include <stdexcept>  // std::out_of_range
#include <utility>    // std::move, std::pair

#include "common/errors.hpp"  // UsageError

#ifdef PINNTK_HAVE_GINAC
#include <ginac/ginac.h>  // GiNaC::parser, ex, realsymbol, diff, evalf
#endif

namespace pinntk {
namespace {

// One instruction of the postfix program. Const and Var push; the binary codes pop two and push one; the rest
// replace the top of the stack.
enum class Code : unsigned char {
  Const,     // push value
  Var,       // push x[n]
  Add,       // a + b
  Sub,       // a - b
  Mul,       // a * b
  Div,       // a / b
  Pow,       // std::pow(a, b), a variable exponent
  Neg,       // -a
  Square,    // a * a
  Cube,      // a * a * a
  Recip,     // 1 / a
  PowInt,    // a^n by repeated squaring, 4 <= n <= kMaxRepeatedPower
  PowConst,  // std::pow(a, value), a constant exponent
  Sqrt,
  Sin,
  Cos,
  Tan,
  Exp,
  Log,
  Abs,
  Tanh,
  Sinh,
  Cosh,
  Atan,
  Asin,
  Acos,
};

struct Op {
  Code code;
  int n = 0;
  double value = 0.0;
};

// The evaluation stack is an array on the C++ stack; a formula that needs more is refused at parse time (not at
// evaluation, which must not allocate). The compiler folds n-ary sums and products pairwise and evaluates the
// deepest operand first, so an operation needs one slot more than its operands only when two of them are equally
// deep: the depth is about log2 of the number of leaves, and 64 would take a formula of astronomical length.
constexpr int kMaxStack = 64;
// Integer powers up to this exponent are repeated multiplications (a few ulp); higher ones go to std::pow.
constexpr int kMaxRepeatedPower = 16;

double power_int(double a, int n) {
  double result = 1.0;
  while (true) {
    if (n & 1) result *= a;
    n >>= 1;
    if (n == 0) return result;
    a *= a;
  }
}

}  // namespace

#ifdef PINNTK_HAVE_GINAC

namespace {

const char* const kFunctions[] = {"sin",  "cos",  "tan",  "exp",  "log",  "sqrt", "abs",
                                  "tanh", "sinh", "cosh", "atan", "asin", "acos"};

bool is_function_name(const std::string& name) {
  return std::find(std::begin(kFunctions), std::end(kFunctions), name) != std::end(kFunctions);
}

std::string function_list() {
  std::string s;
  for (const char* f : kFunctions) s += (s.empty() ? "" : ", ") + std::string(f);
  return s;
}

// GiNaC's literals (I, Pi, Euler, Catalan) win over the symbol table, so names spelled like them cannot be bound.
bool is_reserved(const std::string& name) {
  return name == "pi" || name == "I" || name == "Pi" || name == "Euler" || name == "Catalan";
}

bool is_identifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// A name in a formula's text: called (followed by '(') or not.
struct Name {
  std::string name;
  bool called = false;
};

// Splits text into its names, skipping numbers (so the 'e' of 1e-3 is not a name). Returns the first character
// outside the formula alphabet in bad, 0 if none.
std::vector<Name> scan_names(const std::string& text, char& bad) {
  std::vector<Name> names;
  bad = 0;
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return k < text.size() ? text[k] : '\0'; };
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isdigit(c) || (c == '.' && std::isdigit(static_cast<unsigned char>(at(i + 1))))) {
      while (std::isdigit(static_cast<unsigned char>(at(i))) || at(i) == '.') ++i;
      if (at(i) == 'e' || at(i) == 'E') {
        std::size_t k = i + 1;
        if (at(k) == '+' || at(k) == '-') ++k;
        if (std::isdigit(static_cast<unsigned char>(at(k)))) {
          i = k;
          while (std::isdigit(static_cast<unsigned char>(at(i)))) ++i;
        }
      }
    } else if (std::isalpha(c) || c == '_') {
      const std::size_t start = i;
      while (std::isalnum(static_cast<unsigned char>(at(i))) || at(i) == '_') ++i;
      std::size_t k = i;
      while (at(k) == ' ' || at(k) == '\t') ++k;
      names.push_back({text.substr(start, i - start), at(k) == '('});
    } else if (std::string(" \t+-*/^(),.").find(static_cast<char>(c)) != std::string::npos) {
      ++i;
    } else {
      if (bad == 0) bad = static_cast<char>(c);
      ++i;
    }
  }
  return names;
}

std::recursive_mutex& ginac_mutex() {
  static std::recursive_mutex m;
  return m;
}

// The symbolic side of a parsed formula; only touched under ginac_mutex().
struct Symbolic {
  GiNaC::ex expr;
  std::vector<GiNaC::realsymbol> vars;
  std::vector<std::string> var_names;
  std::string label;  // formula "a"
  std::string text;   // as written, or as printed for a derivative
  std::string known;  // x, eps, pi
};

// A piece of program with the stack depth it needs.
struct Chunk {
  std::vector<Op> ops;
  int depth = 0;
};

Chunk leaf(Op op) { return Chunk{{op}, 1}; }

Chunk unary(Chunk c, Code code, int n = 0, double value = 0.0) {
  c.ops.push_back({code, n, value});
  return c;
}

Chunk binary(Chunk a, const Chunk& b, Code code) {
  a.depth = std::max(a.depth, b.depth + 1);
  a.ops.insert(a.ops.end(), b.ops.begin(), b.ops.end());
  a.ops.push_back({code});
  return a;
}

// Compiles a GiNaC expression into a postfix program. Subtrees without variables become one double (evalf), so Pi,
// rationals and sqrt(2) cost nothing at evaluation.
class Compiler {
 public:
  explicit Compiler(const Symbolic& s) : s_(s) {}

  Chunk compile(const GiNaC::ex& e) const {
    using GiNaC::is_a;
    if (!has_vars(e)) return leaf({Code::Const, 0, number(e)});
    if (is_a<GiNaC::symbol>(e)) {
      for (std::size_t i = 0; i < s_.vars.size(); ++i)
        if (e.is_equal(s_.vars[i])) return leaf({Code::Var, static_cast<int>(i)});
    }
    if (is_a<GiNaC::add>(e)) return compile_add(e);
    if (is_a<GiNaC::mul>(e)) return compile_mul(e);
    if (is_a<GiNaC::power>(e)) return compile_power(e.op(0), e.op(1));
    if (is_a<GiNaC::function>(e)) return compile_function(e);
    fail("unsupported expression '" + print(e) + "'");
  }

  [[noreturn]] void fail(const std::string& reason) const {
    throw UsageError(s_.label + ": " + reason + " in \"" + s_.text + "\" (known: " + s_.known + ")");
  }

 private:
  bool has_vars(const GiNaC::ex& e) const {
    for (const auto& v : s_.vars)
      if (e.has(v)) return true;
    return false;
  }

  static std::string print(const GiNaC::ex& e) {
    std::ostringstream out;
    out << e;
    return out.str();
  }

  double number(const GiNaC::ex& e) const {
    const GiNaC::ex v = e.evalf();
    if (!GiNaC::is_a<GiNaC::numeric>(v) || !GiNaC::ex_to<GiNaC::numeric>(v).is_real())
      fail("'" + print(e) + "' is not a real number");
    return GiNaC::ex_to<GiNaC::numeric>(v).to_double();
  }

  static bool negative_numeric(const GiNaC::ex& e) {
    return GiNaC::is_a<GiNaC::numeric>(e) && GiNaC::ex_to<GiNaC::numeric>(e).is_real() &&
           GiNaC::ex_to<GiNaC::numeric>(e).is_negative();
  }

  // Chains items with code (or inverse when flagged), putting unflagged items first and the deepest first so the
  // stack stays shallow; a flagged first item gets first_inverse applied.
  static Chunk chain(std::vector<std::pair<Chunk, bool>> items, Code code, Code inverse, Code first_inverse) {
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
      if (a.second != b.second) return !a.second;
      return a.first.depth > b.first.depth;
    });
    Chunk out = std::move(items[0].first);
    if (items[0].second) out = unary(std::move(out), first_inverse);
    for (std::size_t i = 1; i < items.size(); ++i)
      out = binary(std::move(out), items[i].first, items[i].second ? inverse : code);
    return out;
  }

  Chunk compile_add(const GiNaC::ex& e) const {
    std::vector<std::pair<Chunk, bool>> items;  // (term, subtracted)
    GiNaC::ex constant = 0;
    for (std::size_t i = 0; i < e.nops(); ++i) {
      const GiNaC::ex t = e.op(i);
      if (!has_vars(t)) {
        constant += t;
        continue;
      }
      bool negative = false;
      if (GiNaC::is_a<GiNaC::mul>(t))
        for (std::size_t k = 0; k < t.nops(); ++k) negative = negative || negative_numeric(t.op(k));
      items.emplace_back(compile(negative ? GiNaC::ex(-t) : t), negative);
    }
    if (!constant.is_zero()) {
      const double c = number(constant);
      items.emplace_back(leaf({Code::Const, 0, std::fabs(c)}), c < 0);
    }
    return chain(std::move(items), Code::Add, Code::Sub, Code::Neg);
  }

  Chunk compile_mul(const GiNaC::ex& e) const {
    std::vector<std::pair<Chunk, bool>> items;  // (factor, divided by)
    GiNaC::ex coefficient = 1;
    for (std::size_t i = 0; i < e.nops(); ++i) {
      const GiNaC::ex f = e.op(i);
      if (!has_vars(f)) {
        coefficient *= f;
      } else if (GiNaC::is_a<GiNaC::power>(f) && !has_vars(f.op(1)) && number(f.op(1)) < 0) {
        items.emplace_back(compile_power(f.op(0), -f.op(1)), true);
      } else {
        items.emplace_back(compile(f), false);
      }
    }
    const double c = number(coefficient);
    if (c != 1.0 && c != -1.0) items.emplace_back(leaf({Code::Const, 0, c}), false);
    Chunk out = chain(std::move(items), Code::Mul, Code::Div, Code::Recip);
    return c == -1.0 ? unary(std::move(out), Code::Neg) : out;
  }

  Chunk compile_power(const GiNaC::ex& base, const GiNaC::ex& exponent) const {
    if (has_vars(exponent)) return binary(compile(base), compile(exponent), Code::Pow);
    const double p = number(exponent);
    Chunk b = compile(base);
    if (p == std::floor(p) && std::fabs(p) <= 1e9) {
      const int n = static_cast<int>(std::fabs(p));
      Chunk out;
      if (n == 0) return leaf({Code::Const, 0, 1.0});
      if (n == 1)
        out = std::move(b);
      else if (n == 2)
        out = unary(std::move(b), Code::Square);
      else if (n == 3)
        out = unary(std::move(b), Code::Cube);
      else if (n <= kMaxRepeatedPower)
        out = unary(std::move(b), Code::PowInt, n);
      else
        out = unary(std::move(b), Code::PowConst, 0, n);
      return p < 0 ? unary(std::move(out), Code::Recip) : out;
    }
    if (p == 0.5) return unary(std::move(b), Code::Sqrt);
    if (p == -0.5) return unary(unary(std::move(b), Code::Sqrt), Code::Recip);
    return unary(std::move(b), Code::PowConst, 0, p);
  }

  Chunk compile_function(const GiNaC::ex& e) const {
    const std::string name = GiNaC::ex_to<GiNaC::function>(e).get_name();
    static const std::pair<const char*, Code> table[] = {
        {"sin", Code::Sin},   {"cos", Code::Cos},   {"tan", Code::Tan},   {"exp", Code::Exp},
        {"log", Code::Log},   {"abs", Code::Abs},   {"tanh", Code::Tanh}, {"sinh", Code::Sinh},
        {"cosh", Code::Cosh}, {"atan", Code::Atan}, {"asin", Code::Asin}, {"acos", Code::Acos}};
    for (const auto& [fname, code] : table)
      if (name == fname && e.nops() == 1) return unary(compile(e.op(0)), code);
    fail("unsupported function '" + name + "' (supported: " + function_list() + ")");
  }

  const Symbolic& s_;
};

// Strips GiNaC's decoration ("GiNaC: parse error at line 0, column 0: " and the trailing "[function(file:line)]").
std::string clean_ginac_message(const std::string& what) {
  std::string m = what.substr(0, what.find('\n'));
  const auto column = m.find("column ");
  if (m.rfind("GiNaC: parse error", 0) == 0 && column != std::string::npos) {
    const auto colon = m.find(": ", column);
    if (colon != std::string::npos) m = m.substr(colon + 2);
  }
  if (m.find("power should have exactly 2 operands") != std::string::npos)
    return "a^b^c is ambiguous: add parentheses, a^(b^c) or (a^b)^c";
  if (m.find("division by zero") != std::string::npos || m.find("log(0)") != std::string::npos)
    return "a pole (division by zero or log(0)) in a constant part";
  return m;
}

// Where a syntax error lies (1-based): the shortest prefix of the text whose parse fails other than by ending too
// early (GiNaC's parser reports no column); the text's length when every prefix is merely incomplete.
size_t syntax_error_position(GiNaC::symtab table, const std::string& text) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.'; };
  for (size_t n = 1; n <= text.size(); ++n) {
    // Inside a name or a number, or between a function's name and its parenthesis.
    if (n < text.size() && word(text[n - 1]) && (word(text[n]) || text[n] == '(')) continue;
    try {
      GiNaC::parser parser(table, true);
      parser(text.substr(0, n));
    } catch (const GiNaC::parse_error& e) {
      if (std::string(e.what()).find("EOF") == std::string::npos) return n;
    } catch (const std::exception&) {
      return n;
    }
  }
  return text.size();
}

// Parses under ginac_mutex(). The names are checked before GiNaC sees the text so the messages can say which name
// is unknown or which function unsupported (GiNaC's strict parser would only say "symbol not found", and it knows
// functions such as zeta that evaluate away before they could be rejected).
std::unique_ptr<Symbolic> parse_symbolic(const std::string& label, const std::string& text,
                                         const std::vector<std::string>& vars,
                                         const std::map<std::string, double>& constants) {
  auto s = std::make_unique<Symbolic>();
  s->label = label;
  s->text = text;
  s->var_names = vars;
  for (const auto& v : vars) s->known += v + ", ";
  for (const auto& [name, value] : constants) s->known += name + ", ";
  s->known += "pi";
  const Compiler compiler(*s);

  GiNaC::symtab table;
  for (const auto& v : vars) {
    if (!is_identifier(v) || is_reserved(v) || is_function_name(v)) compiler.fail("'" + v + "' cannot name a variable");
    if (table.count(v) != 0) compiler.fail("variable '" + v + "' given twice");
    s->vars.emplace_back(v);
    table[v] = s->vars.back();
  }
  for (const auto& [name, value] : constants) {
    if (!is_identifier(name) || is_reserved(name) || is_function_name(name))
      compiler.fail("'" + name + "' cannot name a constant");
    if (table.count(name) != 0) compiler.fail("constant '" + name + "' has the name of a variable");
    table[name] = GiNaC::numeric(value);
  }
  table["pi"] = GiNaC::Pi;

  if (text.find_first_not_of(" \t\r\n") == std::string::npos) compiler.fail("empty formula");
  char bad = 0;
  for (const Name& n : scan_names(text, bad)) {
    const bool known = table.count(n.name) != 0;
    if (n.called && !is_function_name(n.name)) {
      if (known) compiler.fail("'" + n.name + "' is not a function");
      compiler.fail("unsupported function '" + n.name + "' (supported: " + function_list() + ")");
    }
    if (!n.called && !known) {
      if (is_function_name(n.name)) compiler.fail("function '" + n.name + "' needs its argument in parentheses");
      compiler.fail("unknown name '" + n.name + "'");
    }
  }
  if (bad != 0) compiler.fail(std::string("unexpected character '") + bad + "'");

  try {
    GiNaC::parser parser(table, true);
    s->expr = parser(text);
  } catch (const GiNaC::parse_error& e) {
    compiler.fail("syntax error at character " + std::to_string(syntax_error_position(table, text)) + ": " +
                  clean_ginac_message(e.what()));
  } catch (const std::exception& e) {
    compiler.fail(clean_ginac_message(e.what()));
  }
  return s;
}

}  // namespace

struct Formula::Impl {
  std::vector<Op> program{{Code::Const}};
  int vars = 0;
  bool constant = true;
  std::unique_ptr<Symbolic> symbolic;  // null for Formula()

  Impl() = default;
  explicit Impl(std::unique_ptr<Symbolic> s) : vars(static_cast<int>(s->vars.size())), symbolic(std::move(s)) {
    const Compiler compiler(*symbolic);
    Chunk c = compiler.compile(symbolic->expr);
    if (c.depth > kMaxStack)
      compiler.fail("too deeply nested to evaluate (stack depth " + std::to_string(c.depth) + " > " +
                    std::to_string(kMaxStack) + ")");
    program = std::move(c.ops);
    for (const auto& v : symbolic->vars) constant = constant && !symbolic->expr.has(v);
  }
  ~Impl() {
    const std::lock_guard<std::recursive_mutex> lock(ginac_mutex());
    symbolic.reset();
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

bool formulas_available() { return true; }

Formula Formula::parse(const std::string& what, const std::string& text, const std::vector<std::string>& vars,
                       const std::map<std::string, double>& constants) {
  const std::lock_guard<std::recursive_mutex> lock(ginac_mutex());
  Formula f;
  f.impl_ = std::make_shared<const Impl>(parse_symbolic("formula \"" + what + "\"", text, vars, constants));
  return f;
}

Formula Formula::derivative(int var) const {
  const std::lock_guard<std::recursive_mutex> lock(ginac_mutex());
  const Symbolic* s = impl_->symbolic.get();
  if (s == nullptr) return Formula();
  if (var < 0 || var >= impl_->vars) throw std::out_of_range("Formula::derivative: no variable " + std::to_string(var));
  auto d = std::make_unique<Symbolic>(*s);
  d->label = s->label + " (d/d" + s->var_names[var] + ")";
  try {
    d->expr = s->expr.diff(s->vars[var]);
  } catch (const std::exception& e) {
    Compiler(*d).fail("cannot differentiate: " + clean_ginac_message(e.what()));
  }
  std::ostringstream out;
  out << d->expr;
  d->text = out.str();
  Formula f;
  f.impl_ = std::make_shared<const Impl>(std::move(d));
  return f;
}

std::string Formula::str() const {
  const std::lock_guard<std::recursive_mutex> lock(ginac_mutex());
  if (impl_->symbolic == nullptr) return "0";
  std::ostringstream out;
  out << impl_->symbolic->expr;
  return out.str();
}

std::map<std::string, double> resolve_constants(const std::map<std::string, std::string>& constants) {
  const std::lock_guard<std::recursive_mutex> lock(ginac_mutex());
  for (const auto& [name, text] : constants) {
    if (!is_identifier(name)) throw UsageError("constant \"" + name + "\": not a name (letters, digits, _)");
    if (name == "x" || name == "y" || name == "z" || is_reserved(name) || is_function_name(name))
      throw UsageError("constant \"" + name + "\": the name is taken (x, y, z, pi, I, Pi, Euler, Catalan and the " +
                       "functions are reserved)");
  }
  std::string all;
  for (const auto& [name, text] : constants) all += name + ", ";
  all += "pi";

  std::map<std::string, double> resolved;
  std::set<std::string> pending;
  for (const auto& [name, text] : constants) pending.insert(name);
  bool progress = true;
  while (!pending.empty() && progress) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      const std::string& name = *it;
      const std::string& text = constants.at(name);
      const std::string label = "constant \"" + name + "\"";
      char bad = 0;
      bool ready = true;
      for (const Name& n : scan_names(text, bad)) {
        if (n.called || n.name == "pi") continue;  // parse_symbolic judges functions
        if (constants.count(n.name) == 0)
          throw UsageError(label + ": unknown name '" + n.name + "' in \"" + text + "\" (known: " + all + ")");
        if (resolved.count(n.name) == 0) ready = false;
      }
      if (!ready) {
        ++it;
        continue;
      }
      // Only the constants the text names, so the parse rejects nothing it should accept.
      const auto s = parse_symbolic(label, text, {}, resolved);
      const Compiler compiler(*s);
      const GiNaC::ex v = s->expr.evalf();
      if (!GiNaC::is_a<GiNaC::numeric>(v) || !GiNaC::ex_to<GiNaC::numeric>(v).is_real())
        compiler.fail("the value is not a real number");
      const double value = GiNaC::ex_to<GiNaC::numeric>(v).to_double();
      if (!std::isfinite(value)) compiler.fail("the value is not finite");
      resolved[name] = value;
      it = pending.erase(it);
      progress = true;
    }
  }
  if (!pending.empty()) {
    std::string which;
    for (const auto& name : pending) which += (which.empty() ? "" : ", ") + name + " = \"" + constants.at(name) + "\"";
    throw UsageError("constants depend on one another in a cycle: " + which);
  }
  return resolved;
}

#else  // !PINNTK_HAVE_GINAC

namespace {
[[noreturn]] void no_ginac() {
  throw UsageError("problem files need GiNaC: this pinntk was built without it (install libginac-dev and rebuild)");
}
}  // namespace

struct Formula::Impl {
  std::vector<Op> program{{Code::Const}};
  int vars = 0;
  bool constant = true;
};

bool formulas_available() { return false; }

Formula Formula::parse(const std::string&, const std::string&, const std::vector<std::string>&,
                       const std::map<std::string, double>&) {
  no_ginac();
}

Formula Formula::derivative(int) const { return Formula(); }

std::string Formula::str() const { return "0"; }

std::map<std::string, double> resolve_constants(const std::map<std::string, std::string>&) { no_ginac(); }

#endif  // PINNTK_HAVE_GINAC

Formula::Formula() : impl_(std::make_shared<const Impl>()) {}

bool Formula::is_constant() const { return impl_->constant; }

int Formula::num_vars() const { return impl_->vars; }

// The hot loop: one switch per instruction over a stack array. NaN and inf propagate as IEEE arithmetic makes them
// (sqrt of a negative, log of 0, a pole): callers check the values they need finite.
double Formula::operator()(const double* x) const {
  double s[kMaxStack];
  int top = -1;
  for (const Op& op : impl_->program) {
    switch (op.code) {
      case Code::Const:
        s[++top] = op.value;
        break;
      case Code::Var:
        s[++top] = x[op.n];
        break;
      case Code::Add:
        --top;
        s[top] += s[top + 1];
        break;
      case Code::Sub:
        --top;
        s[top] -= s[top + 1];
        break;
      case Code::Mul:
        --top;
        s[top] *= s[top + 1];
        break;
      case Code::Div:
        --top;
        s[top] /= s[top + 1];
        break;
      case Code::Pow:
        --top;
        s[top] = std::pow(s[top], s[top + 1]);
        break;
      case Code::Neg:
        s[top] = -s[top];
        break;
      case Code::Square:
        s[top] *= s[top];
        break;
      case Code::Cube:
        s[top] *= s[top] * s[top];
        break;
      case Code::Recip:
        s[top] = 1.0 / s[top];
        break;
      case Code::PowInt:
        s[top] = power_int(s[top], op.n);
        break;
      case Code::PowConst:
        s[top] = std::pow(s[top], op.value);
        break;
      case Code::Sqrt:
        s[top] = std::sqrt(s[top]);
        break;
      case Code::Sin:
        s[top] = std::sin(s[top]);
        break;
      case Code::Cos:
        s[top] = std::cos(s[top]);
        break;
      case Code::Tan:
        s[top] = std::tan(s[top]);
        break;
      case Code::Exp:
        s[top] = std::exp(s[top]);
        break;
      case Code::Log:
        s[top] = std::log(s[top]);
        break;
      case Code::Abs:
        s[top] = std::fabs(s[top]);
        break;
      case Code::Tanh:
        s[top] = std::tanh(s[top]);
        break;
      case Code::Sinh:
        s[top] = std::sinh(s[top]);
        break;
      case Code::Cosh:
        s[top] = std::cosh(s[top]);
        break;
      case Code::Atan:
        s[top] = std::atan(s[top]);
        break;
      case Code::Asin:
        s[top] = std::asin(s[top]);
        break;
      case Code::Acos:
        s[top] = std::acos(s[top]);
        break;
    }
  }
  return s[0];
}

}  // namespace pinntk
