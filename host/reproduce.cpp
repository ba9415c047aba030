#include "host/reproduce.hpp"

#include <algorithm>          // std::find_if
#include <atomic>             // std::atomic
#include <chrono>             // std::chrono
#include <cmath>              // std::log, std::sqrt, std::hypot, INFINITY
#include <complex>            // std::complex
#include <cstdio>             // std::fprintf
#include <exception>          // std::exception_ptr
#include <nlohmann/json.hpp>  // nlohmann::json
#include <set>                // std::set
#include <sstream>            // std::ostringstream
#include <thread>             // std::thread
#include <utility>            // std::move

#include "common/errors.hpp"               // UsageError
#include "host/io/history_csv.hpp"         // history_csv
#include "host/io/npy.hpp"                 // npy_bytes
#include "host/io/optimizer_json.hpp"      // schedule_json
#include "host/ntk.hpp"                    // analyze_ntk
#include "host/optim/lm.hpp"               // minimize_lm, LmConfig
#include "host/optim/lm_continuation.hpp"  // continue_with_lm, LmStage
#include "host/parse.hpp"                  // split_list, fmt17
#include "host/timing.hpp"                 // seconds_since
#include "host/train.hpp"                  // train_adam

using nlohmann::json;

namespace pinntk {
namespace {

// A figure is the paper's experiment only when its trainings ran to the end: a diverged one stops the figure.
TrainResult finite_run(TrainResult r, const std::string& what) {
  if (!r.diverged.empty()) throw NumericalError(what + ": " + r.diverged);
  return r;
}

}  // namespace

Slope loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += std::log(x[i]) / n;
    my += std::log(y[i]) / n;
  }
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
    sxy += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
  }
  Slope s;
  s.slope = sxy / sxx;
  double rss = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::log(y[i]) - my - s.slope * (std::log(x[i]) - mx);
    rss += e * e;
  }
  s.stderr_ = n > 2 ? std::sqrt(rss / (n - 2) / sxx) : 0.0;
  return s;
}

namespace {

using Clock = std::chrono::steady_clock;

// Sec. 4.2's Adam schedules for the Poisson and Darcy PINNs (followed by L-BFGS), for Fig. 4 and the LM study.
const std::vector<Phase> kPoissonSchedule = {{10000, 1e-4}, {10000, 1e-5}, {20000, 1e-6}, {20000, 1e-7}};
const std::vector<Phase> kDarcySchedule = {{10000, 1e-3}, {10000, 1e-4}, {20000, 1e-5}, {20000, 1e-6}};
constexpr long kPaperLbfgsIterations = 15000;

TrainConfig adam_config(const std::vector<Phase>& schedule, long lbfgs_iters, long history_every,
                        const std::string& lbfgs_method = "lbfgsb") {
  TrainConfig cfg;
  cfg.schedule = schedule;
  cfg.history_every = history_every;
  cfg.log_every = 5000;
  cfg.lbfgs.max_iter = lbfgs_iters;
  cfg.lbfgs.method = lbfgs_method;
  return cfg;
}

// "about 2 min 10 s left" from the time `elapsed` that `done` of `total` equal units took.
std::string time_left(double elapsed, double done, double total) {
  if (done <= 0 || total <= done) return "";
  const long s = std::lround(elapsed / done * (total - done));
  return ", about " + (s >= 60 ? std::to_string(s / 60) + " min " : std::string()) + std::to_string(s % 60) + " s left";
}

// A progress line for long trainings (every 5000 iterations, see adam_config; LM: fewer), with the time left; the
// loss named `loss_name`.
ProgressFn progress_line(const std::string& label, long every = 5000, const char* loss_name = "loss") {
  const auto t0 = Clock::now();
  return [label, t0, every, loss_name](long it, long total, double loss) {
    if (it % every == 0)
      std::fprintf(stderr, "    %s: iteration %ld/%ld, %s %.4e%s\n", label.c_str(), it, total, loss_name, loss,
                   time_left(seconds_since(t0), it, total).c_str());
  };
}

// The same for a batch's Adam (member -1 of a BatchProgressFn; L-BFGS's members alone print nothing: their lines
// would interleave), whose loss is the largest of its members'.
BatchProgressFn batch_progress_line(const std::string& label, long every = 5000) {
  return [line = progress_line(label, every, "largest loss")](int member, long it, long total, double loss) {
    if (member < 0) line(it, total, loss);
  };
}

// Mean and sample standard deviation.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x / v.size();
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / (v.size() - 1)) : 0.0};
}

// ---- NTK sweeps against eps: Fig. 2 (Section 4.1) and its 2-D analogue fig2-2d ----

// One panel of a sweep: the network, its initialization and the Adam steps taken before the NTK (0: at init).
struct SweepPanel {
  std::string tag, key, title;  // "a" (the CSV's panel column), "a_init_normal" (the summary's fits), a description
  std::vector<int> layers;
  std::string init;
  long adam_steps = 0;
  double lr = 0.0;
};

// ||K_uu||_F, lambda_1..3 of K_uu and rho(K_bb) (Lemma 3.1's scaling) for every panel, seed and eps.
struct NtkSweep {
  std::string figure;  // for progress lines: "fig2"
  ProblemSpec spec;    // the problem; eps is set per sweep point
  std::vector<int> inv_eps;
  int seeds = 0;
  std::vector<SweepPanel> panels;
};

constexpr int kSweepQuantities = 5;
const char* const kSweepQuantity[kSweepQuantities] = {"frobenius_Kuu", "lambda1", "lambda2", "lambda3",
                                                      "spectral_radius_Kbb"};

// The log-log slopes of one quantity against eps over seeds (values[seed][eps]): each seed's slope (their mean and
// sample standard deviation), the slope of the geometric mean over seeds, and the pooled fit of all points.
json slope_fits(const std::vector<double>& eps, const std::vector<std::vector<double>>& values) {
  const size_t seeds = values.size();
  std::vector<double> per_seed, geo(eps.size(), 0.0), all_x, all_y;
  for (const auto& v : values) {
    per_seed.push_back(loglog_slope(eps, v).slope);
    for (size_t e = 0; e < eps.size(); ++e) geo[e] += std::log(v[e]) / seeds;
    all_x.insert(all_x.end(), eps.begin(), eps.end());
    all_y.insert(all_y.end(), v.begin(), v.end());
  }
  for (double& g : geo) g = std::exp(g);
  const auto ms = mean_std(per_seed);
  const Slope mean_fit = loglog_slope(eps, geo), pooled = loglog_slope(all_x, all_y);
  return {{"slope_mean_over_seeds", ms.first},
          {"slope_std_over_seeds", ms.second},
          {"slope_of_geometric_mean", mean_fit.slope},
          {"slope_of_geometric_mean_stderr", mean_fit.stderr_},
          {"slope_pooled", pooled.slope},
          {"slope_pooled_stderr", pooled.stderr_},
          {"per_seed", per_seed}};
}

