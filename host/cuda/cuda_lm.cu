// The CUDA backend's Levenberg-Marquardt session (the step of host/optim/lm.hpp on the device). With
// rh = D^1/2 r and Jh = D^1/2 J, row-major N x P (cuBLAS sees it as the column-major P x N matrix Jh^T):
//   sample form:    G = Jh Jh^T (syrk),  (G + mu I) y = rh (potrf, potrs),  delta = -Jh^T y (gemv)
//   parameter form: G = Jh^T Jh (syrk),  g = Jh^T rh (gemv),  (G + mu I) delta = -g (potrf, potrs)
// Only the lower triangle of G is formed and factored (cuSOLVER's 64-bit API: the workspace in bytes).
#include <algorithm>  // std::max
#include <cmath>      // std::isfinite
#include <cstdint>    // int64_t
#include <memory>     // std::unique_ptr, std::make_unique, std::shared_ptr
#include <utility>    // std::swap, std::move
#include <vector>     // std::vector

#include "cuda/jacobian.hpp"             // launch_jacobian
#include "cuda/loss_gradient.hpp"        // GradientWorkspace
#include "cuda/matrix_ops.hpp"           // launch_damped_copy, launch_scale_rows
#include "host/cuda/backend_common.cuh"  // CudaContext, DevicePoints, device_gram, device_eigenvalues
#include "host/cuda/cuda_lm.hpp"

namespace pinntk::cudaimpl {
namespace {

template <class Real>
class CudaLmSession final : public LmSession {
 public:
  CudaLmSession(std::shared_ptr<const CudaContext> ctx, const Mlp& net, const PointSet& pts, bool sample)
      : ctx_(std::move(ctx)),
        c_(*ctx_),
        net_(net_for_points(net.layers, pts, true, "lm_session")),
        pts_(pts, c_.order()),
        ws_(net_, pts.size(), c_.order()),
        n_(pts.size()),
        p_(net_.P),
        m_(sample ? n_ : p_),
        sample_(sample),
        theta_(to_device<Real>(net.theta, c_.order())),
        trial_(static_cast<size_t>(p_), c_.order()),
        delta_(static_cast<size_t>(p_), c_.order()),
        rh_(static_cast<size_t>(n_), c_.order()),
        v_(static_cast<size_t>(n_), c_.order()),
        b_(static_cast<size_t>(m_), c_.order()),
        g_(sample ? 0 : static_cast<size_t>(p_), c_.order()),
        J_(static_cast<size_t>(n_) * p_, c_.order()),
        A_(static_cast<size_t>(m_) * m_, c_.order()),
        grad_(static_cast<size_t>(p_), c_.order()),
        trial_loss_(1, c_.order()),
        info_(1, c_.order()) {
    PINNTK_CUSOLVER_CHECK(
        linalg::potrf_buffer(c_.solver(), c_.params(), m_, A_.data(), &work_bytes_, &host_work_bytes_));
    work_ = DeviceBuffer<unsigned char>(std::max<size_t>(work_bytes_, 1), c_.order());
    host_work_.resize(std::max<size_t>(host_work_bytes_, 1));
    linearize();
  }

  bool sample_form() const override { return sample_; }
  double loss() const override { return loss_; }
  double max_diagonal() const override { return max_diag_; }

  bool try_step(double mu, double& trial_loss, double& predicted) override {
    NvtxRange r("lm step");
    launch_damped_copy(A_.data(), G_.data(), m_, Real(mu), c_.stream());
    PINNTK_CUSOLVER_CHECK(linalg::potrf(c_.solver(), c_.params(), m_, A_.data(), work_.data(), work_bytes_,
                                        host_work_.data(), host_work_bytes_, info_.data()));
    if (device_info() != 0) return false;  // not positive definite at this mu: the caller raises it
    const Real* rhs = sample_ ? rh_.data() : g_.data();
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(b_.data(), rhs, b_.size() * sizeof(Real), cudaMemcpyDeviceToDevice, c_.stream()));
    PINNTK_CUSOLVER_CHECK(linalg::potrs(c_.solver(), c_.params(), m_, A_.data(), b_.data(), info_.data()));
    if (device_info() != 0) return false;
    if (sample_) {
      // delta = -Jh^T y: Jh^T is the column-major P x N matrix J_.
      PINNTK_CUBLAS_CHECK(
          linalg::gemv(c_.blas(), CUBLAS_OP_N, p_, n_, Real(-1), J_.data(), p_, b_.data(), Real(0), delta_.data()));
    } else {
      PINNTK_CUDA_CHECK(cudaMemsetAsync(delta_.data(), 0, delta_.size() * sizeof(Real), c_.stream()));
      PINNTK_CUBLAS_CHECK(linalg::axpy(c_.blas(), p_, Real(-1), b_.data(), delta_.data()));  // delta = -b
    }
    if (!std::isfinite(static_cast<double>(device_nrm2(c_, delta_.data(), delta_.size())))) return false;
    // The predicted reduction L - 1/2 |rh + Jh delta|^2 = -rh.v - 1/2 |v|^2 with v = Jh delta, formed without L
    // (host/optim/lm.cpp does the same): near convergence it is far below L, and the difference of the two would
    // keep none of its digits, in fp32 least of all.
    PINNTK_CUBLAS_CHECK(
        linalg::gemv(c_.blas(), CUBLAS_OP_T, p_, n_, Real(1), J_.data(), p_, delta_.data(), Real(0), v_.data()));
    const double rv = static_cast<double>(device_dot(c_, rh_.data(), v_.data(), v_.size()));
    const double vv = static_cast<double>(device_nrm2(c_, v_.data(), v_.size()));
    predicted = -rv - 0.5 * vv * vv;
    // The loss at theta + delta: one pass of the fused loss kernel.
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(trial_.data(), theta_.data(), trial_.size() * sizeof(Real),
                                      cudaMemcpyDeviceToDevice, c_.stream()));
    PINNTK_CUBLAS_CHECK(linalg::axpy(c_.blas(), p_, Real(1), delta_.data(), trial_.data()));
    trial_loss = loss_at(trial_.data());
    return true;
  }

