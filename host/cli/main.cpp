// pinntk command line: `pinntk ntk`, `pinntk train` and `pinntk reproduce` (README.md has the reference of every
// flag). Each subcommand has an options struct, a function that adds its flags and one that runs it.
#include <unistd.h>  // isatty, access

#include <CLI/CLI.hpp>        // CLI::App
#include <algorithm>          // std::max
#include <chrono>             // std::chrono
#include <cmath>              // std::ceil, std::sqrt
#include <cstdio>             // std::fprintf, std::remove
#include <cstdlib>            // std::getenv, std::system
#include <functional>         // std::ref
#include <limits>             // std::numeric_limits
#include <memory>             // std::unique_ptr
#include <nlohmann/json.hpp>  // nlohmann::json
#include <numeric>            // std::accumulate
#include <optional>           // std::optional
#include <set>                // std::set
#include <sstream>            // std::ostringstream

#include "common/errors.hpp"                  // UsageError, NumericalError
#include "host/backend.hpp"                   // make_backend, device_is_cpu
#include "host/blas_setup.hpp"                // ensure_fast_openblas_kernels
#include "host/ensemble.hpp"                  // train_ensemble, spread, PointwiseMean
#include "host/io/files.hpp"                  // replace_file
#include "host/io/history_csv.hpp"            // history_csv
#include "host/io/interrupt.hpp"              // install_interrupt_handlers, interrupt_resume_file
#include "host/io/npy.hpp"                    // npy_bytes
#include "host/io/optimizer_json.hpp"         // adam_json, lbfgs_json
#include "host/io/output_dir.hpp"             // OutputDir
#include "host/memory.hpp"                    // require_memory, parse_bytes
#include "host/ntk.hpp"                       // analyze_ntk, plan_ntk, ntk_exact_memory_bytes, cpu_sample_gram_bytes
#include "host/ntk_history.hpp"               // ntk_history_row, ntk_history_csv, ntk_history_json
#include "host/ntk_lanczos.hpp"               // ntk_top_eigen, ntk_spectral_density
#include "host/optim/lm_continuation.hpp"     // continue_with_lm, LmStage
#include "host/parse.hpp"                     // parse_real, parse_layers, parse_schedule, parse_box, split_list
#include "host/points.hpp"                    // Box, closed_grid_points
#include "host/problemfile/problem_file.hpp"  // load_problem_file, problem_file_json, problem_check_report, ...
#include "host/report.hpp"                    // headlines, index_markdown
#include "host/reproduce.hpp"                 // reproduce
#include "host/run_setup.hpp"                 // apply_problem_overrides, check_ntk_top, check_density_settings, ...
#include "host/timing.hpp"                    // seconds_since
#include "host/train.hpp"                     // train_adam
#include "host/work_progress.hpp"             // set_work_progress_sink

#ifndef PINNTK_VERSION
#define PINNTK_VERSION "0.1.0"
#endif

using nlohmann::json;

