// The settings of a run as the CLI (host/cli/main.cpp) and the Python module (python/src/module.cpp) both take them:
// one place for the problem's overrides, the training choices' checks, the LM stages, the NTK matrix K and a
// reproduction's output folder. The messages name a setting as its caller does: `--eps-continuation` for the CLI,
// `eps_continuation` for Python (Naming).
#pragma once

#include <cstdint>   // uint64_t
#include <optional>  // std::optional
#include <string>    // std::string
#include <vector>    // std::vector

#include "host/backend.hpp"                // Backend
#include "host/io/output_dir.hpp"          // OutputDir
#include "host/ntk_lanczos.hpp"            // DensityConfig
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
  // n-D only: the boundary points on each face ("grid" | "uniform"), a float64 .npy file of the collocation points
  // (N x n; replaces nc and grid), the seed of Sobol or random points as its decimal text (parse_seed).
  std::optional<std::string> boundary, points, point_seed;
};

// Applies the overrides in one order with one set of checks (UsageError, one line): eps only for a problem with
// eps (the regression's N follows eps unless nc is given), omega and domain not for a problem file, the grid's name;
// boundary, points and point_seed only for an n-D problem, the boundary's name, points not with nc or grid.
// Does not validate the spec as a whole (validate(spec) does; the points file is read by build_points).
void apply_problem_overrides(ProblemSpec& spec, const ProblemOverrides& o, const Naming& name);

// The training choices checked before any work: the optimizer's name, at least one phase, L-BFGS not with LM,
// the eps continuation only with LM, the Adam, L-BFGS and LM settings, history_every in [1, 10^12].
void check_train_choices(const TrainConfig& cfg, const std::string& optimizer, const LmConfig& lm,
                         bool eps_continuation_given, const Naming& name);

// The LM stages: one at the problem's eps, or one per eps of the continuation; iterations one count for all, or one
// per stage.
std::vector<LmStage> lm_stages(const ProblemSpec& spec, const std::vector<double>& eps_continuation,
                               const std::vector<long>& iterations, const Naming& name);

// Puts spec and its rows at the first stage's eps, where the Adam warm start and LM begin (rebuilds pts only when
// the eps changes).
void start_at_first_stage(const std::vector<LmStage>& stages, ProblemSpec& spec, PointSet& pts);

// The checks of ntk_top_eigen's run before any work (`pinntk ntk --eigen top:K`, pinntk.ntk_top) for the network's
// NTK on these rows: k within [1, min(n, p)] (the CLI's message is check_top_eigen_count's), then the host memory of
// the Lanczos vectors, the products' scratch (the operator's vectors, and the CPU backend's chunk buffers for
// `threads` threads, batched_workspace_bytes: counted on any device, a small overestimate on a GPU), the vectors
// returned (want_vectors) and the dense solve when k is the whole rank, against budget (bytes; 0: the available
// memory). UsageError (one line).
void check_ntk_top(long k, const Mlp& net, const PointSet& pts, int threads, bool want_vectors, uint64_t budget,
                   const Naming& name);

// The density's settings (`--density-probes`, `--density-steps`, `--density-bins`; Python's probes, steps, bins) of
// at least 1 and a positive, finite axis (check_density_config's checks, named as the caller names them).
void check_density_settings(const DensityConfig& cfg, const Naming& name);

// The host memory of ntk_spectral_density (the Krylov basis, the products' scratch as in check_ntk_top, the nodes
// and weights) for the network's NTK on these rows, against budget (bytes; 0: the available memory). UsageError (one
// line).
void check_ntk_density_memory(const DensityConfig& cfg, const Mlp& net, const PointSet& pts, int threads,
                              uint64_t budget, const Naming& name);

// Runs reproduce() into out and commits it: figures of earlier runs into the same folder keep their files and their
// entries in summary.json; writes summary.json and the index README.md. Returns summary.json's text.
std::string reproduce_into(const ReproduceOptions& opt, Backend& be, OutputDir& out);

}  // namespace pinntk
