// Test objectives with known minima for the optimizers (tests/test_lbfgs.cpp, tests/test_lbfgs_batched.cpp).
#pragma once

#include <algorithm>  // std::fill
#include <cstddef>    // size_t

#include "common/span.hpp"  // span

namespace pinntk::testing {

// The n-dimensional Rosenbrock function sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 and its gradient into g;
// minimum 0 at (1, ..., 1).
inline double rosenbrock(span<const double> x, span<double> g) {
  double f = 0.0;
  std::fill(g.begin(), g.end(), 0.0);
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    const double a = x[i + 1] - x[i] * x[i], b = 1.0 - x[i];
    f += 100.0 * a * a + b * b;
    g[i] += -400.0 * a * x[i] - 2.0 * b;
    g[i + 1] += 200.0 * a;
  }
  return f;
}

}  // namespace pinntk::testing