// Runs the sweep; the CSV (one row per panel, seed and eps) goes to csv_name, the fits per panel come back.
json ntk_sweep(const NtkSweep& sw, Backend& be, OutputDir& out, const std::string& csv_name) {
  const auto t0 = Clock::now();
  const int seeds = sw.seeds, nq = kSweepQuantities;
  std::ostringstream csv;
  csv << "panel,seed,inv_eps,eps,frobenius_Kuu,lambda1,lambda2,lambda3,spectral_radius_Kbb\n";
  // values[panel][quantity][seed] -> series over eps
  std::vector<std::vector<std::vector<std::vector<double>>>> values(
      sw.panels.size(), std::vector<std::vector<std::vector<double>>>(nq, std::vector<std::vector<double>>(seeds)));
  std::vector<double> eps_list;
  for (int inv : sw.inv_eps) eps_list.push_back(1.0 / inv);
  const size_t n_eps = sw.inv_eps.size();
  for (size_t panel = 0; panel < sw.panels.size(); ++panel) {
    const SweepPanel& pn = sw.panels[panel];
    // Every (seed, eps) network of the panel, seed-major; a panel that trains trains them all as one batch
    // (issue 13: one launch per step for all of them on a GPU, one thread per member on the CPU), each member's
    // result the one it gets alone (train_adam_batch).
    std::vector<ProblemSpec> specs;
    std::vector<PointSet> pts;
    std::vector<Mlp> nets;
    for (int seed = 0; seed < seeds; ++seed)
      for (int inv : sw.inv_eps) {
        specs.push_back(sw.spec);
        specs.back().eps = 1.0 / inv;
        pts.push_back(build_points(specs.back()));
        nets.push_back(init_mlp(pn.layers, pn.init, static_cast<uint64_t>(seed)));
      }
    if (pn.adam_steps > 0) {
      // A line every 2000 steps: the batch is most of the figure's time (about a minute on 2 cores).
      TrainConfig cfg = adam_config({{pn.adam_steps, pn.lr}}, 0, pn.adam_steps);
      cfg.log_every = 2000;
      const std::vector<TrainResult> got =
          train_adam_batch(be, nets, specs, pts, cfg,
                           batch_progress_line(sw.figure + " (" + pn.tag + ") " + std::to_string(nets.size()) +
                                                   " trainings as one batch",
                                               cfg.log_every));
      for (size_t i = 0; i < got.size(); ++i) {
        const std::string what =
            sw.figure + " seed " + std::to_string(i / n_eps) + " 1/eps = " + std::to_string(sw.inv_eps[i % n_eps]);
        if (got[i].failed) throw NumericalError(what + ": " + got[i].diverged);
        finite_run(got[i], what);
      }
      std::fprintf(stderr, "  %s (%s) %zu trainings of %ld Adam steps as one batch done (%.0f s)\n", sw.figure.c_str(),
                   pn.tag.c_str(), nets.size(), pn.adam_steps, seconds_since(t0));
    }
    const auto tn = Clock::now();  // the kernels' part: its time left counts from here, after the batch
    for (int seed = 0; seed < seeds; ++seed) {
      for (size_t e = 0; e < n_eps; ++e) {
        const int inv = sw.inv_eps[e];
        const size_t i = static_cast<size_t>(seed) * n_eps + e;
        const ProblemSpec& spec = specs[i];
        const NtkResult r = analyze_ntk(be, nets[i], pts[i], NtkScaling::Lemma, false);
        const double q[kSweepQuantities] = {r.frobenius_Kuu, r.spectrum_Kuu[0], r.spectrum_Kuu[1], r.spectrum_Kuu[2],
                                            r.spectrum_Kbb.empty() ? 0.0 : r.spectrum_Kbb[0]};
        csv << pn.tag << ',' << seed << ',' << inv << ',' << fmt17(spec.eps);
        for (int k = 0; k < nq; ++k) {
          csv << ',' << fmt17(q[k]);
          values[panel][k][seed].push_back(q[k]);
        }
        csv << '\n';
      }
      const bool next_trains = seed + 1 == seeds && panel + 1 < sw.panels.size() && sw.panels[panel + 1].adam_steps > 0;
      std::fprintf(stderr, "  %s (%s) seed %d of %d done (%.0f s)%s\n", sw.figure.c_str(), pn.tag.c_str(), seed + 1,
                   seeds, seconds_since(t0),
                   next_trains ? ", the next panel's trainings (one batch) take most of the time"
                               : time_left(seconds_since(tn), seed + 1, seeds).c_str());
    }
  }
  json fits;
  for (size_t panel = 0; panel < sw.panels.size(); ++panel) {
    json p;
    for (int k = 0; k < nq; ++k) p[kSweepQuantity[k]] = slope_fits(eps_list, values[panel][k]);
    fits[sw.panels[panel].key] = p;
  }
  out.write(csv_name, csv.str());
  return fits;
}

// The sweep of figure fig on a preset's problem, over --seeds seeds (default 5, quick 2).
NtkSweep sweep_of(const ReproduceOptions& opt, const std::string& fig, const std::string& preset) {
  NtkSweep sw;
  sw.figure = fig;
  sw.spec = problem_preset(preset);
  sw.seeds = opt.seeds > 0 ? opt.seeds : (quick_for(opt, fig) ? 2 : 5);
  return sw;
}

// ---- Figure 2 (Section 4.1): ||K_uu||_F and lambda_1..3 of K_uu against eps, (a) at init, (b) after Adam ----
json figure2(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "fig2");
  NtkSweep sw = sweep_of(opt, "fig2", "darcy-ntk");
  if (quick) {
    sw.inv_eps = {10, 20, 40, 80};
  } else {
    for (int k = 10; k <= 100; k += 5) sw.inv_eps.push_back(k);
  }
  const long steps = quick ? 300 : 10000;
  sw.panels = {{"a", "a_init_normal", "at initialization (normal)", {1, 50, 1}, "normal", 0, 0.0},
               {"b", "b_glorot_adam", "after Adam (Glorot)", {1, 50, 1}, "glorot-normal", steps, 1e-5}};
  std::fprintf(stderr, "  fig2: %zu values of eps x %d seeds; (a) at initialization, (b) after %ld Adam steps each%s\n",
               sw.inv_eps.size(), sw.seeds, steps, quick ? " (quick)" : " (the paper's settings)");
  const json fits = ntk_sweep(sw, be, out, "fig2/sweep.csv");
  json j = {
      {"figure", "fig2"},
      {"problem", "darcy-ntk"},
      {"layers", {1, 50, 1}},
      {"nc", 256},
      {"ntk_scaling", "lemma"},
      {"inv_eps", sw.inv_eps},
      {"seeds", sw.seeds},
      {"panel_b_adam", {{"iterations", steps}, {"lr", 1e-5}, {"init", "glorot-normal"}}},
      {"fits", fits},
      {"paper", "||K_uu||_F and lambda_1..3 grow like eps^-2 (slope -2); rho(K_bb) essentially independent of eps"},
      {"quick", quick},
      {"wall_time_s", seconds_since(t0)}};
  out.write("fig2/summary.json", j.dump(2) + "\n");
  return j;
}

