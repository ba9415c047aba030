// Adam against hand-computed steps and on a problem with a known minimum.
#include <gtest/gtest.h>

#include <cmath>  // std::sqrt

#include "host/optim/adam.hpp"  // Adam

namespace pinntk {
namespace {

TEST(Adam, FirstTwoStepsByHand) {
  Adam adam(2, AdamConfig{});
  std::vector<double> theta = {1.0, -2.0};
  adam.step(theta, std::vector<double>{0.5, -4.0}, 0.1);
  // Step 1: mhat = g, vhat = g^2, so each parameter moves by lr * g / (|g| + 1e-8).
  EXPECT_NEAR(theta[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_NEAR(theta[1], -2.0 + 0.1 * 4.0 / (4.0 + 1e-8), 1e-15);
  const double t0 = theta[0];
  adam.step(theta, std::vector<double>{0.25, 0.0}, 0.1);
  // Step 2 for parameter 0: m = 0.9*0.05 + 0.1*0.25 = 0.07, v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225,
  // mhat = 0.07/0.19, vhat = 0.00031225/0.001999.
  const double mhat = 0.07 / (1 - 0.81), vhat = 0.00031225 / (1 - 0.999 * 0.999);
  EXPECT_NEAR(theta[0], t0 - 0.1 * mhat / (std::sqrt(vhat) + 1e-8), 1e-15);
  EXPECT_EQ(adam.steps(), 2);
}

TEST(Adam, MinimizesAQuadratic) {
  Adam adam(3, AdamConfig{});
  std::vector<double> theta = {3.0, -1.0, 0.5}, grad(3);
  const double target[3] = {0.2, 0.7, -1.1}, scale[3] = {1.0, 10.0, 0.1};
  for (int it = 0; it < 5000; ++it) {
    for (int i = 0; i < 3; ++i) grad[i] = scale[i] * (theta[i] - target[i]);
    adam.step(theta, grad, it < 4000 ? 1e-2 : 1e-4);
  }
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(theta[i], target[i], 1e-3);
}

}  // namespace
}  // namespace pinntk
