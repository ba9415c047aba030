// Adam (Kingma & Ba) with bias correction, the optimizer of the paper's Sections 2 and 4.
#pragma once

#include <vector>  // std::vector

#include "common/span.hpp"  // span

namespace pinntk {

struct AdamConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// Throws UsageError unless beta1 and beta2 lie in [0, 1) and eps is positive and finite.
void validate(const AdamConfig& cfg);

class Adam {
 public:
  Adam(int n_params, AdamConfig cfg) : cfg_(cfg), m_(n_params, 0.0), v_(n_params, 0.0) {}
  // theta -= lr * mhat / (sqrt(vhat) + eps), with step count t starting at 1.
  void step(span<double> theta, span<const double> grad, double lr);
  long steps() const { return t_; }
  // Restores the moments and the step count (resuming an interrupted run).
  void set_state(span<const double> m, span<const double> v, long t) {
    m_.assign(m.begin(), m.end());
    v_.assign(v.begin(), v.end());
    t_ = t;
  }
  const std::vector<double>& m() const { return m_; }
  const std::vector<double>& v() const { return v_; }

 private:
  AdamConfig cfg_;
  std::vector<double> m_, v_;
  long t_ = 0;
};

}  // namespace pinntk