// ---- Fig. 2 in two dimensions: the same sweep on darcy2d-ntk (Sec. 3's sketch for n > 1) ----
json figure2_2d(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "fig2-2d");
  NtkSweep sw = sweep_of(opt, "fig2-2d", "darcy2d-ntk");  // omega = 2 pi on [-pi, pi]^2, 64 points on each side
  const int side = quick ? 16 : 64;                       // the interior grid, fixed over eps as the paper keeps Nc
  sw.spec.nc = side * side;
  sw.inv_eps = quick ? std::vector<int>{2, 4, 8} : std::vector<int>{2, 3, 4, 6, 8, 12, 16, 24, 32};
  sw.panels = {{"a", "a_init_normal", "2,50,1 at initialization (normal)", {2, 50, 1}, "normal", 0, 0.0},
               {"b",
                "b_init_glorot",
                "2,40,40,40,40,1 at initialization (Glorot)",
                {2, 40, 40, 40, 40, 1},
                "glorot-normal",
                0,
                0.0}};
  // The coefficient a(x/eps) has period eps along each axis: the grid's spacing h = 2 pi/(side + 1) samples one
  // period with eps/h points, fewer than one from 1/eps = (side + 1)/(2 pi) on (aliased, as in the paper's 1-D sweep,
  // whose 256 points resolve no period below eps = 1/41).
  const double h = 2.0 * M_PI / (side + 1);
  json per_period = json::array();
  for (int inv : sw.inv_eps) per_period.push_back(1.0 / inv / h);
  std::fprintf(stderr,
               "  fig2-2d: darcy2d-ntk on a %d x %d grid, %zu values of eps x %d seeds, both panels at "
               "initialization%s; the grid samples a period of a(x/eps) with %.2g (1/eps = %d) to %.2g (1/eps = %d) "
               "points per axis\n",
               side, side, sw.inv_eps.size(), sw.seeds, quick ? " (quick)" : "", per_period.front().get<double>(),
               sw.inv_eps.front(), per_period.back().get<double>(), sw.inv_eps.back());
  const json fits = ntk_sweep(sw, be, out, "fig2-2d/fig2_2d.csv");
  json panels = json::array();
  for (const auto& p : sw.panels)
    panels.push_back({{"panel", p.tag},
                      {"key", p.key},
                      {"layers", p.layers},
                      {"init", p.init},
                      {"n_params", init_mlp(p.layers, p.init, 0).n_params()},
                      {"adam_iterations", p.adam_steps}});
  json j = {{"figure", "fig2-2d"},
            {"problem", "darcy2d-ntk"},
            {"omega", sw.spec.omega},
            {"grid", std::to_string(side) + " x " + std::to_string(side) + " interior grid of [-pi, pi]^2"},
            {"nc", sw.spec.nc},
            {"nb", sw.spec.nb},
            {"ntk_scaling", "lemma"},
            {"panels", panels},
            {"inv_eps", sw.inv_eps},
            {"grid_points_per_period", per_period},
            {"resolution_note",
             "a(x/eps) has period eps; the fixed grid samples a period with eps/h points per axis "
             "(grid_points_per_period), below 1 at the larger 1/eps, where the collocation points alias the "
             "oscillation"},
            {"seeds", sw.seeds},
            {"fits", fits},
            {"paper",
             "Sec. 3 sketches (does not prove) that ||K||_F blows up for n > 1 as in 1-D, where ||K_uu||_F and "
             "lambda_1 grow like eps^-2 (slope -2)"},
            {"quick", quick},
            {"wall_time_s", seconds_since(t0)}};
  out.write("fig2-2d/summary.json", j.dump(2) + "\n");
  return j;
}

// ---- Figure 3 (Section 4.1): the full NTK spectrum at eps = 1/80 at initialization and after training ----
json figure3(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "fig3");
  const long steps = quick ? 300 : 10000;
  ProblemSpec spec = problem_preset("darcy-ntk");
  spec.eps = 1.0 / 80;
  const PointSet pts = build_points(spec);
  json j = {{"figure", "fig3"}, {"problem", "darcy-ntk"}, {"eps", spec.eps}, {"layers", {1, 50, 1}},
            {"nc", 256},        {"ntk_scaling", "lemma"}, {"quick", quick}};
  std::vector<std::vector<double>> spectra;
  for (int panel = 0; panel < 2; ++panel) {
    Mlp net = init_mlp({1, 50, 1}, panel == 0 ? "normal" : "glorot-normal", 0);
    if (panel == 1) finite_run(train_adam(be, net, spec, pts, adam_config({{steps, 1e-5}}, 0, steps), nullptr), "fig3");
    const NtkResult r = analyze_ntk(be, net, pts, NtkScaling::Lemma, false);
    const std::string tag = panel == 0 ? "init" : "trained";
    out.write("fig3/spectrum_K_" + tag + ".npy", npy_bytes(r.spectrum_K, {r.spectrum_K.size()}));
    out.write("fig3/spectrum_Kuu_" + tag + ".npy", npy_bytes(r.spectrum_Kuu, {r.spectrum_Kuu.size()}));
    const double lmax = r.spectrum_K.front(), lmin = r.spectrum_K.back();
    // K has rank at most min(N, P): with N = 258 > P = 151 the last N - P eigenvalues are exactly zero.
    const size_t rank = std::min<size_t>(r.spectrum_K.size(), static_cast<size_t>(r.n_params));
    const double lmin_nz = r.spectrum_K[rank - 1];
    // Numerical rank: eigenvalues above N eps_machine lambda_max, the level fp64 can resolve.
    const double tol = r.spectrum_K.size() * 2.220446049250313e-16 * lmax;
    const size_t nrank = std::count_if(r.spectrum_K.begin(), r.spectrum_K.end(), [&](double e) { return e > tol; });
    j[tag] = {{"init", panel == 0 ? "normal" : "glorot-normal"},
              {"adam_iterations", panel == 0 ? 0 : steps},
              {"lambda_max", lmax},
              {"lambda_min", lmin},
              {"lambda_max_over_lambda_min", lmin > 0 ? json(lmax / lmin) : json(nullptr)},
              {"rank_bound", rank},
              {"numerical_rank", nrank},
              {"lambda_max_over_smallest_resolved", lmax / r.spectrum_K[nrank - 1]},
              {"lambda_min_of_the_first_rank", lmin_nz},
              {"lambda_max_over_lambda_min_of_the_first_rank", lmin_nz > 0 ? json(lmax / lmin_nz) : json(nullptr)},
              {"lambda1_over_lambda2", r.spectrum_K[0] / r.spectrum_K[1]},
              {"eigenvalues_top5", std::vector<double>(r.spectrum_K.begin(), r.spectrum_K.begin() + 5)},
              {"eigenvalues_above_1e-6_lambda_max",
               std::count_if(r.spectrum_K.begin(), r.spectrum_K.end(), [&](double e) { return e > 1e-6 * lmax; })}};
    spectra.push_back(r.spectrum_K);
  }
  std::ostringstream csv;
  csv << "index,eigenvalue_init,eigenvalue_trained\n";
  for (size_t i = 0; i < spectra[0].size(); ++i)
    csv << i << ',' << fmt17(spectra[0][i]) << ',' << fmt17(spectra[1][i]) << '\n';
  j["paper"] =
      "at init a handful of large eigenvalues, the rest near 0; after training one dominant eigenvalue; "
      "lambda_max/lambda_min large in both";
  j["wall_time_s"] = seconds_since(t0);
  out.write("fig3/spectra.csv", csv.str());
  out.write("fig3/summary.json", j.dump(2) + "\n");
  return j;
}

// ---- Figure 1 (Section 2, Appendix A): the frequency principle on eq. (4) ----
json figure1(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "fig1");
  const ProblemSpec spec = problem_preset("poisson-sines");  // 4x60, Nc = 512, lambda = 80
  const PointSet pts = build_points(spec);
  Mlp net = init_mlp(spec.default_layers, spec.default_init, 0);
  const std::vector<Phase> schedule =
      quick ? std::vector<Phase>{{100, 1e-2}, {400, 1e-3}}
            : std::vector<Phase>{{100, 1e-2}, {1000, 1e-3}, {15000, 1e-4}, {30000, 1e-5}, {10000, 1e-6}};
  const long every = quick ? 5 : 10;
  // |e_k| of e = u_true - u_NN on the periodic grid x_j = -pi + 2 pi j / Nc (eq. 6), normalized by Nc.
  const int nc = spec.nc;
  std::vector<double> grid(nc);
  for (int j = 0; j < nc; ++j) grid[j] = -M_PI + 2.0 * M_PI * j / nc;
  const int freqs[4] = {1, 5, 15, 55};
  std::ostringstream dft;
  dft << "iteration,e1,e5,e15,e55\n";
  std::vector<double> u(nc), du(nc), d2u(nc);
  TrainConfig cfg = adam_config(schedule, 0, every);
  cfg.on_record = [&](long it, TrainSession& s) {
    s.evaluate(grid, u, du, d2u);
    dft << it;
    for (int m : freqs) {
      std::complex<double> acc(0.0, 0.0);
      for (int j = 0; j < nc; ++j)
        acc += (exact_solution(spec, grid[j]).v - u[j]) * std::polar(1.0, -2.0 * M_PI * m * j / nc);
      dft << ',' << fmt17(std::abs(acc) / nc);
    }
    dft << '\n';
  };
  std::fprintf(stderr, "  fig1: %ld Adam steps on poisson-sines (4x60, Nc = 512)\n", total_iterations(schedule));
  const TrainResult res = finite_run(train_adam(be, net, spec, pts, cfg, progress_line("fig1")), "fig1");
  json j = {{"figure", "fig1"},
            {"problem", "poisson-sines"},
            {"layers", spec.default_layers},
            {"init", spec.default_init},
            {"nc", spec.nc},
            {"lambda", spec.lambda},
            {"schedule", schedule_json(schedule)},
            {"dft_every", every},
            {"dft_grid", "x_j = -pi + 2 pi j / Nc, j = 0..Nc-1; |e_k| = |sum_j e(x_j) exp(-2 pi i k j / Nc)| / Nc"},
            {"final_loss", res.final_loss},
            {"max_error", res.max_error},
            {"paper_max_error", 1.26e-2},
            {"quick", quick},
            {"wall_time_s", seconds_since(t0)}};
  out.write("fig1/dft.csv", dft.str());
  out.write("fig1/history.csv",
            history_csv(res.history, {HistoryColumn::Iteration, HistoryColumn::Loss, HistoryColumn::MaxError}));
  out.write("fig1/summary.json", j.dump(2) + "\n");
  return j;
}

