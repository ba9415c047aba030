// Phase: one piece of Adam's piecewise-constant learning-rate schedule, the iteration limit every count and
// schedule total keeps to, and a schedule's total.
#pragma once

#include <vector>  // std::vector

namespace pinntk {

// The largest iteration count or schedule total accepted.
constexpr long kMaxIterations = 1000000000000L;

// One phase of a piecewise-constant learning-rate schedule.
struct Phase {
  long iterations;
  double lr;
};

// The iterations of all phases together.
inline long total_iterations(const std::vector<Phase>& schedule) {
  long total = 0;
  for (const auto& ph : schedule) total += ph.iterations;
  return total;
}

}  // namespace pinntk