namespace pinntk {
namespace {

// Exit statuses (README "Errors"): 0 done, 1 internal failure, 2 bad input, 3 a number not finite.
constexpr int kExitInternal = 1, kExitUsage = 2, kExitNumerical = 3;

// Flags shared by every subcommand; numbers are kept as text and parsed after CLI11 so that "1/80" and "2pi" work.
struct CommonOptions {
  std::string problem, problem_file, eps, omega, domain, lambda, grid, boundary, points, layers, init, checkpoint,
      memory_limit;
  std::string point_seed;
  int nc = 0, nb = 0;
  CLI::Option *nc_given = nullptr, *nb_given = nullptr,
              *problem_given = nullptr;  // counts tell "given" from "not given", not sentinels
  std::string seed_text = "0";
  uint64_t seed = 0;
  std::string device = "auto", precision = "fp64", out;
  int threads = 0;  // 0: all (not given)
};

void add_common(CLI::App* cmd, CommonOptions& o, const std::string& default_problem) {
  o.problem = default_problem;
  cmd->add_option("--problem", o.problem,
                  "poisson-sines | poisson-twoscale | darcy-twoscale | darcy-ntk | regression-twoscale (1-D); "
                  "poisson2d-sines | poisson2d-twoscale | darcy2d-twoscale | darcy2d-ntk | poisson3d-sines")
      ->capture_default_str();
  o.problem_given = cmd->get_option("--problem");
  cmd->add_option("--problem-file", o.problem_file,
                  "a problem described in a JSON file (problems/README.md): its coefficient, forcing, boundary data "
                  "and optionally exact solution as formulas; replaces --problem");
  cmd->add_option("--eps", o.eps, "scale parameter, e.g. 0.0125 or 1/80 (default: the preset's)");
  cmd->add_option("--omega", o.omega, "frequency of the Darcy coefficient a(y) = 1/(2.1 + 2 sin(omega y))");
  cmd->add_option("--domain", o.domain,
                  "interval a,b (1-D, default -pi,pi); n-D: a box a,b (every axis) or a1,b1,a2,b2[,a3,b3]");
  o.nc_given = cmd->add_option("--nc", o.nc, "number of collocation (or regression) points");
  o.nb_given = cmd->add_option("--nb", o.nb,
                               "number of boundary rows: 1-D alternating between the two ends, n-D the same count on "
                               "each of the 2n faces");
  cmd->add_option("--lambda", o.lambda, "boundary loss weight (paper eq. 8)");
  cmd->add_option("--grid", o.grid,
                  "collocation points: linspace (closed interval) | interior (1-D); grid | sobol | uniform (n-D)");
  cmd->add_option("--boundary", o.boundary, "n-D boundary points on each face: grid | uniform");
  cmd->add_option("--points", o.points, "n-D: read the collocation points from a float64 .npy file of shape (N, n)");
  cmd->add_option("--point-seed", o.point_seed, "n-D: seed of Sobol or random points (default 0)");
  cmd->add_option("--layers", o.layers, "widths, e.g. 1,50,1 (default: the preset's)");
  cmd->add_option("--init", o.init,
                  "normal | glorot-normal | glorot-uniform | glorot-truncated (default: the preset's)");
  cmd->add_option("--checkpoint", o.checkpoint, "load the network from a pinntk-mlp-v1 JSON file");
  cmd->add_option("--seed", o.seed_text, "seed of the initialization, in [0, 2^64 - 1]")->capture_default_str();
  cmd->add_option("--device", o.device, "auto | cpu | cuda")->capture_default_str();
  cmd->add_option("--precision", o.precision, "fp64 | fp32 (CUDA only)")->capture_default_str();
  cmd->add_option("--out", o.out, "output folder")->required();
  cmd->add_option("--threads", o.threads, "CPU threads (0, the default: all)");
  cmd->add_option("--memory-limit", o.memory_limit,
                  "refuse runs estimated to need more host memory, e.g. 8G (default: the available memory)");
}

void check_threads(int threads) {
  if (threads < 0 || threads > 4096) throw UsageError("--threads must lie in [0, 4096] (0: all cores)");
}

uint64_t memory_budget(const std::string& text) { return text.empty() ? 0 : parse_bytes(text, "--memory-limit"); }

struct Setup {
  ProblemSpec spec;
  PointSet pts;
  Mlp net;
  std::string init;
  std::unique_ptr<Backend> backend;
};

Setup make_setup(const CommonOptions& o) {
  Setup s;
  if (!o.problem_file.empty()) {
    if (o.problem_given->count() > 0) throw UsageError("--problem-file replaces --problem: give one");
    s.spec = load_problem_file(o.problem_file);
  } else {
    s.spec = problem_preset(o.problem);
  }
  ProblemOverrides ov;
  if (!o.eps.empty()) ov.eps = parse_real(o.eps, "--eps");
  if (!o.omega.empty()) ov.omega = parse_real(o.omega, "--omega");
  if (!o.domain.empty()) ov.domain = o.domain;
  if (o.nc_given->count() > 0) ov.nc = o.nc;
  if (o.nb_given->count() > 0) ov.nb = o.nb;
  if (!o.lambda.empty()) ov.lambda = parse_real(o.lambda, "--lambda");
  if (!o.grid.empty()) ov.grid = o.grid;
  if (!o.boundary.empty()) ov.boundary = o.boundary;
  if (!o.points.empty()) ov.points = o.points;
  if (!o.point_seed.empty()) ov.point_seed = o.point_seed;
  apply_problem_overrides(s.spec, ov, Naming{});
  const int dim = s.spec.dim;
  validate(s.spec);
  check_threads(o.threads);
  const std::vector<int> layers = o.layers.empty() ? s.spec.default_layers : parse_layers(o.layers);
  if (layers.front() != dim)
    throw UsageError("--layers: the first entry is the input width and must be " + std::to_string(dim) +
                     " for problem " + s.spec.name);
  s.init = o.init.empty() ? s.spec.default_init : o.init;
  if (!o.checkpoint.empty()) {
    s.net = load_checkpoint(o.checkpoint);
    s.init = "checkpoint";
    if (s.net.layers.front() != dim)
      throw UsageError("checkpoint " + o.checkpoint + ": its input width is " + std::to_string(s.net.layers.front()) +
                       ", problem " + s.spec.name + " has dimension " + std::to_string(dim));
    if (!o.layers.empty() && s.net.layers != layers)
      throw UsageError("checkpoint " + o.checkpoint + ": its layers do not match --layers " + o.layers);
  } else {
    s.net = init_mlp(layers, s.init, parse_seed(o.seed_text));
  }
  s.pts = build_points(s.spec);
  if (s.spec.kind == ProblemKind::File) {  // what `pinntk problem check` would flag, said before any work
    const std::string flagged = problem_file_mismatch(s.spec, s.pts);
    if (!flagged.empty())
      std::fprintf(stderr, "pinntk: warning: %s: %s (see pinntk problem check)\n", o.problem_file.c_str(),
                   flagged.c_str());
  }
  return s;
}

json run_json(const CommonOptions& o, const Setup& s) {
  json j;
  j["pinntk_version"] = PINNTK_VERSION;
  j["problem"] = s.spec.name;
  if (s.spec.kind == ProblemKind::File) j["problem_file"] = problem_file_json(s.spec);
  j["eps"] = uses_eps(s.spec) ? json(s.spec.eps) : json(nullptr);
  if (s.spec.kind == ProblemKind::DarcyTwoscale || s.spec.kind == ProblemKind::DarcyNtk) j["omega"] = s.spec.omega;
  j["dim"] = s.spec.dim;
  if (s.spec.dim == 1) {
    j["domain"] = {s.spec.xa, s.spec.xb};
  } else {
    json box = json::array();
    for (int i = 0; i < s.spec.dim; ++i) box.push_back({s.spec.lo[i], s.spec.hi[i]});
    j["domain"] = box;
    j["boundary"] = s.spec.boundary_random ? "uniform" : "grid";
    j["point_seed"] = s.spec.point_seed;
    if (!s.spec.points_file.empty()) j["points_file"] = s.spec.points_file;
    j["test_points"] = s.spec.test_uniform > 0 ? "uniform " + std::to_string(s.spec.test_uniform)
                                               : "grid " + std::to_string(s.spec.test_per_axis) + " per axis";
  }
  j["grid"] = s.spec.points_file.empty() ? grid_name(s.spec.grid) : "file";
  j["layers"] = s.net.layers;
  j["n_params"] = s.net.n_params();
  j["init"] = s.init;
  j["seed"] = parse_seed(o.seed_text);
  j["nc"] = s.pts.nc;
  j["nb"] = s.spec.nb;
  j["lambda"] = s.spec.lambda;
  j["device"] = s.backend ? s.backend->name() : o.device;
  j["precision"] = s.backend ? s.backend->precision() : o.precision;
  return j;
}

// What the errors are measured against: the exact solution, or a problem file's reference solution with its
// method and estimated max-norm error at the test points.
json error_reference_json(const ProblemSpec& spec) {
  SolutionSource src;
  solution_values(spec, test_points(spec), &src);
  json j = {{"method", src.method}};
  if (src.method != "exact") {
    j["estimated_error"] = src.error_estimate;
    j["converged"] = src.converged;
    j["resolution"] = src.resolution;
  }
  return j;
}

json top3(const std::vector<double>& e) {
  return std::vector<double>(e.begin(), e.begin() + std::min<size_t>(3, e.size()));
}

// `pinntk ntk`'s flags.
struct NtkOptions {
  CommonOptions common;
  std::string scaling = "lemma";
  bool save_matrices = false;
  std::string path = "auto";
  long chunk_rows = 0;  // 0: from the memory budget
  std::string eigen = "auto";
  bool save_vectors = false;
  DensityConfig density;  // --eigen density's settings
};

void add_ntk_options(CLI::App* cmd, NtkOptions& n) {
  add_common(cmd, n.common, "darcy-ntk");
  cmd->add_option("--ntk-scaling", n.scaling, "lemma (1/Nc and lambda/Nb of Lemma 3.1) | none")->capture_default_str();
  cmd->add_flag("--save-matrices", n.save_matrices,
                "also write J.npy, K.npy, residuals.npy and points.npy (N x n, the rows of J in order)");
  cmd->add_option("--ntk-path", n.path,
                  "auto (N > P with constant weights on each block: chunked; else exact while it fits the memory, then "
                  "chunked) | exact (the whole Jacobian) | chunked (N > P: P x P Grams accumulated over chunks of "
                  "points)")
      ->capture_default_str();
  cmd->add_option("--chunk-rows", n.chunk_rows,
                  "rows of the Jacobian per chunk of the chunked path (0: from the memory)")
      ->capture_default_str();
  cmd->add_option("--eigen", n.eigen,
                  "auto (the default: the full analysis while it fits the memory, else the top 20 eigenvalues by "
                  "Lanczos) | exact (the full analysis, one-shot or by chunks, or a refusal when neither fits) | top:K "
                  "(the K largest eigenvalues of K by "
                  "Lanczos on matrix-free products, no J or K formed) | density (the whole spectrum's density on a "
                  "log axis by stochastic Lanczos quadrature, no J or K formed)")
      ->capture_default_str();
  cmd->add_option("--density-probes", n.density.probes, "with --eigen density: Rademacher probe vectors")
      ->capture_default_str();
  cmd->add_option("--density-steps", n.density.steps,
                  "with --eigen density: Lanczos steps per probe (capped at min(N, P))")
      ->capture_default_str();
  cmd->add_option("--density-bins", n.density.bins,
                  "with --eigen density: bins in log10(lambda) over the 16 decades below lambda_max")
      ->capture_default_str();
  cmd->add_flag("--save-vectors", n.save_vectors,
                "with --eigen top:K, also write eigenvectors_top.npy (dim x K: of K_s when N <= P, of the Gram "
                "Jh^T Jh when N > P)");
}

// --eigen: -1 for the full analysis (exact; auto is exact for now), else the K of top:K (a digit string; checked
// against the rank bound once N and P are known, a K beyond int read as INT_MAX).
int parse_eigen(const std::string& text) {
  if (text == "exact" || text == "auto") return -1;
  const std::string prefix = "top:";
  if (text.compare(0, prefix.size(), prefix) == 0) {
    const std::string num = text.substr(prefix.size());
    bool digits = !num.empty();
    for (const char c : num) digits = digits && c >= '0' && c <= '9';
    if (!digits) throw UsageError("--eigen top:K: K must be a positive integer, got '" + num + "'");
    const size_t first = std::min(num.find_first_not_of('0'), num.size());
    if (num.size() - first > 9) return std::numeric_limits<int>::max();
    return num.size() == first ? 0 : std::stoi(num.substr(first));
  }
  throw UsageError("--eigen: unknown value '" + text + "' (known: exact, auto, top:K, density)");
}

// The flags of the full analysis, refused by the Lanczos paths (`what`: the --eigen value that skips it).
void refuse_full_analysis_flags(const NtkOptions& opts, const std::string& what) {
  if (opts.save_matrices) throw UsageError("--save-matrices needs the full analysis: not with " + what);
  if (opts.path != "auto" || opts.chunk_rows != 0)
    throw UsageError("--ntk-path and --chunk-rows choose the full analysis's path: not with " + what);
}

// `pinntk ntk --eigen top:K`: the K largest eigenvalues by Lanczos (host/ntk_lanczos.hpp), no full analysis.
int cmd_ntk_top(const NtkOptions& opts, int k, std::chrono::steady_clock::time_point t0, const std::string& why = "") {
  const CommonOptions& o = opts.common;
  const NtkScaling scaling = parse_ntk_scaling(opts.scaling);
  refuse_full_analysis_flags(opts, "--eigen top:K");
  const uint64_t budget = memory_budget(o.memory_limit);
  Setup s = make_setup(o);
  const long n = s.pts.size(), p = s.net.n_params();
  check_ntk_top(k, s.net, s.pts, o.threads, opts.save_vectors, budget, Naming{});  // K within the rank, the memory
  OutputDir out(o.out, "ntk");
  out.open();  // before the backend: a refusal of the folder is the only line
  s.backend = make_backend(o.device, o.precision, o.threads);
  const double tol = 1e-12;
  const TopEigen t =
      ntk_top_eigen(*s.backend, s.net, s.pts, ntk_row_weights(s.pts, scaling), k, opts.save_vectors, tol);

  json j = run_json(o, s);
  j["ntk_scaling"] = ntk_scaling_name(scaling);
  json e;
  e["method"] = k == t.dim ? "dense (every eigenvalue: the operator's columns, Eigen SelfAdjointEigenSolver)"
                           : "lanczos (Spectra SymEigsSolver)";
  e["operator"] = t.op;
  e["k"] = k;
  e["values"] = t.values;
  e["products"] = t.products;
  e["tol"] = tol;
  if (!why.empty()) e["path_reason"] = why;
  if (opts.save_vectors) e["vectors_of"] = t.gram ? "Jh^T Jh (P x P): parameter space" : "K_s (N x N)";
  j["eigen"] = e;
  j["wall_time_s"] = seconds_since(t0);
  out.write("eigenvalues_top.npy", npy_bytes(t.values, {t.values.size()}));
  if (opts.save_vectors)
    out.write("eigenvectors_top.npy", npy_bytes(t.vectors, {static_cast<size_t>(t.dim), static_cast<size_t>(k)}));
  out.write("summary.json", j.dump(2) + "\n");
  out.commit();
  std::fprintf(stderr,
               "pinntk ntk: %s N=%ld P=%ld device=%s  top-%d eigenvalues of K by Lanczos on %s (%ld products)  "
               "lambda_1=%.6e  -> %s\n",
               s.spec.name.c_str(), n, p, s.backend->name().c_str(), k, t.op.c_str(), t.products, t.values.front(),
               out.path().c_str());
  return 0;
}

// `pinntk ntk --eigen density`: the spectral density by stochastic Lanczos quadrature (host/ntk_lanczos.hpp).
int cmd_ntk_density(const NtkOptions& opts, std::chrono::steady_clock::time_point t0) {
  const CommonOptions& o = opts.common;
  const NtkScaling scaling = parse_ntk_scaling(opts.scaling);
  refuse_full_analysis_flags(opts, "--eigen density");
  if (opts.save_vectors) throw UsageError("--save-vectors goes with --eigen top:K");
  DensityConfig cfg = opts.density;
  check_density_settings(cfg, Naming{});
  const uint64_t budget = memory_budget(o.memory_limit);
  Setup s = make_setup(o);
  cfg.seed = parse_seed(o.seed_text);
  const long n = s.pts.size(), p = s.net.n_params();
  check_ntk_density_memory(cfg, s.net, s.pts, o.threads, budget, Naming{});
  OutputDir out(o.out, "ntk");
  out.open();  // before the backend: a refusal of the folder is the only line
  s.backend = make_backend(o.device, o.precision, o.threads);
  const NtkDensity r = ntk_spectral_density(*s.backend, s.net, s.pts, ntk_row_weights(s.pts, scaling), cfg);
  if (r.steps_capped)
    std::fprintf(stderr,
                 "pinntk ntk: note: --density-steps %d is above the operator's size %d: %d steps (full Lanczos)\n",
                 cfg.steps, r.dim, r.steps);

  json j = run_json(o, s);
  j["ntk_scaling"] = ntk_scaling_name(scaling);
  double total = r.below;
  for (const double c : r.counts) total += c;
  const json e = {
      {"method", "stochastic Lanczos quadrature (Rademacher probes, full reorthogonalization, LAPACKE_dstev)"},
      {"operator", r.op},
      {"probes", cfg.probes},
      {"steps_asked", cfg.steps},
      {"steps", r.steps},
      {"bins", cfg.bins},
      {"decades", cfg.decades},
      {"probe_seed", cfg.seed},
      {"products", r.products},
      {"breakdowns", r.breakdowns},
      {"lambda_max", r.lambda_max},
      {"log10_lo", r.edges.front()},
      {"log10_hi", r.edges.back()},
      {"below", r.below},
      {"known_zeros", r.zeros},
      {"total", total},
      {"n", r.n}};
  j["density"] = e;
  j["wall_time_s"] = seconds_since(t0);
  std::string csv = "log10_lo,log10_hi,count\n";
  char line[128];
  for (size_t b = 0; b < r.counts.size(); ++b) {
    std::snprintf(line, sizeof line, "%.17g,%.17g,%.17g\n", r.edges[b], r.edges[b + 1], r.counts[b]);
    csv += line;
  }
  out.write("density.csv", csv);
  out.write("density_nodes.npy", npy_bytes(r.nodes, {r.nodes.size()}));
  out.write("density_weights.npy", npy_bytes(r.weights, {r.weights.size()}));
  out.write("summary.json", j.dump(2) + "\n");
  out.commit();
  std::fprintf(stderr,
               "pinntk ntk: %s N=%ld P=%ld device=%s  spectral density by SLQ on %s (%d probes x %d steps, %ld "
               "products)  lambda_max=%.6e  %d bins over 10^[%.2f, %.2f], %.1f below  -> %s\n",
               s.spec.name.c_str(), n, p, s.backend->name().c_str(), r.op.c_str(), cfg.probes, r.steps, r.products,
               r.lambda_max, cfg.bins, r.edges.front(), r.edges.back(), r.below, out.path().c_str());
  return 0;
}

int cmd_ntk(const NtkOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  const CommonOptions& o = opts.common;
  const DensityConfig defaults;
  if (opts.eigen == "density") return cmd_ntk_density(opts, t0);
  if (opts.density.probes != defaults.probes || opts.density.steps != defaults.steps ||
      opts.density.bins != defaults.bins)
    throw UsageError("--density-probes, --density-steps and --density-bins go with --eigen density");
  const int top = parse_eigen(opts.eigen);
  if (top >= 0) return cmd_ntk_top(opts, top, t0);
  if (opts.save_vectors) throw UsageError("--save-vectors goes with --eigen top:K");
  const bool save_matrices = opts.save_matrices;
  const NtkScaling scaling = parse_ntk_scaling(opts.scaling);
  const NtkPath path = parse_ntk_path(opts.path);
  const uint64_t budget = memory_budget(o.memory_limit);
  Setup s = make_setup(o);
  OutputDir out(o.out, "ntk");
  const int n = s.pts.size(), p = s.net.n_params();
  if (save_matrices && static_cast<double>(n) * n * 8 > 4e9)
    throw UsageError("--save-matrices: K would take more than 4 GB; use fewer points");
  // The one-shot analysis's memory: on the CPU without J where it can (ntk_exact_memory_bytes).
  const double exact_bytes = ntk_exact_memory_bytes(s.net, s.pts, save_matrices, device_is_cpu(o.device));
  // --eigen auto: when neither the one-shot analysis nor the Grams over chunks fit the memory, the top eigenvalues
  // by Lanczos on matrix-free products (O(N + P) memory) instead.
  if (opts.eigen == "auto" && path == NtkPath::Auto && opts.chunk_rows == 0 && !save_matrices) {
    const double avail = budget > 0 ? static_cast<double>(budget) : static_cast<double>(available_memory_bytes());
    const bool blockwise = ntk_weights_blockwise(ntk_row_weights(s.pts, scaling), s.pts.nc);
    const bool exact_fits = exact_bytes <= avail;
    const bool chunked_fits =
        n > p && ntk_chunk_rows(s.pts.nc, s.pts.nb, p, s.pts.dim, blockwise, avail, s.pts.has_directions()) > 0;
    if (!exact_fits && !chunked_fits) {
      const int k = std::min({20, n, p});
      try {
        check_ntk_top(k, s.net, s.pts, o.threads, false, budget, Naming{});
      } catch (const UsageError&) {  // no path fits: one line for all three
        throw UsageError("ntk --eigen auto: no path fits the " + format_bytes(avail) +
                         (budget > 0 ? " of --memory-limit" : " available") + " (the full analysis needs about " +
                         format_bytes(exact_bytes) + "; neither the Grams over chunks nor the top " +
                         std::to_string(k) +
                         " eigenvalues by Lanczos fit either); use fewer points (--nc) or a smaller network, or raise "
                         "--memory-limit");
      }
      const std::string why = "--eigen auto: neither the full analysis (" + format_bytes(exact_bytes) +
                              ") nor the Grams over chunks fit the " + format_bytes(avail) + " available: the top " +
                              std::to_string(k) + " eigenvalues by Lanczos instead";
      std::fprintf(stderr, "pinntk ntk: %s\n", why.c_str());
      return cmd_ntk_top(opts, k, t0, why);
    }
  }
  // The one-shot path while it fits the memory, else Grams over chunks of points (DESIGN.md section 8).
  const NtkPlan plan =
      plan_ntk(path, s.pts.nc, s.pts.nb, p, s.pts.dim, ntk_weights_blockwise(ntk_row_weights(s.pts, scaling), s.pts.nc),
               opts.chunk_rows, save_matrices, budget, s.pts.has_directions(), exact_bytes);
  out.open();  // before the backend: a refusal of the folder is the only line
  s.backend = make_backend(o.device, o.precision, o.threads);  // after every input check: its notice comes last
  NtkResult r = analyze_ntk(*s.backend, s.net, s.pts, scaling, save_matrices, plan.chunk_rows);
  // After the analysis: a failed run's message stays its only line.
  std::fprintf(stderr, "pinntk ntk: %s path: %s\n", plan.chunked ? "chunked" : "exact", plan.reason.c_str());

  json j = run_json(o, s);
  j["ntk_scaling"] = ntk_scaling_name(scaling);
  json ntk;
  ntk["frobenius_K"] = r.frobenius_K;
  ntk["frobenius_Kuu"] = r.frobenius_Kuu;
  ntk["frobenius_Kbb"] = r.frobenius_Kbb;
  ntk["eigenvalues_K_top"] = top3(r.spectrum_K);
  ntk["eigenvalues_Kuu_top"] = top3(r.spectrum_Kuu);
  const double lmin = r.spectrum_Kuu.back();
  ntk["eigenvalue_Kuu_min"] = lmin;
  // A rank-deficient K_uu has a smallest computed eigenvalue at rounding level, possibly <= 0: no finite ratio.
  ntk["condition_Kuu"] = lmin > 0.0 ? json(r.spectrum_Kuu.front() / lmin) : json(nullptr);
  ntk["spectral_radius_Kbb"] = r.spectrum_Kbb.empty() ? 0.0 : r.spectrum_Kbb.front();
  ntk["gram_trick"] = r.gram_trick;
  ntk["path"] = plan.chunked ? "chunked" : "exact";
  ntk["path_reason"] = plan.reason;
  ntk["chunk_rows"] = plan.chunk_rows;
  ntk["peak_memory_bytes_estimate"] = plan.peak_bytes;
  j["eigen"] = {{"method", "full"},
                {"requested", opts.eigen},
                {"path_reason", opts.eigen == "auto" ? "--eigen auto: the full analysis fits the memory"
                                                     : "--eigen exact: the full analysis"}};
  double res2 = 0.0;
  for (double v : r.residuals) res2 += v * v;
  j["residual_norm"] = std::sqrt(res2);
  j["ntk"] = ntk;
  j["wall_time_s"] = seconds_since(t0);

  out.write("spectrum_K.npy", npy_bytes(r.spectrum_K, {r.spectrum_K.size()}));
  out.write("spectrum_Kuu.npy", npy_bytes(r.spectrum_Kuu, {r.spectrum_Kuu.size()}));
  if (save_matrices) {
    out.write("J.npy", npy_bytes(r.jacobian, {static_cast<size_t>(n), static_cast<size_t>(p)}));
    const std::vector<double> K = ntk_matrix(*s.backend, r.jacobian, n, p, ntk_row_weights(s.pts, scaling));
    out.write("K.npy", npy_bytes(K, {static_cast<size_t>(n), static_cast<size_t>(n)}));
    out.write("residuals.npy", npy_bytes(r.residuals, {r.residuals.size()}));
    out.write("points.npy", npy_bytes(s.pts.x, {static_cast<size_t>(n), static_cast<size_t>(s.pts.dim)}));
  }
  out.write("summary.json", j.dump(2) + "\n");
  out.commit();
  char eps[64] = "";
  if (uses_eps(s.spec)) std::snprintf(eps, sizeof eps, " eps=%g", s.spec.eps);
  std::fprintf(stderr, "pinntk ntk: %s%s N=%d P=%d device=%s  ||K_uu||_F=%.6e  lambda_1(K_uu)=%.6e  -> %s\n",
               s.spec.name.c_str(), eps, n, p, s.backend->name().c_str(), r.frobenius_Kuu, r.spectrum_Kuu.front(),
               out.path().c_str());
  return 0;
}

// Progress on stderr: a live line on a terminal; otherwise a plain line every log_every iterations, and at least
// once a minute when iterations are slow (LM at thousands of points).
class Progress {
 public:
  // first: the iteration this line's count starts from (a resumed run's), so that the rate counts this process's
  // iterations only; -1: the first call's (a member's L-BFGS or LM phase, which starts where Adam ended).
  Progress(long log_every, long first) : log_every_(log_every), first_(first), tty_(isatty(2) != 0) {}
  void operator()(long it, long total, double loss) {
    if (first_ < 0) first_ = it;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(it - first_) / elapsed : 0.0;
    const double since = std::chrono::duration<double>(now - last_).count();
    if (tty_) {
      if (it == total || since > 0.2) {
        std::fprintf(stderr, "\r  iteration %ld/%ld  loss %.6e  %.*f it/s   ", it, total, loss, rate < 10 ? 2 : 0,
                     rate);
        if (it == total) std::fprintf(stderr, "\n");
        last_ = now;
      }
    } else if (log_every_ > 0 && (it % log_every_ == 0 || it == total || since > 60.0)) {
      std::fprintf(stderr, "  iteration %ld/%ld  loss %.6e  %.*f it/s\n", it, total, loss, rate < 10 ? 2 : 0, rate);
      last_ = now;
    }
  }

