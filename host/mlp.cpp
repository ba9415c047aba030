#include "host/mlp.hpp"

#include <algorithm>          // std::find
#include <cmath>              // std::sqrt, std::isfinite, std::fabs
#include <nlohmann/json.hpp>  // nlohmann::json

#include "common/errors.hpp"  // UsageError
#include "host/io/files.hpp"  // read_regular_file
#include "host/rng.hpp"       // Rng

namespace pinntk {

int weight_offset(const std::vector<int>& layers, int l) {
  int off = 0;
  for (int k = 1; k < l; ++k) off += layers[k] * layers[k - 1] + layers[k];
  return off;
}

std::vector<std::string> init_names() { return {"normal", "glorot-normal", "glorot-uniform", "glorot-truncated"}; }

// The standard deviation of a standard normal truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))).
constexpr double kTruncatedNormalStd = 0.87962566103423978;

Mlp init_mlp(const std::vector<int>& layers, const std::string& scheme, uint64_t seed) {
  const std::vector<std::string> names = init_names();
  if (std::find(names.begin(), names.end(), scheme) == names.end())
    throw UsageError("--init: unknown scheme '" + scheme +
                     "' (known: normal, glorot-normal, glorot-uniform, glorot-truncated)");
  Mlp net;
  net.layers = layers;
  net.theta.assign(net.n_params(), 0.0);
  Rng rng(seed);
  for (size_t l = 1; l < layers.size(); ++l) {
    const int din = layers[l - 1], dout = layers[l];
    double* W = net.theta.data() + weight_offset(layers, static_cast<int>(l));
    double* b = W + dout * din;
    const double fan = din + dout;
    for (int i = 0; i < dout * din; ++i) {
      if (scheme == "normal") {
        W[i] = rng.normal();
      } else if (scheme == "glorot-normal") {
        W[i] = std::sqrt(2.0 / fan) * rng.normal();
      } else if (scheme == "glorot-truncated") {
        // Redraw beyond 2 standard deviations of the underlying normal, whose sigma makes the truncated one's
        // standard deviation sqrt(2/fan).
        double z = rng.normal();
        while (std::fabs(z) > 2.0) z = rng.normal();
        W[i] = std::sqrt(2.0 / fan) / kTruncatedNormalStd * z;
      } else {
        const double a = std::sqrt(6.0 / fan);
        W[i] = a * (2.0 * rng.uniform() - 1.0);
      }
    }
    for (int i = 0; i < dout; ++i) b[i] = (scheme == "normal") ? rng.normal() : 0.0;
  }
  return net;
}

std::string checkpoint_json(const Mlp& net) {
  for (size_t k = 0; k < net.theta.size(); ++k)  // JSON has no NaN or inf: the checkpoint could not be read back
    if (!std::isfinite(net.theta[k]))
      throw NumericalError("the network's parameter " + std::to_string(k) + " is " + std::to_string(net.theta[k]) +
                           ": a checkpoint holds finite numbers only");
  nlohmann::json j;
  j["format"] = "pinntk-mlp-v1";
  j["layers"] = net.layers;
  j["activation"] = "tanh";
  j["weights"] = nlohmann::json::array();
  j["biases"] = nlohmann::json::array();
  for (size_t l = 1; l < net.layers.size(); ++l) {
    const int din = net.layers[l - 1], dout = net.layers[l];
    const double* W = net.theta.data() + weight_offset(net.layers, static_cast<int>(l));
    nlohmann::json rows = nlohmann::json::array();
    for (int i = 0; i < dout; ++i) rows.push_back(std::vector<double>(W + i * din, W + (i + 1) * din));
    j["weights"].push_back(rows);
    j["biases"].push_back(std::vector<double>(W + dout * din, W + dout * din + dout));
  }
  return j.dump() + "\n";
}

namespace {

double finite_number(const nlohmann::json& v, const std::string& origin, const std::string& where) {
  if (!v.is_number()) throw UsageError("checkpoint " + origin + ": " + where + " is not a number");
  const double x = v.get<double>();
  if (!std::isfinite(x)) throw UsageError("checkpoint " + origin + ": " + where + " is not finite");
  return x;
}

}  // namespace

Mlp checkpoint_from_json(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // NaN and Infinity are not JSON: such a file fails here.
    throw UsageError("checkpoint " + origin + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object() || j.value("format", "") != "pinntk-mlp-v1")
    throw UsageError("checkpoint " + origin + ": \"format\" is not \"pinntk-mlp-v1\"");
  if (j.value("activation", "tanh") != "tanh")
    throw UsageError("checkpoint " + origin + ": only the tanh activation is supported");
  if (!j.contains("layers") || !j["layers"].is_array() || !j.contains("weights") || !j["weights"].is_array() ||
      !j.contains("biases") || !j["biases"].is_array())
    throw UsageError("checkpoint " + origin + ": needs arrays \"layers\", \"weights\" and \"biases\"");
  Mlp net;
  for (const auto& v : j["layers"]) {
    if (!v.is_number_integer() || v.get<long>() <= 0 || v.get<long>() > 4096)
      throw UsageError("checkpoint " + origin + ": \"layers\" must hold positive integer widths");
    net.layers.push_back(v.get<int>());
  }
  if (net.layers.size() < 3 || net.layers.front() > 3 || net.layers.back() != 1)
    throw UsageError("checkpoint " + origin + ": \"layers\" must read n (1, 2 or 3), hidden widths..., 1");
  const size_t nl = net.layers.size() - 1;
  if (j["weights"].size() != nl || j["biases"].size() != nl)
    throw UsageError("checkpoint " + origin + ": expected " + std::to_string(nl) + " weight matrices and bias vectors");
  net.theta.assign(net.n_params(), 0.0);
  for (size_t l = 1; l <= nl; ++l) {
    const int din = net.layers[l - 1], dout = net.layers[l];
    const auto& rows = j["weights"][l - 1];
    const auto& bias = j["biases"][l - 1];
    const std::string tag = "layer " + std::to_string(l);
    if (!rows.is_array() || rows.size() != static_cast<size_t>(dout))
      throw UsageError("checkpoint " + origin + ": " + tag + " weights must have " + std::to_string(dout) + " rows");
    if (!bias.is_array() || bias.size() != static_cast<size_t>(dout))
      throw UsageError("checkpoint " + origin + ": " + tag + " biases must have " + std::to_string(dout) + " entries");
    double* W = net.theta.data() + weight_offset(net.layers, static_cast<int>(l));
    for (int i = 0; i < dout; ++i) {
      if (!rows[i].is_array() || rows[i].size() != static_cast<size_t>(din))
        throw UsageError("checkpoint " + origin + ": " + tag + " weight rows must have " + std::to_string(din) +
                         " entries");
      for (int k = 0; k < din; ++k) W[i * din + k] = finite_number(rows[i][k], origin, tag + " weight");
      W[dout * din + i] = finite_number(bias[i], origin, tag + " bias");
    }
  }
  return net;
}

Mlp load_checkpoint(const std::string& path) {
  // The largest network (widths of 4096) has about 5e7 numbers of at most 25 characters each.
  return checkpoint_from_json(read_regular_file(path, "checkpoint", size_t{2} << 30), path);
}

}  // namespace pinntk
