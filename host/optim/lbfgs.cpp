#include "host/optim/lbfgs.hpp"

#include <algorithm>  // std::all_of
#include <cmath>      // std::isfinite
#include <cstring>    // std::memcpy, std::strncmp
#include <limits>     // std::numeric_limits

#include "common/errors.hpp"        // NumericalError, UsageError
#include "host/optim/schedule.hpp"  // kMaxIterations

// liblbfgsb 3.0 (Fortran): every argument by reference, then the hidden lengths of the two character arguments.
extern "C" void setulb_(const int* n, const int* m, double* x, const double* l, const double* u, const int* nbd,
                        double* f, double* g, const double* factr, const double* pgtol, double* wa, int* iwa,
                        char* task, const int* iprint, char* csave, int* lsave, int* isave, double* dsave,
                        size_t task_len, size_t csave_len);

namespace pinntk {
namespace {

constexpr size_t kTaskLen = 60;

void set_task(char* task, const char* text) {
  std::memset(task, ' ', kTaskLen);
  std::memcpy(task, text, std::strlen(text));
}

std::string trimmed(const char* task) {
  std::string s(task, kTaskLen);
  const auto end = s.find_last_not_of(' ');
  return end == std::string::npos ? "" : s.substr(0, end + 1);
}

}  // namespace

void validate(const LbfgsConfig& cfg) {
  if (cfg.max_iter < 0 || cfg.max_iter > kMaxIterations || cfg.max_fun < 0 || cfg.max_fun > kMaxIterations)
    throw UsageError("--lbfgs and --lbfgs-maxfun must lie in [0, 10^12]");
  if (cfg.history < 1 || cfg.history > kMaxHistory) throw UsageError("--lbfgs-history must lie in [1, 10000]");
  if (!(cfg.gtol >= 0) || !(cfg.ftol >= 0) || !std::isfinite(cfg.gtol) || !std::isfinite(cfg.ftol))
    throw UsageError("--lbfgs-gtol and --lbfgs-ftol must be finite numbers >= 0");
  if (cfg.method != "lbfgsb" && cfg.method != "two-loop")
    throw UsageError("--lbfgs-method: '" + cfg.method + "' is not lbfgsb or two-loop");
}

double lbfgs_workspace_bytes(long n, long m) {
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  return 8.0 * (2.0 * dm * dn + 5.0 * dn + 11.0 * dm * dm + 8.0 * dm + 4.0 * dn) + 4.0 * 3.0 * dn;
}

LbfgsResult minimize_lbfgs(std::vector<double>& x, const LossGradientFn& fg, const LbfgsConfig& cfg,
                           const IterateFn& on_iterate) {
  validate(cfg);
  const int n = static_cast<int>(x.size()), m = cfg.history, iprint = -1;
  const long max_fun = cfg.max_fun > 0 ? cfg.max_fun : static_cast<long>(1.25 * cfg.max_iter) + 1;
  const double factr = cfg.ftol / std::numeric_limits<double>::epsilon(), pgtol = cfg.gtol;
  std::vector<double> lower(n, 0.0), upper(n, 0.0), g(n, 0.0);
  std::vector<int> nbd(n, 0);  // unbounded
  std::vector<double> wa(2 * static_cast<size_t>(m) * n + 5 * static_cast<size_t>(n) + 11 * static_cast<size_t>(m) * m +
                         8 * static_cast<size_t>(m));
  std::vector<int> iwa(3 * static_cast<size_t>(n));
  char task[kTaskLen], csave[kTaskLen];
  int lsave[4] = {0, 0, 0, 0}, isave[44] = {0};
  double dsave[29] = {0.0};
  double f = 0.0;
  std::vector<double> best = x;
  LbfgsResult res;
  res.loss = std::numeric_limits<double>::quiet_NaN();
  set_task(task, "START");
  set_task(csave, "");
  if (cfg.max_iter == 0) {
    res.loss = fg(x, g);
    res.evaluations = 1;
    res.stop = "no iterations asked";
    return res;
  }
  for (;;) {
    setulb_(&n, &m, x.data(), lower.data(), upper.data(), nbd.data(), &f, g.data(), &factr, &pgtol, wa.data(),
            iwa.data(), task, &iprint, csave, lsave, isave, dsave, kTaskLen, kTaskLen);
    if (std::strncmp(task, "FG", 2) == 0) {
      if (res.evaluations >= max_fun) {
        res.stop = "reached the limit of " + std::to_string(max_fun) + " evaluations";
        break;
      }
      f = fg(x, g);
      ++res.evaluations;
      if (!std::isfinite(f) || !std::all_of(g.begin(), g.end(), [](double v) { return std::isfinite(v); })) {
        if (res.evaluations == 1) throw NumericalError("L-BFGS: the loss or its gradient at the start is not finite");
        res.stop = "the loss or its gradient is not finite at a trial point";
        res.non_finite = true;
        break;
      }
      if (res.evaluations == 1) res.loss = f;  // the starting point
      continue;
    }
    if (std::strncmp(task, "NEW_X", 5) == 0) {
      ++res.iterations;
      best = x;
      res.loss = f;
      if (on_iterate) on_iterate(res.iterations, f);
      if (res.iterations >= cfg.max_iter) {
        res.stop = "reached the limit of " + std::to_string(cfg.max_iter) + " iterations";
        break;
      }
      continue;
    }
    res.stop = trimmed(task);  // CONVERGENCE: ..., ABNORMAL_TERMINATION_IN_LNSRCH, ERROR: ...
    break;
  }
  x = best;  // the last accepted iterate (a trial point of an unfinished line search is not kept)
  return res;
}

}  // namespace pinntk