// ---- Figure 4 (Section 4.2): regression, Poisson PINN and Darcy PINN of eq. (26), trial-mean network ----
json figure4(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "fig4");
  const int trials = opt.trials > 0 ? opt.trials : (quick ? 2 : 10);
  const long lbfgs = quick ? 50 : kPaperLbfgsIterations;
  struct Case {
    const char* name;
    const char* problem;
    std::vector<Phase> full_schedule, quick_schedule;
    double paper_max, paper_var;
  };
  const std::vector<Case> cases = {
      {"regression", "regression-twoscale", {{20000, 1e-2}, {10000, 1e-3}}, {{400, 1e-2}, {200, 1e-3}}, 2.65e-3, 3e-7},
      {"poisson",
       "poisson-twoscale",
       kPoissonSchedule,
       {{200, 1e-4}, {100, 1e-5}, {100, 1e-6}, {100, 1e-7}},
       7.20e-2,
       1.12e-1},
      {"darcy",
       "darcy-twoscale",
       kDarcySchedule,
       {{200, 1e-3}, {100, 1e-4}, {100, 1e-5}, {100, 1e-6}},
       4.31e-1,
       2.83e-1}};
  json j = {{"figure", "fig4"},
            {"eps", 1.0 / 32},
            {"layers", {1, 40, 40, 40, 40, 1}},
            {"init", opt.fig4_init},
            {"trials", trials},
            {"lbfgs_max_iterations", lbfgs},
            {"lbfgs_method", opt.lbfgs_method},
            {"quick", quick}};
  for (const auto& c : cases) {
    const auto tc = Clock::now();
    const ProblemSpec spec = problem_preset(c.problem);
    const PointSet pts = build_points(spec);
    const std::vector<double> x = linspace(spec.xa, spec.xb, 1000);
    std::vector<std::vector<double>> us;
    std::ostringstream tcsv;
    tcsv << "trial,final_loss,max_error,adam_iterations,lbfgs_iterations,lbfgs_stop\n";
    // Trials are independent seeds, trained as batches of --concurrent-trials (default: all) networks: on the CUDA
    // backend every launch serves the whole batch; on the CPU the members are stepped one after another. Each
    // trial's result is the one it gets alone (train_adam_batch).
    std::vector<TrainResult> results(trials);
    us.assign(trials, std::vector<double>(x.size()));
    const int per_batch = opt.concurrent_trials > 0 ? std::min(opt.concurrent_trials, trials) : trials;
    TrainConfig cfg = adam_config(quick ? c.quick_schedule : c.full_schedule, lbfgs, 1000);
    cfg.lbfgs.method = opt.lbfgs_method;
    for (int first = 0; first < trials; first += per_batch) {
      const int count = std::min(per_batch, trials - first);
      std::vector<Mlp> nets;
      for (int t = first; t < first + count; ++t)
        nets.push_back(init_mlp(spec.default_layers, opt.fig4_init, static_cast<uint64_t>(t)));
      const std::string name =
          std::string("fig4 ") + c.name + " trials " + std::to_string(first + 1) + ".." + std::to_string(first + count);
      const std::vector<TrainResult> got = train_adam_batch(
          be, nets, std::vector<ProblemSpec>(count, spec), std::vector<PointSet>(count, pts), cfg,
          count > 1 ? batch_progress_line(name)
                    : [line = progress_line(name)](int, long it, long total, double loss) { line(it, total, loss); });
      for (int i = 0; i < count; ++i) {
        const int t = first + i;
        const std::string trial = std::string("fig4 ") + c.name + " trial " + std::to_string(t + 1);
        if (got[i].failed) throw NumericalError(trial + ": " + got[i].diverged);
        results[t] = finite_run(got[i], trial);
        std::vector<double> du(x.size()), d2u(x.size());
        be.evaluate(nets[i], x, us[t], du, d2u);
        std::fprintf(stderr, "  fig4 %s trial %d of %d: max error %.3e, L-BFGS %ld iterations (%s), %.0f s\n", c.name,
                     t + 1, trials, results[t].max_error, results[t].lbfgs.iterations, results[t].lbfgs.stop.c_str(),
                     seconds_since(t0));
      }
    }
    for (int t = 0; t < trials; ++t)
      tcsv << t << ',' << fmt17(results[t].final_loss) << ',' << fmt17(results[t].max_error) << ','
           << results[t].adam_iterations << ',' << results[t].lbfgs.iterations << ",\"" << results[t].lbfgs.stop
           << "\"\n";
    // Every trial's history (a row every 1000 iterations of Adam, then of L-BFGS): the error along the way, e.g.
    // where L-BFGS stood after the paper's few thousand iterations.
    std::string hcsv = "trial,";
    for (int t = 0; t < trials; ++t) {
      const std::string h =
          history_csv(results[t].history, {HistoryColumn::Iteration, HistoryColumn::Optimizer, HistoryColumn::Loss,
                                           HistoryColumn::MaxError, HistoryColumn::RelL2Error});
      const size_t body = h.find('\n') + 1;
      if (t == 0) hcsv += h.substr(0, body);
      for (size_t at = body; at < h.size();) {
        const size_t end = h.find('\n', at) + 1;
        hcsv += std::to_string(t) + ',' + h.substr(at, end - at);
        at = end;
      }
    }
    std::ostringstream pcsv;
    pcsv << "x,exact,mean_u,error,variance\n";
    double max_err = 0, mean_var = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      std::vector<double> at(trials);
      for (int t = 0; t < trials; ++t) at[t] = us[t][i];
      const auto ms = mean_std(at);
      const double ex = exact_solution(spec, x[i]).v, var = ms.second * ms.second;
      max_err = std::max(max_err, std::fabs(ex - ms.first));
      mean_var += var / x.size();
      pcsv << fmt17(x[i]) << ',' << fmt17(ex) << ',' << fmt17(ms.first) << ',' << fmt17(ex - ms.first) << ','
           << fmt17(var) << '\n';
    }
    j[c.name] = {{"problem", c.problem},
                 {"trials_per_batch", per_batch},
                 {"n", pts.size()},
                 {"schedule", schedule_json(quick ? c.quick_schedule : c.full_schedule)},
                 {"max_error_of_mean", max_err},
                 {"mean_variance", mean_var},
                 {"paper_max_error", c.paper_max},
                 {"paper_mean_variance", c.paper_var},
                 {"wall_time_s", seconds_since(tc)}};
    out.write(std::string("fig4/") + c.name + "_mean.csv", pcsv.str());
    out.write(std::string("fig4/") + c.name + "_trials.csv", tcsv.str());
    out.write(std::string("fig4/") + c.name + "_history.csv", hcsv);
  }
  j["variance"] = "at each of the 1000 points the sample variance over trials of the error, averaged over points";
  j["wall_time_s"] = seconds_since(t0);
  out.write("fig4/summary.json", j.dump(2) + "\n");
  return j;
}

