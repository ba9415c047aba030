// The optimizers' settings as JSON, one form for summary.json, the resume file's settings and the reproduction
// summaries: the schedule, Adam's settings with it, L-BFGS's settings.
#pragma once

#include <nlohmann/json_fwd.hpp>  // nlohmann::json
#include <vector>                 // std::vector

#include "host/optim/adam.hpp"      // AdamConfig
#include "host/optim/lbfgs.hpp"     // LbfgsConfig
#include "host/optim/schedule.hpp"  // Phase

namespace pinntk {

// [{"iterations": n, "lr": lr}, ...]
nlohmann::json schedule_json(const std::vector<Phase>& schedule);

// {"beta1", "beta2", "eps", "schedule"}
nlohmann::json adam_json(const AdamConfig& adam, const std::vector<Phase>& schedule);

// {"max_iterations", "history", "gtol", "ftol"}
nlohmann::json lbfgs_json(const LbfgsConfig& lbfgs);

}  // namespace pinntk
