// `pinntk reproduce`: the paper's Figures 1-4 (Sections 2, 4.1, 4.2, Appendix A) as data, with the paper's
// settings; --quick shrinks iterations, trials and sweeps to a smoke test.
#pragma once

#include <string>  // std::string
#include <vector>  // std::vector

#include "host/backend.hpp"        // Backend
#include "host/io/output_dir.hpp"  // OutputDir

namespace pinntk {

struct ReproduceOptions {
  std::string what;  // fig1, fig2, fig3, fig4, all (the paper) or lm (beyond it: Levenberg-Marquardt)
  bool quick = false;
  std::string full;            // with quick: these figures (e.g. "fig2,fig3") at the paper's settings all the same
  int trials = 0;              // fig4 trials (0: 10, quick 2)
  int seeds = 0;               // fig2 seeds (0: 5, quick 2)
  bool lm_eps32_only = false;  // lm: skip the eps = 1/64 and 1/128 runs
  std::string lm_runs;         // lm: comma-separated run names to run (empty: all)
  int concurrent_trials = 1;   // fig4 trials trained at once on the CUDA backend (one host thread and stream each)
  std::string device, precision;
};

// Throws UsageError for an unknown target, a negative count or an unknown figure in `full`.
void validate(const ReproduceOptions& opt);

// The figures `reproduce` knows, each with a folder of its own in the output: fig1 .. fig4 and lm.
const std::vector<std::string>& reproduce_figures();

// Whether figure `fig` ("fig1" .. "fig4", "lm") runs in its quick form under these options.
bool quick_for(const ReproduceOptions& opt, const std::string& fig);

// Writes figN/... into out (not committed) and returns a JSON summary of every figure run, as text.
std::string reproduce(const ReproduceOptions& opt, Backend& be, OutputDir& out);

// Least-squares slope of log y against log x and its standard error.
struct Slope {
  double slope = 0.0, stderr_ = 0.0;
};
Slope loglog_slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace pinntk
