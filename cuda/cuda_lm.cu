// The CUDA backend's Levenberg-Marquardt session (the step of host/optim/lm.hpp on the device). With
// rh = D^1/2 r and Jh = D^1/2 J, row-major N x P (cuBLAS sees it as the column-major P x N matrix Jh^T):
//   sample form:    G = Jh Jh^T (syrk),  (G + mu I) y = rh (potrf, potrs),  delta = -Jh^T y (gemv)
//   parameter form: G = Jh^T Jh (syrk),  g = Jh^T rh (gemv),  (G + mu I) delta = -g (potrf, potrs)
// Only the lower triangle of G is formed and factored.
#include <cmath>   // std::isfinite, std::sqrt
#include <memory>  // std::unique_ptr, std::make_unique
#include <utility> // std::swap
#include <vector>  // std::vector

#include "cuda/backend_common.cuh"  // CudaContext, DevicePoints, device_gram, device_eigenvalues
#include "cuda/cuda_lm.hpp"

namespace pinntk::cudaimpl {
namespace {

// A (column-major m x m) = G + mu I.
template <class Real>
__global__ void damped_copy_kernel(Real* A, const Real* G, int m, Real mu) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(m) * m) return;
  const Real g = G[idx];
  A[idx] = idx % (static_cast<size_t>(m) + 1) == 0 ? g + mu : g;
}

template <class Real>
class CudaLmSession final : public LmSession {
 public:
  CudaLmSession(CudaContext& c, const Mlp& net, const PointSet& pts, bool sample)
      : c_(c),
        net_(make_net_desc(net.layers)),
        pts_(pts),
        plan_(plan_tiles<Real>(net_, pts.size())),
        n_(pts.size()),
        p_(net_.P),
        m_(sample ? n_ : p_),
        sample_(sample),
        theta_(to_device<Real>(net.theta)),
        trial_(static_cast<size_t>(p_)),
        delta_(static_cast<size_t>(p_)),
        rh_(static_cast<size_t>(n_)),
        v_(static_cast<size_t>(n_)),
        b_(static_cast<size_t>(m_)),
        g_(sample ? 0 : static_cast<size_t>(p_)),
        J_(static_cast<size_t>(n_) * p_),
        A_(static_cast<size_t>(m_) * m_),
        partial_(static_cast<size_t>(plan_.blocks) * p_),
        partial_loss_(plan_.blocks),
        grad_(static_cast<size_t>(p_)),
        trial_loss_(1),
        info_(1) {
    prepare_tile_kernels<Real>();
    PINNTK_CUSOLVER_CHECK(linalg::potrf_buffer(c_.solver, m_, A_.data(), &lwork_));
    work_ = DeviceBuffer<Real>(static_cast<size_t>(lwork_ > 0 ? lwork_ : 1));
    linearize();
  }

  bool sample_form() const override { return sample_; }
  double loss() const override { return loss_; }
  double max_diagonal() const override { return max_diag_; }

