// L-BFGS-B (Byrd, Lu, Nocedal, Zhu; the Fortran code SciPy and therefore DeepXDE use, from Debian's liblbfgsb),
// driven by reverse communication from the host: the objective only hands over the loss and its gradient.
#pragma once

#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

#include "common/span.hpp"  // span

namespace pinntk {

// Defaults as DeepXDE's L-BFGS: history 100, gtol 1e-8, ftol 0, 15000 iterations, 1.25 x that many evaluations.
// The line search of liblbfgsb 3.0 stops after 20 steps (DeepXDE's SciPy allows 50); that is not adjustable.
// The largest memory accepted: L-BFGS-B's workspace grows like 11 m^2 + 2 m n doubles.
constexpr int kMaxHistory = 10000;

struct LbfgsConfig {
  int history = 100;
  double gtol = 1e-8;  // projected-gradient tolerance (pgtol)
  double ftol = 0.0;   // relative reduction tolerance; factr = ftol / machine epsilon
  long max_iter = 15000;
  long max_fun = 0;  // 0: 1.25 max_iter
  // "lbfgsb": liblbfgsb, member by member on the host; "two-loop": the two-loop recursion with a strong-Wolfe line
  // search, every member of a batch at once, its vectors where the batch keeps them (host/optim/lbfgs_batched.hpp).
  std::string method = "lbfgsb";
};

// Throws UsageError unless max_iter and max_fun lie in [0, 10^12], history in [1, kMaxHistory], gtol and ftol are
// finite and non-negative, and method is lbfgsb or two-loop.
void validate(const LbfgsConfig& cfg);

struct LbfgsResult {
  long iterations = 0, evaluations = 0;
  double loss = 0.0;
  std::string stop;         // why it stopped, from L-BFGS-B's task string or the iteration/evaluation limits
  bool non_finite = false;  // stopped because the loss or gradient at a trial point was not finite
};

// Bytes of L-BFGS-B's workspace for n parameters and memory m.
double lbfgs_workspace_bytes(long n, long m);

// Loss and gradient at x (the gradient written into g).
using LossGradientFn = std::function<double(span<const double> x, span<double> g)>;
// Called after every accepted iterate with (iteration, loss).
using IterateFn = std::function<void(long, double)>;

// Minimizes from x (replaced by the last accepted iterate). A non-finite loss or gradient stops it (non_finite);
// NumericalError when that happens at the starting point, UsageError for a config that validate refuses.
LbfgsResult minimize_lbfgs(std::vector<double>& x, const LossGradientFn& fg, const LbfgsConfig& cfg,
                           const IterateFn& on_iterate = nullptr);

}  // namespace pinntk
