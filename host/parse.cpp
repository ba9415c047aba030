#include "host/parse.hpp"

#include <cerrno>   // errno
#include <cmath>    // std::isfinite, M_PI
#include <cstdio>   // std::snprintf
#include <cstdlib>  // std::strtod, std::strtol
#include <sstream>  // std::istringstream

#include "common/errors.hpp"  // UsageError

namespace pinntk {
namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

// A plain number or a multiple of pi: "2.5", "pi", "-pi", "2pi", "2*pi", "-0.5*pi".
bool parse_atom(const std::string& s, double& value) {
  if (s.empty()) return false;
  const auto pos = s.find("pi");
  if (pos != std::string::npos) {
    if (pos + 2 != s.size()) return false;
    std::string coef = s.substr(0, pos);
    if (!coef.empty() && coef.back() == '*') coef.pop_back();
    double c = 1.0;
    if (coef == "-") {
      c = -1.0;
    } else if (!coef.empty() && coef != "+") {
      if (!parse_atom(coef, c) || coef.find("pi") != std::string::npos) return false;
    }
    value = c * M_PI;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  value = std::strtod(s.c_str(), &end);
  return errno == 0 && end != s.c_str() && *end == '\0' && std::isfinite(value);
}

}  // namespace

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) out.push_back(item);
  if (!text.empty() && text.back() == sep) out.emplace_back();
  return out;
}

long parse_count(const std::string& text, const std::string& what, long min) {
  const std::string s = trim(text);
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < min || v > kMaxIterations)
    throw UsageError(what + ": '" + text + "' is not a count in [" + std::to_string(min) + ", 10^12]");
  return v;
}

uint64_t parse_seed(const std::string& text, const std::string& what) {
  const std::string s = trim(text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || *end != '\0' || errno != 0)
    throw UsageError(what + ": '" + text + "' is not an integer in [0, 18446744073709551615]");
  return v;
}

double parse_real(const std::string& text, const std::string& what) {
  const std::string s = trim(text);
  const auto slash = s.find('/');
  double value = 0.0;
  bool ok = false;
  if (slash == std::string::npos) {
    ok = parse_atom(s, value);
  } else {
    double num = 0.0, den = 0.0;
    ok = parse_atom(trim(s.substr(0, slash)), num) && parse_atom(trim(s.substr(slash + 1)), den) && den != 0.0;
    value = ok ? num / den : 0.0;
  }
  if (!ok || !std::isfinite(value)) throw UsageError(what + ": cannot read '" + text + "' as a number");
  return value;
}

std::vector<int> parse_layers(const std::string& text) {
  std::vector<int> layers;
  for (const auto& item : split_list(text, ',')) {
    const std::string s = trim(item);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno != 0)
      throw UsageError("--layers: '" + text + "' is not a comma-separated list of integers");
    if (v <= 0) throw UsageError("--layers: every width must be positive, got " + s);
    if (v > 4096) throw UsageError("--layers: width " + s + " exceeds the limit of 4096");
    layers.push_back(static_cast<int>(v));
  }
  if (layers.size() < 3) throw UsageError("--layers: need input, at least one hidden layer and output, e.g. 1,50,1");
  if (layers.front() > 3) throw UsageError("--layers: the first entry is the input width: 1, 2 or 3");
  if (layers.back() != 1) throw UsageError("--layers: the last entry must be 1 (scalar output u)");
  return layers;
}

std::vector<Phase> parse_schedule(const std::string& text) {
  std::vector<Phase> phases;
  if (trim(text).empty()) return phases;
  long total = 0;
  for (const auto& item : split_list(text, ',')) {
    const std::string s = trim(item);
    const auto at = s.find('@');
    if (at == std::string::npos)
      throw UsageError("--schedule: phase '" + s + "' is not ITERATIONS@LEARNING_RATE (e.g. 10000@1e-4)");
    char* end = nullptr;
    const std::string its = s.substr(0, at);
    errno = 0;
    const long n = std::strtol(its.c_str(), &end, 10);
    if (its.empty() || *end != '\0' || errno != 0 || n <= 0 || n > kMaxIterations)
      throw UsageError("--schedule: '" + its + "' in phase '" + s + "' is not an iteration count in [1, 10^12]");
    total += n;
    if (total > kMaxIterations) throw UsageError("--schedule: more than 10^12 iterations in all");
    double lr = 0.0;
    if (!parse_atom(s.substr(at + 1), lr) || !(lr > 0.0))
      throw UsageError("--schedule: '" + s.substr(at + 1) + "' in phase '" + s + "' is not a positive learning rate");
    phases.push_back({n, lr});
  }
  return phases;
}

void parse_box(const std::string& text, int dim, std::vector<double>& lo, std::vector<double>& hi) {
  const auto parts = split_list(text, ',');
  if (parts.size() != 2 && parts.size() != static_cast<size_t>(2 * dim))
    throw UsageError("--domain: expected a,b (every axis) or " + std::to_string(2 * dim) + " ends a1,b1,... for a " +
                     std::to_string(dim) + "-D box, got '" + text + "'");
  lo.assign(dim, 0.0);
  hi.assign(dim, 0.0);
  for (int i = 0; i < dim; ++i) {
    const size_t k = parts.size() == 2 ? 0 : 2 * i;
    lo[i] = parse_real(parts[k], "--domain");
    hi[i] = parse_real(parts[k + 1], "--domain");
    if (!(lo[i] < hi[i])) throw UsageError("--domain: on every axis the lower end must be smaller than the upper end");
  }
}

std::pair<double, double> parse_domain(const std::string& text) {
  const auto parts = split_list(text, ',');
  if (parts.size() != 2) throw UsageError("--domain: expected two ends 'a,b' (e.g. -pi,pi), got '" + text + "'");
  const double a = parse_real(parts[0], "--domain");
  const double b = parse_real(parts[1], "--domain");
  if (!(a < b)) throw UsageError("--domain: the left end must be smaller than the right end");
  return {a, b};
}

std::string fmt17(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", x);
  return b;
}

}  // namespace pinntk
