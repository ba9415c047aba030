#include "host/reproduce.hpp"

#include <algorithm>          // std::find_if
#include <atomic>             // std::atomic
#include <chrono>             // std::chrono
#include <cmath>              // std::log, std::sqrt, std::hypot
#include <complex>            // std::complex
#include <cstdio>             // std::fprintf
#include <exception>          // std::exception_ptr
#include <nlohmann/json.hpp>  // nlohmann::json
#include <sstream>            // std::ostringstream
#include <thread>             // std::thread

#include "common/errors.hpp"               // UsageError
#include "host/io/history_csv.hpp"         // history_csv
#include "host/io/npy.hpp"                 // npy_bytes
#include "host/io/optimizer_json.hpp"      // schedule_json
#include "host/ntk.hpp"                    // analyze_ntk
#include "host/optim/lm_continuation.hpp"  // continue_with_lm, LmStage
#include "host/parse.hpp"                  // split_list
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

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Sec. 4.2's Adam schedules for the Poisson and Darcy PINNs (followed by L-BFGS), for Fig. 4 and the LM study.
const std::vector<Phase> kPoissonSchedule = {{10000, 1e-4}, {10000, 1e-5}, {20000, 1e-6}, {20000, 1e-7}};
const std::vector<Phase> kDarcySchedule = {{10000, 1e-3}, {10000, 1e-4}, {20000, 1e-5}, {20000, 1e-6}};
constexpr long kPaperLbfgsIterations = 15000;

TrainConfig adam_config(const std::vector<Phase>& schedule, long lbfgs_iters, long history_every) {
  TrainConfig cfg;
  cfg.schedule = schedule;
  cfg.history_every = history_every;
  cfg.log_every = 5000;
  cfg.lbfgs.max_iter = lbfgs_iters;
  return cfg;
}

// "about 2 min 10 s left" from the time `elapsed` that `done` of `total` equal units took.
std::string time_left(double elapsed, double done, double total) {
  if (done <= 0 || total <= done) return "";
  const long s = std::lround(elapsed / done * (total - done));
  return ", about " + (s >= 60 ? std::to_string(s / 60) + " min " : std::string()) + std::to_string(s % 60) + " s left";
}