// ---- Beyond the paper: Levenberg-Marquardt on the Section 4.2 PINNs, with and without warm start and continuation
// ---- One run of the LM study.
struct LmRun {
  std::string name, problem;
  double eps;
  int nc;
  std::vector<Phase> warm;
  std::vector<LmStage> stages;  // none: the baseline, Adam then L-BFGS as in the paper
  double paper;                 // Adam + L-BFGS max error of the trial mean (Sec. 4.2), 0 when the paper has none
  long lbfgs = 0;
};

// The LM study's runs for these options (--quick, --lm-eps32-only, --lm-runs); UsageError for an unknown name.
std::vector<LmRun> lm_study_runs(const ReproduceOptions& opt) {
  const double e8 = 1.0 / 8, e16 = 1.0 / 16, e32 = 1.0 / 32, e64 = 1.0 / 64, e128 = 1.0 / 128;
  std::vector<LmRun> runs;
  if (quick_for(opt, "lm")) {
    runs = {{"poisson_lm", "poisson-twoscale", e8, 64, {}, {{e8, 8}}, 7.20e-2},
            {"darcy_continuation", "darcy-twoscale", e8, 64, {{20, 1e-3}}, {{1.0 / 4, 5}, {e8, 5}}, 4.31e-1}};
  } else {
    runs = {{"poisson_lm", "poisson-twoscale", e32, 1024, {}, {{e32, 500}}, 7.20e-2},
            {"poisson_adam_lm", "poisson-twoscale", e32, 1024, {{2000, 1e-3}}, {{e32, 500}}, 7.20e-2},
            {"poisson_continuation", "poisson-twoscale", e32, 1024, {}, {{e8, 150}, {e16, 150}, {e32, 250}}, 7.20e-2},
            {"darcy_lm", "darcy-twoscale", e32, 1024, {}, {{e32, 900}}, 4.31e-1},
            {"darcy_adam_lm", "darcy-twoscale", e32, 1024, {{2000, 1e-3}}, {{e32, 900}}, 4.31e-1},
            {"darcy_continuation", "darcy-twoscale", e32, 1024, {}, {{e8, 300}, {e16, 300}, {e32, 900}}, 4.31e-1},
            // The paper's own optimizer on the same network and seed, for the error-against-time curves.
            {"poisson_adam_lbfgs", "poisson-twoscale", e32, 1024, kPoissonSchedule, {}, 7.20e-2, kPaperLbfgsIterations},
            {"darcy_adam_lbfgs", "darcy-twoscale", e32, 1024, kDarcySchedule, {}, 4.31e-1, kPaperLbfgsIterations}};
    if (!opt.lm_eps32_only) {
      runs.push_back({"darcy_64", "darcy-twoscale", e64, 2048, {}, {{e16, 200}, {e32, 300}, {e64, 1500}}, 0.0});
      runs.push_back({"darcy_128", "darcy-twoscale", e128, 4096, {}, {{e32, 200}, {e64, 300}, {e128, 1500}}, 0.0});
    }
  }
  if (!opt.lm_runs.empty()) {
    std::vector<LmRun> picked;
    for (const std::string& name : split_list(opt.lm_runs)) {
      auto it = std::find_if(runs.begin(), runs.end(), [&](const LmRun& r) { return r.name == name; });
      if (it == runs.end()) {
        std::string known;
        for (const auto& r : runs) known += (known.empty() ? "" : ", ") + r.name;
        throw UsageError("--lm-runs: unknown run '" + name + "' (known here: " + known + ")");
      }
      picked.push_back(*it);
    }
    runs = picked;
  }
  return runs;
}

