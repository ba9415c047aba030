// Initialization and the pinntk-mlp-v1 checkpoint format.
#include <gtest/gtest.h>

#include <algorithm>  // std::max
#include <cmath>      // std::sqrt, std::fabs

#include "common/errors.hpp"  // UsageError
#include "host/mlp.hpp"       // init_mlp, checkpoint_json

namespace pinntk {
namespace {

TEST(Checkpoint, RoundTripIsBitExact) {
  Mlp net = init_mlp({1, 7, 3, 1}, "normal", 42);
  net.theta[0] = 0.1 + 0.2;  // awkward doubles
  net.theta[1] = 1e-310;     // subnormal
  net.theta[2] = -123456789.123456789;
  const Mlp back = checkpoint_from_json(checkpoint_json(net), "test");
  EXPECT_EQ(back.layers, net.layers);
  ASSERT_EQ(back.theta.size(), net.theta.size());
  // Bit for bit: no arithmetic, only printing and parsing (shortest round-trip digits).
  for (size_t i = 0; i < net.theta.size(); ++i) EXPECT_EQ(back.theta[i], net.theta[i]) << i;
}

TEST(Checkpoint, LayoutIsRowsOfWeights) {
  Mlp net = init_mlp({1, 2, 3, 1}, "normal", 1);
  for (size_t i = 0; i < net.theta.size(); ++i) net.theta[i] = static_cast<double>(i);
  const std::string j = checkpoint_json(net);
  // W^2 is 3 x 2 starting after W^1 (2) and b^1 (2): rows [4,5],[6,7],[8,9], then b^2 = [10,11,12].
  EXPECT_NE(j.find("[[4.0,5.0],[6.0,7.0],[8.0,9.0]]"), std::string::npos) << j;
  EXPECT_NE(j.find("[10.0,11.0,12.0]"), std::string::npos) << j;
}

TEST(Checkpoint, BadFilesAreRejected) {
  const std::string good = checkpoint_json(init_mlp({1, 2, 1}, "normal", 1));
  EXPECT_NO_THROW(checkpoint_from_json(good, "t"));
  EXPECT_THROW(checkpoint_from_json("{", "t"), UsageError);
  EXPECT_THROW(checkpoint_from_json(R"({"format":"other"})", "t"), UsageError);
  const char* nan_file =
      R"({"format":"pinntk-mlp-v1","layers":[1,2,1],"weights":[[[NaN],[1]],[[1,1]]],"biases":[[0,0],[0]]})";
  EXPECT_THROW(checkpoint_from_json(nan_file, "t"), UsageError);
  const char* shape =
      R"({"format":"pinntk-mlp-v1","layers":[1,2,1],"weights":[[[1],[1],[1]],[[1,1]]],"biases":[[0,0],[0]]})";
  EXPECT_THROW(checkpoint_from_json(shape, "t"), UsageError);
  const char* str =
      R"({"format":"pinntk-mlp-v1","layers":[1,2,1],"weights":[[["a"],[1]],[[1,1]]],"biases":[[0,0],[0]]})";
  EXPECT_THROW(checkpoint_from_json(str, "t"), UsageError);
  EXPECT_THROW(load_checkpoint("/nonexistent/file.json"), UsageError);
}

TEST(Init, DeterministicPerSeedAndScaled) {
  const Mlp a = init_mlp({1, 64, 64, 1}, "glorot-normal", 7), b = init_mlp({1, 64, 64, 1}, "glorot-normal", 7);
  const Mlp c = init_mlp({1, 64, 64, 1}, "glorot-normal", 8);
  EXPECT_EQ(a.theta, b.theta);  // bit for bit: the same seed through the same generator, no BLAS
  EXPECT_NE(a.theta, c.theta);
  // W^2 (64 x 64): variance 2/128; biases zero.
  const int off = weight_offset(a.layers, 2);
  double s2 = 0.0;
  for (int i = 0; i < 64 * 64; ++i) s2 += a.theta[off + i] * a.theta[off + i];
  EXPECT_NEAR(s2 / 4096, 2.0 / 128, 0.1 * 2.0 / 128);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(a.theta[off + 4096 + i], 0.0);
  const Mlp n = init_mlp({1, 200, 1}, "normal", 3);
  double m2 = 0.0;
  for (double t : n.theta) m2 += t * t;
  EXPECT_NEAR(m2 / n.theta.size(), 1.0, 0.15);
  const Mlp u = init_mlp({1, 50, 50, 1}, "glorot-uniform", 3);
  const double lim = std::sqrt(6.0 / 100);
  for (int i = 0; i < 2500; ++i) EXPECT_LE(std::fabs(u.theta[weight_offset(u.layers, 2) + i]), lim);
  EXPECT_THROW(init_mlp({1, 2, 1}, "he", 0), UsageError);
}

TEST(Init, GlorotTruncatedHasTheTargetStdAfterTruncation) {
  // DeepXDE's TensorFlow "Glorot normal": truncated at 2 sigma of the underlying normal, std sqrt(2/fan) after it.
  const Mlp a = init_mlp({1, 400, 300, 1}, "glorot-truncated", 11);
  EXPECT_EQ(a.theta, init_mlp({1, 400, 300, 1}, "glorot-truncated", 11).theta);
  const int off = weight_offset(a.layers, 2), n = 400 * 300;
  const double target = std::sqrt(2.0 / 700), sigma = target / 0.87962566103423978;
  double s1 = 0.0, s2 = 0.0, vmax = 0.0;
  for (int i = 0; i < n; ++i) {
    const double w = a.theta[off + i];
    s1 += w;
    s2 += w * w;
    vmax = std::max(vmax, std::fabs(w));
  }
  const double mean = s1 / n, sd = std::sqrt(s2 / n - mean * mean);
  EXPECT_NEAR(sd, target, 0.01 * target);  // 120000 draws: the sample std's standard error is 0.2%
  EXPECT_NEAR(mean, 0.0, 0.01 * target);   // and the mean's 0.3% of the std
  EXPECT_LE(vmax, 2.0 * sigma);            // nothing beyond the truncation
  EXPECT_GT(vmax, 1.9 * sigma);            // and the tails reach it
  for (int i = 0; i < 300; ++i) EXPECT_EQ(a.theta[off + n + i], 0.0);  // biases 0
  // Plain glorot-normal has values beyond 2 sigma (about 4.6% of them) and a std of sqrt(2/fan) itself.
  const Mlp g = init_mlp({1, 400, 300, 1}, "glorot-normal", 11);
  int beyond = 0;
  for (int i = 0; i < n; ++i) beyond += std::fabs(g.theta[off + i]) > 2.0 * target;
  EXPECT_GT(beyond, n / 40);
}

}  // namespace
}  // namespace pinntk