  void accept(span<double> theta) override {
    NvtxRange r("lm accept");
    std::swap(theta_, trial_);
    linearize();
    to_host(theta_, theta);
  }

  std::vector<double> gram_eigenvalues() override {
    PINNTK_CUDA_CHECK(
        cudaMemcpyAsync(A_.data(), G_.data(), G_.size() * sizeof(Real), cudaMemcpyDeviceToDevice, c_.stream()));
    return device_eigenvalues(c_, A_.data(), m_);
  }

 private:
  // J, rh, the loss, the Gram (lower triangle), g and the largest diagonal entry at theta_.
  void linearize() {
    NvtxRange r("lm linearize");
    launch_jacobian<Real>(net_, theta_.data(), pts_.view(), rh_.data(), J_.data(), c_.stream());
    // Jh = D^1/2 J and rh = D^1/2 r, row by row.
    launch_scale_rows(J_.data(), n_, p_, pts_.w.data(), true, c_.stream());
    launch_scale_rows(rh_.data(), n_, 1, pts_.w.data(), true, c_.stream());
    const double nr = static_cast<double>(device_nrm2(c_, rh_.data(), rh_.size()));
    loss_ = 0.5 * nr * nr;
    device_gram(c_, J_.data(), n_, p_, G_, sample_);
    if (!sample_) {
      PINNTK_CUBLAS_CHECK(
          linalg::gemv(c_.blas(), CUBLAS_OP_N, p_, n_, Real(1), J_.data(), p_, rh_.data(), Real(0), g_.data()));
    }
    int64_t i = 0;
    const int64_t stride = static_cast<int64_t>(m_) + 1;
    PINNTK_CUBLAS_CHECK(linalg::iamax(c_.blas(), m_, G_.data(), stride, &i));  // the diagonal is >= 0
    Real d = 0;
    PINNTK_CUDA_CHECK(
        cudaMemcpyAsync(&d, G_.data() + (i - 1) * stride, sizeof(Real), cudaMemcpyDeviceToHost, c_.stream()));
    c_.sync();
    max_diag_ = static_cast<double>(d);
  }

  double loss_at(const Real* theta) {
    enqueue_loss_gradient<Real>(theta, pts_.view(), ws_, nullptr, grad_.data(), trial_loss_.data(), c_.stream());
    double l = 0.0;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&l, trial_loss_.data(), sizeof(double), cudaMemcpyDeviceToHost, c_.stream()));
    c_.sync();
    return l;
  }

  int device_info() {
    int h = 0;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&h, info_.data(), sizeof(int), cudaMemcpyDeviceToHost, c_.stream()));
    c_.sync();
    return h;
  }

  std::shared_ptr<const CudaContext> ctx_;  // declared first: outlives every buffer below
  const CudaContext& c_;
  NetDesc net_;
  DevicePoints<Real> pts_;
  GradientWorkspace<Real> ws_;  // the trial loss's tiling and partials
  int n_, p_, m_;
  bool sample_;
  DeviceBuffer<Real> theta_, trial_, delta_, rh_, v_, b_, g_, J_, G_, A_, grad_;
  DeviceBuffer<double> trial_loss_;
  DeviceBuffer<int> info_;
  // potrf's workspace (64-bit API: bytes), on the device and on the host; the host one outlives every call.
  size_t work_bytes_ = 0, host_work_bytes_ = 0;
  DeviceBuffer<unsigned char> work_;
  std::vector<unsigned char> host_work_;
  double loss_ = 0.0, max_diag_ = 0.0;
};

}  // namespace

template <class Real>
std::unique_ptr<LmSession> make_cuda_lm_session(std::shared_ptr<const CudaContext> ctx, const Mlp& net,
                                                const PointSet& pts, bool sample_form) {
  return std::make_unique<CudaLmSession<Real>>(std::move(ctx), net, pts, sample_form);
}

template std::unique_ptr<LmSession> make_cuda_lm_session<double>(std::shared_ptr<const CudaContext>, const Mlp&,
                                                                 const PointSet&, bool);
template std::unique_ptr<LmSession> make_cuda_lm_session<float>(std::shared_ptr<const CudaContext>, const Mlp&,
                                                                const PointSet&, bool);

}  // namespace pinntk::cudaimpl
