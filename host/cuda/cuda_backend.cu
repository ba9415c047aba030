// The CUDA backend: the tile kernels of cuda/ for u, u', u'' (eval.cu), the Jacobian (jacobian.cu) and the loss
// gradient (loss_gradient.cu, reduce.cu), cuBLAS syrk for the Grams, cuSOLVER syevd for the spectra, and a
// device-resident Adam session whose step is captured in a CUDA graph. fp64 by default, fp32 on request; TF32 is
// never enabled. Networks of n = layers[0] = 1 .. 3 inputs (DESIGN.md section 7): points of n coordinates, the
// derivatives along the n axes.
#include <algorithm>  // std::copy, std::max
#include <cmath>      // std::sqrt
#include <memory>     // std::unique_ptr, std::shared_ptr
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string, std::to_string
#include <utility>    // std::move
#include <vector>     // std::vector

#include "cuda/adam.hpp"                 // launch_reduce_gradient_adam
#include "cuda/eval.hpp"                 // launch_eval
#include "cuda/handles.cuh"              // UniqueGraph, UniqueGraphExec, capture_graph, instantiate
#include "cuda/jacobian.hpp"             // launch_jacobian
#include "cuda/loss_gradient.hpp"        // GradientWorkspace, launch_gradient_partials
#include "cuda/matrix_ops.hpp"           // launch_scale_rows, launch_scale_cols
#include "host/backend.hpp"              // Backend, TrainSession
#include "host/cuda/backend_common.cuh"  // CudaContext, DevicePoints, device_gram, device_eigenvalues
#include "host/cuda/cuda_lm.hpp"         // make_cuda_lm_session

namespace pinntk {
namespace {

using namespace cudaimpl;  // NOLINT(google-build-using-namespace): the backend's own helpers

// u (N), D_i u and D_i^2 u (N x n, row-major) of the network nd at theta on the device, at the N points x (N x n);
// the downloads wait for the stream's work.
template <class Real>
void evaluate_points(const CudaContext& c, const NetDesc& nd, const Real* theta, span<const double> x, span<double> u,
                     span<double> du, span<double> d2u) {
  const size_t m = static_cast<size_t>(nd.n_in());
  if (x.size() % m != 0)
    throw std::invalid_argument("CUDA backend evaluate: x has " + std::to_string(x.size()) +
                                " numbers, not a multiple of the network's " + std::to_string(m) + " inputs");
  const int n = int_count(x.size() / m, "evaluate's points");
  const StreamOrder o = c.order();
  DeviceBuffer<Real> dx = to_device<Real>(x, o), d0(n, o), d1(n * m, o), d2(n * m, o);
  launch_eval<Real>(nd, theta, dx.data(), n, d0.data(), d1.data(), d2.data(), c.stream());
  to_host(d0, u);
  to_host(d1, du);
  to_host(d2, d2u);
}

// ---- the device-resident Adam session ----

template <class Real>
class CudaTrainSession final : public TrainSession {
 public:
  CudaTrainSession(std::shared_ptr<const CudaContext> ctx, const Mlp& net, const PointSet& pts, const AdamConfig& cfg)
      : ctx_(std::move(ctx)),
        c_(*ctx_),
        net_(net_for_points(net.layers, pts, true, "train_session")),
        pts_(pts, c_.order()),
        ws_(net_, pts.size(), c_.order()),
        theta_(to_device<Real>(net.theta, c_.order())),
        m_(std::vector<Real>(net.theta.size(), Real(0)), c_.order()),
        v_(std::vector<Real>(net.theta.size(), Real(0)), c_.order()),
        grad_(static_cast<size_t>(net_.P), c_.order()),
        loss_(1, c_.order()),
        lr_(1, c_.order()),
        step_(std::vector<unsigned long long>{0}, c_.order()),
        adam_{cfg.beta1, cfg.beta2, cfg.eps} {
    // One Adam step = the loss-gradient kernel + the fused reduction and update kernel, captured once as a graph
    // (ws_'s plan set the kernels' attributes and loaded them: the capture contains stream work only). The owners
    // release the graph when instantiation throws, and the session's buffers when anything here does.
    graph_ = capture_graph(c_.stream(), [this] { enqueue_step(); });
    exec_ = instantiate(graph_);
  }

  double run(long steps, double lr) override {
    NvtxRange r("adam steps");
    if (lr != lr_host_) {
      lr_host_ = lr;
      PINNTK_CUDA_CHECK(cudaMemcpyAsync(lr_.data(), &lr_host_, sizeof(double), cudaMemcpyHostToDevice, c_.stream()));
    }
    for (long s = 0; s < steps; ++s) PINNTK_CUDA_CHECK(cudaGraphLaunch(exec_.get(), c_.stream()));
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&loss_host_, loss_.data(), sizeof(double), cudaMemcpyDeviceToHost, c_.stream()));
    c_.sync();
    return loss_host_;
  }

