// make_net_desc (cuda/tile_plan.hpp): host code, compiled in every build (the CPU tests run the kernels' device code
// under tests/block_emulator.hpp with the descriptors the CUDA launchers use).
#include <algorithm>  // std::max
#include <climits>    // INT_MAX
#include <stdexcept>  // std::invalid_argument, std::length_error
#include <string>     // std::to_string

#include "cuda/tile_plan.hpp"

namespace pinntk {

NetDesc make_net_desc(const std::vector<int>& layers) {
  const int nl = static_cast<int>(layers.size()) - 1;
  if (nl < 2) throw std::invalid_argument("CUDA kernels need at least one hidden layer");
  if (nl > kMaxWeightLayers)
    throw std::invalid_argument("CUDA kernels take at most " + std::to_string(kMaxWeightLayers - 1) + " hidden layers");
  const int n_in = layers.front();
  if (n_in < 1 || n_in > kMaxInputs)
    throw std::invalid_argument("CUDA kernels take 1 to " + std::to_string(kMaxInputs) +
                                " input coordinates (layers[0]), not " + std::to_string(n_in));
  if (layers.back() != 1) throw std::invalid_argument("layers must end with 1 (the scalar output u)");
  // P, the offsets, the tape and the adjoint stride are ints on the device: refuse a shape whose counts would wrap.
  const int per_neuron = 1 + 4 * n_in;  // tape entries of a hidden neuron: t, then h'_k, h''_k, z'_k, z''_k
  long long params = 0, staged = 0, tape = 0, widest = n_in;
  for (int l = 1; l <= nl; ++l) {
    if (layers[l] < 1) throw std::invalid_argument("layer widths must be positive");
    params += static_cast<long long>(layers[l]) * layers[l - 1] + layers[l];
    if (l >= 2 && l < nl) staged += static_cast<long long>(layers[l - 1]) * (layers[l] + 1) + layers[l];
    if (l < nl) tape += static_cast<long long>(per_neuron) * layers[l];
    widest = std::max<long long>(widest, layers[l]);
  }
  staged += layers[nl - 1] + 1;  // the tail's output layer (counted whether or not anything is staged)
  const long long adj = 2LL * (1 + 2 * n_in) * widest;
  // The tape and the adjoint sets are padded by up to 35 numbers a point (bank_padded): within int after that too.
  if (params > INT_MAX || staged > INT_MAX || tape > INT_MAX - 35 || adj > INT_MAX - 35)
    throw std::length_error("network too large for the CUDA kernels: " + std::to_string(params) + " parameters");
  NetDesc n;
  n.nl = nl;
  int woff = 0, toff = 0;
  for (int l = 0; l <= nl; ++l) n.soff[l] = 0;
  for (int l = 2; l < nl; ++l) {
    n.soff[l] = n.staged;
    n.staged += layers[l - 1] * (layers[l] + 1);
  }
  n.stail = n.staged;
  if (n.staged > 0) {  // the tail: b^2 .. b^{nl-1}, W^nl, b^nl
    for (int l = 2; l < nl; ++l) n.staged += layers[l];
    n.staged += layers[nl - 1] + 1;
  }
  for (int l = 0; l <= nl; ++l) {
    n.d[l] = layers[l];
    n.maxw = std::max(n.maxw, layers[l]);
    if (l == 0) continue;
    n.woff[l] = woff;
    woff += layers[l] * layers[l - 1] + layers[l];
    n.toff[l] = toff;
    if (l < nl) toff += per_neuron * layers[l];
  }
  n.P = woff;
  n.tape = toff;
  n.uniform_width = layers[1];
  for (int l = 1; l < nl; ++l)
    if (layers[l] != layers[1]) n.uniform_width = 0;
  return n;
}

}  // namespace pinntk
