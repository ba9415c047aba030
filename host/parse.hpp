// Parsers for command-line values: numbers with fractions and pi, layer lists, Adam schedules, intervals.
#pragma once

#include <cstdint>  // uint64_t
#include <string>   // std::string
#include <utility>  // std::pair
#include <vector>   // std::vector

#include "host/optim/schedule.hpp"  // Phase, kMaxIterations

namespace pinntk {

// The items of a comma-separated list, an empty item where two separators meet or one ends the text.
std::vector<std::string> split_list(const std::string& text, char sep = ',');

// A count of at most 10^12 ("500"), a UsageError naming `what` otherwise.
long parse_count(const std::string& text, const std::string& what, long min);

// A seed: a decimal integer in [0, 2^64 - 1] ("-1" and out-of-range values are refused, naming `what`).
uint64_t parse_seed(const std::string& text, const std::string& what = "--seed");

// "0.0125", "1/80", "pi", "-pi", "2pi", "2*pi", "pi/2". Throws UsageError naming `what` otherwise.
double parse_real(const std::string& text, const std::string& what);

// "1,50,1" -> {1, 50, 1}; checks the shape of a scalar-in, scalar-out MLP with at least one hidden layer.
std::vector<int> parse_layers(const std::string& text);

// "10000@1e-4,10000@1e-5" -> phases; empty text gives no phases. The total is at most kMaxIterations.
std::vector<Phase> parse_schedule(const std::string& text);

// x as text with 17 significant digits ("%.17g"), which parse_real and strtod read back exactly.
std::string fmt17(double x);

// "-pi,pi" -> {-pi, pi} with a < b.
std::pair<double, double> parse_domain(const std::string& text);
// "a,b" (every axis) or "a1,b1,...,an,bn": the box of an n-dimensional problem.
void parse_box(const std::string& text, int dim, std::vector<double>& lo, std::vector<double>& hi);

}  // namespace pinntk
