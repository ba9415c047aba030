// The CPU loss gradient in batched form: the per-point Taylor-mode forward and reverse passes of DESIGN.md section 2
// for a chunk of points at once, with the channels of all points side by side (h, h', h'' in 1-D; h, then D_k h and
// D_k^2 h along each of the n coordinate axes in n-D, DESIGN.md section 7) so that each layer's contractions are
// matrix products (register-blocked AVX-512 kernels where the CPU has AVX-512, else OpenBLAS dgemm) and only the
// tanh jets and the first layer are elementwise (the shared first_layer_jet, first_layer_weight_adjoint, tanh_jet
// and tanh_jet_adjoint of common/mlp_math.hpp, in loops over the points that the compiler vectorizes; tanh itself
// is glibc's vector tanh, libmvec, where the build has it).
//
// Jets only to the order the rows need: rows with alpha = beta = 0 on every axis (boundary and regression rows) go
// through chunks that carry h alone (1 channel instead of 1 + 2n), rows with alpha = 0 but some beta != 0 through
// chunks without the second-derivative channels. The OpenMP threads split the rows (weighted by their channel
// count) and each runs its share with single-threaded products; the partial gradients are added in thread order.
#pragma once

#include <vector>  // std::vector

#include "common/span.hpp"   // span
#include "host/mlp.hpp"      // Mlp
#include "host/problem.hpp"  // PointSet

namespace pinntk {

// The elementwise code's instruction set: picked from the CPU at run time (kAuto), or forced (tests).
enum class BatchedIsa { kAuto, kGeneric, kAvx2, kAvx512 };

// Buffers reused between calls, and two switches for tests.
struct BatchedWorkspace {
  struct PerThread {
    std::vector<double> buf;   // the chunk's layers (h and z channels), adjoints, output, gathered inputs
    std::vector<double> grad;  // this thread's partial gradient (threads > 1)
  };
  std::vector<PerThread> threads;
  std::vector<int> rows;          // row indices grouped by the derivative order they need (0, 1, 2)
  std::vector<double> residuals;  // batched_jacobian_transpose_times's residuals, computed on the way
  // Tests: every row with all 1 + 2n channels (the path without the order split), and the instruction set.
  bool all_channels = false;
  BatchedIsa isa = BatchedIsa::kAuto;
  // Tests: batched_sample_gram's form for every layer (0: each layer's cheaper one, 1: direct, 2: factored) and its
  // factored form's rows a block (0: about 1024 channel rows).
  int gram_form = 0;
  int gram_block_rows = 0;
};

// Whether this CPU (and build) runs the given instruction set's elementwise code; kAuto names the one picked.
bool batched_isa_available(BatchedIsa isa);
BatchedIsa batched_isa_auto();

// Loss 1/2 sum w_k r_k^2, its gradient and the residuals; each thread takes its rows in chunks of at most `chunk`.
// The rows' dimension pts.dim (1 to 3) is the network's input width; the network needs a hidden layer.
// The last digits depend on the chunk size, the OpenBLAS kernel family, the instruction set and the thread count
// (where a point's column falls in gemm's register tiling decides its summation order, the threads' partial sums
// are added in thread order): compare results of two of them with a tolerance, and bitwise only for the same ones.
double batched_loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad,
                             BatchedWorkspace& ws, int chunk = 256);
// The same loss and residuals without the gradient (the pass's forward half): bitwise batched_loss_gradient's for the
// same chunk size, instruction set and thread count.
double batched_loss(const Mlp& net, const PointSet& pts, span<double> r, BatchedWorkspace& ws, int chunk = 256);

// u and its first and second derivatives along the rows' directions (the axes, or pts.dirs where the rows have
// them) at the rows' points, as Backend::evaluate (u: N numbers, du and d2u N x dim) but through the batched forward
// pass: the rows' coefficients are not read (they may be empty). The last digits depend on the chunk size, kernels
// and thread count as the loss's do.
void batched_evaluate(const Mlp& net, const PointSet& rows, span<double> u, span<double> du, span<double> d2u,
                      BatchedWorkspace& ws, int chunk = 256);