json figure_lm(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "lm");
  const std::vector<LmRun> runs = lm_study_runs(opt);
  std::ostringstream table;
  table << "run,problem,eps,nc,adam_iterations,lbfgs_iterations,lm_iterations,accepted,max_error,final_loss,wall_time_"
           "s,paper_max_error\n";
  json j = {{"figure", "lm"}, {"layers", {1, 40, 40, 40, 40, 1}}, {"init", "glorot-normal"}, {"quick", quick}};
  // One run's results, kept until every run has ended (the concurrent runs write in the study's order).
  struct RunOut {
    std::string history, lm_csv, row;
    json summary;
  };
  std::vector<RunOut> outs(runs.size());
  auto run_one = [&](Backend& b, size_t i) {
    const LmRun& r = runs[i];
    ProblemSpec spec = problem_preset(r.problem);
    spec.nc = r.nc;
    spec.eps = r.stages.empty() ? r.eps : r.stages.front().eps;
    PointSet pts = build_points(spec);
    Mlp net = init_mlp(quick ? std::vector<int>{1, 10, 10, 1} : spec.default_layers, "glorot-normal", 0);
    TrainResult res = finite_run(
        train_adam(b, net, spec, pts, adam_config(r.warm, r.lbfgs, r.lbfgs > 0 ? 1000 : 100, opt.lbfgs_method),
                   progress_line(r.name + (r.lbfgs > 0 ? " (Adam + L-BFGS)" : " (Adam)"))),
        "lm study " + r.name);
    LmConfig cfg;
    cfg.cond_every = 100;
    std::ostringstream lmcsv;
    lmcsv.precision(17);
    LmTrainResult lm;
    if (!r.stages.empty()) {
      lm = continue_with_lm(b, net, spec, pts, cfg, r.stages, 10, res, &lmcsv, [&](long it, long total, double loss) {
        if (it % 100 == 0)
          std::fprintf(stderr, "    %s: iteration %ld/%ld, loss %.4e\n", r.name.c_str(), it, total, loss);
      });
    }
    long accepted = 0, lm_its = 0;
    for (const auto& st : lm.stages) {
      accepted += st.accepted;
      lm_its += st.iterations;
    }
    RunOut& o = outs[i];
    o.history = history_csv(res.history, {HistoryColumn::Iteration, HistoryColumn::Optimizer, HistoryColumn::Loss,
                                          HistoryColumn::MaxError, HistoryColumn::Time});
    o.lm_csv = lmcsv.str();
    std::ostringstream row;
    row << r.name << ',' << r.problem << ',' << fmt17(r.eps) << ',' << r.nc << ',' << res.adam_iterations << ','
        << res.lbfgs.iterations << ',' << lm_its << ',' << accepted << ',' << fmt17(res.max_error) << ','
        << fmt17(res.final_loss) << ',' << fmt17(res.wall_time_s) << ',' << (r.paper > 0 ? fmt17(r.paper) : "") << '\n';
    o.row = row.str();
    o.summary = {{"problem", r.problem},
                 {"eps", r.eps},
                 {"nc", r.nc},
                 {"adam_iterations", res.adam_iterations},
                 {"lm_iterations", lm_its},
                 {"accepted", accepted},
                 {"max_error", res.max_error},
                 {"final_loss", res.final_loss},
                 {"wall_time_s", res.wall_time_s},
                 {"stop", lm.stages.empty() ? res.lbfgs.stop : lm.stages.back().stop},
                 {"lbfgs_iterations", res.lbfgs.iterations},
                 {"paper_adam_lbfgs_max_error", r.paper > 0 ? json(r.paper) : json(nullptr)}};
    std::fprintf(stderr, "  lm %s: max error %.3e, loss %.3e, %.0f s\n", r.name.c_str(), res.max_error, res.final_loss,
                 res.wall_time_s);
  };
  // --concurrent-runs K on the CUDA backend: K host threads, each with a backend of its own (stream, handles, memory
  // pool), take the runs in turn, so that their kernels overlap on the device. Their wall times then include the
  // sharing.
  const int workers =
      be.name() == "cuda" ? std::max(1, std::min(opt.concurrent_runs, static_cast<int>(runs.size()))) : 1;
  if (workers == 1) {
    for (size_t i = 0; i < runs.size(); ++i) run_one(be, i);
  } else {
    std::vector<std::thread> pool;
    std::atomic<size_t> next{0};
    std::vector<std::exception_ptr> errors(workers);
    for (int w = 0; w < workers; ++w)
      pool.emplace_back([&, w] {
        try {
          auto own = make_cuda_backend(be.precision() == "fp32");
          for (size_t i = next++; i < runs.size(); i = next++) run_one(*own, i);
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const LmRun& r = runs[i];
    out.write("lm/" + r.name + "_history.csv", outs[i].history);
    if (!r.stages.empty()) out.write("lm/" + r.name + "_lm.csv", outs[i].lm_csv);
    table << outs[i].row;
    j[r.name] = outs[i].summary;
  }
  j["concurrent_runs"] = workers;
  j["note"] =
      "single runs (seed 0), max-norm error of the network itself on 1000 points; the paper's numbers are of "
      "the 10-trial mean after Adam + L-BFGS";
  j["wall_time_s"] = seconds_since(t0);
  out.write("lm/runs.csv", table.str());
  out.write("lm/summary.json", j.dump(2) + "\n");
  return j;
}

// ---- Beyond the paper: LM on the 2-D Poisson benchmark of Dangel et al. (2024) and the 2-D two-scale Darcy problem

// A network's u, D_i u, D_i^2 u at the points x (N x dim).
EvalFn network_eval(Backend& be, const Mlp& m) {
  return [&be, &m](span<const double> x, span<double> u, span<double> du, span<double> d2u) {
    be.evaluate(m, x, u, du, d2u);
  };
}

// Whether iteration it gets a row: every one up to 20, then about 20 per decade (log-spaced, as Dangel et al. log).
bool log_point(long it) { return it <= 20 || it % (it / 20) == 0; }

// The error against training time of one run: rows "D,optimizer,time_s,rel_l2,l2_abs,iteration,phase,max_error,loss"
// of poisson2d_runs.csv. The clock leaves out the time the rows themselves take (the network evaluated on the
// training and the test points).
class ErrorLog {
 public:
  ErrorLog(const ProblemSpec& spec, const PointSet& pts, long D, std::string optimizer, std::ostream& csv)
      : spec_(spec), pts_(pts), tx_(test_points(spec)), D_(D), optimizer_(std::move(optimizer)), csv_(csv) {}
  double train_time() const { return seconds_since(t0_) - excluded_; }
  // A row of the network at iteration it; the initial network's row (phase "init") is at time 0 and starts the clock.
  void record(long it, const char* phase, const EvalFn& eval) {
    const bool initial = std::string(phase) == "init";
    const auto t = Clock::now();
    time_ = initial ? 0.0 : train_time();
    loss_ = loss_of_network(eval, pts_);
    err_ = error_of_network(eval, spec_, tx_);
    if (!(err_.rel_l2 >= best_rel_)) best_rel_ = err_.rel_l2;  // a NaN stays
    csv_ << D_ << ',' << optimizer_ << ',' << fmt17(time_) << ',' << fmt17(err_.rel_l2) << ',' << fmt17(err_.rms) << ','
         << it << ',' << phase << ',' << fmt17(err_.max_error) << ',' << fmt17(loss_) << '\n';
    excluded_ += seconds_since(t);
    if (initial) {
      t0_ = Clock::now();
      excluded_ = 0.0;
    }
  }
  // The last row's numbers, the best relative error so far and the first time a row reached `goal` (null: never).
  json last() const {
    return {{"rel_l2", err_.rel_l2}, {"l2_abs", err_.rms}, {"max_error", err_.max_error},
            {"loss", loss_},         {"time_s", time_},    {"best_rel_l2", best_rel_}};
  }
  void note_goal(double goal) {
    if (goal_time_ < 0 && err_.rel_l2 <= goal) goal_time_ = time_;
  }
  json goal_time() const { return goal_time_ >= 0 ? json(goal_time_) : json(nullptr); }

 private:
  const ProblemSpec& spec_;
  const PointSet& pts_;
  std::vector<double> tx_;
  long D_;
  std::string optimizer_;
  std::ostream& csv_;
  Clock::time_point t0_ = Clock::now();
  double excluded_ = 0.0, time_ = 0.0, loss_ = 0.0, best_rel_ = INFINITY, goal_time_ = -1.0;
  SolutionError err_;
};

// The benchmark's networks, the relative L2 error each should reach (scripts/plot_poisson2d.py's goals) and the best
// relative error of the released runs on the sin-product problem (benchmarks/published/README.md: 1000 s each on an
// RTX 6000).
struct Poisson2dNet {
  long D;
  std::vector<int> layers;
  double goal, published_best;
  const char* published_optimizer;
};
const std::vector<Poisson2dNet>& poisson2d_nets() {
  static const std::vector<Poisson2dNet> nets = {{257, {2, 64, 1}, 5e-8, 1.22e-7, "ENGD_per_layer"},
                                                 {9873, {2, 64, 64, 48, 48, 1}, 5e-7, 1.58e-6, "KFAC*"},
                                                 {116097, {2, 256, 256, 128, 128, 1}, 1e-6, 3.04e-5, "KFAC"}};
  return nets;
}

// One run: LM from the initial network until the time budget is spent (an Adam warm start of 1000 steps at lr 1e-3
// did not help: measured with pinntk train, D = 257).
struct Poisson2dRun {
  std::string optimizer;  // the CSV's label
  Poisson2dNet net;
  LmConfig lm;
  double budget_s = 60.0;
  long max_iter = 0;  // LM iterations at the most (0: until the budget is spent)
  uint64_t seed = 0;
};

json poisson2d_run(const Poisson2dRun& r, Backend& be, std::ostream& csv) {
  const auto t0 = Clock::now();
  const ProblemSpec spec = problem_preset("poisson2d-sines");
  const PointSet pts = build_points(spec);
  Mlp net = init_mlp(r.net.layers, spec.default_init, r.seed);
  ErrorLog log(spec, pts, r.net.D, r.optimizer, csv);
  log.record(0, "init", network_eval(be, net));
  LmConfig cfg = r.lm;
  cfg.max_iter = r.max_iter > 0 ? r.max_iter : kMaxIterations;
  long lm_its = 0, accepted = 0;
  // The budget counts training time only (ErrorLog leaves out its own evaluations).
  cfg.stop_when = [&] { return log.train_time() >= r.budget_s; };
  cfg.stop_reason = "the time budget of " + fmt17(r.budget_s) + " s";
  const LmResult res = minimize_lm(be, net, pts, cfg, [&](const LmRow& row, const Mlp& m) {
    lm_its = row.iteration;
    accepted += row.accepted ? 1 : 0;
    if (log_point(row.iteration)) {
      log.record(row.iteration, "lm", network_eval(be, m));
      log.note_goal(r.net.goal);
    }
  });
  const std::string stop = res.stop;
  log.record(lm_its, "lm", network_eval(be, net));
  log.note_goal(r.net.goal);
  json j = log.last();
  j.update({{"optimizer", r.optimizer},
            {"D", r.net.D},
            {"layers", r.net.layers},
            {"seed", r.seed},
            {"lm",
             {{"form", cfg.form},
              {"damping", cfg.damping},
              {"mu0_relative", cfg.mu0},
              {"loss_tol", cfg.loss_tol},
              {"iterations", lm_its},
              {"accepted", accepted},
              {"stop", stop}}},
            {"time_budget_s", r.budget_s},
            {"limit", r.max_iter > 0 ? std::to_string(r.max_iter) + " LM iterations" : fmt17(r.budget_s) + " s"},
            {"goal_rel_l2", r.net.goal},
            {"time_to_goal_s", log.goal_time()},
            {"published_best_rel_l2", r.net.published_best},
            {"published_best_optimizer", r.net.published_optimizer},
            {"wall_time_s", seconds_since(t0)}});
  std::fprintf(stderr, "  poisson2d D = %ld %s: relative L2 error %.3e (best %.3e), %ld LM iterations, %.1f s\n",
               r.net.D, r.optimizer.c_str(), j["rel_l2"].get<double>(), j["best_rel_l2"].get<double>(), lm_its,
               log.train_time());
  return j;
}

json stages_json(const std::vector<LmStage>& stages) {
  json j = json::array();
  for (const auto& st : stages) j.push_back({{"eps", st.eps}, {"iterations", st.iterations}});
  return j;
}

// darcy2d-twoscale at eps = 1/8 and 1/16: LM with eps continuation against Adam + L-BFGS on the same network; each
// target eps's max and relative L2 errors as a row of darcy2d_runs.csv, each run's history in darcy2d_<run>.csv.
json darcy2d_study(bool quick, const std::string& lbfgs_method, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  ProblemSpec base = problem_preset("darcy2d-twoscale");
  const int side = quick ? 16 : 64;
  base.nc = side * side;
  base.nb = 4 * side;
  const std::vector<int> layers = quick ? std::vector<int>{2, 10, 10, 1} : std::vector<int>{2, 40, 40, 40, 40, 1};
  const std::vector<double> targets = quick ? std::vector<double>{1.0 / 8} : std::vector<double>{1.0 / 8, 1.0 / 16};
  // LM stages from eps = 1/4 through the targets; a target's numbers are those at the end of its stage.
  const std::vector<LmStage> stages = quick ? std::vector<LmStage>{{1.0 / 4, 5}, {1.0 / 8, 5}}
                                            : std::vector<LmStage>{{1.0 / 4, 80}, {1.0 / 8, 120}, {1.0 / 16, 200}};
  const std::vector<Phase> adam =
      quick ? std::vector<Phase>{{60, 1e-3}} : std::vector<Phase>{{2000, 1e-3}, {1000, 1e-4}};
  const long lbfgs = quick ? 20 : 1000;
  std::ostringstream table;
  table << "run,optimizer,eps,adam_iterations,lbfgs_iterations,lm_iterations,max_error,rel_l2,final_loss,time_s\n";
  json runs = json::array();
  const auto columns = {HistoryColumn::Iteration, HistoryColumn::Optimizer,  HistoryColumn::Loss,
                        HistoryColumn::MaxError,  HistoryColumn::RelL2Error, HistoryColumn::Time};
  auto add = [&](const std::string& run, const char* optimizer, double eps, const TrainResult& res, long lm_its) {
    table << run << ',' << optimizer << ',' << fmt17(eps) << ',' << res.adam_iterations << ',' << res.lbfgs.iterations
          << ',' << lm_its << ',' << fmt17(res.max_error) << ',' << fmt17(res.rel_l2_error) << ','
          << fmt17(res.final_loss) << ',' << fmt17(res.wall_time_s) << '\n';
    runs.push_back({{"run", run},
                    {"optimizer", optimizer},
                    {"eps", eps},
                    {"inv_eps", std::lround(1.0 / eps)},
                    {"adam_iterations", res.adam_iterations},
                    {"lbfgs_iterations", res.lbfgs.iterations},
                    {"lm_iterations", lm_its},
                    {"max_error", res.max_error},
                    {"rel_l2", res.rel_l2_error},
                    {"final_loss", res.final_loss},
                    {"time_s", res.wall_time_s}});
    std::fprintf(stderr, "  darcy2d %s at eps = 1/%ld: max error %.3e, relative L2 error %.3e, %.0f s\n", run.c_str(),
                 std::lround(1.0 / eps), res.max_error, res.rel_l2_error, res.wall_time_s);
  };
  {
    ProblemSpec spec = base;
    spec.eps = stages.front().eps;
    PointSet pts = build_points(spec);
    Mlp net = init_mlp(layers, "glorot-normal", 0);
    TrainResult res = finite_run(train_adam(be, net, spec, pts, adam_config({}, 0, 10), nullptr), "darcy2d LM");
    long lm_its = 0;
    for (const LmStage& st : stages) {
      const ProgressFn line = progress_line("darcy2d LM at eps = 1/" + std::to_string(std::lround(1.0 / st.eps)), 20);
      const long done = res.iterations;  // the stage's own count for the line
      lm_its += continue_with_lm(be, net, spec, pts, LmConfig{}, {st}, 10, res, nullptr,
                                 [&](long it, long total, double loss) { line(it - done, total - done, loss); })
                    .iterations;
      if (std::find(targets.begin(), targets.end(), st.eps) != targets.end())
        add("lm_continuation", "LM with eps continuation from 1/4", st.eps, res, lm_its);
    }
    out.write("poisson2d/darcy2d_lm_continuation.csv", history_csv(res.history, columns));
  }
  for (double eps : targets) {
    ProblemSpec spec = base;
    spec.eps = eps;
    const PointSet pts = build_points(spec);
    Mlp net = init_mlp(layers, "glorot-normal", 0);
    const std::string run = "adam_lbfgs_" + std::to_string(std::lround(1.0 / eps));
    const TrainResult res = finite_run(
        train_adam(be, net, spec, pts, adam_config(adam, lbfgs, 100, lbfgs_method), progress_line("darcy2d " + run)),
        run);
    add(run, "Adam + L-BFGS", eps, res, 0);
    out.write("poisson2d/darcy2d_" + run + ".csv", history_csv(res.history, columns));
  }
  out.write("poisson2d/darcy2d_runs.csv", table.str());
  return {{"problem", "darcy2d-twoscale"},
          {"grid", std::to_string(side) + " x " + std::to_string(side) + " interior grid, " + std::to_string(base.nb) +
                       " boundary points"},
          {"layers", layers},
          {"init", "glorot-normal"},
          {"lm_stages", stages_json(stages)},
          {"adam_schedule", schedule_json(adam)},
          {"lbfgs_max_iterations", lbfgs},
          {"runs", runs},
          {"goal", "max error <= 1e-2 at eps = 1/16 with LM"},
          {"wall_time_s", seconds_since(t0)}};
}

// Which parts of poisson2d run: all of 257, 9873, 116097 and darcy2d unless --poisson2d-runs names some.
bool poisson2d_part(const ReproduceOptions& opt, const std::string& part) {
  if (opt.poisson2d_runs.empty()) return true;
  const auto parts = split_list(opt.poisson2d_runs);
  return std::find(parts.begin(), parts.end(), part) != parts.end();
}

json figure_poisson2d(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "poisson2d");
  std::ostringstream csv;
  csv << "D,optimizer,time_s,rel_l2,l2_abs,iteration,phase,max_error,loss\n";
  LmConfig sample;
  sample.form = "sample";  // the N x N system (N = 1020) whatever the network's size
  LmConfig parameter = sample;
  parameter.form = "parameter";  // the P x P system: the cheaper one for D = 257 < N
  json runs = json::array(), shapes = json::array();
  for (const Poisson2dNet& n : poisson2d_nets()) {
    const int p = init_mlp(n.layers, "glorot-normal", 0).n_params();
    shapes.push_back({{"D", n.D}, {"layers", n.layers}, {"n_params", p}});
    if (p != n.D) throw NumericalError("poisson2d: the network has " + std::to_string(p) + " parameters, not D");
    if (!poisson2d_part(opt, std::to_string(n.D))) continue;
    // Quick: 50 LM iterations for D = 257, 2 for D = 9873 (a check of the path, not of the time), the largest
    // network's shape only. Full: 60 s for D = 257 in each form, --time-budget (300 s) for the larger ones.
    if (quick && n.D > 9873) continue;
    Poisson2dRun r{"LM (sample form)", n, sample};
    if (n.D == 257) {
      r.max_iter = quick ? 50 : 0;
      runs.push_back(poisson2d_run(r, be, csv));
      if (quick) continue;
      r.optimizer = "LM (parameter form)";
      r.lm = parameter;
    } else {
      r.budget_s = opt.time_budget > 0 ? opt.time_budget : 300.0;
      r.max_iter = quick ? 2 : 0;
    }
    runs.push_back(poisson2d_run(r, be, csv));
  }
  json best = json::object();
  for (const Poisson2dNet& n : poisson2d_nets()) {
    json b;
    for (const json& r : runs)
      if (r["D"] == n.D && (b.is_null() || r["best_rel_l2"].get<double>() < b["rel_l2"].get<double>()))
        b = {{"rel_l2", r["best_rel_l2"]}, {"optimizer", r["optimizer"]}, {"limit", r["limit"]}};
    if (b.is_null()) continue;
    b.update({{"goal", n.goal},
              {"published_best_rel_l2", n.published_best},
              {"published_best_optimizer", n.published_optimizer}});
    best[std::to_string(n.D)] = b;
  }
  json j = {{"figure", "poisson2d"},
            {"problem", "poisson2d-sines"},
            {"nc", 900},
            {"nb", 120},
            {"test_points", 9000},
            {"networks", shapes},
            {"runs", runs},
            {"best", best},
            {"time_note",
             "time_s is training time on this machine: the evaluations that log the errors are left out. The "
             "published runs are 1000 s each on an RTX 6000 GPU"},
            {"quick", quick}};
  if (poisson2d_part(opt, "darcy2d")) j["darcy2d"] = darcy2d_study(quick, opt.lbfgs_method, be, out);
  j["wall_time_s"] = seconds_since(t0);
  out.write("poisson2d/poisson2d_runs.csv", csv.str());
  out.write("poisson2d/summary.json", j.dump(2) + "\n");
  return j;
}

}  // namespace

