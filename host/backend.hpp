// Backend: the batch-level operations every compute device provides (DESIGN.md section 4). One virtual call per
// batch, never per point. The CPU implementation is cpu_backend.cpp; the CUDA one is host/cuda/cuda_backend.cu. The
// composed operations (ntk, train_session, lm_session) have defaults on host arrays in backend_defaults.cpp.
#pragma once

#include <functional>  // std::function
#include <memory>      // std::unique_ptr
#include <string>      // std::string
#include <vector>      // std::vector

#include "common/span.hpp"      // span
#include "host/mlp.hpp"         // Mlp
#include "host/optim/adam.hpp"  // AdamConfig
#include "host/problem.hpp"     // PointSet

namespace pinntk {

class LbfgsOps;  // host/optim/lbfgs_batched.hpp

// What the NTK analysis returns (paper Lemma 3.1, DESIGN.md section 3).
struct NtkResult {
  int nc = 0, nb = 0, n_params = 0;
  bool gram_trick = false;           // spectra and norms came from P x P Grams (N > P)
  std::vector<double> residuals;     // N
  std::vector<double> jacobian;      // N x P row-major, kept only when asked
  std::vector<double> spectrum_K;    // N eigenvalues of K (= those of D^1/2 J J^T D^1/2), descending
  std::vector<double> spectrum_Kuu;  // Nc, descending
  std::vector<double> spectrum_Kbb;  // Nb, descending
  double frobenius_K = 0.0;          // of the non-symmetric K = J J^T D, computed directly
  double frobenius_Kuu = 0.0, frobenius_Kbb = 0.0;
};

// A matrix (rows x cols, row-major: a Jacobian, a kernel) owned by whoever holds this: `bits`-bit floats (64, or 32 for
// the CUDA backend's fp32) at data, in host memory (device_type 1, DLPack's kDLCPU) or on CUDA device device_id
// (device_type 2, kDLCUDA). release frees it; it may be called from any thread, after the backend is gone, once.
struct MatrixBuffer {
  void* data = nullptr;
  size_t rows = 0, cols = 0;
  bool column_major = false;  // entry (i, j) at i + j rows instead of i cols + j
  int bits = 64, device_type = 1, device_id = 0;
  std::function<void()> release;
};

// Adam training whose state (parameters, moments, points) stays on the backend's device between calls.
class TrainSession {
 public:
  virtual ~TrainSession() = default;
  // Takes `steps` Adam steps at learning rate lr; returns the loss at the parameters before the last update.
  virtual double run(long steps, double lr) = 0;
  // u, u', u'' of the current network at every x.
  virtual void evaluate(span<const double> x, span<double> u, span<double> du, span<double> d2u) = 0;
  // The current parameters.
  virtual void parameters(span<double> theta) = 0;
  // Sets the parameters to theta and returns the loss there, with its gradient in grad (for L-BFGS: only the
  // parameters, the loss and the gradient cross between host and device).
  virtual double loss_gradient_at(span<const double> theta, span<double> grad) = 0;
  // Adam's moments and step count, to save and restore an interrupted run.
  virtual long adam_state(span<double> m, span<double> v) = 0;
  virtual void set_adam_state(span<const double> theta, span<const double> m, span<const double> v, long t) = 0;
  // The batched L-BFGS's vector operations for this one network (B = 1) where the session keeps them on its device,
  // evaluating as loss_gradient_at would, so that a network trained alone takes the same two-loop L-BFGS iterates as a
  // member of a device batch (BatchTrainSession::lbfgs_ops). Null (the default): none of its own; the caller keeps
  // the vectors on the host. Valid while the session lives; it leaves the session's parameters as they are.
  virtual std::unique_ptr<LbfgsOps> lbfgs_ops(int params, int history);
};

// Adam on B networks of one shape at once (issue 13's batches): member b starts from its own network on its own
// rows (every member the same number of rows and coordinates; its own seed, eps or problem), and all members advance
// together, one launch serving every member on a device backend. Each member's arithmetic is exactly that of a
// TrainSession of its own (bitwise on the CPU; on the GPU the same kernels at other offsets).
class BatchTrainSession {
 public:
  virtual ~BatchTrainSession() = default;
  virtual int size() const = 0;  // B
  // Takes `steps` Adam steps of every active member at learning rate lr; returns each member's loss at its parameters
  // before its last update (B entries; an inactive member's entry is NaN).
  virtual std::vector<double> run(long steps, double lr) = 0;
  // Member b alone as a one-network session (valid while the batch lives): its run() advances member b only,
  // active or not; evaluate, parameters, loss_gradient_at and the Adam state are member b's.
  virtual TrainSession& member(int b) = 0;
  // An inactive member is left untouched by run() (a member whose training has stopped). All start active.
  virtual void set_active(int b, bool active) = 0;
  // The vector operations of the batched L-BFGS (host/optim/lbfgs_batched.hpp) over the members' parameters (P
  // each) with a history of `history` pairs; its evaluate() gives member b's loss and gradient as
  // member(b).loss_gradient_at would. The default keeps the vectors on the host and evaluates through the members;
  // a device batch keeps vectors and evaluations on the device. The members' sessions are not moved: load the
  // starting points into the ops, and after the minimization hand each member its result (loss_gradient_at).
  virtual std::unique_ptr<LbfgsOps> lbfgs_ops(int params, int history);
};

// Levenberg-Marquardt's linear algebra (host/optim/lm.hpp) with J, the residuals and the Gram kept on the
// backend's device: per iteration only mu goes down and a few scalars come back. With rh = D^1/2 r, Jh = D^1/2 J:
//   sample form:    delta = -Jh^T (Jh Jh^T + mu I)^-1 rh   (Jh Jh^T is the NTK)
//   parameter form: (Jh^T Jh + mu I) delta = -Jh^T rh
class LmSession {
 public:
  virtual ~LmSession() = default;
  virtual bool sample_form() const = 0;
  // L = 1/2 |rh|^2 at the current parameters.
  virtual double loss() const = 0;
  // The largest diagonal entry of the Gram (the scale of mu).
  virtual double max_diagonal() const = 0;
  // Solves for delta at damping mu by Cholesky and evaluates theta + delta. false when the factorization fails
  // or delta is not finite; else trial_loss = L(theta + delta) and predicted = L - 1/2 |rh + Jh delta|^2.
  virtual bool try_step(double mu, double& trial_loss, double& predicted) = 0;
  // Moves to theta + delta of the last successful try_step, linearizes there and writes the parameters to theta.
  virtual void accept(span<double> theta) = 0;
  // The Gram's eigenvalues, descending (the NTK's spectrum in the sample form).
  virtual std::vector<double> gram_eigenvalues() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda"
  virtual std::string precision() const { return "fp64"; }

