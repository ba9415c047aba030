// Training loop: Adam over a piecewise-constant learning-rate schedule on a backend's TrainSession, with loss
// history, progress and the max-norm error against the exact solution.
#pragma once

#include <functional>         // std::function
#include <nlohmann/json.hpp>  // nlohmann::json
#include <string>             // std::string
#include <vector>             // std::vector

#include "host/backend.hpp"         // Backend, TrainSession
#include "host/optim/adam.hpp"      // AdamConfig
#include "host/optim/lbfgs.hpp"     // LbfgsConfig, LbfgsResult
#include "host/optim/schedule.hpp"  // Phase

namespace pinntk {

struct HistoryRow {
  long iteration;         // optimizer iterations (Adam steps, then L-BFGS iterations) before this row's network
  std::string optimizer;  // "adam" or "lbfgs"
  double lr, loss, loss_pde, loss_boundary, max_error;  // lr is 0 for L-BFGS rows, mu for LM rows
  double time_s = 0.0;                                  // wall time since the training started
  double rel_l2_error = 0.0;                            // sqrt(sum (u - u*)^2 / sum u*^2) on the test points
};

// What an interrupted run needs to continue exactly: the parameters, Adam's state and the history so far.
struct TrainState {
  long iteration = 0;  // Adam steps taken
  long adam_step = 0;  // Adam's step count t
  std::vector<double> theta, m, v;
  std::vector<HistoryRow> history;
  double elapsed_s = 0.0;  // the run's wall time up to this state: a resumed run's clock goes on from it
};

struct TrainConfig {
  std::vector<Phase> schedule;
  AdamConfig adam;
  long history_every = 100;  // a history row every this many iterations (and at the end)
  long log_every = 1000;     // the progress callback fires at least this often
  LbfgsConfig lbfgs;         // after the Adam phases when lbfgs.max_iter > 0
  // Called at every history row with the iteration and the session holding that row's network (e.g. to record
  // the Fourier coefficients of the error, Fig. 1).
  std::function<void(long, TrainSession&)> on_record;
  // Every checkpoint_every Adam steps (0: never) the state goes to on_checkpoint; resume continues from one.
  long checkpoint_every = 0;
  std::function<void(const TrainState&)> on_checkpoint;
  const TrainState* resume = nullptr;
};

struct TrainResult {
  std::vector<HistoryRow> history;
  long iterations = 0, adam_iterations = 0;
  LbfgsResult lbfgs;  // iterations == 0 when L-BFGS did not run
  double final_loss = 0.0, max_error = 0.0, rel_l2_error = 0.0, wall_time_s = 0.0;
  // Non-empty when the loss or gradient stopped being finite: where and why, in one line. The run stopped there;
  // the network, iterations, history and final numbers are those of the last network with a finite loss.
  std::string diverged;
  long diverged_at = -1;  // the iteration whose network first had a non-finite loss
  // A member of a batch whose first network's loss was not finite (train_adam throws NumericalError instead):
  // diverged holds the reason, nothing was trained, the numbers are NaN.
  bool failed = false;
};

// Called with (iterations done, total, latest loss) at least every log_every iterations and at the end.
using ProgressFn = std::function<void(long, long, double)>;
// A batch's progress: (member, iterations done, total, loss); member -1 while the whole batch trains (Adam; the loss
// is the largest of the active members'), b while member b trains alone (L-BFGS).
using BatchProgressFn = std::function<void(int, long, long, double)>;

// u, u', u'' of some network at the points x.
using EvalFn = std::function<void(span<const double>, span<double>, span<double>, span<double>)>;
// The same network's parameters on the host: rows with their own directions (pts.dirs, a full coefficient tensor)
// are evaluated from them (evaluate_rows), since eval differentiates along the axes only.
using NetworkFn = std::function<Mlp()>;
// The loss of the network that eval evaluates on the rows pts (rows_loss), split as rows_loss does. Rows with
// directions need `network` (std::invalid_argument without it).
double loss_of_network(const EvalFn& eval, const PointSet& pts, double* pde = nullptr, double* bnd = nullptr,
                       const NetworkFn& network = {});
// Its errors against the exact solution at the points x (N x spec.dim; solution_error).
SolutionError error_of_network(const EvalFn& eval, const ProblemSpec& spec, const std::vector<double>& x);

// A history row of the network that eval evaluates: loss parts on pts, max-norm and relative L2 errors on the
// problem's test_points.
HistoryRow history_row(const EvalFn& eval, const ProblemSpec& spec, const PointSet& pts, long it,
                       const std::string& optimizer, double lr, const NetworkFn& network = {});

// Resume files: {"format":"pinntk-train-state-v1","settings":...,"iteration","adam_step","theta","m","v",
// "history","elapsed_s"}. `settings` identifies the run; loading checks it equals the current run's, and every field
// against the network (n_params) and the schedule (adam_iterations), a UsageError otherwise. With history_every > 0
// the history must hold exactly the rows a run saves: one at every multiple of history_every below the iteration.
// `more`: fields a caller saves beside the state's own (train's "ntk_history"; std::invalid_argument for a name the
// state uses); `file`, when given, receives the loaded file's whole document, for them.
std::string train_state_json(const TrainState& st, const std::string& settings_json,
                             const nlohmann::json& more = nlohmann::json::object());
TrainState load_train_state(const std::string& path, const std::string& settings_json, long n_params,
                            long adam_iterations, long history_every = 0, nlohmann::json* file = nullptr);

// Trains net in place (its parameters are replaced by the trained ones): the Adam phases, then L-BFGS. A loss or
// gradient that is not finite stops the run (TrainResult::diverged); NumericalError when even the initial network's
// loss is not finite; UsageError when validate refuses cfg.adam or cfg.lbfgs.
TrainResult train_adam(Backend& be, Mlp& net, const ProblemSpec& spec, const PointSet& pts, const TrainConfig& cfg,
                       const ProgressFn& progress);

// train_adam on B networks at once (Backend::batch_train_session): member b trains nets[b] (in place) on pts[b]
// against specs[b]'s exact solution; the Adam phases advance every member together, L-BFGS then runs member by
// member. Each member's result is the one train_adam gives it alone (bitwise on the CPU), except that a member
// whose first loss is not finite comes back failed (TrainResult::failed) while the others go on. Resume,
// checkpoints and on_record are for one network (std::invalid_argument with B > 1).
std::vector<TrainResult> train_adam_batch(Backend& be, std::vector<Mlp>& nets, const std::vector<ProblemSpec>& specs,
                                          const std::vector<PointSet>& pts, const TrainConfig& cfg,
                                          const BatchProgressFn& progress);

}  // namespace pinntk
