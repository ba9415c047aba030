// The NTK along training (`pinntk train --ntk-every K`). Theorem 3.2 says ||K^eps(t)||_F diverges as eps -> 0 at
// every time t of the gradient flow (11) in the set Upsilon (some first-layer weight W^(0)_l asymptotically larger
// than eps), under the uniform bound (19) on ||theta(t)||_inf; the paper measures K at initialization only (Fig. 2).
// A row holds, at one iteration, the kernel's norms, largest eigenvalues and block traces, with ||theta||_inf and
// max_l |W^(0)_l| (our W^1: the first layer's weights), the quantities of the theorem's hypotheses.
#pragma once

#include <cstdint>  // uint64_t
#include <nlohmann/json.hpp>
#include <string>  // std::string
#include <vector>  // std::vector

#include "host/backend.hpp"    // Backend, Mlp, PointSet
#include "host/ntk.hpp"        // NtkScaling, NtkPlan
#include "host/run_setup.hpp"  // Naming

namespace pinntk {

struct NtkHistoryRow {
  long iteration = 0;
  // False when the kernel was not finite in the backend's precision: the kernel's cells stay empty.
  bool computed = false;
  double frobenius_K = 0.0, frobenius_Kuu = 0.0, frobenius_Kbb = 0.0;
  double lambda_max_K = 0.0, lambda_max_Kuu = 0.0, lambda_min_Kuu = 0.0, lambda_max_Kbb = 0.0;
  double trace_Kuu = 0.0, trace_Kbb = 0.0;  // sums of the blocks' eigenvalues (Lemma 3.1's weights in D)
  double theta_max_abs = 0.0, w0_max_abs = 0.0;
  double seconds = 0.0;  // the row's analysis
};

// The numbers of a row after its iteration, in the order of ntk_history.csv's columns and of the JSON rows: the
// column's name, the field, and whether it comes from the kernel (empty where the kernel was not finite).
struct NtkHistoryColumn {
  const char* name;
  double NtkHistoryRow::*field;
  bool kernel;
};
inline constexpr int kNtkHistoryColumns = 12;
extern const NtkHistoryColumn kNtkHistoryColumn[kNtkHistoryColumns];

// Checks of the NTK along training, before any work: every in [0, 10^12]; when positive, a multiple of
// history_every (the NTK is taken at history rows), not with LM (which records the NTK's condition number itself),
// a known scaling. UsageError naming the settings by `name` (the CLI's flags or Python's keywords).
void check_ntk_every(long every, long history_every, bool use_lm, const std::string& scaling, const Naming& name);

// The path `pinntk ntk --ntk-path auto` would take for the network's P and the rows within budget (0: the available
// memory); its refusal as a UsageError prefixed with name("ntk_every").
NtkPlan plan_ntk_every(const PointSet& pts, long n_params, NtkScaling scaling, uint64_t budget, const Naming& name);

// The row of net at `iteration`: analyze_ntk with chunk_rows (0: the one-shot path).
NtkHistoryRow ntk_history_row(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, long chunk_rows,
                              long iteration);

// The rows of one training (TrainConfig::on_record calls record at every history row): one at every multiple of
// `every`, taken once per iteration (L-BFGS's first row repeats Adam's last iteration), on the training's backend.
class NtkRecorder {
 public:
  NtkRecorder(Backend& be, const Mlp& net, const PointSet& pts, NtkScaling scaling, long chunk_rows, long every)
      : be_(be), net_(net), pts_(pts), scaling_(scaling), chunk_rows_(chunk_rows), every_(every) {}
  // The row of the session's network at iteration `it` when one is due; false when not due.
  bool record(long it, TrainSession& session);
  const std::vector<NtkHistoryRow>& rows() const { return rows_; }
  // The rows below `iteration` (a resume state's), as JSON; restore sets them back from that JSON (UsageError).
  nlohmann::json state_below(long iteration) const;
  void restore(const nlohmann::json& j, long iteration, const std::string& what);

 private:
  Backend& be_;
  Mlp net_;  // the shape; its parameters are the session's at each row
  const PointSet& pts_;
  NtkScaling scaling_;
  long chunk_rows_, every_;
  std::vector<NtkHistoryRow> rows_;
};

// ntk_history.csv: a header, then a row per entry (full precision; empty kernel cells where not computed).
std::string ntk_history_csv(const std::vector<NtkHistoryRow>& rows);

// The rows as JSON arrays (for resume.json), and back: the rows a run at iteration `before` with one every `every`
// iterations saved (iterations 0, every, ... below `before`), a UsageError prefixed with `what` otherwise.
nlohmann::json ntk_history_json(const std::vector<NtkHistoryRow>& rows);
std::vector<NtkHistoryRow> ntk_history_from_json(const nlohmann::json& j, long every, long before,
                                                 const std::string& what);

}  // namespace pinntk
