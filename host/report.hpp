// The headline numbers of a reproduction beside the paper's: lines for the terminal at the end of `pinntk
// reproduce`, and the result folder's index page (README.md) that shows each figure with its numbers.
#pragma once

#include <nlohmann/json_fwd.hpp>  // nlohmann::json
#include <string>                 // std::string
#include <vector>                 // std::vector

namespace pinntk {

struct Headline {
  std::string figure;    // "Fig. 2a"
  std::string quantity;  // "slope of ||K_uu||_F against eps (log-log)"
  std::string ours;      // "-1.98"
  std::string paper;     // "-2"
};

// The headlines of every figure in a reproduce summary (its top-level summary.json).
std::vector<Headline> headlines(const nlohmann::json& summary);

// "Fig. 2a  slope of ||K_uu||_F ...  -1.98  (paper: -2)", one line each.
std::string headline_lines(const std::vector<Headline>& h);

// The folder's README.md: each figure's picture (figN/figN.png), its numbers beside the paper's, its data files
// and whether it ran at the paper's settings or in the quick form.
std::string index_markdown(const nlohmann::json& summary);

}  // namespace pinntk