const std::vector<std::string>& reproduce_figures() {
  static const std::vector<std::string> figures = {"fig1", "fig2", "fig3", "fig4", "lm", "fig2-2d", "poisson2d"};
  return figures;
}

std::string reproduce_picture(const std::string& fig) {
  return fig + "/" + (fig == "fig2-2d" ? std::string("fig2_2d") : fig) + ".png";
}

bool quick_for(const ReproduceOptions& opt, const std::string& fig) {
  if (!opt.quick) return false;
  for (const auto& f : split_list(opt.full))
    if (f == fig) return false;
  return true;
}

void validate(const ReproduceOptions& opt) {
  std::string known;
  for (const auto& f : reproduce_figures()) known += f + ", ";
  // The figures the target runs: a flag for none of them would do nothing, and is refused.
  const auto runs = [&](std::initializer_list<const char*> figs) {
    static const std::set<std::string> paper = {"fig1", "fig2", "fig3", "fig4"};  // what `all` runs
    for (const char* f : figs)
      if (opt.what == f || (opt.what == "all" && paper.count(f))) return true;
    return false;
  };
  if (!opt.full.empty()) {
    if (!opt.quick) throw UsageError("--full names the figures that --quick leaves at the paper's settings");
    for (const auto& f : split_list(opt.full)) {
      if (std::find(reproduce_figures().begin(), reproduce_figures().end(), f) == reproduce_figures().end())
        throw UsageError("--full: unknown figure '" + f + "' (known: " + known.substr(0, known.size() - 2) + ")");
      if (!runs({f.c_str()})) throw UsageError("--full " + f + ": the target " + opt.what + " does not run " + f);
    }
  }
  if (opt.trials > 0 && !runs({"fig4"})) throw UsageError("--trials is for the target fig4 (and all)");
  if (opt.seeds > 0 && !runs({"fig2", "fig2-2d"}))
    throw UsageError("--seeds is for the targets fig2, fig2-2d (and all)");
  if (opt.concurrent_trials > 0 && !runs({"fig4"}))
    throw UsageError("--concurrent-trials is for the target fig4 (and all)");
  if (opt.lm_eps32_only && opt.what != "lm") throw UsageError("--lm-eps32-only is for the target lm");
  if (opt.what != "all" &&
      std::find(reproduce_figures().begin(), reproduce_figures().end(), opt.what) == reproduce_figures().end())
    throw UsageError("reproduce: unknown target '" + opt.what + "' (known: " + known + "all)");
  if (opt.trials < 0 || opt.seeds < 0) throw UsageError("--trials and --seeds must be positive");
  if (opt.concurrent_runs < 1 || opt.concurrent_runs > 64) throw UsageError("--concurrent-runs must lie in [1, 64]");
  if (opt.concurrent_runs > 1 && opt.what != "lm") throw UsageError("--concurrent-runs is for the target lm");
  if (opt.concurrent_trials < 0) throw UsageError("--concurrent-trials must be at least 1 (0: all trials at once)");
  const std::vector<std::string> inits = init_names();
  if (std::find(inits.begin(), inits.end(), opt.fig4_init) == inits.end()) {
    std::string names;
    for (const auto& i : inits) names += (names.empty() ? "" : ", ") + i;
    throw UsageError("--init: unknown initializer '" + opt.fig4_init + "' (known: " + names + ")");
  }
  if (opt.fig4_init != "glorot-normal" && opt.what != "fig4" && opt.what != "all")
    throw UsageError("--init is for the target fig4 (and all)");
  if (opt.lbfgs_method != "lbfgsb" && opt.lbfgs_method != "two-loop")
    throw UsageError("--lbfgs-method: '" + opt.lbfgs_method + "' is not lbfgsb or two-loop");
  if (opt.lbfgs_method != "lbfgsb" && opt.what != "fig4" && opt.what != "lm" && opt.what != "poisson2d" &&
      opt.what != "all")
    throw UsageError("--lbfgs-method is for the targets that run L-BFGS: fig4, lm, poisson2d (and all)");
  if (!opt.lm_runs.empty() && opt.what != "lm") throw UsageError("--lm-runs is for the target lm");
  if (opt.what == "lm") lm_study_runs(opt);  // checks --lm-runs
  if (!(opt.time_budget >= 0.0 && opt.time_budget <= 86400.0))
    throw UsageError("--time-budget must lie in [0, 86400] seconds");
  if ((opt.time_budget > 0.0 || !opt.poisson2d_runs.empty()) && opt.what != "poisson2d")
    throw UsageError("--time-budget and --poisson2d-runs are for the target poisson2d");
  for (const auto& part : split_list(opt.poisson2d_runs))
    if (part != "257" && part != "9873" && part != "116097" && part != "darcy2d")
      throw UsageError("--poisson2d-runs: unknown part '" + part + "' (known: 257, 9873, 116097, darcy2d)");
}

std::string reproduce(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  validate(opt);
  json all = {{"device", be.name()}, {"precision", be.precision()}, {"quick", opt.quick}};
  if (!opt.full.empty()) all["full"] = split_list(opt.full);
  const bool every = opt.what == "all";
  if (every || opt.what == "fig2") all["fig2"] = figure2(opt, be, out);
  if (every || opt.what == "fig3") all["fig3"] = figure3(opt, be, out);
  if (every || opt.what == "fig1") all["fig1"] = figure1(opt, be, out);
  if (every || opt.what == "fig4") all["fig4"] = figure4(opt, be, out);
  if (opt.what == "lm") all["lm"] = figure_lm(opt, be, out);
  if (opt.what == "fig2-2d") all["fig2-2d"] = figure2_2d(opt, be, out);
  if (opt.what == "poisson2d") all["poisson2d"] = figure_poisson2d(opt, be, out);
  return all.dump(2) + "\n";
}

}  // namespace pinntk
