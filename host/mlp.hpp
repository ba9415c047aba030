// Mlp: the tanh network's shape and flat parameter vector (order of DESIGN.md section 2), its initialization
// and its JSON checkpoint format pinntk-mlp-v1.
#pragma once

#include <cstdint>  // uint64_t
#include <string>   // std::string
#include <vector>   // std::vector

#include "common/mlp_math.hpp"  // MlpShape

namespace pinntk {

struct Mlp {
  std::vector<int> layers;    // {n, d_1, ..., d_L, 1}: n inputs (1 to 3), one output
  std::vector<double> theta;  // W^1, b^1, W^2, b^2, ...
  MlpShape shape() const { return MlpShape{layers.data(), static_cast<int>(layers.size()) - 1}; }
  int n_params() const { return mlp_param_count(shape()); }
};

// Offset of W^l in theta (l = 1 .. layers.size()-1); b^l follows W^l.
int weight_offset(const std::vector<int>& layers, int l);

// "normal": weights and biases N(0, 1) (Fig. 2a); "glorot-normal": N(0, 2/(fan_in + fan_out)), biases 0;
// "glorot-uniform": U(-a, a) with a = sqrt(6/(fan_in + fan_out)), biases 0; "glorot-truncated": DeepXDE's "Glorot
// normal" on its TensorFlow backend (tf.keras VarianceScaling, truncated_normal): a normal truncated at 2 of its
// standard deviations (values beyond are redrawn) whose standard deviation after truncation is
// sqrt(2/(fan_in + fan_out)), biases 0. Throws UsageError otherwise.
Mlp init_mlp(const std::vector<int>& layers, const std::string& scheme, uint64_t seed);
std::vector<std::string> init_names();

// Checkpoints: {"format":"pinntk-mlp-v1","layers":[...],"activation":"tanh","weights":[W1,...],"biases":[b1,...]}
// with W^l a list of d_l rows of d_{l-1} numbers. Doubles are written with 17 significant digits, so they
// round-trip exactly.
std::string checkpoint_json(const Mlp& net);
// Throws UsageError for an unreadable file, a wrong format, inconsistent shapes or non-finite numbers.
Mlp load_checkpoint(const std::string& path);
Mlp checkpoint_from_json(const std::string& text, const std::string& origin);

}  // namespace pinntk
