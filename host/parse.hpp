// Parsers for command-line values: numbers with fractions and pi, layer lists, Adam schedules, intervals.
#pragma once

#include <string>   // std::string
#include <utility>  // std::pair
#include <vector>   // std::vector

namespace pinntk {

// "0.0125", "1/80", "pi", "-pi", "2pi", "2*pi", "pi/2". Throws UsageError naming `what` otherwise.
double parse_real(const std::string& text, const std::string& what);

// "1,50,1" -> {1, 50, 1}; checks the shape of a scalar-in, scalar-out MLP with at least one hidden layer.
std::vector<int> parse_layers(const std::string& text);

// One phase of a piecewise-constant learning-rate schedule.
struct Phase {
  long iterations;
  double lr;
};
// "10000@1e-4,10000@1e-5" -> phases; empty text gives no phases.
std::vector<Phase> parse_schedule(const std::string& text);

// "-pi,pi" -> {-pi, pi} with a < b.
std::pair<double, double> parse_domain(const std::string& text);

}  // namespace pinntk
