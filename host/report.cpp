#include "host/report.hpp"

#include <cstdio>             // std::snprintf
#include <nlohmann/json.hpp>  // nlohmann::json
#include <sstream>            // std::ostringstream

#include "host/reproduce.hpp"  // reproduce_picture

namespace pinntk {
namespace {

using nlohmann::json;

std::string num(const json& v) {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v.get<double>());
  return buf;
}

std::string slope(const json& fit) {
  if (!fit.is_object() || !fit.contains("slope_of_geometric_mean")) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f +- %.2f", fit.value("slope_of_geometric_mean", 0.0),
                fit.value("slope_of_geometric_mean_stderr", 0.0));
  return buf;
}

// A slope with its spread over seeds and the pooled fit: "-2.01 +- 0.05 over seeds (pooled -2.00)".
std::string seed_slope(const json& fit) {
  if (!fit.is_object() || !fit.contains("slope_mean_over_seeds")) return "-";
  char buf[80];
  std::snprintf(buf, sizeof buf, "%.2f +- %.2f over seeds (pooled %.2f)", fit.value("slope_mean_over_seeds", 0.0),
                fit.value("slope_std_over_seeds", 0.0), fit.value("slope_pooled", 0.0));
  return buf;
}

// A figure's value at a path of keys, or null.
json at(const json& j, std::initializer_list<const char*> keys) {
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object() || !p->contains(k)) return json();
    p = &(*p)[k];
  }
  return *p;
}

struct Figure {
  const char* key;
  const char* title;
  const char* data;  // the data files, for the index
  bool paper;        // one of the paper's figures (else a study beyond it)
};

const Figure kFigures[] = {
    {"fig1", "Fig. 1: the frequency principle (Sec. 2, App. A)", "`fig1/dft.csv`, `fig1/history.csv`", true},
    {"fig2", "Fig. 2: ||K_uu||_F and the top eigenvalues grow like eps^-2 (Sec. 4.1)", "`fig2/sweep.csv`", true},
    {"fig3", "Fig. 3: the NTK spectrum at eps = 1/80 (Sec. 4.1)", "`fig3/spectra.csv`, `fig3/spectrum_*.npy`", true},
    {"fig4", "Fig. 4: regression, Poisson and Darcy PINNs at eps = 1/32 (Sec. 4.2)",
     "`fig4/{regression,poisson,darcy}_{mean,trials}.csv`", true},
    {"lm", "Beyond the paper: Levenberg-Marquardt on the Sec. 4.2 PINNs", "`lm/runs.csv`, `lm/<run>_history.csv`",
     false},
    {"fig2-2d", "Beyond the paper: Fig. 2 in two dimensions (darcy2d-ntk, the n > 1 sketch of Sec. 3)",
     "`fig2-2d/fig2_2d.csv`", false},
    {"poisson2d",
     "Beyond the paper: LM on the 2-D Poisson benchmark of Dangel et al. (2024) and on the 2-D two-scale Darcy "
     "problem",
     "`poisson2d/poisson2d_runs.csv`, `poisson2d/darcy2d_runs.csv`, `poisson2d/darcy2d_<run>.csv`", false},
};

