// Levenberg-Marquardt over a sequence of eps (continuation), on its own or continuing an Adam run: the stages,
// their results and the history rows they add to a TrainResult.
#pragma once

#include <cstddef>     // size_t
#include <functional>  // std::function
#include <ostream>     // std::ostream
#include <vector>      // std::vector

#include "host/backend.hpp"   // Backend
#include "host/optim/lm.hpp"  // LmConfig, LmResult, LmRow
#include "host/train.hpp"     // TrainResult, ProgressFn

namespace pinntk {

// One stage of an LM run: the problem at this eps, trained for `iterations` LM iterations.
struct LmStage {
  double eps;
  long iterations;
};

struct LmTrainResult {
  std::vector<LmResult> stages;
  long iterations = 0;
  double wall_time_s = 0.0;
};

// LM over a sequence of eps (continuation, each stage warm-started from the last); spec and pts are the first
// stage's on entry and the last stage's on return. on_row sees every iteration with its stage index.
LmTrainResult train_lm(Backend& be, Mlp& net, ProblemSpec& spec, PointSet& pts, const LmConfig& cfg,
                       const std::vector<LmStage>& stages,
                       const std::function<void(size_t, const LmRow&, const Mlp&)>& on_row);

// Continues an Adam run's result `res` with LM stages on net: history rows every history_every iterations
// (optimizer "lm", lr = mu, time since the Adam start) and a line per iteration
// "stage,eps,iteration,loss,mu,rho,accepted,cond" into lm_csv when not null (its header first).
LmTrainResult continue_with_lm(Backend& be, Mlp& net, ProblemSpec& spec, PointSet& pts, const LmConfig& cfg,
                               const std::vector<LmStage>& stages, long history_every, TrainResult& res,
                               std::ostream* lm_csv, const ProgressFn& progress);

}  // namespace pinntk
