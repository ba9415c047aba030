// Backend: the batch-level operations every compute device provides (DESIGN.md section 4). One virtual call per
// batch, never per point. The CPU implementation is cpu_backend.cpp; the CUDA one lives in cuda/.
#pragma once

#include <memory>  // std::unique_ptr
#include <string>  // std::string

#include "host/mlp.hpp"      // Mlp
#include "host/problem.hpp"  // PointSet
#include "host/span.hpp"     // span

namespace pinntk {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda"

  // u, u', u'' of the network at every x.
  virtual void evaluate(const Mlp& net, span<const double> x, span<double> u, span<double> du,
                        span<double> d2u) = 0;

  // Residuals r_k = rho_k - f_k and the Jacobian rows d rho_k / d theta, row-major N x P.
  virtual void residuals_jacobian(const Mlp& net, const PointSet& pts, span<double> r, span<double> J) = 0;

  // Loss L = 1/2 sum w_k r_k^2 (paper eq. 8), its gradient (P) and the residuals (N), without forming J.
  virtual double loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad) = 0;

  // G = A A^T (n x n, both triangles) for row-major A (n x k).
  virtual void gram_rows(span<const double> A, int n, int k, span<double> G) = 0;
  // G = A^T A (k x k, both triangles) for row-major A (n x k).
  virtual void gram_cols(span<const double> A, int n, int k, span<double> G) = 0;

  // Eigenvalues of the symmetric n x n matrix A, in descending order (A is overwritten).
  virtual void symmetric_eigenvalues(span<double> A, int n, span<double> eigenvalues) = 0;
};

// "cpu", "cuda" or "auto"; `threads` > 0 sets the CPU thread count. Throws UsageError when the device cannot be had.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads);

std::unique_ptr<Backend> make_cpu_backend(int threads);

}  // namespace pinntk