  // u, u', u'' of the network at every x.
  virtual void evaluate(const Mlp& net, span<const double> x, span<double> u, span<double> du, span<double> d2u) = 0;

  // Residuals r_k = rho_k - f_k and the Jacobian rows d rho_k / d theta, row-major N x P.
  virtual void residuals_jacobian(const Mlp& net, const PointSet& pts, span<double> r, span<double> J) = 0;

  // The same Jacobian left where the backend computed it and handed to the caller (the Python module's zero-copy
  // arrays): host memory on the CPU, device memory on CUDA (in the backend's precision). r gets the residuals on
  // the host. The default computes residuals_jacobian into a host buffer of its own.
  virtual MatrixBuffer jacobian_buffer(const Mlp& net, const PointSet& pts, span<double> r);
  // The kernel K = J J^T D (N x N, Lemma 3.1; D = diag(d)) left where the backend computed it, as jacobian_buffer.
  // The default forms it on the host (gram_rows, then the columns scaled by d).
  virtual MatrixBuffer kernel_buffer(const Mlp& net, const PointSet& pts, const std::vector<double>& d, span<double> r);

  // Loss L = 1/2 sum w_k r_k^2 (paper eq. 8), its gradient (P) and the residuals (N), without forming J.
  virtual double loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad) = 0;
  // The same loss and residuals alone (an LM trial step's). The default calls loss_gradient and drops the gradient;
  // the CPU's runs the forward half of its pass.
  virtual double loss(const Mlp& net, const PointSet& pts, span<double> r);

  // Matrix-free products with the residual rows' Jacobian J (N x P, as residuals_jacobian's; DESIGN.md section 8).
  // The defaults form J with residuals_jacobian and multiply (O(N P) memory); the CPU and CUDA backends form no J.
  // out = J^T y (P numbers): the reverse pass of every row seeded with y_k times its coefficients, summed over rows.
  virtual void jacobian_transpose_times(const Mlp& net, const PointSet& pts, span<const double> y, span<double> out);
  // out = J u (N numbers): one forward pass per row carrying tangents along the parameter direction u.
  virtual void jacobian_times(const Mlp& net, const PointSet& pts, span<const double> u, span<double> out);

  // The residuals r (N) and the sample-space Gram K_s = Jh Jh^T (N x N, row-major; Jh = D^1/2 J, D = diag(d), d >= 0)
  // without forming J, where the backend has a way: the CPU builds it from each layer's factors (a row's block of J
  // is a sum of 1 + 2n outer products: host/cpu_batched.hpp). false (the default): it has none; the caller forms J.
  virtual bool residuals_sample_gram(const Mlp& net, const PointSet& pts, span<const double> d, span<double> r,
                                     span<double> K);

