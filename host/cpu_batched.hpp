// The CPU loss gradient in batched form: the per-point Taylor-mode forward and reverse passes of DESIGN.md section 2
// for a chunk of points at once, with the (h, h', h'') channels of all points side by side so that each layer's
// contractions are three matrix products (OpenBLAS dgemm) and only the tanh jets and the first layer are
// elementwise (the shared first_layer_jet, first_layer_weight_adjoint, tanh_jet and tanh_jet_adjoint of
// common/mlp_math.hpp).
#pragma once

#include <vector>  // std::vector

#include "common/span.hpp"   // span
#include "host/mlp.hpp"      // Mlp
#include "host/problem.hpp"  // PointSet

namespace pinntk {

// Buffers reused between calls.
struct BatchedWorkspace {
  std::vector<std::vector<double>> h;   // per hidden layer: d_l x 3B, the channels h, h', h''
  std::vector<std::vector<double>> zd;  // per hidden layer: d_l x 2B, z' and z''
  std::vector<double> a, b, u;          // adjoints (two ping-pong buffers, maxw x 3B) and the output (3B)
};

// Loss 1/2 sum w_k r_k^2, its gradient and the residuals; points are taken in chunks of at most `chunk`.
// The last digits depend on the chunk size, the OpenBLAS kernel family and the thread count (where a point's
// column falls in gemm's register tiling decides its summation order): compare results of two of them with a
// tolerance, and bitwise only for the same ones.
double batched_loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                             BatchedWorkspace& ws, int chunk = 2048);

}  // namespace pinntk