  void evaluate(span<const double> x, span<double> u, span<double> du, span<double> d2u) override {
    NvtxRange r("forward");
    evaluate_points<Real>(c_, net_, theta_.data(), x, u, du, d2u);
  }

  void parameters(span<double> theta) override { to_host(theta_, theta); }

  long adam_state(span<double> m, span<double> v) override {
    to_host(m_, m);
    to_host(v_, v);
    std::vector<unsigned long long> t;
    step_.download(t);
    return static_cast<long>(t[0]);
  }

  // Uploads are ordered after the steps already queued on the stream.
  void set_adam_state(span<const double> theta, span<const double> m, span<const double> v, long t) override {
    theta_.upload(std::vector<Real>(theta.begin(), theta.end()));
    m_.upload(std::vector<Real>(m.begin(), m.end()));
    v_.upload(std::vector<Real>(v.begin(), v.end()));
    step_.upload(std::vector<unsigned long long>{static_cast<unsigned long long>(t)});
  }

  double loss_gradient_at(span<const double> theta, span<double> grad) override {
    NvtxRange r("gradient");
    theta_.upload(std::vector<Real>(theta.begin(), theta.end()));
    enqueue_loss_gradient<Real>(theta_.data(), pts_.view(), ws_, nullptr, grad_.data(), loss_.data(), c_.stream());
    to_host(grad_, grad);
    std::vector<double> l;
    loss_.download(l);
    return l[0];
  }

 private:
  // The fused reduction and update: one kernel less per step than launch_reduce_gradient + launch_adam_update.
  void enqueue_step() {
    launch_gradient_partials<Real>(theta_.data(), pts_.view(), ws_, nullptr, step_.data(), c_.stream());
    launch_reduce_gradient_adam<Real>(ws_, loss_.data(), theta_.data(), m_.data(), v_.data(), lr_.data(), step_.data(),
                                      adam_, c_.stream());
  }

  std::shared_ptr<const CudaContext> ctx_;  // declared first: outlives every buffer below
  const CudaContext& c_;
  NetDesc net_;
  DevicePoints<Real> pts_;
  GradientWorkspace<Real> ws_;  // the tiling of every gradient launch and the partials sized for it
  DeviceBuffer<Real> theta_, m_, v_, grad_;
  DeviceBuffer<double> loss_, lr_;
  DeviceBuffer<unsigned long long> step_;
  AdamParams adam_;
  double lr_host_ = -1.0, loss_host_ = 0.0;
  UniqueGraph graph_;
  UniqueGraphExec exec_;
};

// ---- the backend ----

template <class Real>
class CudaBackend final : public Backend {
 public:
  CudaBackend() : ctx_(std::make_shared<const CudaContext>()), c_(*ctx_) {}
  std::string name() const override { return "cuda"; }
  std::string precision() const override { return sizeof(Real) == 8 ? "fp64" : "fp32"; }

  void evaluate(const Mlp& net, span<const double> x, span<double> u, span<double> du, span<double> d2u) override {
    NvtxRange r("forward");
    const NetDesc nd = make_net_desc(net.layers);
    const DeviceBuffer<Real> theta = to_device<Real>(net.theta, c_.order());
    evaluate_points<Real>(c_, nd, theta.data(), x, u, du, d2u);
  }

  void residuals_jacobian(const Mlp& net, const PointSet& pts, span<double> r, span<double> J) override {
    const NetDesc nd = net_for_points(net.layers, pts, false, "residuals_jacobian");
    const StreamOrder o = c_.order();
    DeviceBuffer<Real> theta = to_device<Real>(net.theta, o), dr(pts.size(), o),
                       dJ(static_cast<size_t>(pts.size()) * nd.P, o);
    {
      NvtxRange range("jacobian");
      DevicePoints<Real> dp(pts, o);
      launch_jacobian<Real>(nd, theta.data(), dp.view(), dr.data(), dJ.data(), c_.stream());
      c_.sync();
    }
    to_host(dr, r);
    to_host(dJ, J);
  }