// Whether the network suits it: 1 to 3 inputs, a hidden layer, one output.
bool batched_evaluation_fits(const Mlp& net);

// The residuals r and the Jacobian J of the rows (N x P, row-major, as Backend::residuals_jacobian) through the
// gradient pass seeded with 1 for every row: row k's block of weight layer l is the sum over its C channels of the
// outer products a_kc h_kc^T (batched_sample_gram's notation below), the biases a_k0. The same chunks, rows and
// threads as the passes above, and the same caveat on the last digits.
void batched_residuals_jacobian(const Mlp& net, const PointSet& pts, span<double> r, span<double> J,
                                BatchedWorkspace& ws, int chunk = 256);

// The matrix-free products of DESIGN.md section 8 through the same chunks, rows and threads (and the same caveat on
// their last digits): J^T y is the gradient pass with the output adjoints seeded with y_k instead of w_k r_k; J u
// the forward pass followed by the tangents along u, two products a layer (dW h and W dh) over every channel, and
// tanh_jet_tangent (common/mlp_math.hpp) through each neuron.
void batched_jacobian_transpose_times(const Mlp& net, const PointSet& pts, span<const double> y, span<double> out,
                                      BatchedWorkspace& ws, int chunk = 256);
void batched_jacobian_times(const Mlp& net, const PointSet& pts, span<const double> u, span<double> out,
                            BatchedWorkspace& ws, int chunk = 256);

// The residuals r (N) and the sample-space Gram K = Jh Jh^T (N x N, row-major, symmetric; Jh = D^1/2 J, D = diag(d),
// d >= 0: the loss weights for LM, the NTK's row weights for the NTK) without forming J. Row k's block of J for weight
// layer l (W^l, then b^l) is a sum of C = 1 + 2n outer products, dr_k/dW^l = sum_c a_kc h_kc^T, db^l = a_k0, with a_kc
// the adjoints of z^l's channel c (z, z'_j, z''_j) and h_kc the same channel of layer l-1 (layer 0: x, the direction,
// 0). So
//   <J_k, J_m> over layer l = sum_{c,c'} (a_kc . a_mc') (h_kc . h_mc') + a_k0 . a_m0,
// and each layer's part of K comes from two Grams of the N C channel rows (the adjoints and the inputs, blocks of
// rows at a time) at (N C)^2 (d_l + d_{l-1}) / 2 multiply-adds instead of N^2 d_l d_{l-1} / 2. One pass like the
// gradient's (seeded with sqrt(w_k)) captures the channels; each layer then takes whichever form costs fewer
// operations (the direct one forms that layer's columns of Jh when they take at most 256 MB). The last digits
// differ from the Gram of the formed J (other summation orders): compare with a tolerance.
void batched_sample_gram(const Mlp& net, const PointSet& pts, span<const double> d, span<double> r, span<double> K,
                         BatchedWorkspace& ws, int chunk = 256);
// Whether the rows and network suit the batched passes (1 to 3 coordinates, a hidden layer) and some layer takes the
// factored form (by cost): else the Gram of the formed J is as fast, and the CPU backend forms J.
bool batched_sample_gram_pays(const Mlp& net, const PointSet& pts);
// The bytes batched_sample_gram allocates beyond K and its workspace (batched_workspace_bytes): the captured channels,
// the block Grams and a direct layer's columns.
double batched_sample_gram_bytes(const Mlp& net, const PointSet& pts);

// An upper bound on the bytes the passes above allocate in a workspace for these rows and this network with `threads`
// threads (0: OpenMP's count) and chunks of `chunk` rows: every thread's chunk buffers (all channels, the tangent
// pass's third block), its partial gradient, the rows' residuals and indices. The memory checks of the Lanczos paths
// count it before any work.
double batched_workspace_bytes(const Mlp& net, const PointSet& pts, int threads, int chunk = 256);

}  // namespace pinntk