 private:
  long log_every_, first_;
  bool tty_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
};

// Options of the Levenberg-Marquardt optimizer (issue: function-space LM).
struct LmOptions {
  std::string optimizer = "adam", iters = "500", continuation;
  LmConfig cfg;
};

// Stages of eps continuation with their LM iteration counts.
std::vector<LmStage> lm_stages(const LmOptions& lo, const ProblemSpec& spec) {
  std::vector<double> eps;
  if (!lo.continuation.empty())
    for (const auto& item : split_list(lo.continuation)) eps.push_back(parse_real(item, "--eps-continuation"));
  std::vector<long> its;
  for (const auto& item : split_list(lo.iters)) its.push_back(parse_count(item, "--lm-iters", 0));
  return lm_stages(spec, eps, its, Naming{});
}

// L-BFGS's defaults with no iterations: `pinntk train` runs it only when --lbfgs asks.
LbfgsConfig lbfgs_off() {
  LbfgsConfig c;
  c.max_iter = 0;
  return c;
}

// `pinntk train`'s flags.
struct TrainOptions {
  CommonOptions common;
  std::string schedule = "1000@1e-3";  // phases ITERATIONS@LR, parsed by parse_schedule
  AdamConfig adam;
  LbfgsConfig lbfgs = lbfgs_off();
  long log_every = 1000, history_every = 100, checkpoint_every = 5000;
  bool resume = false;
  int ensemble = 1;                   // members, seeds seed..seed+ensemble-1
  long ntk_every = 0;                 // the NTK every N iterations into ntk_history.csv (0: never)
  std::string ntk_scaling = "lemma";  // its D (parse_ntk_scaling)
  LmOptions lm;
  std::set<std::string> given;  // the flags on the command line (refusing those that would have no effect)
  bool use_lm() const { return lm.optimizer == "lm"; }
};

// A flag that would do nothing in this run is refused (one line saying what it needs), not silently ignored.
void refuse_idle_train_flags(const TrainOptions& t) {
  const auto refuse_unless = [&](bool used, std::initializer_list<const char*> flags, const std::string& needs) {
    if (used) return;
    for (const char* f : flags)
      if (t.given.count(f)) throw UsageError(std::string(f) + " goes with " + needs);
  };
  refuse_unless(t.lbfgs.max_iter > 0,
                {"--lbfgs-history", "--lbfgs-method", "--lbfgs-gtol", "--lbfgs-ftol", "--lbfgs-maxfun"},
                "--lbfgs N (L-BFGS runs only when --lbfgs asks for iterations)");
  refuse_unless(t.use_lm(), {"--lm-iters", "--lm-mu0", "--lm-damping", "--lm-tol", "--lm-form", "--lm-cond-every"},
                "--optimizer lm");
  refuse_unless(t.common.checkpoint.empty(), {"--init", "--seed"},
                "a network made here; --checkpoint gives the network itself");
  refuse_unless(t.ntk_every > 0, {"--ntk-scaling"}, "--ntk-every N (the NTK along training)");
}

void add_train_options(CLI::App* cmd, TrainOptions& t) {
  add_common(cmd, t.common, "darcy-twoscale");
  cmd->add_option("--schedule", t.schedule, "phases ITERATIONS@LR, comma-separated")->capture_default_str();
  cmd->add_option("--adam-beta1", t.adam.beta1, "Adam beta1")->capture_default_str();
  cmd->add_option("--adam-beta2", t.adam.beta2, "Adam beta2")->capture_default_str();
  cmd->add_option("--adam-eps", t.adam.eps, "Adam epsilon")->capture_default_str();
  cmd->add_option("--log-every", t.log_every, "progress line every N iterations when stderr is not a terminal")
      ->capture_default_str();
  cmd->add_option("--history-every", t.history_every, "history.csv row every N iterations")->capture_default_str();
  cmd->add_option("--lbfgs", t.lbfgs.max_iter, "L-BFGS-B iterations after the Adam phases (0: none)")
      ->capture_default_str();
  cmd->add_option("--lbfgs-history", t.lbfgs.history, "L-BFGS memory")->capture_default_str();
  cmd->add_option("--lbfgs-method", t.lbfgs.method,
                  "lbfgsb (liblbfgsb, member by member) or two-loop (strong-Wolfe L-BFGS, an ensemble at once, on the "
                  "device with --device cuda)")
      ->capture_default_str();
  cmd->add_option("--lbfgs-gtol", t.lbfgs.gtol, "L-BFGS projected-gradient tolerance")->capture_default_str();
  cmd->add_option("--lbfgs-ftol", t.lbfgs.ftol, "L-BFGS relative loss-reduction tolerance")->capture_default_str();
  cmd->add_option("--lbfgs-maxfun", t.lbfgs.max_fun, "L-BFGS evaluation limit (0: 1.25 x --lbfgs)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", t.checkpoint_every,
                  "save the training state to OUT/resume.json every N Adam steps (0: never)")
      ->capture_default_str();
  cmd->add_flag("--resume", t.resume, "continue from OUT/resume.json (same flags as the interrupted run)");
  cmd->add_option("--ensemble", t.ensemble,
                  "train B networks, seeds seed..seed+B-1, Adam as one batch, into OUT/member_000/... (1-1024)")
      ->capture_default_str();
  LmOptions& lmo = t.lm;
  cmd->add_option("--optimizer", lmo.optimizer, "adam (then --lbfgs) | lm (Levenberg-Marquardt after --schedule)")
      ->capture_default_str();
  cmd->add_option("--lm-iters", lmo.iters, "LM iterations, or one count per --eps-continuation stage")
      ->capture_default_str();
  cmd->add_option("--lm-mu0", lmo.cfg.mu0, "initial damping relative to the Gram's largest diagonal")
      ->capture_default_str();
  cmd->add_option("--lm-damping", lmo.cfg.damping, "nielsen | delayed (mu / 3 on acceptance, * 2 on rejection)")
      ->capture_default_str();
  cmd->add_option("--lm-tol", lmo.cfg.loss_tol, "stop LM when the loss falls below this")->capture_default_str();
  cmd->add_option("--lm-form", lmo.cfg.form, "auto | sample (N x N, the NTK) | parameter (P x P)")
      ->capture_default_str();
  cmd->add_option("--lm-cond-every", lmo.cfg.cond_every,
                  "NTK condition number every N LM iterations (0: every --history-every)")
      ->capture_default_str();
  cmd->add_option("--eps-continuation", lmo.continuation, "e.g. 1/8,1/16,1/32: LM stages, each from the last");
  cmd->add_option("--ntk-every", t.ntk_every,
                  "the NTK's norms, largest eigenvalues and traces every N iterations into ntk_history.csv (0: never; "
                  "a multiple of --history-every)")
      ->capture_default_str();
  cmd->add_option("--ntk-scaling", t.ntk_scaling, "with --ntk-every: lemma (D of Lemma 3.1) | none (D = I)")
      ->capture_default_str();
}

// The training's configuration; every flag is checked here, before any work or output.
TrainConfig train_config(const TrainOptions& t) {
  TrainConfig cfg;
  cfg.schedule = parse_schedule(t.schedule);
  const LmOptions& lo = t.lm;
  cfg.adam = t.adam;
  cfg.lbfgs = t.lbfgs;
  cfg.history_every = t.history_every;
  check_train_choices(cfg, lo.optimizer, lo.cfg, !lo.continuation.empty(), Naming{});
  refuse_idle_train_flags(t);
  if (t.use_lm() && t.resume) throw UsageError("--resume is for Adam runs; an LM run is not resumable");
  if (t.log_every < 0 || t.log_every > kMaxIterations) throw UsageError("--log-every must lie in [0, 10^12]");
  if (t.checkpoint_every < 0 || t.checkpoint_every > kMaxIterations)
    throw UsageError("--checkpoint-every must lie in [0, 10^12]");
  if (t.ensemble < 1 || t.ensemble > kMaxEnsemble)
    throw UsageError("--ensemble must lie in [1, " + std::to_string(kMaxEnsemble) + "], got " +
                     std::to_string(t.ensemble));
  if (t.ensemble > 1) {
    if (t.resume) throw UsageError("--resume is for single runs; an --ensemble run is not resumable");
    if (!t.common.checkpoint.empty())
      throw UsageError("--ensemble: members differ by their seed; --checkpoint would give them one network");
    if (parse_seed(t.common.seed_text) > UINT64_MAX - static_cast<uint64_t>(t.ensemble - 1))
      throw UsageError("--ensemble: the seeds seed..seed+B-1 pass 2^64 - 1");
  }
  check_ntk_every(t.ntk_every, t.history_every, t.use_lm(), t.ntk_scaling, Naming{});
  if (t.ntk_every > 0 && t.ensemble > 1) throw UsageError("--ntk-every is for single runs, not an --ensemble");
  cfg.log_every = t.log_every;
  cfg.checkpoint_every = t.checkpoint_every;
  return cfg;
}

// Host memory of a training: Adam's parameters, moments, gradient and two snapshots; the rows and their residuals;
// the CPU's batches (1 + 2n channels of 2048 points per layer, twice); L-BFGS's workspace; LM's J and its scaled copy
// (or the CPU's channels where it forms no J), the Gram and its factor (every stage has the same rows).
double train_memory_bytes(const TrainOptions& t, const Setup& s) {
  const double n = s.pts.size(), p = s.net.n_params();
  // Every member of an ensemble holds its Adam state, rows and workspace at once (the batch); L-BFGS and LM run
  // member by member.
  double need = static_cast<double>(std::max(1, t.ensemble)) *
                (8.0 * (12.0 * p + 12.0 * n) + 8.0 * 2.0 * (1 + 2 * s.pts.dim) * 2048.0 *
                                                   std::accumulate(s.net.layers.begin(), s.net.layers.end(), 0.0));
  if (t.lbfgs.max_iter > 0) need += lbfgs_workspace_bytes(s.net.n_params(), t.lbfgs.history);
  if (t.use_lm()) {
    const bool sample = lm_sample_form(t.lm.cfg.form, s.pts.size(), s.net.n_params());
    const double m = sample ? n : p;
    // The Gram and its factorization, and J (one: the system is relinearized in place). The CPU's sample form on a
    // network with a wide layer forms no J (Backend::residuals_sample_gram): the rows' channels and the passes'
    // buffers instead.
    const std::optional<double> without_j =
        sample ? cpu_sample_gram_bytes(s.net, s.pts, s.pts.w, device_is_cpu(t.common.device)) : std::nullopt;
    need += 8.0 * (2.0 * m * m) + (without_j ? *without_j : 8.0 * n * p);
  }
  return need;
}

// The settings that identify a training, for its resume file: a resumed run must have the same.
json train_settings(const TrainOptions& t, const Setup& s, const TrainConfig& cfg) {
  json settings = run_json(t.common, s);
  settings.erase("device");
  settings["adam"] = adam_json(t.adam, cfg.schedule);
  settings["lbfgs"] = lbfgs_json(t.lbfgs);
  settings["lbfgs"]["max_fun"] = t.lbfgs.max_fun;
  settings["history_every"] = t.history_every;
  if (t.ntk_every > 0) settings["ntk_history"] = {{"every", t.ntk_every}, {"scaling", t.ntk_scaling}};
  return settings;
}

// The prediction points: 1000 points (1-D), or a closed grid of 101 x 101 (2-D) or 21 x 21 x 21 (3-D) points,
// axis 0 varying slowest, which scripts/plot.py draws as images.
std::vector<double> prediction_points(const ProblemSpec& spec) {
  const int n = spec.dim;
  return n == 1 ? linspace(spec.xa, spec.xb, 1000)
                : closed_grid_points(Box{spec.lo, spec.hi}, std::vector<int>(n, n == 2 ? 101 : 21));
}

// u of net at the points x (prediction_points).
std::vector<double> predict(Backend& be, const Mlp& net, const ProblemSpec& spec, const std::vector<double>& x) {
  std::vector<double> u(x.size() / spec.dim), du(x.size()), d2u(x.size());
  be.evaluate(net, x, u, du, d2u);
  return u;
}

// A CSV over the points x: their coordinates x[,y[,z]], then `columns`; row(os, i, exact) writes point i's values.
std::string points_csv(const ProblemSpec& spec, const std::vector<double>& x, const char* columns,
                       const std::function<void(std::ostream&, size_t, double)>& row) {
  std::ostringstream pred;
  pred.precision(17);
  const int n = spec.dim;
  const char* names[] = {"x", "y", "z"};
  for (int i = 0; i < n; ++i) pred << names[i] << ',';
  pred << columns << '\n';
  const size_t np = x.size() / n;
  const std::vector<double> exact = solution_values(spec, x);
  for (size_t i = 0; i < np; ++i) {
    const double ex = exact[i];
    for (int k = 0; k < n; ++k) pred << x[i * n + k] << ',';
    row(pred, i, ex);
    pred << '\n';
  }
  return pred.str();
}

// prediction.csv: the network's u at the points x against the exact solution.
std::string prediction_csv(const ProblemSpec& spec, const std::vector<double>& x, const std::vector<double>& u) {
  return points_csv(spec, x, "u,exact,error",
                    [&](std::ostream& os, size_t i, double ex) { os << u[i] << ',' << ex << ',' << u[i] - ex; });
}

// prediction_mean.csv of an ensemble: the members' mean and standard deviation of u, the exact solution and the
// error of the mean.
std::string prediction_mean_csv(const ProblemSpec& spec, const std::vector<double>& x, const PointwiseMean& u) {
  const std::vector<double>& mean = u.mean();
  const std::vector<double> sd = u.std_dev();
  return points_csv(spec, x, "u_mean,u_std,exact,error_of_mean", [&](std::ostream& os, size_t i, double ex) {
    os << mean[i] << ',' << sd[i] << ',' << ex << ',' << mean[i] - ex;
  });
}

// The run and its optimizers' settings, the start of a training's summary.json.
json train_settings_json(const TrainOptions& t, const Setup& s, const TrainConfig& cfg) {
  json j = run_json(t.common, s);
  j["optimizer"] = adam_json(t.adam, cfg.schedule);
  j["optimizer"]["name"] = t.lbfgs.max_iter > 0 ? "adam+lbfgs" : "adam";
  if (t.lbfgs.max_iter > 0) j["lbfgs"] = lbfgs_json(t.lbfgs);
  return j;
}

// summary.json of a training: the run, the optimizers' settings and what they did.
json train_summary(const TrainOptions& t, const Setup& s, const TrainConfig& cfg, const TrainResult& res,
                   const std::vector<LmStage>& stages, const LmTrainResult& lm) {
  json j = train_settings_json(t, s, cfg);
  if (t.lbfgs.max_iter > 0) {
    json& l = j["lbfgs"];
    l["iterations"] = res.lbfgs.iterations;
    l["evaluations"] = res.lbfgs.evaluations;
    l["stop"] = res.lbfgs.stop;
    l["final_loss"] = res.lbfgs.loss;
  }
  if (t.use_lm()) {
    json st = json::array();
    for (size_t i = 0; i < lm.stages.size(); ++i) {
      const LmResult& r = lm.stages[i];
      st.push_back({{"eps", stages[i].eps},
                    {"iterations", r.iterations},
                    {"accepted", r.accepted},
                    {"rejected", r.rejected},
                    {"cholesky_failures", r.cholesky_failures},
                    {"final_loss", r.loss},
                    {"final_mu", r.mu},
                    {"form", r.form},
                    {"stop", r.stop}});
    }
    j["lm"] = {{"mu0_relative", t.lm.cfg.mu0},
               {"loss_tol", t.lm.cfg.loss_tol},
               {"stages", st},
               {"wall_time_s", lm.wall_time_s}};
    j["eps"] = s.spec.eps;  // the last stage's
  }
  const bool diverged = !res.diverged.empty();
  j["status"] = diverged ? "diverged" : "complete";
  if (diverged) j["diverged"] = {{"iteration", res.diverged_at}, {"reason", res.diverged}};
  j["adam_iterations"] = res.adam_iterations;
  j["iterations"] = res.iterations;
  j["final_loss"] = res.final_loss;
  j["max_error"] = res.max_error;
  j["rel_l2_error"] = res.rel_l2_error;
  j["error_reference"] = error_reference_json(s.spec);
  j["wall_time_s"] = res.wall_time_s;
  j["iterations_per_s"] = res.wall_time_s > 0 ? res.iterations / res.wall_time_s : 0.0;
  return j;
}

// Host memory an ensemble adds to its training's: every member's result files, held in memory until the commit,
// and the pointwise mean of the predictions.
double ensemble_files_bytes(const TrainOptions& t, const Setup& s, const TrainConfig& cfg,
                            const std::vector<LmStage>& stages) {
  if (t.ensemble <= 1) return 0.0;
  const int n = s.spec.dim;
  const double pred_rows = n == 1 ? 1000.0 : n == 2 ? 101.0 * 101.0 : 21.0 * 21.0 * 21.0;
  double lm_iters = 0.0;
  for (const LmStage& st : stages) lm_iters += static_cast<double>(st.iterations);
  const double its = static_cast<double>(total_iterations(cfg.schedule) + t.lbfgs.max_iter) + lm_iters;
  const double per_member = 25.0 * (n + 3) * pred_rows + 250.0 * (its / static_cast<double>(t.history_every) + 2) +
                            (t.use_lm() ? 150.0 * lm_iters : 0.0) + 40.0 * s.net.n_params() + 4096.0;
  return t.ensemble * per_member + 8.0 * 6.0 * pred_rows;
}

// What the end of a training says: one member's numbers, an ensemble's spread.
struct MemberRow {
  int index;
  uint64_t seed;
  double final_loss, max_error, rel_l2_error, wall_time_s;
  long iterations;
  bool diverged;
};

// A member's folder: member_000, member_001, ...
std::string member_name(int index) {
  char name[32];
  std::snprintf(name, sizeof name, "member_%03d", index);
  return name;
}

json spread_json(const std::vector<MemberRow>& rows, double MemberRow::*field) {
  std::vector<double> v;
  for (const MemberRow& r : rows) v.push_back(r.*field);
  const Spread sp = spread(v);
  return {{"count", sp.count}, {"min", sp.min}, {"median", sp.median},
          {"mean", sp.mean},   {"max", sp.max}, {"std", sp.std}};
}

// ensemble.csv: a row per member.
std::string ensemble_csv(const std::vector<MemberRow>& rows) {
  std::ostringstream csv;
  csv.precision(17);
  csv << "member,seed,final_loss,max_error,rel_l2_error,iterations,wall_time_s,status\n";
  // A member that diverged at its first step has no finite numbers: its fields stay empty, never "nan".
  const auto num = [](double x) { return std::isfinite(x) ? fmt17(x) : std::string(); };
  for (const MemberRow& r : rows)
    csv << r.index << ',' << r.seed << ',' << num(r.final_loss) << ',' << num(r.max_error) << ',' << num(r.rel_l2_error)
        << ',' << r.iterations << ',' << r.wall_time_s << ',' << (r.diverged ? "diverged" : "complete") << '\n';
  return csv.str();
}

// The top summary.json of an ensemble: its settings and the spread of the members' results.
// How an ensemble's members train (host/ensemble.hpp): the Adam phases as one batch; L-BFGS as one batch with the
// two-loop method, member by member with liblbfgsb; LM member by member.
std::string ensemble_training(const TrainOptions& t, const TrainConfig& cfg) {
  std::string how = "Adam as one batch";
  if (cfg.lbfgs.max_iter > 0)
    how +=
        cfg.lbfgs.method == "two-loop" ? ", L-BFGS (two-loop) as one batch" : ", L-BFGS (liblbfgsb) member by member";
  if (t.use_lm()) how += ", then LM member by member";
  return how;
}

json ensemble_summary(const TrainOptions& t, const Setup& s, const TrainConfig& cfg, const std::vector<LmStage>& stages,
                      const std::vector<MemberRow>& rows, long mean_members, double wall_time_s) {
  json j = train_settings_json(t, s, cfg);
  if (t.use_lm()) {
    json st = json::array();
    for (const LmStage& stage : stages) st.push_back({{"eps", stage.eps}, {"iterations", stage.iterations}});
    j["lm"] = {{"mu0_relative", t.lm.cfg.mu0}, {"loss_tol", t.lm.cfg.loss_tol}, {"stages", st}};
  }
  const uint64_t seed = parse_seed(t.common.seed_text);
  long diverged = 0;
  for (const MemberRow& r : rows) diverged += r.diverged;
  j["ensemble"] = {{"members", rows.size()},
                   {"seeds", {seed, seed + rows.size() - 1}},  // the first and the last
                   {"seed_first", seed},
                   {"seed_last", seed + rows.size() - 1},
                   {"folders", "member_000 .. " + member_name(static_cast<int>(rows.size()) - 1)},
                   {"training", ensemble_training(t, cfg)},
                   {"diverged", diverged},
                   {"prediction_mean_members", mean_members}};
  j["spread"] = {{"final_loss", spread_json(rows, &MemberRow::final_loss)},
                 {"max_error", spread_json(rows, &MemberRow::max_error)},
                 {"rel_l2_error", spread_json(rows, &MemberRow::rel_l2_error)}};
  j["status"] = diverged > 0 ? "diverged" : "complete";
  j["wall_time_s"] = wall_time_s;
  return j;
}

int cmd_train(const TrainOptions& t) {
  const auto t0 = std::chrono::steady_clock::now();
  const CommonOptions& o = t.common;
  TrainConfig cfg = train_config(t);
  const bool use_lm = t.use_lm();
  const int members = t.ensemble;
  const uint64_t budget = memory_budget(o.memory_limit);
  Setup s = make_setup(o);
  std::vector<LmStage> stages;
  if (use_lm) {
    stages = lm_stages(t.lm, s.spec);
    start_at_first_stage(stages, s.spec, s.pts);
  }
  // --ntk-every: the NTK's path for this network and these rows (ntk's --ntk-path auto), within the budget.
  const NtkScaling ntk_scaling = parse_ntk_scaling(t.ntk_scaling);
  NtkPlan ntk_plan;
  if (t.ntk_every > 0) ntk_plan = plan_ntk_every(s.pts, s.net.n_params(), ntk_scaling, budget, Naming{});
  require_memory(
      train_memory_bytes(t, s) + ensemble_files_bytes(t, s, cfg, stages) + ntk_plan.peak_bytes, budget, "train",
      "the network's state, the rows" +
          std::string(use_lm ? ", the LM Gram and J (on the CPU for wide layers, the rows' channels instead)" : "") +
          (members > 1 ? ", the members' files" : "") + (t.ntk_every > 0 ? ", the NTK's analysis" : ""),
      "use fewer points (--nc) or a smaller network, or raise --memory-limit");
  OutputDir out(o.out, "train");
  // Read before the backend: a bad resume is one error.
  const std::string settings = train_settings(t, s, cfg).dump();
  const std::string state_path = out.file("resume.json");
  out.open();  // before the backend: a refusal of the folder is the only line; the lock guards resume.json too
  if (members == 1 && t.checkpoint_every > 0) interrupt_resume_file(state_path);  // a signal's message names it
  TrainState resumed;
  json state_file;  // the resume file's document: the fields saved beside the state (ntk_history)
  if (t.resume) {
    resumed = load_train_state(state_path, settings, s.net.n_params(), total_iterations(cfg.schedule),
                               cfg.history_every, &state_file);
    cfg.resume = &resumed;
  }
  s.backend = make_backend(o.device, o.precision, o.threads);
  std::unique_ptr<NtkRecorder> ntk_rec;  // --ntk-every
  if (t.ntk_every > 0) {
    ntk_rec = std::make_unique<NtkRecorder>(*s.backend, s.net, s.pts, ntk_scaling, ntk_plan.chunk_rows, t.ntk_every);
    if (t.resume)  // the rows below the state's iteration (the one at it comes when the run goes on)
      ntk_rec->restore(state_file.value("ntk_history", json()), resumed.iteration, "--resume: " + state_path);
    cfg.on_record = [&](long it, TrainSession& session) {
      if (ntk_rec->record(it, session) && !ntk_rec->rows().back().computed)
        std::fprintf(stderr,
                     "pinntk train: warning: the NTK at iteration %ld is not finite in the backend's precision (its "
                     "cells in ntk_history.csv are empty)\n",
                     it);
    };
  }
  if (members == 1) {  // an ensemble is not resumable: no state file
    cfg.on_checkpoint = [&](const TrainState& st) {
      try {
        // With the NTK rows the resumed run does not take again.
        const json more =
            ntk_rec != nullptr ? json{{"ntk_history", ntk_rec->state_below(st.iteration)}} : json::object();
        replace_file(state_path, train_state_json(st, settings, more));
      } catch (const std::exception& e) {  // a full disk: the run goes on, resumable from the previous state
        std::fprintf(stderr, "pinntk train: warning: %s\n", e.what());
      }
    };
  }
  std::fprintf(stderr, "pinntk train: %s, %d points, %d parameters, device %s%s\n", s.spec.name.c_str(), s.pts.size(),
               s.net.n_params(), s.backend->name().c_str(),
               t.resume ? (", resumed at iteration " + std::to_string(resumed.iteration)).c_str() : "");
  const uint64_t seed = parse_seed(o.seed_text);
  if (members > 1)
    std::fprintf(stderr, "pinntk train: ensemble of %d members, seeds %llu..%llu: %s\n", members,
                 static_cast<unsigned long long>(seed),
                 static_cast<unsigned long long>(seed + static_cast<uint64_t>(members - 1)),
                 ensemble_training(t, cfg).c_str());

  MemberTraining how;
  how.adam = cfg;
  how.use_lm = use_lm;
  how.lm = t.lm.cfg;
  how.stages = stages;
  how.history_every = t.history_every;
  std::unique_ptr<Progress> progress;
  TrainResult last;  // a single run's
  std::vector<MemberRow> rows;
  PointwiseMean mean_complete, mean_all;
  EnsembleHooks hooks;
  hooks.initial_net = [&](uint64_t member_seed) {
    return members == 1 ? s.net : init_mlp(s.net.layers, s.init, member_seed);
  };
  int progress_member = -1;  // whose progress the current line shows: -1 the batch (or the one network)
  auto start_member = [&](int i, uint64_t member_seed, const char* what) {
    if (members > 1)
      std::fprintf(stderr, "pinntk train: member %d/%d (%s, seed %llu): %s\n", i + 1, members, member_name(i).c_str(),
                   static_cast<unsigned long long>(member_seed), what);
    progress = std::make_unique<Progress>(t.log_every, -1);
    progress_member = i;
  };
  hooks.on_start = [&](int i, uint64_t member_seed) {
    if (i >= 0) return start_member(i, member_seed, "LM");
    if (members > 1)
      std::fprintf(stderr, "pinntk train: members 1..%d: Adam as one batch (loss: the largest of the members')\n",
                   members);
    progress = std::make_unique<Progress>(t.log_every, t.resume ? resumed.iteration : 0);
    progress_member = -1;
  };
  hooks.progress = [&](int member, long it, long total, double loss) {
    if (member != progress_member) start_member(member, seed + static_cast<uint64_t>(member), "L-BFGS");
    (*progress)(it, total, loss);
  };
  hooks.on_done = [&](const EnsembleMember& m) {
    // A member's files are those of `pinntk train --seed SEED` (with its place in the ensemble in summary.json).
    const std::string name = member_name(m.index), dir = members > 1 ? name + "/" : "";
    TrainOptions tm = t;
    tm.common.seed_text = std::to_string(m.seed);
    s.net = m.net;
    const std::vector<double> x = prediction_points(s.spec);
    const std::vector<double> u = predict(*s.backend, s.net, s.spec, x);
    json summary = train_summary(tm, s, cfg, m.result, stages, m.lm);
    if (members > 1) summary["ensemble"] = {{"member", m.index}, {"members", members}};
    out.write(dir + "history.csv", history_csv(m.result.history, all_history_columns()));
    if (use_lm) out.write(dir + "lm_history.csv", m.lm_history_csv);
    if (ntk_rec != nullptr) {
      const std::vector<NtkHistoryRow>& ntk_rows = ntk_rec->rows();
      out.write(dir + "ntk_history.csv", ntk_history_csv(ntk_rows));
      double ntk_s = 0.0;
      long failed = 0;
      for (const NtkHistoryRow& r : ntk_rows) {
        ntk_s += r.seconds;
        failed += !r.computed;
      }
      summary["ntk_history"] = {{"every", t.ntk_every},
                                {"scaling", ntk_scaling_name(ntk_scaling)},
                                {"rows", ntk_rows.size()},
                                {"not_finite_rows", failed},
                                {"path", ntk_plan.chunked ? "chunked" : "exact"},
                                {"path_reason", ntk_plan.reason},
                                {"time_s", ntk_s}};
    }
    out.write(dir + "prediction.csv", prediction_csv(s.spec, x, u));
    out.write(dir + "checkpoint.json", checkpoint_json(s.net));
    out.write(dir + "summary.json", summary.dump(2) + "\n");
    const TrainResult& r = m.result;
    const bool diverged = !r.diverged.empty();
    if (members == 1) {
      last = r;
      return;
    }
    rows.push_back({m.index, m.seed, r.final_loss, r.max_error, r.rel_l2_error, r.wall_time_s, r.iterations, diverged});
    mean_all.add(u);
    if (!diverged) mean_complete.add(u);
    if (diverged)
      std::fprintf(stderr, "pinntk train: %s diverged: %s\n", name.c_str(), r.diverged.c_str());
    else
      std::fprintf(stderr, "pinntk train: %s final loss %.6e, max error %.6e, relative L2 error %.6e, %.2f s\n",
                   name.c_str(), r.final_loss, r.max_error, r.rel_l2_error, r.wall_time_s);
  };
  train_ensemble(*s.backend, s.spec, s.pts, how, members, seed, hooks);

  if (members == 1) {
    out.commit();
    std::remove(state_path.c_str());  // the run has ended: nothing to resume
    if (!last.diverged.empty()) {
      std::fprintf(stderr, "pinntk: diverged: %s (results of that network in %s)\n", last.diverged.c_str(),
                   out.path().c_str());
      return kExitNumerical;
    }
    std::fprintf(stderr, "pinntk train: final loss %.6e, max error %.6e, relative L2 error %.6e, %.2f s -> %s\n",
                 last.final_loss, last.max_error, last.rel_l2_error, last.wall_time_s, out.path().c_str());
    return 0;
  }
  // The mean of the members that completed (of all when none did).
  const PointwiseMean& mean = mean_complete.count() > 0 ? mean_complete : mean_all;
  out.write("ensemble.csv", ensemble_csv(rows));
  out.write("prediction_mean.csv", prediction_mean_csv(s.spec, prediction_points(s.spec), mean));
  const json summary = ensemble_summary(t, s, cfg, stages, rows, mean.count(), seconds_since(t0));
  out.write("summary.json", summary.dump(2) + "\n");
  out.commit();
  const long diverged = summary["ensemble"]["diverged"];
  if (diverged > 0) {
    std::string which;
    for (const MemberRow& r : rows)
      if (r.diverged) which += (which.empty() ? "" : ", ") + member_name(r.index);
    std::fprintf(stderr, "pinntk: diverged: %ld of %d members (%s); every member's results in %s\n", diverged, members,
                 which.c_str(), out.path().c_str());
    return kExitNumerical;
  }
  const json& sp = summary["spread"];
  std::fprintf(stderr,
               "pinntk train: %d members: final loss median %.6e (%.6e..%.6e), max error median %.6e, relative L2 "
               "error median %.6e (std %.3e), %.2f s -> %s\n",
               members, sp["final_loss"]["median"].get<double>(), sp["final_loss"]["min"].get<double>(),
               sp["final_loss"]["max"].get<double>(), sp["max_error"]["median"].get<double>(),
               sp["rel_l2_error"]["median"].get<double>(), sp["rel_l2_error"]["std"].get<double>(),
               summary["wall_time_s"].get<double>(), out.path().c_str());
  return 0;
}

// Runs scripts/plot.py on a finished output folder with the first python3 that has matplotlib ($PINNTK_PYTHON,
// python3 on the PATH, then the system's /usr/bin/python3, where Debian's python3-matplotlib lives); false when
// none has it or plotting failed (it says so, and how to plot later).
bool plot_if_possible(const std::string& dir) {
  const char* env = std::getenv("PINNTK_PLOT_SCRIPT");
  const std::string script = env ? env : PINNTK_SOURCE_DIR "/scripts/plot.py";
  std::vector<std::string> pythons;
  if (const char* py = std::getenv("PINNTK_PYTHON")) pythons.push_back(py);
  pythons.push_back("python3");
  pythons.push_back("/usr/bin/python3");
  for (const auto& py : pythons) {
    if (std::system(("'" + py + "' -c 'import matplotlib, numpy' >/dev/null 2>&1").c_str()) != 0) continue;
    const std::string cmd = "'" + py + "' '" + script + "' '" + dir + "' 1>&2";
    if (std::system(cmd.c_str()) == 0) return true;
    std::fprintf(stderr, "pinntk reproduce: plotting failed (%s)\n", cmd.c_str());
    return false;
  }
  std::fprintf(stderr,
               "pinntk reproduce: no python3 with numpy and matplotlib (apt-get install python3-matplotlib); "
               "plot later with: python3 %s %s\n",
               script.c_str(), dir.c_str());
  return false;
}

// `pinntk reproduce`'s flags.
struct ReproduceCliOptions {
  ReproduceOptions rep;
  std::string out;
  int threads = 0;
  CLI::Option *trials_given = nullptr, *seeds_given = nullptr;
};

void add_reproduce_options(CLI::App* cmd, ReproduceCliOptions& r) {
  ReproduceOptions& rep = r.rep;
  rep.device = "auto";
  rep.precision = "fp64";
  cmd->add_option("target", rep.what, "fig1 | fig2 | fig3 | fig4 | all | lm | fig2-2d | poisson2d")->required();
  cmd->add_option("--time-budget", rep.time_budget,
                  "poisson2d: training seconds per run of D = 9873 and 116097 (default 300)");
  cmd->add_option("--poisson2d-runs", rep.poisson2d_runs, "poisson2d: only these parts, of 257,9873,116097,darcy2d");
  cmd->add_flag("--lm-eps32-only", rep.lm_eps32_only, "lm: skip the eps = 1/64 and 1/128 Darcy runs");
  cmd->add_option("--lm-runs", rep.lm_runs, "lm: only these runs, e.g. darcy_64,darcy_128");
  cmd->add_option("--concurrent-runs", rep.concurrent_runs,
                  "lm: runs at once on the GPU, each from its own host thread and stream (default 1)")
      ->capture_default_str();
  cmd->add_flag("--quick", rep.quick, "a smoke test: few iterations, trials and sweep points");
  cmd->add_option("--full", rep.full, "with --quick: these figures at the paper's settings, e.g. fig2,fig3");
  r.trials_given = cmd->add_option("--trials", rep.trials, "fig4 trials (default 10, quick 2)");
  r.seeds_given = cmd->add_option("--seeds", rep.seeds, "fig2 seeds (default 5, quick 2)");
  cmd->add_option("--init", rep.fig4_init, "fig4: the initializer, glorot-normal or glorot-truncated (DeepXDE's TF)")
      ->capture_default_str();
  cmd->add_option("--lbfgs-method", rep.lbfgs_method,
                  "every L-BFGS run (fig4, lm, poisson2d): lbfgsb (liblbfgsb, run by run on the host) or two-loop "
                  "(fig4's trials at once; on the device with --device cuda)")
      ->capture_default_str();
  cmd->add_option("--concurrent-trials", rep.concurrent_trials,
                  "fig4 trials trained at once as one batch of networks (default 0: all)")
      ->capture_default_str();
  cmd->add_option("--out", r.out, "output folder")->required();
  cmd->add_option("--device", rep.device, "auto | cpu | cuda")->capture_default_str();
  cmd->add_option("--precision", rep.precision, "fp64 | fp32 (CUDA only)")->capture_default_str();
  cmd->add_option("--threads", r.threads, "CPU threads (0, the default: all)");
}

// `pinntk problem check FILE`: what a problem file defines, and whether its forcing matches its exact solution.
struct ProblemCheckOptions {
  std::string file, eps;
  int nc = 0;
  CLI::Option* nc_given = nullptr;
};

int cmd_problem_check(const ProblemCheckOptions& o) {
  ProblemSpec spec = load_problem_file(o.file);
  ProblemOverrides ov;
  if (!o.eps.empty()) ov.eps = parse_real(o.eps, "--eps");
  if (o.nc_given->count() > 0) ov.nc = o.nc;
  apply_problem_overrides(spec, ov, Naming{});
  const PointSet pts = build_points(spec);
  std::string flagged;
  std::fputs(problem_check_report(spec, pts, &flagged).c_str(), stdout);
  std::fflush(stdout);
  if (!flagged.empty()) throw UsageError(o.file + ": " + flagged);  // a failed check is not a success
  return 0;
}

int cmd_reproduce(const ReproduceCliOptions& r) {
  const ReproduceOptions& opt = r.rep;
  if ((r.trials_given->count() > 0 && (opt.trials < 1 || opt.trials > 10000)) ||
      (r.seeds_given->count() > 0 && (opt.seeds < 1 || opt.seeds > 10000)))
    throw UsageError("--trials and --seeds must lie in [1, 10000]");
  const auto t0 = std::chrono::steady_clock::now();
  validate(opt);
  check_threads(r.threads);
  OutputDir out(r.out, "reproduce");
  out.open();  // before the backend: a refusal of the folder is the only line
  auto be = make_backend(opt.device, opt.precision, r.threads);
  std::fprintf(stderr, "pinntk reproduce %s%s on %s (%s)\n", opt.what.c_str(), opt.quick ? " --quick" : "",
               be->name().c_str(), be->precision().c_str());
  const json summary = json::parse(reproduce_into(opt, *be, out));
  std::fprintf(stderr, "pinntk reproduce: done in %.1f s -> %s\n", seconds_since(t0), out.path().c_str());
  plot_if_possible(out.path());
  std::string pictures;
  for (const std::string& fig : reproduce_figures()) {
    const std::string png = out.path() + "/" + reproduce_picture(fig);
    if (summary.contains(fig) && access(png.c_str(), R_OK) == 0) pictures += "  " + png + "\n";
  }
  std::fprintf(stderr, "pinntk reproduce: headline numbers beside the paper's\n%s",
               headline_lines(headlines(summary)).c_str());
  if (!pictures.empty()) std::fprintf(stderr, "pinntk reproduce: pictures\n%s", pictures.c_str());
  std::fprintf(stderr, "pinntk reproduce: index page %s/README.md\n", out.path().c_str());
  return 0;
}

}  // namespace
}  // namespace pinntk

