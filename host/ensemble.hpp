// Ensembles (`pinntk train --ensemble B`): B networks of one shape trained on one problem, member i initialized
// from seed + i, each exactly the run `pinntk train --seed seed+i` makes; and the spread of their results.
//
// The members' Adam phases run as one batch (train_adam_batch: on the CUDA backend every launch serves all members;
// on the CPU they are stepped one after another); L-BFGS too with the two-loop method, member by member with
// liblbfgsb; each member's LM stages (when asked) follow member by member.
#pragma once

#include <cstdint>     // uint64_t
#include <functional>  // std::function
#include <string>      // std::string
#include <vector>      // std::vector

#include "host/backend.hpp"                // Backend
#include "host/optim/lm_continuation.hpp"  // LmStage, LmTrainResult
#include "host/train.hpp"                  // TrainConfig, TrainResult, ProgressFn

namespace pinntk {

// The most members of an ensemble (`pinntk train --ensemble`, `pinntk.train_ensemble`'s count).
constexpr int kMaxEnsemble = 1024;

// How every member is trained: the Adam phases and L-BFGS of `adam`, then LM over `stages` when use_lm.
struct MemberTraining {
  TrainConfig adam;
  bool use_lm = false;
  LmConfig lm;
  std::vector<LmStage> stages;
  long history_every = 100;
};

// A trained member.
struct EnsembleMember {
  int index = 0;
  uint64_t seed = 0;
  Mlp net;  // the trained network (when diverged: the last one with a finite loss)
  TrainResult result;
  LmTrainResult lm;
  std::string lm_history_csv;  // lm_history.csv when use_lm
};

struct EnsembleHooks {
  std::function<Mlp(uint64_t)> initial_net;  // a member's initial network from its seed
  // on_start(-1, seed) before the batch (Adam, L-BFGS) starts; on_start(i, seed_i) before member i's LM stages.
  std::function<void(int, uint64_t)> on_start;
  BatchProgressFn progress;                            // member -1 for the batch, i for member i alone
  std::function<void(const EnsembleMember&)> on_done;  // after it: spec and pts are the member's last stage's
};

// Trains `count` members with seeds seed, seed + 1, ...: the Adam phases and L-BFGS as one batch, then member by
// member the LM stages and hooks.on_done. spec and pts are the first LM stage's on entry; each member's LM starts
// from them and ends with its last stage's (as continue_with_lm). With count > 1 a member whose loss is not finite
// from the start is reported as diverged (NaN numbers, its initial network) and the others go on; a single run
// lets that NumericalError through, and so does an ensemble none of whose members had a finite loss (after every
// member went to on_done).
void train_ensemble(Backend& be, ProblemSpec& spec, PointSet& pts, const MemberTraining& how, int count, uint64_t seed,
                    const EnsembleHooks& hooks);

// min, median, mean, max and standard deviation (divisor n) of the finite values, with their count.
struct Spread {
  long count = 0;
  double min = 0, median = 0, mean = 0, max = 0, std = 0;
};
Spread spread(const std::vector<double>& values);

// The mean and standard deviation (divisor n) over members of values at fixed points, added one member at a time
// (Welford's update: the same numbers whatever the member count per call).
class PointwiseMean {
 public:
  void add(const std::vector<double>& u);
  long count() const { return n_; }
  const std::vector<double>& mean() const { return mean_; }
  std::vector<double> std_dev() const;

 private:
  long n_ = 0;
  std::vector<double> mean_, m2_;
};

}  // namespace pinntk