  // G = A A^T (n x n, both triangles) for row-major A (n x k).
  virtual void gram_rows(span<const double> A, int n, int k, span<double> G) = 0;
  // G = A^T A (k x k, both triangles) for row-major A (n x k).
  virtual void gram_cols(span<const double> A, int n, int k, span<double> G) = 0;
  // G += A^T A (k x k, both triangles; G symmetric on entry) for row-major A (n x k): the chunked NTK's Grams
  // (DESIGN.md section 8). The default adds gram_cols's result on the host (a k x k temporary); the CPU backend
  // calls dsyrk with beta = 1.
  virtual void gram_cols_accumulate(span<const double> A, int n, int k, span<double> G);

  // Eigenvalues of the symmetric n x n matrix A, in descending order (A is overwritten).
  virtual void symmetric_eigenvalues(span<double> A, int n, span<double> eigenvalues) = 0;

  // The NTK K = J J^T diag(d) of the residuals: norms and spectra. The default composes the operations above
  // on host arrays (host/backend_defaults.cpp); a device backend keeps J and K on the device.
  virtual NtkResult ntk(const Mlp& net, const PointSet& pts, const std::vector<double>& d, bool keep_jacobian);
  // The NTK by P x P Grams accumulated over chunks of chunk_rows rows, for N > P (ntk_chunked of host/ntk.hpp says
  // what it returns). The default (host/ntk.cpp) composes the operations above on host arrays, a chunk's Jacobian at
  // a time; the CUDA backend keeps the rows, the chunk's Jacobian and the Grams on the device.
  virtual NtkResult ntk_chunked(const Mlp& net, const PointSet& pts, const std::vector<double>& d, long chunk_rows);

  // The default drives loss_gradient and a host Adam (host/backend_defaults.cpp).
  virtual std::unique_ptr<TrainSession> train_session(const Mlp& net, const PointSet& pts, const AdamConfig& cfg);

  // Adam on the batch nets[b] on the rows pts[b] (BatchTrainSession; all nets of one shape, all pts of one size and
  // dimension, B >= 1; std::invalid_argument otherwise). The default holds one train_session per member and steps
  // them one after another; the CUDA backend runs every member in each launch.
  virtual std::unique_ptr<BatchTrainSession> batch_train_session(const std::vector<Mlp>& nets,
                                                                 const std::vector<PointSet>& pts,
                                                                 const AdamConfig& cfg);

  // The default composes the operations above on host arrays with a LAPACKE Cholesky (GaussNewtonSystem of
  // host/optim/lm.hpp, in host/backend_defaults.cpp); the
  // CUDA backend keeps everything on the device and factors with cuSOLVER potrf/potrs.
  virtual std::unique_ptr<LmSession> lm_session(const Mlp& net, const PointSet& pts, bool sample_form);
};

// The checks every batch_train_session makes first: B >= 1 networks of one shape (layers) whose parameter counts
// match it, B point sets of one size and dimension. std::invalid_argument naming what differs.
void check_batch(const std::vector<Mlp>& nets, const std::vector<PointSet>& pts);

// "cpu", "cuda" or "auto" with "fp64" or "fp32"; `threads` > 0 sets the CPU thread count.
// Throws UsageError when the device or precision cannot be had; "auto" falls back to the CPU with a notice.
std::unique_ptr<Backend> make_backend(const std::string& device, const std::string& precision, int threads);

std::unique_ptr<Backend> make_cpu_backend(int threads);

// u and the derivatives along each row's directions (pts.dirs, or the axes) at the rows' points (the batched
// forward pass of host/cpu_batched.hpp where the network suits it, else the per-point host math of
// common/mlp_math_nd.hpp); du, d2u: N x dim. The loss of rows with directions is computed from it.
void evaluate_rows(const Mlp& net, const PointSet& pts, span<double> u, span<double> du, span<double> d2u);

// evaluate_rows by the per-point host math alone: its fallback, and the benchmarks' baseline.
void evaluate_rows_per_point(const Mlp& net, const PointSet& pts, span<double> u, span<double> du, span<double> d2u);

// The residuals and J (N x P) point by point through the shared per-point math (common/mlp_math.hpp and
// mlp_math_nd.hpp), OpenMP over the rows: the CPU backend's residuals_jacobian for networks the batched passes do
// not take, and the tests' reference for the batched Jacobian pass. A row's numbers do not depend on the threads.
void residuals_jacobian_per_point(const Mlp& net, const PointSet& pts, span<double> r, span<double> J);

// The CUDA backend (host/cuda/cuda_backend.cu); fp32 when `single` is true. Only in builds with CUDA.
std::unique_ptr<Backend> make_cuda_backend(bool single);
// Number of CUDA devices that answer (0 in builds without CUDA).
int cuda_device_count();
// Whether make_backend(device, ...) gives the CPU backend: "cpu", or "auto" where no CUDA device answers.
bool device_is_cpu(const std::string& device);

}  // namespace pinntk
