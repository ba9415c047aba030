#include "host/io/optimizer_json.hpp"

#include <nlohmann/json.hpp>  // nlohmann::json

namespace pinntk {

nlohmann::json schedule_json(const std::vector<Phase>& schedule) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& ph : schedule) j.push_back({{"iterations", ph.iterations}, {"lr", ph.lr}});
  return j;
}

nlohmann::json adam_json(const AdamConfig& adam, const std::vector<Phase>& schedule) {
  return {{"beta1", adam.beta1}, {"beta2", adam.beta2}, {"eps", adam.eps}, {"schedule", schedule_json(schedule)}};
}

nlohmann::json lbfgs_json(const LbfgsConfig& lbfgs) {
  return {{"method", lbfgs.method},
          {"max_iterations", lbfgs.max_iter},
          {"history", lbfgs.history},
          {"gtol", lbfgs.gtol},
          {"ftol", lbfgs.ftol}};
}

}  // namespace pinntk
