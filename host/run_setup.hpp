// The settings of a run as the CLI (host/cli/main.cpp) and the Python module (python/src/module.cpp) both take them:
// one place for the problem's overrides, the training choices' checks, the LM stages, the NTK matrix K and a
// reproduction's output folder. The messages name a setting as its caller does: `--eps-continuation` for the CLI,
// `eps_continuation` for Python (Naming).
#pragma once

#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "host/backend.hpp"                // Backend
#include "host/io/output_dir.hpp"          // OutputDir
#include "host/optim/lm_continuation.hpp"  // LmStage
#include "host/problem.hpp"                // ProblemSpec
#include "host/reproduce.hpp"              // ReproduceOptions
#include "host/train.hpp"                  // TrainConfig

namespace pinntk {

// How a caller names its settings: the CLI's "--lm-iters" or Python's "lm_iters" for the setting lm_iters.
struct Naming {
  bool cli = true;
  std::string operator()(const std::string& setting) const;
};

// Overrides of a preset's or a problem file's settings; those not given keep the problem's own.
struct ProblemOverrides {
  std::optional<double> eps, omega, lambda;
  std::optional<int> nc, nb;
  std::optional<std::string> grid, domain;
};

// Applies the overrides in one order with one set of checks (UsageError, one line): eps only for a problem with
// eps (the regression's N follows eps unless nc is given), omega and domain not for a problem file, the grid's name.
// Does not validate the spec as a whole (validate(spec) does).
void apply_problem_overrides(ProblemSpec& spec, const ProblemOverrides& o, const Naming& name);

// The training choices checked before any work: the optimizer's name, at least one phase, L-BFGS not with LM,
// the eps continuation only with LM, the Adam, L-BFGS and LM settings, history_every in [1, 10^12].
void check_train_choices(const TrainConfig& cfg, const std::string& optimizer, const LmConfig& lm,
                         bool eps_continuation_given, const Naming& name);

// The LM stages: one at the problem's eps, or one per eps of the continuation; iterations one count for all, or one
// per stage.
std::vector<LmStage> lm_stages(const ProblemSpec& spec, const std::vector<double>& eps_continuation,
                               const std::vector<long>& iterations, const Naming& name);

// The paper's NTK K = J J^T D (Lemma 3.1; not symmetric when the weights of the two blocks differ): n x n row-major
// from the row-major n x p Jacobian J and the row weights d.
std::vector<double> ntk_matrix(Backend& be, const std::vector<double>& J, int n, int p, const std::vector<double>& d);

// Runs reproduce() into out and commits it: figures of earlier runs into the same folder keep their files and their
// entries in summary.json; writes summary.json and the index README.md. Returns summary.json's text.
std::string reproduce_into(const ReproduceOptions& opt, Backend& be, OutputDir& out);

}  // namespace pinntk