  bool try_step(double mu, double& trial_loss, double& predicted) override {
    NvtxRange r("lm step");
    damped_copy_kernel<<<grid_for(A_.size(), 256), 256, 0, c_.stream>>>(A_.data(), G_.data(), m_, Real(mu));
    PINNTK_LAUNCH_CHECK();
    PINNTK_CUSOLVER_CHECK(linalg::potrf(c_.solver, m_, A_.data(), work_.data(), lwork_, info_.data()));
    if (device_info() != 0) return false;  // not positive definite at this mu: the caller raises it
    const Real* rhs = sample_ ? rh_.data() : g_.data();
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(b_.data(), rhs, m_ * sizeof(Real), cudaMemcpyDeviceToDevice, c_.stream));
    PINNTK_CUSOLVER_CHECK(linalg::potrs(c_.solver, m_, A_.data(), b_.data(), info_.data()));
    if (device_info() != 0) return false;
    if (sample_) {
      // delta = -Jh^T y: Jh^T is the column-major P x N matrix J_.
      PINNTK_CUBLAS_CHECK(linalg::gemv(c_.blas, CUBLAS_OP_N, p_, n_, Real(-1), J_.data(), p_, b_.data(), Real(0),
                                       delta_.data()));
    } else {
      PINNTK_CUDA_CHECK(cudaMemsetAsync(delta_.data(), 0, p_ * sizeof(Real), c_.stream));
      PINNTK_CUBLAS_CHECK(linalg::axpy(c_.blas, p_, Real(-1), b_.data(), delta_.data()));  // delta = -b
    }
    if (!std::isfinite(static_cast<double>(device_nrm2(c_, delta_.data(), delta_.size())))) return false;
    // The predicted reduction L - 1/2 |rh + Jh delta|^2.
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(v_.data(), rh_.data(), n_ * sizeof(Real), cudaMemcpyDeviceToDevice, c_.stream));
    PINNTK_CUBLAS_CHECK(linalg::gemv(c_.blas, CUBLAS_OP_T, p_, n_, Real(1), J_.data(), p_, delta_.data(), Real(1),
                                     v_.data()));
    const double model = static_cast<double>(device_nrm2(c_, v_.data(), v_.size()));
    predicted = loss_ - 0.5 * model * model;
    // The loss at theta + delta: one pass of the fused loss kernel.
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(trial_.data(), theta_.data(), p_ * sizeof(Real), cudaMemcpyDeviceToDevice,
                                      c_.stream));
    PINNTK_CUBLAS_CHECK(linalg::axpy(c_.blas, p_, Real(1), delta_.data(), trial_.data()));
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
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(A_.data(), G_.data(), G_.size() * sizeof(Real), cudaMemcpyDeviceToDevice,
                                      c_.stream));
    return device_eigenvalues(c_, A_.data(), m_);
  }

 private:
  // J, rh, the loss, the Gram (lower triangle), g and the largest diagonal entry at theta_.
  void linearize() {
    NvtxRange r("lm linearize");
    launch_jacobian<Real>(net_, theta_.data(), pts_.view(), rh_.data(), J_.data(), c_.stream);
    // Jh = D^1/2 J and rh = D^1/2 r, row by row.
    scale_rows_kernel<<<grid_for(J_.size(), 256), 256, 0, c_.stream>>>(J_.data(), n_, p_, pts_.w.data(), true);
    PINNTK_LAUNCH_CHECK();
    scale_rows_kernel<<<grid_for(rh_.size(), 256), 256, 0, c_.stream>>>(rh_.data(), n_, 1, pts_.w.data(), true);
    PINNTK_LAUNCH_CHECK();
    const double nr = static_cast<double>(device_nrm2(c_, rh_.data(), rh_.size()));
    loss_ = 0.5 * nr * nr;
    device_gram(c_, J_.data(), n_, p_, G_, sample_);
    if (!sample_) {
      PINNTK_CUBLAS_CHECK(linalg::gemv(c_.blas, CUBLAS_OP_N, p_, n_, Real(1), J_.data(), p_, rh_.data(), Real(0),
                                       g_.data()));
    }
    int i = 0;
    PINNTK_CUBLAS_CHECK(linalg::iamax(c_.blas, m_, G_.data(), m_ + 1, &i));  // the diagonal is >= 0
    Real d = 0;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&d, G_.data() + static_cast<size_t>(i - 1) * (m_ + 1), sizeof(Real),
                                      cudaMemcpyDeviceToHost, c_.stream));
    c_.sync();
    max_diag_ = static_cast<double>(d);
  }

  double loss_at(const Real* theta) {
    enqueue_loss_gradient<Real>(net_, plan_.blocks, theta, pts_.view(), partial_.data(), partial_loss_.data(), nullptr,
                                grad_.data(), trial_loss_.data(), c_.stream);
    double l = 0.0;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&l, trial_loss_.data(), sizeof(double), cudaMemcpyDeviceToHost, c_.stream));
    c_.sync();
    return l;
  }

  int device_info() {
    int h = 0;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&h, info_.data(), sizeof(int), cudaMemcpyDeviceToHost, c_.stream));
    c_.sync();
    return h;
  }

  CudaContext& c_;
  NetDesc net_;
  DevicePoints<Real> pts_;
  TilePlan plan_;
  int n_, p_, m_;
  bool sample_;
  DeviceBuffer<Real> theta_, trial_, delta_, rh_, v_, b_, g_, J_, G_, A_, work_, partial_, partial_loss_, grad_;
  DeviceBuffer<double> trial_loss_;
  DeviceBuffer<int> info_;
  int lwork_ = 0;
  double loss_ = 0.0, max_diag_ = 0.0;
};

}  // namespace

template <class Real>
std::unique_ptr<LmSession> make_cuda_lm_session(CudaContext& c, const Mlp& net, const PointSet& pts, bool sample_form) {
  return std::make_unique<CudaLmSession<Real>>(c, net, pts, sample_form);
}

template std::unique_ptr<LmSession> make_cuda_lm_session<double>(CudaContext&, const Mlp&, const PointSet&, bool);
template std::unique_ptr<LmSession> make_cuda_lm_session<float>(CudaContext&, const Mlp&, const PointSet&, bool);

}  // namespace pinntk::cudaimpl
