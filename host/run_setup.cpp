#include "host/run_setup.hpp"

#include <algorithm>          // std::min, std::max
#include <cmath>              // M_PI, std::ceil
#include <limits>             // std::numeric_limits
#include <nlohmann/json.hpp>  // nlohmann::json

#include "common/errors.hpp"     // UsageError
#include "host/cpu_batched.hpp"  // batched_workspace_bytes
#include "host/memory.hpp"       // require_memory
#include "host/optim/adam.hpp"   // validate(AdamConfig)
#include "host/optim/lbfgs.hpp"  // validate(LbfgsConfig)
#include "host/optim/lm.hpp"     // validate(LmConfig)
#include "host/parse.hpp"        // parse_domain, parse_box, parse_seed
#include "host/report.hpp"       // index_markdown

namespace pinntk {

std::string Naming::operator()(const std::string& setting) const {
  if (!cli) return setting;
  std::string flag = "--" + setting;
  for (char& c : flag)
    if (c == '_') c = '-';
  return flag;
}

void apply_problem_overrides(ProblemSpec& spec, const ProblemOverrides& o, const Naming& name) {
  const bool from_file = spec.kind == ProblemKind::File;
  if (from_file && o.omega) throw UsageError(name("omega") + ": a problem file sets its constants itself");
  if (from_file && o.domain) throw UsageError(name("domain") + ": a problem file sets its box itself");
  if (o.eps) {
    if (!uses_eps(spec)) throw UsageError(name("eps") + ": problem " + spec.name + " has no eps");
    spec.eps = *o.eps;
    if (!(spec.eps > 0.0)) throw UsageError(name("eps") + " must be positive, got " + fmt17(*o.eps));
    if (spec.kind == ProblemKind::RegressionTwoscale && !o.nc) {
      if (!(2.0 * M_PI / (spec.eps / 2.0) <= 1 << 24))
        throw UsageError(name("eps") + " " + fmt17(*o.eps) +
                         ": the regression's ceil(4 pi / eps) points exceed the limit of 16777216");
      spec.nc = static_cast<int>(std::ceil(2.0 * M_PI / (spec.eps / 2.0)));  // N = ceil(2 pi/(eps/2))
    }
  }
  if (o.omega && !from_file && spec.kind != ProblemKind::DarcyTwoscale && spec.kind != ProblemKind::DarcyNtk)
    throw UsageError(name("omega") + ": problem " + spec.name + " has no oscillating coefficient (omega is the Darcy " +
                     "problems' frequency)");
  if (o.lambda && spec.kind == ProblemKind::RegressionTwoscale)
    throw UsageError(name("lambda") + ": problem " + spec.name + " has no boundary term to weight");
  if (o.omega) spec.omega = *o.omega;
  if (o.domain) {
    if (spec.dim == 1) {
      const auto ab = parse_domain(*o.domain);
      spec.xa = ab.first;
      spec.xb = ab.second;
    } else {
      parse_box(*o.domain, spec.dim, spec.lo, spec.hi);
    }
  }
  if (o.nc) spec.nc = *o.nc;
  if (o.nb) spec.nb = *o.nb;
  if (o.lambda) spec.lambda = *o.lambda;
  if (o.grid) {
    const std::string& g = *o.grid;
    if (g == "linspace") {
      spec.grid = Grid::Linspace;
    } else if (g == "interior" || (spec.dim > 1 && g == "grid")) {
      spec.grid = Grid::Interior;
    } else if (g == "sobol") {
      spec.grid = Grid::Sobol;
    } else if (g == "uniform") {
      spec.grid = Grid::Uniform;
    } else {
      throw UsageError(name("grid") + ": unknown grid '" + g +
                       "' (known: linspace, interior; n-D: grid, sobol, uniform)");
    }
  }
  if (spec.dim == 1 && (o.boundary || o.points || o.point_seed))
    throw UsageError(name("boundary") + ", " + name("points") + " and " + name("point_seed") +
                     " are for n-dimensional problems");
  if (o.boundary) {
    if (*o.boundary != "grid" && *o.boundary != "uniform")
      throw UsageError(name("boundary") + ": unknown placement '" + *o.boundary + "' (known: grid, uniform)");
    spec.boundary_random = *o.boundary == "uniform";
  }
  if (o.point_seed) spec.point_seed = parse_seed(*o.point_seed, name("point_seed"));
  if (o.points) {
    if (o.nc || o.grid)
      throw UsageError(name("points") + " replaces " + name("nc") + " and " + name("grid") + ": give one");
    spec.points_file = *o.points;
  }
}

void check_train_choices(const TrainConfig& cfg, const std::string& optimizer, const LmConfig& lm,
                         bool eps_continuation_given, const Naming& name) {
  if (optimizer != "adam" && optimizer != "lm")
    throw UsageError(name("optimizer") + ": unknown optimizer '" + optimizer + "' (known: adam, lm)");
  const bool use_lm = optimizer == "lm";
  if (cfg.schedule.empty() && cfg.lbfgs.max_iter == 0 && !use_lm)
    throw UsageError(name("schedule") + ": no training phases given (an empty schedule goes with " +
                     (name.cli ? "--lbfgs N or --optimizer lm" : "lbfgs=N or optimizer=\"lm\"") + ")");
  if (use_lm && cfg.lbfgs.max_iter > 0)
    throw UsageError(name("lbfgs") + " and " + name("optimizer") + " lm do not combine");
  if (!use_lm && eps_continuation_given)
    throw UsageError(name("eps_continuation") + " needs " + name("optimizer") + " lm");
  validate(cfg.lbfgs);
  validate(cfg.adam);
  if (cfg.history_every < 1 || cfg.history_every > kMaxIterations)
    throw UsageError(name("history_every") + " must lie in [1, 10^12]");
  validate(lm);
}

std::vector<LmStage> lm_stages(const ProblemSpec& spec, const std::vector<double>& eps_continuation,
                               const std::vector<long>& iterations, const Naming& name) {
  std::vector<double> eps = eps_continuation;
  if (!eps.empty() && !uses_eps(spec))
    throw UsageError(name("eps_continuation") + ": problem " + spec.name + " has no eps");
  for (double e : eps)
    if (!(e > 0)) throw UsageError(name("eps_continuation") + ": every eps must be positive");
  if (eps.empty()) eps.push_back(spec.eps);
  for (long k : iterations)
    if (k < 0 || k > kMaxIterations) throw UsageError(name("lm_iters") + ": every count must lie in [0, 10^12]");
  if (iterations.size() != 1 && iterations.size() != eps.size())
    throw UsageError(name("lm_iters") + ": give one count, or one per " + name("eps_continuation") + " stage");
  std::vector<LmStage> stages;
  for (size_t i = 0; i < eps.size(); ++i)
    stages.push_back({eps[i], iterations.size() == 1 ? iterations[0] : iterations[i]});
  return stages;
}

void start_at_first_stage(const std::vector<LmStage>& stages, ProblemSpec& spec, PointSet& pts) {
  if (stages.empty() || spec.eps == stages.front().eps) return;
  spec.eps = stages.front().eps;
  pts = build_points(spec);
}

void check_ntk_top(long k, const Mlp& net, const PointSet& pts, int threads, bool want_vectors, uint64_t budget,
                   const Naming& name) {
  const long n = pts.size(), p = net.n_params();
  const long rank = std::min(n, p);
  if (name.cli) {
    const long lo = std::numeric_limits<int>::min(), hi = std::numeric_limits<int>::max();
    check_top_eigen_count(static_cast<int>(std::min(std::max(k, lo), hi)), n, p);
  } else if (k < 1 || k > rank) {
    throw UsageError("k must lie in [1, min(N, P) = " + std::to_string(rank) + "], got " + std::to_string(k));
  }
  // Lanczos vectors, the products' scratch and the vectors returned; the dense solve when K is the whole rank.
  const long dim = rank;
  const long ncv = lanczos_vectors(k, dim);
  const double need = 8.0 * (static_cast<double>(ncv + 4) * dim + 4.0 * (n + p) + (want_vectors ? dim * k : 0) +
                             (k == dim ? 3.0 * dim * dim : 0.0)) +
                      batched_workspace_bytes(net, pts, threads);
  require_memory(need, budget, name.cli ? "ntk" : "ntk_top", "the Lanczos vectors",
                 "ask for fewer eigenvalues or set " + name("memory_limit"));
}

void check_density_settings(const DensityConfig& cfg, const Naming& name) {
  const auto positive = [&](int v, const std::string& setting) {
    if (v < 1)
      throw UsageError((name.cli ? name("density_" + setting) : setting) + " must be at least 1, got " +
                       std::to_string(v));
  };
  positive(cfg.probes, "probes");
  positive(cfg.steps, "steps");
  positive(cfg.bins, "bins");
  check_density_config(cfg);  // the axis (and the above again: the library's own check)
}

void check_ntk_density_memory(const DensityConfig& cfg, const Mlp& net, const PointSet& pts, int threads,
                              uint64_t budget, const Naming& name) {
  const long n = pts.size(), p = net.n_params();
  const long dim = std::min(n, p), steps = std::min<long>(cfg.steps, dim);
  // The Krylov basis and the products' scratch; every probe's nodes and weights; the histogram's arrays and its
  // rows of density.csv (held until the commit, about 100 bytes a row).
  const double basis = 8.0 * (static_cast<double>(steps + 2) * dim + 4.0 * (n + p) + steps * steps) +
                       batched_workspace_bytes(net, pts, threads);
  const double nodes = 16.0 * cfg.probes * steps, bins = 128.0 * cfg.bins;
  const auto setting = [&](const char* s) { return name.cli ? name(std::string("density_") + s) : std::string(s); };
  const bool basis_most = basis >= nodes && basis >= bins;
  require_memory(basis + nodes + bins, budget, name.cli ? "ntk" : "ntk_density",
                 basis_most      ? "the Lanczos basis"
                 : nodes >= bins ? "the probes' nodes and weights"
                                 : "the histogram",
                 "ask for fewer " +
                     setting(basis_most      ? "steps"
                             : nodes >= bins ? "probes"
                                             : "bins") +
                     " or set " + name("memory_limit"));
}

std::string reproduce_into(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  using nlohmann::json;
  json summary = json::parse(reproduce(opt, be, out));
  // Figures of earlier runs into the same folder stay: their files and their entries in summary.json.
  const std::string previous = out.previous("summary.json");
  const json before = json::parse(previous.empty() ? "{}" : previous, nullptr, false);
  std::vector<std::string> scope;
  for (const std::string& fig : reproduce_figures()) {
    if (summary.contains(fig)) {
      scope.push_back(fig + "/");
    } else if (before.is_object() && before.contains(fig)) {
      summary[fig] = before[fig];
    }
  }
  out.replace_only(scope);
  const std::string text = summary.dump(2) + "\n";
  out.write("summary.json", text);
  out.write("README.md", index_markdown(summary));
  out.commit();
  return text;
}

}  // namespace pinntk
