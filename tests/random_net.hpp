// A network for kernel tests whose every parameter is set: glorot-normal weights plus noise and nonzero biases. Zero
// biases, as the initializers leave them, would hide a bias read from the wrong place.
#pragma once

#include <random>  // std::mt19937, std::normal_distribution
#include <vector>  // std::vector

#include "host/mlp.hpp"  // init_mlp, Mlp

namespace pinntk::testing {

inline Mlp random_net(const std::vector<int>& layers, unsigned seed) {
  Mlp net = init_mlp(layers, "glorot-normal", seed);
  std::mt19937 gen(seed + 1000u);
  std::normal_distribution<double> g(0.0, 0.2);
  for (double& v : net.theta) v += g(gen);
  return net;
}

}  // namespace pinntk::testing
