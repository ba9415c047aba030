#include "host/optim/adam.hpp"

#include <cmath>  // std::pow, std::sqrt

namespace pinntk {

void Adam::step(span<double> theta, span<const double> grad, double lr) {
  ++t_;
  const double c1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  const size_t n = theta.size();
  for (size_t i = 0; i < n; ++i) {
    m_[i] = cfg_.beta1 * m_[i] + (1.0 - cfg_.beta1) * grad[i];
    v_[i] = cfg_.beta2 * v_[i] + (1.0 - cfg_.beta2) * grad[i] * grad[i];
    theta[i] -= lr * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + cfg_.eps);
  }
}

}  // namespace pinntk
