// The CPU loss gradient in batched form: the per-point Taylor-mode forward and reverse passes of DESIGN.md section 2
// for a chunk of points at once, with the channels of all points side by side (h, h', h'' in 1-D; h, then D_k h and
// D_k^2 h along each of the n coordinate axes in n-D, DESIGN.md section 7) so that each layer's contractions are
// matrix products (OpenBLAS dgemm) and only the tanh jets and the first layer are elementwise (the shared
// first_layer_jet, first_layer_weight_adjoint, tanh_jet and tanh_jet_adjoint of common/mlp_math.hpp).
#pragma once

#include <vector>  // std::vector

#include "common/span.hpp"   // span
#include "host/mlp.hpp"      // Mlp
#include "host/problem.hpp"  // PointSet

namespace pinntk {

// Buffers reused between calls.
struct BatchedWorkspace {
  std::vector<std::vector<double>> h;   // per hidden layer: d_l x (1 + 2n)B, the channels h, h'_k, h''_k
  std::vector<std::vector<double>> zd;  // per hidden layer: d_l x 2nB, z'_k and z''_k
  std::vector<double> a, b, u;          // adjoints (two ping-pong buffers, maxw x (1 + 2n)B) and the output
};

// Loss 1/2 sum w_k r_k^2, its gradient and the residuals; points are taken in chunks of at most `chunk`. The rows'
// dimension pts.dim (1 to 3) is the network's input width.
// The last digits depend on the chunk size, the OpenBLAS kernel family and the thread count (where a point's
// column falls in gemm's register tiling decides its summation order): compare results of two of them with a
// tolerance, and bitwise only for the same ones.
double batched_loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                             BatchedWorkspace& ws, int chunk = 2048);

}  // namespace pinntk