  double loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad) override {
    NvtxRange range("gradient");
    const NetDesc nd = net_for_points(net.layers, pts, true, "loss_gradient");
    const StreamOrder o = c_.order();
    DeviceBuffer<Real> theta = to_device<Real>(net.theta, o), dr(pts.size(), o), dg(nd.P, o);
    const GradientWorkspace<Real> ws(nd, pts.size(), o);
    DeviceBuffer<double> loss(1, o);
    DevicePoints<Real> dp(pts, o);
    enqueue_loss_gradient<Real>(theta.data(), dp.view(), ws, dr.data(), dg.data(), loss.data(), c_.stream());
    to_host(dr, r);
    to_host(dg, grad);
    std::vector<double> l;
    loss.download(l);
    return l[0];
  }

  void gram_rows(span<const double> A, int n, int k, span<double> G) override { gram(A, n, k, G, true); }
  void gram_cols(span<const double> A, int n, int k, span<double> G) override { gram(A, n, k, G, false); }

  void symmetric_eigenvalues(span<double> A, int n, span<double> eigenvalues) override {
    DeviceBuffer<Real> dA = to_device<Real>(span<const double>(A.data(), A.size()), c_.order());
    const std::vector<double> e = device_eigenvalues(c_, dA.data(), n);
    std::copy(e.begin(), e.end(), eigenvalues.begin());
  }

  NtkResult ntk(const Mlp& net, const PointSet& pts, const std::vector<double>& d, bool keep_jacobian) override {
    const NetDesc nd = net_for_points(net.layers, pts, false, "ntk");
    const int n = pts.size(), p = nd.P;
    const StreamOrder o = c_.order();
    NtkResult res;
    res.nc = pts.nc;
    res.nb = pts.nb;
    res.n_params = p;
    DeviceBuffer<Real> theta = to_device<Real>(net.theta, o), dr(n, o), J(static_cast<size_t>(n) * p, o),
                       dd = to_device<Real>(d, o);
    {
      NvtxRange range("jacobian");
      DevicePoints<Real> dp(pts, o);
      launch_jacobian<Real>(nd, theta.data(), dp.view(), dr.data(), J.data(), c_.stream());
      c_.sync();
    }
    res.residuals.resize(n);
    to_host(dr, res.residuals);
    if (keep_jacobian) {
      res.jacobian.resize(J.size());
      to_host(J, res.jacobian);
    }
    DeviceBuffer<Real> G, C;
    if (n <= p) {
      // ||J J^T D||_F directly: G = J J^T, columns scaled by d. G has m^2 entries, past 2^31 from m = 46341 on:
      // device_nrm2 counts them in 64 bits.
      const int m = device_gram(c_, J.data(), n, p, G);
      launch_scale_cols(G.data(), m, dd.data(), c_.stream());
      res.frobenius_K = device_nrm2(c_, G.data(), G.size());
    } else {
      device_gram(c_, J.data(), n, p, C);  // C = J^T J
    }
    // Jh = D^1/2 J in place; K's spectrum and the blocks' come from Jh (DESIGN.md section 3).
    launch_scale_rows(J.data(), n, p, dd.data(), true, c_.stream());
    auto spectrum = [&](const Real* rows, int nrows, std::vector<double>& eig, double& frob) {
      eig.assign(nrows, 0.0);
      if (nrows == 0) return false;
      const int m = device_gram(c_, rows, nrows, p, G);
      frob = device_nrm2(c_, G.data(), G.size());
      const std::vector<double> e = device_eigenvalues(c_, G.data(), m);
      std::copy(e.begin(), e.end(), eig.begin());
      return nrows > p;
    };
    double frob_ks = 0.0;
    res.gram_trick = spectrum(J.data(), n, res.spectrum_K, frob_ks);
    spectrum(J.data(), pts.nc, res.spectrum_Kuu, res.frobenius_Kuu);
    spectrum(J.data() + static_cast<size_t>(pts.nc) * p, pts.nb, res.spectrum_Kbb, res.frobenius_Kbb);
    if (n > p) {
      // ||J J^T D||_F^2 = <J^T D^2 J, J^T J>_F: scale Jh once more to D J, then B = (D J)^T (D J).
      launch_scale_rows(J.data(), n, p, dd.data(), true, c_.stream());
      device_gram(c_, J.data(), n, p, G);
      const Real f2 = device_dot(c_, G.data(), C.data(), G.size());
      res.frobenius_K = std::sqrt(std::max(0.0, double(f2)));
    }
    c_.sync();
    return res;
  }

  std::unique_ptr<TrainSession> train_session(const Mlp& net, const PointSet& pts, const AdamConfig& cfg) override {
    return std::make_unique<CudaTrainSession<Real>>(ctx_, net, pts, cfg);
  }

  std::unique_ptr<LmSession> lm_session(const Mlp& net, const PointSet& pts, bool sample_form) override {
    return make_cuda_lm_session<Real>(ctx_, net, pts, sample_form);
  }

 private:
  void gram(span<const double> A, int n, int k, span<double> G, bool rows) {
    DeviceBuffer<Real> dA = to_device<Real>(A, c_.order()), dG;
    device_gram(c_, dA.data(), n, k, dG, rows);
    to_host(dG, G);  // symmetric: row- and column-major agree
  }

  // Shared with the sessions, which may outlive the backend (a session made from a temporary backend).
  std::shared_ptr<const CudaContext> ctx_;
  const CudaContext& c_;
};

}  // namespace

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the "no driver" or "no device" error
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(bool single) {
  if (single) return std::make_unique<CudaBackend<float>>();
  return std::make_unique<CudaBackend<double>>();
}

}  // namespace pinntk
