// `pinntk reproduce`: the paper's Figures 1-4 (Sections 2, 4.1, 4.2, Appendix A) as data, with the paper's
// settings, and studies beyond the paper (lm, fig2-2d, poisson2d); --quick shrinks iterations, trials and sweeps to
// a smoke test.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "host/backend.hpp"        // Backend
#include "host/io/output_dir.hpp"  // OutputDir

namespace pinntk {

struct ReproduceOptions {
  // fig1, fig2, fig3, fig4, all (the paper); beyond it: lm (Levenberg-Marquardt), fig2-2d (Fig. 2 in 2-D),
  // poisson2d (LM on the 2-D Poisson benchmark of Dangel et al. 2024, and the 2-D two-scale Darcy problem)
  std::string what;
  bool quick = false;
  std::string full;            // with quick: these figures (e.g. "fig2,fig3") at the paper's settings all the same
  int trials = 0;              // fig4 trials (0: 10, quick 2)
  int seeds = 0;               // fig2 seeds (0: 5, quick 2)
  bool lm_eps32_only = false;  // lm: skip the eps = 1/64 and 1/128 runs
  std::string lm_runs;         // lm: comma-separated run names to run (empty: all)
  std::string lbfgs_method = "lbfgsb";      // every L-BFGS run (fig4, lm, poisson2d): lbfgsb or two-loop
  std::string fig4_init = "glorot-normal";  // fig4: the initializer (glorot-truncated: DeepXDE's TensorFlow one)
  int concurrent_runs = 1;                  // lm: runs at once on the CUDA backend (a host thread and backend each)
  int concurrent_trials = 0;                // fig4 trials trained at once, as one batch of networks (0: all of them)
  double time_budget = 0.0;    // poisson2d: seconds of training per run of the two larger networks (0: 300 s); the
                               // D = 257 runs keep their 60 s (quick: 50 LM iterations, D = 9873 2, D = 116097 none)
  std::string poisson2d_runs;  // poisson2d: comma-separated parts to run, of 257, 9873, 116097, darcy2d (empty: all)
  std::string device, precision;
};

// Throws UsageError for an unknown target, a negative count or an unknown figure in `full`.
void validate(const ReproduceOptions& opt);

// The figures `reproduce` knows, each with a folder of its own in the output: fig1 .. fig4, lm, fig2-2d, poisson2d.
const std::vector<std::string>& reproduce_figures();

// The picture scripts/plot.py draws for a figure, relative to the output folder: "fig2/fig2.png",
// "fig2-2d/fig2_2d.png", "poisson2d/poisson2d.png".
std::string reproduce_picture(const std::string& fig);

// Whether figure `fig` (one of reproduce_figures()) runs in its quick form under these options.
bool quick_for(const ReproduceOptions& opt, const std::string& fig);

// Writes figN/... into out (not committed) and returns a JSON summary of every figure run, as text.
std::string reproduce(const ReproduceOptions& opt, Backend& be, OutputDir& out);

// Least-squares slope of log y against log x and its standard error.
struct Slope {
  double slope = 0.0, stderr_ = 0.0;
};
Slope loglog_slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace pinntk
