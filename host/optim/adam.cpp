#include "host/optim/adam.hpp"

#include <cmath>  // std::pow

#include "common/adam_math.hpp"  // adam_update

namespace pinntk {

void Adam::step(span<double> theta, span<const double> grad, double lr) {
  ++t_;
  const double c1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  const AdamParams a{cfg_.beta1, cfg_.beta2, cfg_.eps};
  for (size_t i = 0; i < theta.size(); ++i) adam_update(theta[i], m_[i], v_[i], grad[i], lr, a, c1, c2);
}

}  // namespace pinntk
