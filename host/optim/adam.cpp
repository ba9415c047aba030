#include "host/optim/adam.hpp"

#include <cmath>  // std::pow, std::isfinite

#include "common/adam_math.hpp"  // adam_update
#include "common/errors.hpp"     // UsageError

namespace pinntk {

void validate(const AdamConfig& cfg) {
  if (!(cfg.beta1 >= 0 && cfg.beta1 < 1) || !(cfg.beta2 >= 0 && cfg.beta2 < 1) || !(cfg.eps > 0) ||
      !std::isfinite(cfg.eps))
    throw UsageError("--adam-beta1 and --adam-beta2 must lie in [0, 1) and --adam-eps must be positive and finite");
}

void Adam::step(span<double> theta, span<const double> grad, double lr) {
  ++t_;
  const double c1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  const AdamParams a{cfg_.beta1, cfg_.beta2, cfg_.eps};
  for (size_t i = 0; i < theta.size(); ++i) adam_update(theta[i], m_[i], v_[i], grad[i], lr, a, c1, c2);
}

}  // namespace pinntk