int main(int argc, char** argv) {
  using namespace pinntk;
  ensure_fast_openblas_kernels(argv);
  CLI::App app{
      "pinntk: physics-informed neural networks and their neural tangent kernel for oscillatory elliptic "
      "problems"};
  app.set_version_flag("--version", PINNTK_VERSION);
  install_interrupt_handlers();
  set_work_progress_sink([](const std::string& line) { std::fprintf(stderr, "pinntk %s\n", line.c_str()); });
  app.require_subcommand(1);

  NtkOptions ntk_opts;
  CLI::App* ntk = app.add_subcommand("ntk", "residual Jacobian, NTK norms and spectra at the current network");
  add_ntk_options(ntk, ntk_opts);
  TrainOptions train_opts;
  CLI::App* train = app.add_subcommand("train", "train the PINN: Adam, then L-BFGS or Levenberg-Marquardt");
  add_train_options(train, train_opts);
  ReproduceCliOptions rep_opts;
  CLI::App* repro = app.add_subcommand(
      "reproduce", "the paper's figures 1-4 and the studies beyond it (lm, fig2-2d, poisson2d) as data and plots");
  add_reproduce_options(repro, rep_opts);
  ProblemCheckOptions check_opts;
  CLI::App* problem = app.add_subcommand("problem", "problem files (problems/README.md)");
  problem->require_subcommand(1);
  CLI::App* check = problem->add_subcommand(
      "check", "print what a problem file defines and check its forcing against its exact solution");
  check->add_option("file", check_opts.file, "the problem file (JSON or TOML, problems/README.md)")->required();
  check->add_option("--eps", check_opts.eps, "the constant eps (default: the file's)");
  check_opts.nc_given = check->add_option("--nc", check_opts.nc, "collocation points (default: the file's)");

  // A flag given with an empty value ("--eps ''") is a mistake, not "not given"; only --schedule "" has a meaning
  // (no Adam phases).
  const CLI::Validator non_empty([](std::string& v) { return v.empty() ? std::string("empty value") : std::string(); },
                                 "NON-EMPTY");
  for (CLI::App* sub : {ntk, train, repro, check})
    for (CLI::Option* opt : sub->get_options())
      if (opt->get_expected_min() > 0 && opt->get_name() != "--schedule") opt->check(non_empty);

  // An unknown command by name (CLI11 would only say that a subcommand is required).
  const auto unknown_command = [&](const CLI::App& parent, int at, const std::string& what) -> bool {
    if (at >= argc || argv[at][0] == '-') return false;
    std::string known;
    for (const CLI::App* sub : parent.get_subcommands({})) {
      if (sub->get_name() == argv[at]) return false;
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    std::fprintf(stderr, "pinntk: error: unknown %s '%s' (known: %s; see pinntk --help)\n", what.c_str(), argv[at],
                 known.c_str());
    return true;
  };
  // A flag given twice is one line naming it (CLI11 would say "At Most 1 required but received 2").
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) continue;
    const std::string flag = a.substr(0, a.find('='));
    for (int k = 1; k < i; ++k)
      if (std::string(argv[k]).substr(0, std::string(argv[k]).find('=')) == flag) {
        std::fprintf(stderr, "pinntk: error: %s is given twice; give it once\n", flag.c_str());
        return kExitUsage;
      }
  }
  if (unknown_command(app, 1, "command") ||
      (argc > 1 && std::string(argv[1]) == "problem" && unknown_command(*problem, 2, "problem command")))
    return kExitUsage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "pinntk: error: %s (see pinntk --help)\n", e.what());
    return kExitUsage;
  }
  for (const CLI::Option* opt : train->get_options())
    if (opt->count() > 0) train_opts.given.insert(opt->get_name());
  try {
    if (ntk->parsed()) return cmd_ntk(ntk_opts);
    if (repro->parsed()) return cmd_reproduce(rep_opts);
    if (problem->parsed()) return cmd_problem_check(check_opts);
    return cmd_train(train_opts);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "pinntk: error: %s\n", e.what());
    return kExitUsage;
  } catch (const NumericalError& e) {
    std::fprintf(stderr, "pinntk: not finite: %s\n", e.what());
    return kExitNumerical;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "pinntk: failed: out of memory (lower --nc or the network, or set --memory-limit)\n");
    return kExitInternal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinntk: failed: %s\n", e.what());
    return kExitInternal;
  }
}