std::vector<Headline> of_figure(const std::string& key, const json& f) {
  std::vector<Headline> h;
  if (key == "fig1") {
    h.push_back(
        {"Fig. 1", "max-norm error after Adam, eq. (4)", num(at(f, {"max_error"})), num(at(f, {"paper_max_error"}))});
  } else if (key == "fig2") {
    for (const auto& [panel, name] : {std::pair<const char*, const char*>{"a_init_normal", "Fig. 2a"},
                                      std::pair<const char*, const char*>{"b_glorot_adam", "Fig. 2b"}}) {
      h.push_back(
          {name, "slope of ||K_uu||_F against eps (log-log)", slope(at(f, {"fits", panel, "frobenius_Kuu"})), "-2"});
      h.push_back({name, "slope of lambda_1(K_uu)", slope(at(f, {"fits", panel, "lambda1"})), "-2"});
      h.push_back({name, "slope of rho(K_bb)", slope(at(f, {"fits", panel, "spectral_radius_Kbb"})), "about 0"});
    }
  } else if (key == "fig3") {
    h.push_back({"Fig. 3a", "eigenvalues above 1e-6 lambda_max at init",
                 num(at(f, {"init", "eigenvalues_above_1e-6_lambda_max"})), "a handful"});
    h.push_back({"Fig. 3b", "lambda_1 / lambda_2 after training", num(at(f, {"trained", "lambda1_over_lambda2"})),
                 "a single well-separated eigenvalue"});
    h.push_back({"Fig. 3", "lambda_max / smallest resolved eigenvalue (init, trained)",
                 num(at(f, {"init", "lambda_max_over_smallest_resolved"})) + ", " +
                     num(at(f, {"trained", "lambda_max_over_smallest_resolved"})),
                 "quite large"});
  } else if (key == "fig4") {
    for (const char* c : {"regression", "poisson", "darcy"}) {
      if (!f.contains(c)) continue;
      h.push_back({"Fig. 4", std::string(c) + ": max error of the trial mean / mean variance",
                   num(at(f, {c, "max_error_of_mean"})) + " / " + num(at(f, {c, "mean_variance"})),
                   num(at(f, {c, "paper_max_error"})) + " / " + num(at(f, {c, "paper_mean_variance"}))});
    }
  } else if (key == "fig2-2d") {
    for (const auto& [panel, name] : {std::pair<const char*, const char*>{"a_init_normal", "Fig. 2a (2-D)"},
                                      std::pair<const char*, const char*>{"b_init_glorot", "Fig. 2b (2-D)"}}) {
      const char* sketch = "-2 (1-D; sketched for n > 1)";
      h.push_back({name, "slope of ||K_uu||_F against eps (log-log)",
                   seed_slope(at(f, {"fits", panel, "frobenius_Kuu"})), sketch});
      h.push_back({name, "slope of lambda_1(K_uu)", seed_slope(at(f, {"fits", panel, "lambda1"})), sketch});
      h.push_back({name, "slope of rho(K_bb)", seed_slope(at(f, {"fits", panel, "spectral_radius_Kbb"})), "about 0"});
    }
  } else if (key == "poisson2d") {
    if (f.contains("best") && f["best"].is_object()) {
      for (const auto& [D, b] : f["best"].items())
        h.push_back(
            {"Poisson 2-D",
             "D = " + D + ": best relative L2 error, LM (" + b.value("limit", std::string("?")) + ", this machine)",
             num(at(b, {"rel_l2"})),
             num(at(b, {"published_best_rel_l2"})) + " (Dangel et al. best, " +
                 b.value("published_best_optimizer", std::string("?")) + ", 1000 s on a GPU)"});
    }
    const json runs = at(f, {"darcy2d", "runs"});
    if (runs.is_array())
      for (const json& r : runs)
        h.push_back({"Darcy 2-D",
                     "eps = 1/" + num(at(r, {"inv_eps"})) + ": max error, " + r.value("optimizer", std::string("?")),
                     num(at(r, {"max_error"})), "-"});
  } else if (key == "lm") {
    for (const auto& [run, r] : f.items()) {
      if (!r.is_object() || !r.contains("max_error")) continue;
      const json paper = at(r, {"paper_adam_lbfgs_max_error"});
      h.push_back({"LM", run + ": max error", num(at(r, {"max_error"})),
                   paper.is_number() ? num(paper) + " (Adam + L-BFGS, 10-trial mean)" : "-"});
    }
  }
  return h;
}

const char* form(const Figure& fig, const json& f) {
  if (f.is_object() && f.value("quick", false)) return "in its quick form";
  return fig.paper ? "at the paper's settings" : "in its full form";
}

// A Markdown table cell: its own "|" (as in ||K_uu||_F) must not end the cell.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::vector<Headline> headlines(const json& summary) {
  std::vector<Headline> all;
  for (const auto& fig : kFigures) {
    if (!summary.contains(fig.key)) continue;
    std::vector<Headline> h = of_figure(fig.key, summary[fig.key]);
    if (summary[fig.key].is_object() && summary[fig.key].value("quick", false))
      for (auto& l : h) l.figure += " (quick)";  // a smoke test's numbers are no reproduction: say so on each line
    all.insert(all.end(), h.begin(), h.end());
  }
  return all;
}

std::string headline_lines(const std::vector<Headline>& h) {
  std::ostringstream out;
  for (const auto& l : h) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "  %-16s %-58s %-22s (paper: %s)\n", l.figure.c_str(), l.quantity.c_str(),
                  l.ours.c_str(), l.paper.c_str());
    out << buf;
  }
  return out.str();
}

std::string index_markdown(const json& summary) {
  std::ostringstream md;
  md << "# pinntk reproduction of Gangal, Kim, Carney (arXiv 2212.13531)\n\n"
     << "Computed on the " << summary.value("device", std::string("?")) << " backend in "
     << summary.value("precision", std::string("?"))
     << ". Each figure below says whether it ran at the paper's settings or in its quick form (a smoke test whose "
        "numbers say little about the paper). The data of every figure is in its folder; `summary.json` has all "
        "numbers.\n";
  for (const auto& fig : kFigures) {
    if (!summary.contains(fig.key)) continue;
    const json& f = summary[fig.key];
    md << "\n## " << fig.title << "\n\n"
       << "Run " << form(fig, f) << "; data: " << fig.data << ".\n\n"
       << "![" << fig.key << "](" << reproduce_picture(fig.key) << ")\n\n"
       << "| | quantity | pinntk | paper |\n|---|---|---|---|\n";
    const bool quick = f.is_object() && f.value("quick", false);
    for (const auto& h : of_figure(fig.key, f))
      md << "| " << cell(h.figure + (quick ? " (quick)" : "")) << " | " << cell(h.quantity) << " | " << cell(h.ours)
         << " | " << cell(h.paper) << " |\n";
  }
  md << "\nPictures are drawn by `scripts/plot.py` (python3 with numpy and matplotlib); where one is missing, run "
        "`python3 scripts/plot.py` on this folder.\n";
  return md.str();
}

}  // namespace pinntk