// A progress line for long trainings (every 5000 iterations, see adam_config), with the time left.
ProgressFn progress_line(const std::string& label) {
  const auto t0 = Clock::now();
  return [label, t0](long it, long total, double loss) {
    if (it % 5000 == 0)
      std::fprintf(stderr, "    %s: iteration %ld/%ld, loss %.4e%s\n", label.c_str(), it, total, loss,
                   time_left(seconds_since(t0), it, total).c_str());
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

// ---- Figure 2 (Section 4.1): ||K_uu||_F and lambda_1..3 of K_uu against eps, (a) at init, (b) after Adam ----
json figure2(const ReproduceOptions& opt, Backend& be, OutputDir& out) {
  const auto t0 = Clock::now();
  const bool quick = quick_for(opt, "fig2");
  std::vector<int> inv_eps;
  if (quick) {
    inv_eps = {10, 20, 40, 80};
  } else {
    for (int k = 10; k <= 100; k += 5) inv_eps.push_back(k);
  }
  const int seeds = opt.seeds > 0 ? opt.seeds : (quick ? 2 : 5);
  const long steps = quick ? 300 : 10000;
  std::ostringstream csv;
  csv << "panel,seed,inv_eps,eps,frobenius_Kuu,lambda1,lambda2,lambda3,spectral_radius_Kbb\n";
  // values[panel][quantity][seed] -> series over eps
  const char* qnames[5] = {"frobenius_Kuu", "lambda1", "lambda2", "lambda3", "spectral_radius_Kbb"};
  std::vector<std::vector<std::vector<std::vector<double>>>> values(
      2, std::vector<std::vector<std::vector<double>>>(5, std::vector<std::vector<double>>(seeds)));
  std::vector<double> eps_list;
  for (int inv : inv_eps) eps_list.push_back(1.0 / inv);
  std::fprintf(stderr, "  fig2: %zu values of eps x %d seeds; (a) at initialization, (b) after %ld Adam steps each%s\n",
               inv_eps.size(), seeds, steps, quick ? " (quick)" : " (the paper's settings)");
  for (int panel = 0; panel < 2; ++panel) {
    const auto tp = Clock::now();
    for (int seed = 0; seed < seeds; ++seed) {
      for (int inv : inv_eps) {
        ProblemSpec spec = problem_preset("darcy-ntk");
        spec.eps = 1.0 / inv;
        const PointSet pts = build_points(spec);
        Mlp net = init_mlp({1, 50, 1}, panel == 0 ? "normal" : "glorot-normal", static_cast<uint64_t>(seed));
        if (panel == 1)
          finite_run(train_adam(be, net, spec, pts, adam_config({{steps, 1e-5}}, 0, steps), nullptr),
                     "fig2 seed " + std::to_string(seed) + " 1/eps = " + std::to_string(inv));
        const NtkResult r = analyze_ntk(be, net, pts, NtkScaling::Lemma, false);
        const double q[5] = {r.frobenius_Kuu, r.spectrum_Kuu[0], r.spectrum_Kuu[1], r.spectrum_Kuu[2],
                             r.spectrum_Kbb.empty() ? 0.0 : r.spectrum_Kbb[0]};
        csv << (panel == 0 ? "a" : "b") << ',' << seed << ',' << inv << ',' << fmt(spec.eps);
        for (int k = 0; k < 5; ++k) {
          csv << ',' << fmt(q[k]);
          values[panel][k][seed].push_back(q[k]);
        }
        csv << '\n';
      }
      std::fprintf(stderr, "  fig2 (%c) seed %d of %d done (%.0f s)%s\n", panel == 0 ? 'a' : 'b', seed + 1, seeds,
                   seconds_since(t0),
                   panel == 0 ? (seed + 1 == seeds ? ", panel (b) next: the trainings take most of the time" : "")
                              : time_left(seconds_since(tp), seed + 1, seeds).c_str());
    }
  }
  json fits;
  for (int panel = 0; panel < 2; ++panel) {
    json p;
    for (int k = 0; k < 5; ++k) {
      std::vector<double> per_seed, geo(eps_list.size(), 0.0);
      for (int s = 0; s < seeds; ++s) {
        per_seed.push_back(loglog_slope(eps_list, values[panel][k][s]).slope);
        for (size_t e = 0; e < eps_list.size(); ++e) geo[e] += std::log(values[panel][k][s][e]) / seeds;
      }
      for (double& g : geo) g = std::exp(g);
      const auto ms = mean_std(per_seed);
      const Slope pooled = loglog_slope(eps_list, geo);
      p[qnames[k]] = {{"slope_mean_over_seeds", ms.first},
                      {"slope_std_over_seeds", ms.second},
                      {"slope_of_geometric_mean", pooled.slope},
                      {"slope_of_geometric_mean_stderr", pooled.stderr_},
                      {"per_seed", per_seed}};
    }
    fits[panel == 0 ? "a_init_normal" : "b_glorot_adam"] = p;
  }
  json j = {
      {"figure", "fig2"},
      {"problem", "darcy-ntk"},
      {"layers", {1, 50, 1}},
      {"nc", 256},
      {"ntk_scaling", "lemma"},
      {"inv_eps", inv_eps},
      {"seeds", seeds},
      {"panel_b_adam", {{"iterations", steps}, {"lr", 1e-5}, {"init", "glorot-normal"}}},
      {"fits", fits},
      {"paper", "||K_uu||_F and lambda_1..3 grow like eps^-2 (slope -2); rho(K_bb) essentially independent of eps"},
      {"quick", quick},
      {"wall_time_s", seconds_since(t0)}};
  out.write("fig2/sweep.csv", csv.str());
  out.write("fig2/summary.json", j.dump(2) + "\n");
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
    csv << i << ',' << fmt(spectra[0][i]) << ',' << fmt(spectra[1][i]) << '\n';
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
      dft << ',' << fmt(std::abs(acc) / nc);
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
  json j = {{"figure", "fig4"},        {"eps", 1.0 / 32},  {"layers", {1, 40, 40, 40, 40, 1}},
            {"init", "glorot-normal"}, {"trials", trials}, {"lbfgs_max_iterations", lbfgs},
            {"quick", quick}};
  for (const auto& c : cases) {
    const auto tc = Clock::now();
    const ProblemSpec spec = problem_preset(c.problem);
    const PointSet pts = build_points(spec);
    const std::vector<double> x = linspace(spec.xa, spec.xb, 1000);
    std::vector<std::vector<double>> us;
    std::ostringstream tcsv;
    tcsv << "trial,final_loss,max_error,adam_iterations,lbfgs_iterations,lbfgs_stop\n";
    // Trials are independent seeds. With --concurrent-trials K on the CUDA backend, K host threads each drive
    // their own backend (stream and handles) so that the trials' kernels overlap on the device.
    std::vector<TrainResult> results(trials);
    us.assign(trials, std::vector<double>(x.size()));
    auto run_trial = [&](Backend& b, int t) {
      Mlp net = init_mlp(spec.default_layers, "glorot-normal", static_cast<uint64_t>(t));
      const std::string name = std::string("fig4 ") + c.name + " trial " + std::to_string(t + 1);
      results[t] =
          finite_run(train_adam(b, net, spec, pts, adam_config(quick ? c.quick_schedule : c.full_schedule, lbfgs, 1000),
                                progress_line(name)),
                     name);
      std::vector<double> du(x.size()), d2u(x.size());
      b.evaluate(net, x, us[t], du, d2u);
      std::fprintf(stderr, "  fig4 %s trial %d of %d: max error %.3e, L-BFGS %ld iterations (%s), %.0f s\n", c.name,
                   t + 1, trials, results[t].max_error, results[t].lbfgs.iterations, results[t].lbfgs.stop.c_str(),
                   seconds_since(t0));
    };
    const int workers = be.name() == "cuda" ? std::max(1, std::min(opt.concurrent_trials, trials)) : 1;
    if (workers == 1) {
      for (int t = 0; t < trials; ++t) run_trial(be, t);
    } else {
      std::vector<std::thread> pool;
      std::atomic<int> next{0};
      std::vector<std::exception_ptr> errors(workers);
      for (int wkr = 0; wkr < workers; ++wkr)
        pool.emplace_back([&, wkr] {
          try {
            auto own = make_cuda_backend(be.precision() == "fp32");
            for (int t = next++; t < trials; t = next++) run_trial(*own, t);
          } catch (...) {
            errors[wkr] = std::current_exception();
          }
        });
      for (auto& th : pool) th.join();
      for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    }
    for (int t = 0; t < trials; ++t)
      tcsv << t << ',' << fmt(results[t].final_loss) << ',' << fmt(results[t].max_error) << ','
           << results[t].adam_iterations << ',' << results[t].lbfgs.iterations << ",\"" << results[t].lbfgs.stop
           << "\"\n";
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
      pcsv << fmt(x[i]) << ',' << fmt(ex) << ',' << fmt(ms.first) << ',' << fmt(ex - ms.first) << ',' << fmt(var)
           << '\n';
    }
    j[c.name] = {{"problem", c.problem},
                 {"concurrent_trials", workers},
                 {"n", pts.size()},
                 {"schedule", schedule_json(quick ? c.quick_schedule : c.full_schedule)},
                 {"max_error_of_mean", max_err},
                 {"mean_variance", mean_var},
                 {"paper_max_error", c.paper_max},
                 {"paper_mean_variance", c.paper_var},
                 {"wall_time_s", seconds_since(tc)}};
    out.write(std::string("fig4/") + c.name + "_mean.csv", pcsv.str());
    out.write(std::string("fig4/") + c.name + "_trials.csv", tcsv.str());
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
  for (const auto& r : runs) {
    ProblemSpec spec = problem_preset(r.problem);
    spec.nc = r.nc;
    spec.eps = r.stages.empty() ? r.eps : r.stages.front().eps;
    PointSet pts = build_points(spec);
    Mlp net = init_mlp(quick ? std::vector<int>{1, 10, 10, 1} : spec.default_layers, "glorot-normal", 0);
    TrainResult res = finite_run(train_adam(be, net, spec, pts, adam_config(r.warm, r.lbfgs, r.lbfgs > 0 ? 1000 : 100),
                                            progress_line(r.name + (r.lbfgs > 0 ? " (Adam + L-BFGS)" : " (Adam)"))),
                                 "lm study " + r.name);
    LmConfig cfg;
    cfg.cond_every = 100;
    std::ostringstream lmcsv;
    lmcsv.precision(17);
    LmTrainResult lm;
    if (!r.stages.empty()) {
      lm = continue_with_lm(be, net, spec, pts, cfg, r.stages, 10, res, &lmcsv, [&](long it, long total, double loss) {
        if (it % 100 == 0)
          std::fprintf(stderr, "    %s: iteration %ld/%ld, loss %.4e\n", r.name.c_str(), it, total, loss);
      });
    }
    long accepted = 0, lm_its = 0;
    for (const auto& st : lm.stages) {
      accepted += st.accepted;
      lm_its += st.iterations;
    }
    out.write("lm/" + r.name + "_history.csv",
              history_csv(res.history, {HistoryColumn::Iteration, HistoryColumn::Optimizer, HistoryColumn::Loss,
                                        HistoryColumn::MaxError, HistoryColumn::Time}));
    if (!r.stages.empty()) out.write("lm/" + r.name + "_lm.csv", lmcsv.str());
    table << r.name << ',' << r.problem << ',' << fmt(r.eps) << ',' << r.nc << ',' << res.adam_iterations << ','
          << res.lbfgs.iterations << ',' << lm_its << ',' << accepted << ',' << fmt(res.max_error) << ','
          << fmt(res.final_loss) << ',' << fmt(res.wall_time_s) << ',' << (r.paper > 0 ? fmt(r.paper) : "") << '\n';
    j[r.name] = {{"problem", r.problem},
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
  }
  j["note"] =
      "single runs (seed 0), max-norm error of the network itself on 1000 points; the paper's numbers are of "
      "the 10-trial mean after Adam + L-BFGS";
  j["wall_time_s"] = seconds_since(t0);
  out.write("lm/runs.csv", table.str());
  out.write("lm/summary.json", j.dump(2) + "\n");
  return j;
}

}  // namespace

const std::vector<std::string>& reproduce_figures() {
  static const std::vector<std::string> figures = {"fig1", "fig2", "fig3", "fig4", "lm"};
  return figures;
}

bool quick_for(const ReproduceOptions& opt, const std::string& fig) {
  if (!opt.quick) return false;
  for (const auto& f : split_list(opt.full))
    if (f == fig) return false;
  return true;
}

void validate(const ReproduceOptions& opt) {
  if (!opt.full.empty()) {
    if (!opt.quick) throw UsageError("--full names the figures that --quick leaves at the paper's settings");
    for (const auto& f : split_list(opt.full))
      if (std::find(reproduce_figures().begin(), reproduce_figures().end(), f) == reproduce_figures().end())
        throw UsageError("--full: unknown figure '" + f + "' (known: fig1, fig2, fig3, fig4, lm)");
  }
  const std::vector<std::string> known = {"fig1", "fig2", "fig3", "fig4", "all", "lm"};
  if (std::find(known.begin(), known.end(), opt.what) == known.end())
    throw UsageError("reproduce: unknown target '" + opt.what + "' (known: fig1, fig2, fig3, fig4, all, lm)");
  if (opt.trials < 0 || opt.seeds < 0) throw UsageError("--trials and --seeds must be positive");
  if (opt.concurrent_trials < 1) throw UsageError("--concurrent-trials must be at least 1");
  if (!opt.lm_runs.empty() && opt.what != "lm") throw UsageError("--lm-runs is for the target lm");
  if (opt.what == "lm") lm_study_runs(opt);  // checks --lm-runs
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
  return all.dump(2) + "\n";
}

}  // namespace pinntk
