// The CUDA backend: the tile kernels of cuda/ for u, u', u'' (eval.cu), the Jacobian (jacobian.cu) and the loss
// gradient (loss_gradient.cu, reduce.cu), the matrix-free NTK products J u (matvec.cu) and J^T y (the gradient kernel
// seeded with y) on rows kept on the device between calls, cuBLAS syrk for the Grams, cuSOLVER syevd for the spectra,
// and a device-resident Adam session whose step is captured in a CUDA graph. fp64 by default, fp32 on request; TF32 is
// never enabled. Networks of n = layers[0] = 1 .. 3 inputs (DESIGN.md section 7): points of n coordinates, the
// derivatives along the n axes. Adam also runs on a batch of networks of one shape, every launch serving all of them
// (CudaBatchTrainSession), and a session's graphs capture one step and kStepsPerGraph steps in a row. A batch's
// L-BFGS keeps its vectors on the device and evaluates with the batch's kernels (lbfgs_ops, cuda_lbfgs.cu).
#include <algorithm>   // std::any_of, std::copy, std::max, std::sort
#include <atomic>      // std::atomic
#include <cmath>       // std::sqrt, std::isfinite, NAN
#include <functional>  // std::greater
#include <memory>      // std::unique_ptr, std::shared_ptr
#include <stdexcept>   // std::invalid_argument, std::out_of_range
#include <string>      // std::string, std::to_string
#include <utility>     // std::move
#include <vector>      // std::vector

#include "cuda/adam.hpp"                 // launch_reduce_gradient_adam
#include "cuda/eval.hpp"                 // launch_eval
#include "cuda/handles.cuh"              // UniqueGraph, UniqueGraphExec, capture_graph, instantiate
#include "cuda/jacobian.hpp"             // launch_jacobian
#include "cuda/layerwise.hpp"            // layerwise::jacobian_times, jacobian_transpose_times, scratch_per_row
#include "cuda/layerwise_exec.cuh"       // layerwise::DeviceExec
#include "cuda/loss_gradient.hpp"        // GradientWorkspace, launch_gradient_partials, Members
#include "cuda/matrix_ops.hpp"           // launch_scale_rows, launch_scale_cols
#include "cuda/matvec.hpp"               // launch_jacobian_times
#include "host/backend.hpp"              // Backend, TrainSession, BatchTrainSession, check_batch
#include "host/cuda/backend_common.cuh"  // CudaContext, DevicePoints, device_gram, device_eigenvalues
#include "host/cuda/cuda_backend.hpp"
#include "host/cuda/cuda_lbfgs.hpp"  // make_cuda_lbfgs_ops, LbfgsEvaluation
#include "host/cuda/cuda_lm.hpp"     // make_cuda_lm_session
#include "host/ntk.hpp"              // ntk_chunks, ntk_weights_blockwise
#include "host/work_progress.hpp"    // work_progress_due, work_progress

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

// ---- captured Adam steps ----

std::atomic<bool> g_multi_step_graphs{true};
std::atomic<LayerwiseProducts> g_layerwise{LayerwiseProducts::kAuto};
std::atomic<int> g_layerwise_chunk{0};

// Whether the matrix-free products of net run a layer at a time (set_layerwise_products).
bool layerwise_for(const NetDesc& net) {
  const LayerwiseProducts mode = g_layerwise.load(std::memory_order_relaxed);
  if (mode != LayerwiseProducts::kAuto) return mode == LayerwiseProducts::kOn;
  return net.maxw > 64;  // the widest layer, inputs included
}

// A session's Adam steps as CUDA graphs: one step, and kStepsPerGraph steps in a row (the same enqueue, captured
// kStepsPerGraph times). The owners release a graph when a later capture or instantiation throws.
class StepGraphs {
 public:
  template <class Enqueue>
  StepGraphs(cudaStream_t s, Enqueue&& step)
      : one_(capture_graph(s, step)),
        one_exec_(instantiate(one_)),
        many_(capture_graph(s,
                            [&] {
                              for (int i = 0; i < kStepsPerGraph; ++i) step();
                            })),
        many_exec_(instantiate(many_)) {}

  // `steps` steps on s: steps / kStepsPerGraph launches of the long graph, then one launch per remaining step (all
  // of them one-step launches when set_multi_step_graphs(false)). No host round trip.
  void launch(long steps, cudaStream_t s) const {
    long left = steps;
    if (g_multi_step_graphs.load(std::memory_order_relaxed)) {
      for (; left >= kStepsPerGraph; left -= kStepsPerGraph) PINNTK_CUDA_CHECK(cudaGraphLaunch(many_exec_.get(), s));
    }
    for (; left > 0; --left) PINNTK_CUDA_CHECK(cudaGraphLaunch(one_exec_.get(), s));
  }

 private:
  UniqueGraph one_;
  UniqueGraphExec one_exec_;
  UniqueGraph many_;
  UniqueGraphExec many_exec_;
};

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
        adam_{cfg.beta1, cfg.beta2, cfg.eps},
        // One Adam step = the loss-gradient kernel + the fused reduction and update kernel, captured as graphs of one
        // and of kStepsPerGraph steps (ws_'s plan set the kernels' attributes and loaded them: the captures contain
        // stream work only). The session's buffers are released when a capture throws.
        graphs_(c_.stream(), [this] { enqueue_step(); }) {}

  double run(long steps, double lr) override {
    NvtxRange r("adam steps");
    if (lr != lr_host_) {
      lr_host_ = lr;
      PINNTK_CUDA_CHECK(cudaMemcpyAsync(lr_.data(), &lr_host_, sizeof(double), cudaMemcpyHostToDevice, c_.stream()));
    }
    graphs_.launch(steps, c_.stream());
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

  // A batch of one's device operations (the arithmetic of CudaBatchTrainSession::lbfgs_ops for a member): the
  // evaluations use the session's workspace and rows on its stream, into the ops' own buffers.
  std::unique_ptr<LbfgsOps> lbfgs_ops(int params, int history) override {
    return make_cuda_lbfgs_ops<Real>(ctx_, 1, params, history, LbfgsEvaluation<Real>{&ws_, pts_.view(), true});
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
  StepGraphs graphs_;  // declared last: captured once every buffer above exists
};

// ---- Adam on a batch of networks ----

// Whether two point sets hold the same rows (then a batch uploads them once and every member reads them).
bool same_rows(const PointSet& a, const PointSet& b) {
  return a.dim == b.dim && a.nc == b.nc && a.nb == b.nb && a.x == b.x && a.alpha == b.alpha && a.beta == b.beta &&
         a.gamma == b.gamma && a.f == b.f && a.w == b.w && a.dirs == b.dirs;
}

// The members' rows one after the other (member b's at rows b n ..): what the batched kernels read. When some
// members' rows have their own directions, those of the others are the axes (the identity per row).
PointSet concatenate_rows(const std::vector<PointSet>& pts) {
  PointSet all;
  all.dim = pts[0].dim;
  const bool dirs = std::any_of(pts.begin(), pts.end(), [](const PointSet& p) { return p.has_directions(); });
  for (const PointSet& p : pts) {
    all.nc += p.nc;
    all.nb += p.nb;
    for (auto [to, from] : {std::pair{&all.x, &p.x}, std::pair{&all.alpha, &p.alpha}, std::pair{&all.beta, &p.beta},
                            std::pair{&all.gamma, &p.gamma}, std::pair{&all.f, &p.f}, std::pair{&all.w, &p.w}})
      to->insert(to->end(), from->begin(), from->end());
    if (!dirs) continue;
    if (p.has_directions()) {
      all.dirs.insert(all.dirs.end(), p.dirs.begin(), p.dirs.end());
      continue;
    }
    for (int k = 0; k < p.size(); ++k)
      for (int i = 0; i < p.dim; ++i)
        for (int j = 0; j < p.dim; ++j) all.dirs.push_back(i == j ? 1.0 : 0.0);
  }
  return all;
}

// The batch's network descriptor, after check_batch and the checks of every member's rows against it.
NetDesc batch_net(const std::vector<Mlp>& nets, const std::vector<PointSet>& pts) {
  check_batch(nets, pts);
  if (nets.size() > 65535)
    throw std::invalid_argument("CUDA backend batch_train_session: " + std::to_string(nets.size()) +
                                " networks, more than the 65535 one launch serves");
  NetDesc nd;
  for (size_t b = 0; b < nets.size(); ++b) nd = net_for_points(nets[b].layers, pts[b], true, "batch_train_session");
  int_count(nets.size() * static_cast<size_t>(pts[0].size()), "the batch's rows");
  return nd;
}

// The n values at first .. of a device buffer, on the host as doubles (waits for the stream's work).
template <class T>
void slice_to_host(const CudaContext& c, const DeviceBuffer<T>& d, size_t first, size_t n, span<double> out) {
  if (out.size() < n)
    throw std::invalid_argument("CUDA batch member: " + std::to_string(n) + " values into " +
                                std::to_string(out.size()));
  std::vector<T> h(n);
  PINNTK_CUDA_CHECK(cudaMemcpyAsync(h.data(), d.data() + first, n * sizeof(T), cudaMemcpyDeviceToHost, c.stream()));
  c.sync();
  std::copy(h.begin(), h.end(), out.begin());
}

// in (exactly n values) into the device buffer at first, ordered after the stream's work; returns once copied.
template <class T>
void slice_from_host(const CudaContext& c, DeviceBuffer<T>& d, size_t first, size_t n, span<const double> in) {
  if (in.size() != n)
    throw std::invalid_argument("CUDA batch member: " + std::to_string(in.size()) + " values for " + std::to_string(n));
  const std::vector<T> h(in.begin(), in.end());
  PINNTK_CUDA_CHECK(cudaMemcpyAsync(d.data() + first, h.data(), n * sizeof(T), cudaMemcpyHostToDevice, c.stream()));
  c.sync();
}

// The device state of a batch of B networks of P parameters on n rows each: parameters, moments and gradients
// [B][P], losses and step counts [B], the active flags [B] the captured steps read, the rows (once when every member
// has the same, else member after member) and the partials of all members (GradientWorkspace for B).
template <class Real>
struct BatchState {
  BatchState(std::shared_ptr<const CudaContext> ctx_in, const std::vector<Mlp>& nets, const std::vector<PointSet>& pts,
             const AdamConfig& cfg)
      : ctx(std::move(ctx_in)),
        c(*ctx),
        net(batch_net(nets, pts)),
        B(static_cast<int>(nets.size())),
        P(static_cast<size_t>(net.P)),
        n(pts[0].size()),
        shared_rows(std::all_of(pts.begin(), pts.end(), [&](const PointSet& p) { return same_rows(p, pts[0]); })),
        points(shared_rows ? pts[0] : concatenate_rows(pts), c.order()),
        ws(net, n, c.order(), B),
        theta(all_parameters(nets), c.order()),
        m(std::vector<Real>(B * P, Real(0)), c.order()),
        v(std::vector<Real>(B * P, Real(0)), c.order()),
        grad(B * P, c.order()),
        loss(static_cast<size_t>(B), c.order()),
        lr(1, c.order()),
        step(std::vector<unsigned long long>(B, 0), c.order()),
        active_host(B, 1),
        active(active_host, c.order()),
        adam{cfg.beta1, cfg.beta2, cfg.eps} {}

  static std::vector<Real> all_parameters(const std::vector<Mlp>& nets) {
    std::vector<Real> t;
    for (const Mlp& net : nets) t.insert(t.end(), net.theta.begin(), net.theta.end());
    return t;
  }

  // Every active member (the captured steps), or member b alone, active or not.
  Members all() const { return {0, B, active.data(), shared_rows}; }
  Members one(int b) const { return {b, 1, nullptr, shared_rows}; }
  // Member 0's rows; the kernels find member b's (cuda/members.cuh).
  DeviceRows<Real> rows() const {
    DeviceRows<Real> r = points.view();
    r.n = n;
    return r;
  }

  void set_lr(double value) {
    if (value == lr_host) return;
    lr_host = value;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(lr.data(), &lr_host, sizeof(double), cudaMemcpyHostToDevice, c.stream()));
  }

  // One Adam step of the members mb: the loss-gradient kernel + the fused reduction and update kernel.
  void enqueue_step(const Members& mb) {
    launch_gradient_partials<Real>(theta.data(), rows(), ws, nullptr, step.data(), c.stream(), mb);
    launch_reduce_gradient_adam<Real>(ws, loss.data(), theta.data(), m.data(), v.data(), lr.data(), step.data(), adam,
                                      c.stream(), mb);
  }

  double member_loss(int b) const {
    double l = 0.0;
    slice_to_host(c, loss, static_cast<size_t>(b), 1, span<double>(&l, 1));
    return l;
  }

  std::shared_ptr<const CudaContext> ctx;  // declared first: outlives every buffer below
  const CudaContext& c;
  NetDesc net;
  int B;
  size_t P;
  int n;
  bool shared_rows;
  DevicePoints<Real> points;
  GradientWorkspace<Real> ws;
  DeviceBuffer<Real> theta, m, v, grad;
  DeviceBuffer<double> loss, lr;
  DeviceBuffer<unsigned long long> step;
  std::vector<int> active_host;
  DeviceBuffer<int> active;
  AdamParams adam;
  double lr_host = -1.0;
};

// Member b of a batch as a one-network session: the batch's buffers at member b's offsets, its steps launched
// directly (no graph) for member b alone.
template <class Real>
class CudaBatchMember final : public TrainSession {
 public:
  CudaBatchMember(BatchState<Real>& s, int b) : s_(s), b_(b), off_(static_cast<size_t>(b) * s.P) {}

  double run(long steps, double lr) override {
    NvtxRange r("adam steps (batch member)");
    s_.set_lr(lr);
    for (long k = 0; k < steps; ++k) s_.enqueue_step(s_.one(b_));
    return s_.member_loss(b_);
  }

  void evaluate(span<const double> x, span<double> u, span<double> du, span<double> d2u) override {
    NvtxRange r("forward");
    evaluate_points<Real>(s_.c, s_.net, s_.theta.data() + off_, x, u, du, d2u);
  }

  void parameters(span<double> theta) override { slice_to_host(s_.c, s_.theta, off_, s_.P, theta); }

  long adam_state(span<double> m, span<double> v) override {
    slice_to_host(s_.c, s_.m, off_, s_.P, m);
    slice_to_host(s_.c, s_.v, off_, s_.P, v);
    unsigned long long t = 0;
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(&t, s_.step.data() + b_, sizeof(t), cudaMemcpyDeviceToHost, s_.c.stream()));
    s_.c.sync();
    return static_cast<long>(t);
  }

  void set_adam_state(span<const double> theta, span<const double> m, span<const double> v, long t) override {
    slice_from_host(s_.c, s_.theta, off_, s_.P, theta);
    slice_from_host(s_.c, s_.m, off_, s_.P, m);
    slice_from_host(s_.c, s_.v, off_, s_.P, v);
    const unsigned long long tu = static_cast<unsigned long long>(t);
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(s_.step.data() + b_, &tu, sizeof(tu), cudaMemcpyHostToDevice, s_.c.stream()));
    s_.c.sync();
  }

  double loss_gradient_at(span<const double> theta, span<double> grad) override {
    NvtxRange r("gradient");
    slice_from_host(s_.c, s_.theta, off_, s_.P, theta);
    enqueue_loss_gradient<Real>(s_.theta.data(), s_.rows(), s_.ws, nullptr, s_.grad.data(), s_.loss.data(),
                                s_.c.stream(), s_.one(b_));
    slice_to_host(s_.c, s_.grad, off_, s_.P, grad);
    return s_.member_loss(b_);
  }

 private:
  BatchState<Real>& s_;
  int b_;
  size_t off_;  // b P: member b's parameters, moments and gradient
};

template <class Real>
class CudaBatchTrainSession final : public BatchTrainSession {
 public:
  CudaBatchTrainSession(std::shared_ptr<const CudaContext> ctx, const std::vector<Mlp>& nets,
                        const std::vector<PointSet>& pts, const AdamConfig& cfg)
      : s_(std::move(ctx), nets, pts, cfg),
        // Every member's step in each launch: the kernels read the active flags on the device, so set_active
        // leaves the graphs valid.
        graphs_(s_.c.stream(), [this] { s_.enqueue_step(s_.all()); }) {
    for (int b = 0; b < s_.B; ++b) members_.push_back(std::make_unique<CudaBatchMember<Real>>(s_, b));
  }

  int size() const override { return s_.B; }

  std::vector<double> run(long steps, double lr) override {
    NvtxRange r("adam steps (batch)");
    s_.set_lr(lr);
    graphs_.launch(steps, s_.c.stream());
    std::vector<double> l;
    s_.loss.download(l);  // after the steps
    for (int b = 0; b < s_.B; ++b)
      if (s_.active_host[b] == 0) l[b] = NAN;
    return l;
  }

  TrainSession& member(int b) override { return *members_.at(checked(b, "member")); }

  // Ordered after the steps already queued; the graphs read the flags at their next launch.
  void set_active(int b, bool on) override {
    s_.active_host[checked(b, "set_active")] = on ? 1 : 0;
    s_.active.upload(s_.active_host);
  }

  // The vectors on the device, evaluated by the batch's kernels at the trial points into buffers of the ops' own: the
  // members' parameters, Adam moments, losses and active flags are left as they are. Valid while the batch lives.
  std::unique_ptr<LbfgsOps> lbfgs_ops(int params, int history) override {
    return make_cuda_lbfgs_ops<Real>(s_.ctx, s_.B, params, history,
                                     LbfgsEvaluation<Real>{&s_.ws, s_.rows(), s_.shared_rows});
  }

 private:
  size_t checked(int b, const char* what) const {
    if (b < 0 || b >= s_.B)
      throw std::out_of_range(std::string("batch session ") + what + ": member " + std::to_string(b) + " of " +
                              std::to_string(s_.B));
    return static_cast<size_t>(b);
  }

  BatchState<Real> s_;
  StepGraphs graphs_;  // captured once every buffer of s_ exists
  std::vector<std::unique_ptr<CudaBatchMember<Real>>> members_;
};

// ---- the matrix-free products' rows ----

// What jacobian_times and jacobian_transpose_times keep on the device between calls (ntk_lanczos makes hundreds of
// products on one PointSet): the rows, the partial buffers of J^T y and vectors of N and P numbers, rebuilt only when
// the network's shape or a row changes; a call uploads theta and its vector. Device memory O(N + P): J^T y runs the
// seeded loss-gradient kernel over chunks of rows whose partials (blocks x P) stay within kPartialBudget, or of 8
// blocks a multiprocessor where that is more (wide networks off the layerwise path: 4x160 on an H200 holds about 0.66
// GB of partials a chunk, and a tail workspace of as much again), each chunk reduced in the fixed order of
// launch_reduce_gradient and added to the sum chunk after chunk (deterministic). A layer at a time (layerwise_for) both
// products run over chunks of lw_rows rows whose jets fit a scratch of at most kLayerwiseBudget (and a quarter of the
// free device memory), J^T y's chunks added by the GEMMs themselves (beta 1).
template <class Real>
struct MatfreeRows {
  static constexpr size_t kPartialBudget = size_t(64) << 20;      // bytes of one chunk's partials
  static constexpr double kLayerwiseBudget = double(1ULL << 30);  // bytes of the layer-at-a-time scratch

  MatfreeRows(const CudaContext& c, const std::vector<int>& layers_in, const PointSet& pts, const char* op)
      : layers(layers_in),
        rows_host(pts),
        net(net_for_points(layers_in, pts, false, op)),
        points(pts, c.order()),
        theta(static_cast<size_t>(net.P), c.order()),
        params(static_cast<size_t>(net.P), c.order()),
        vec(static_cast<size_t>(pts.size()), c.order()),
        loss(1, c.order()),
        layerwise(layerwise_for(net)) {
    const int n = pts.size();
    if (layerwise) {
      const double per_row = static_cast<double>(layerwise::scratch_per_row(net) * sizeof(Real));
      const double budget = std::min(kLayerwiseBudget, available_device_bytes(c) / 4);
      lw_rows = static_cast<int>(std::max(1.0, std::min(static_cast<double>(std::max(n, 1)), budget / per_row)));
      if (chunk_cap > 0) lw_rows = std::min(lw_rows, chunk_cap);
      lw_scratch = DeviceBuffer<Real>(static_cast<size_t>(lw_rows) * layerwise::scratch_per_row(net), c.order());
      return;
    }
    const GradientPlan whole = plan_gradient<Real>(net, n);
    chunk = n;
    if (whole.partial_size() * sizeof(Real) > kPartialBudget) {
      const long long per_block = static_cast<long long>(net.P) * static_cast<long long>(sizeof(Real));
      const long long blocks = std::max<long long>(8LL * device_limits().sms, kPartialBudget / per_block);
      chunk = static_cast<int>(std::min<long long>(n, blocks * whole.tiles.T));
    }
    full = std::make_unique<GradientWorkspace<Real>>(net, chunk, c.order());
    const int rest = chunk > 0 ? n % chunk : 0;
    if (rest > 0) tail = std::make_unique<GradientWorkspace<Real>>(net, rest, c.order());
    if (chunk < n) sum = DeviceBuffer<Real>(static_cast<size_t>(net.P), c.order());
  }

  bool holds(const std::vector<int>& l, const PointSet& p) const {
    return l == layers && same_rows(p, rows_host) && layerwise == layerwise_for(net) &&
           chunk_cap == g_layerwise_chunk.load(std::memory_order_relaxed);
  }

  // Rows k0 .. k0 + count - 1.
  DeviceRows<Real> slice(int k0, int count) const {
    DeviceRows<Real> rows = slice_rows(points.view(), static_cast<size_t>(k0), count, net.n_in());
    rows.w = nullptr;  // the seeded kernel reads no weight
    return rows;
  }

  // f(k0, rows, scratch) for the layer-at-a-time chunks of lw_rows rows, in order.
  template <class F>
  void for_each_layer_chunk(F f) {
    const int n = rows_host.size();
    for (int k0 = 0; k0 < n; k0 += lw_rows) {
      const int count = std::min(lw_rows, n - k0);
      f(k0, slice(k0, count), layerwise::Scratch<Real>{lw_scratch.data(), count});
    }
  }

  std::vector<int> layers;
  PointSet rows_host;  // what points holds, to tell a changed row
  NetDesc net;
  DevicePoints<Real> points;
  DeviceBuffer<Real> theta, params, vec, sum;           // theta (P), a vector of P, one of N, a chunk's J^T y (P)
  DeviceBuffer<double> loss;                            // the reduction's loss (0: the seeded kernel has none)
  int chunk = 0;                                        // rows per seeded launch
  std::unique_ptr<GradientWorkspace<Real>> full, tail;  // for chunk rows, and for the N mod chunk left
  bool layerwise = false;                               // the products a layer at a time (then no workspace above)
  int chunk_cap = g_layerwise_chunk.load(std::memory_order_relaxed);  // set_layerwise_products's cap when built
  int lw_rows = 0;                                                    // rows per layer-at-a-time chunk
  DeviceBuffer<Real> lw_scratch;                                      // lw_rows scratch_per_row numbers
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

  // rows x cols Reals in device memory of its own (cudaMalloc, not the backend's pool: the caller may free it after the
  // backend is gone), as a MatrixBuffer whose release frees it (a failure to free is not worth stopping a program for).
  static MatrixBuffer own_device_matrix(size_t rows, size_t cols, bool column_major) {
    int dev = 0;
    PINNTK_CUDA_CHECK(cudaGetDevice(&dev));
    void* p = nullptr;
    PINNTK_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(rows * cols, 1) * sizeof(Real)));
    MatrixBuffer b;
    b.data = p;
    b.rows = rows;
    b.cols = cols;
    b.column_major = column_major;
    b.bits = 8 * sizeof(Real);
    b.device_type = 2;  // kDLCUDA
    b.device_id = dev;
    b.release = [p, dev] {
      int cur = 0;
      if (cudaGetDevice(&cur) == cudaSuccess && cudaSetDevice(dev) == cudaSuccess) {
        static_cast<void>(cudaFree(p));
        static_cast<void>(cudaSetDevice(cur));
      }
      static_cast<void>(cudaGetLastError());
    };
    return b;
  }

  // J in device memory of its own (own_device_matrix), written by the Jacobian tile kernel in the backend's precision;
  // the residuals come to the host.
  MatrixBuffer jacobian_buffer(const Mlp& net, const PointSet& pts, span<double> r) override {
    const NetDesc nd = net_for_points(net.layers, pts, false, "jacobian_buffer");
    const size_t count = static_cast<size_t>(pts.size()) * nd.P;
    const double need = static_cast<double>(std::max<size_t>(count, 1) * sizeof(Real)) +
                        8.0 * static_cast<double>(pts.size()) * (nd.n_in() * 3 + 4);
    if (need > available_device_bytes(c_))
      throw UsageError("the " + std::to_string(pts.size()) + " x " + std::to_string(nd.P) + " Jacobian needs about " +
                       std::to_string(static_cast<long long>(need / 1e6)) + " MB of device memory, more than is free");
    MatrixBuffer b = own_device_matrix(pts.size(), nd.P, false);
    Real* dJ = static_cast<Real*>(b.data);
    try {
      NvtxRange range("jacobian");
      const StreamOrder o = c_.order();
      DeviceBuffer<Real> theta = to_device<Real>(net.theta, o), dr(pts.size(), o);
      DevicePoints<Real> dp(pts, o);
      launch_jacobian<Real>(nd, theta.data(), dp.view(), dr.data(), dJ, c_.stream());
      c_.sync();
      to_host(dr, r);
    } catch (...) {
      b.release();
      throw;
    }
    return b;
  }

  // K = J J^T D on the device: J by jacobian_buffer, G = J J^T by syrk (device_gram, both triangles), the columns of
  // the column-major G scaled by d (launch_scale_cols, as ntk's direct Frobenius norm): K in column-major order,
  // copied into memory of its own (own_device_matrix).
  MatrixBuffer kernel_buffer(const Mlp& net, const PointSet& pts, const std::vector<double>& d,
                             span<double> r) override {
    const NetDesc nd = net_for_points(net.layers, pts, false, "kernel_buffer");
    const int n = pts.size(), p = nd.P;
    if (d.size() != static_cast<size_t>(n))
      throw std::invalid_argument("kernel_buffer: " + std::to_string(d.size()) + " weights for " + std::to_string(n) +
                                  " rows");
    const size_t kk = static_cast<size_t>(n) * n;
    const double need = (2.0 * static_cast<double>(kk) + static_cast<double>(n) * p) * sizeof(Real);
    if (need > available_device_bytes(c_))
      throw UsageError("the " + std::to_string(n) + " x " + std::to_string(n) + " kernel needs about " +
                       std::to_string(static_cast<long long>(need / 1e6)) + " MB of device memory, more than is free");
    MatrixBuffer jb = jacobian_buffer(net, pts, r);  // J on the device, the residuals on the host
    MatrixBuffer b = own_device_matrix(n, n, true);
    try {
      NvtxRange range("kernel");
      if (n > 0) {
        DeviceBuffer<Real> dd = to_device<Real>(d, c_.order()), G;
        device_gram(c_, static_cast<const Real*>(jb.data), n, p, G, true);
        launch_scale_cols(G.data(), n, dd.data(), c_.stream());
        PINNTK_CUDA_CHECK(cudaMemcpyAsync(b.data, G.data(), kk * sizeof(Real), cudaMemcpyDeviceToDevice, c_.stream()));
      }
      c_.sync();
    } catch (...) {
      b.release();
      jb.release();
      throw;
    }
    jb.release();
    return b;
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

  // J^T y without J (DESIGN.md section 8): the loss-gradient kernel seeded with y (launch_seeded_partials) and its
  // fixed-order reduction, chunk by chunk (MatfreeRows), or a layer at a time (cuda/layerwise.hpp).
  void jacobian_transpose_times(const Mlp& net, const PointSet& pts, span<const double> y, span<double> out) override {
    NvtxRange range("J^T y");
    MatfreeRows<Real>& m = matfree(net, pts, y.size(), out.size(), "jacobian_transpose_times", true);
    const int n = pts.size(), p = m.net.P;
    if (n == 0) {
      std::fill(out.begin(), out.end(), 0.0);
      return;
    }
    m.vec.upload(std::vector<Real>(y.begin(), y.end()));
    if (m.layerwise) {
      layerwise::DeviceExec<Real> ex{c_.blas(), c_.stream()};
      m.for_each_layer_chunk([&](int k0, const DeviceRows<Real>& rows, layerwise::Scratch<Real> scratch) {
        layerwise::jacobian_transpose_times(ex, m.net, m.theta.data(), rows, m.vec.data() + k0, scratch,
                                            Real(k0 == 0 ? 0 : 1), m.params.data());
      });
      to_host(m.params, out);
      return;
    }
    for (int k0 = 0; k0 < n; k0 += m.chunk) {
      const int count = std::min(m.chunk, n - k0);
      const GradientWorkspace<Real>& ws = count == m.chunk ? *m.full : *m.tail;
      launch_seeded_partials<Real>(m.theta.data(), m.slice(k0, count), m.vec.data() + k0, ws, c_.stream());
      launch_reduce_gradient<Real>(ws, k0 == 0 ? m.params.data() : m.sum.data(), m.loss.data(), c_.stream());
      if (k0 > 0) PINNTK_CUBLAS_CHECK(linalg::axpy(c_.blas(), p, Real(1), m.sum.data(), m.params.data()));
    }
    to_host(m.params, out);
  }

  // J u without J (DESIGN.md section 8): one warp's tangent pass per row (cuda/matvec.cu), or a layer at a time.
  void jacobian_times(const Mlp& net, const PointSet& pts, span<const double> u, span<double> out) override {
    NvtxRange range("J u");
    MatfreeRows<Real>& m = matfree(net, pts, out.size(), u.size(), "jacobian_times", false);
    if (pts.size() == 0) return;
    m.params.upload(std::vector<Real>(u.begin(), u.end()));
    if (m.layerwise) {
      layerwise::DeviceExec<Real> ex{c_.blas(), c_.stream()};
      m.for_each_layer_chunk([&](int k0, const DeviceRows<Real>& rows, layerwise::Scratch<Real> scratch) {
        layerwise::jacobian_times(ex, m.net, m.theta.data(), m.params.data(), rows, scratch, m.vec.data() + k0);
      });
    } else {
      launch_jacobian_times<Real>(m.net, m.theta.data(), m.params.data(), m.points.view(), m.vec.data(), c_.stream());
    }
    to_host(m.vec, out);
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

  // ntk_chunked's pass on the device (DESIGN.md section 8): the rows and theta uploaded once, each piece's Jacobian
  // computed into one chunk buffer, scaled to Jh = D^1/2 J and added to G_u or G_b by syrk with beta = 1 (with
  // weights per row also to J^T J and J^T D^2 J); per piece no copy to the host, at the end only the spectra, norms and
  // residuals. The pieces and the formulas are those of the host default (host/ntk.cpp).
  NtkResult ntk_chunked(const Mlp& net, const PointSet& pts, const std::vector<double>& d, long chunk_rows) override {
    const std::vector<NtkChunk> chunks = ntk_chunks(pts, d, net.n_params(), chunk_rows);
    const NetDesc nd = net_for_points(net.layers, pts, false, "ntk_chunked");
    const int n = pts.size(), p = nd.P;
    const bool blockwise = ntk_weights_blockwise(d, pts.nc);
    const bool own_u = pts.nc > p, own_b = pts.nb > p;  // blocks whose spectrum and norm come from their P x P Gram
    const size_t pp = static_cast<size_t>(p) * p, dim = static_cast<size_t>(pts.dim);
    int piece = 0, whole = 0;  // the most rows of J held at once; of them, in a block held whole
    for (const NtkChunk& ch : chunks) {
      piece = std::max(piece, ch.rows);
      if (ch.whole) whole = std::max(whole, ch.rows);
    }
    int_count(static_cast<size_t>(piece) * p, "a chunk's Jacobian");
    const double row_numbers = 3.0 * dim + 6.0 + (pts.has_directions() ? static_cast<double>(dim * dim) : 0.0);
    require_chunked_memory(n, p, row_numbers, piece, whole, blockwise ? 2 : 4, own_u && own_b ? 3 : 2);
    const StreamOrder o = c_.order();
    NtkResult res;
    res.nc = pts.nc;
    res.nb = pts.nb;
    res.n_params = p;
    res.gram_trick = true;
    const DeviceBuffer<Real> theta = to_device<Real>(net.theta, o), dd = to_device<Real>(d, o);
    const DevicePoints<Real> dp(pts, o);
    DeviceBuffer<Real> dr(n, o), J(static_cast<size_t>(piece) * p, o), Gu = zeros(pp), Gb = zeros(pp), A, B, R;
    if (!blockwise) {
      A = zeros(pp);
      B = zeros(pp);
    }
    // G += rows^T rows on the lower triangle for the row-major rows (c x p).
    const auto accumulate = [&](const Real* rows, int c, Real* G) {
      PINNTK_CUBLAS_CHECK(linalg::syrk_add(c_.blas(), CUBLAS_OP_N, p, c, rows, p, G, p));
    };
    {
      NvtxRange range("chunked grams");
      const DeviceRows<Real> all = dp.view();
      long done = 0;
      for (const NtkChunk& ch : chunks) {
        if (work_progress_due()) {  // count the chunks the device has finished, not those queued
          c_.sync();
          work_progress("ntk: chunks of the Jacobian", done, static_cast<long>(chunks.size()));
        }
        ++done;
        const size_t k0 = static_cast<size_t>(ch.begin);
        const int c = ch.rows;
        const DeviceRows<Real> rows = slice_rows(all, k0, c, static_cast<int>(dim));
        launch_jacobian<Real>(nd, theta.data(), rows, dr.data() + k0, J.data(), c_.stream());
        if (!blockwise) accumulate(J.data(), c, A.data());
        launch_scale_rows(J.data(), c, p, dd.data() + k0, true, c_.stream());  // Jh
        accumulate(J.data(), c, ch.collocation ? Gu.data() : Gb.data());
        if (ch.whole) {  // at most P rows: the block's kernel from its row Gram, as in ntk
          const int m = device_gram(c_, J.data(), c, p, R, true);
          (ch.collocation ? res.frobenius_Kuu : res.frobenius_Kbb) = device_nrm2(c_, R.data(), R.size());
          (ch.collocation ? res.spectrum_Kuu : res.spectrum_Kbb) = device_eigenvalues(c_, R.data(), m);
        }
        if (!blockwise) {
          launch_scale_rows(J.data(), c, p, dd.data() + k0, true, c_.stream());  // D J
          accumulate(J.data(), c, B.data());
        }
      }
    }
    J = DeviceBuffer<Real>();
    R = DeviceBuffer<Real>();
    for (DeviceBuffer<Real>* G : {&Gu, &Gb, &A, &B})
      if (G->size() != 0) launch_fill_upper(G->data(), p, c_.stream());
    // ||K||_F^2 = <J^T J, J^T D^2 J>_F; with D = d_u I and d_b I on the blocks
    //   ||K||_F^2 = ||G_u||_F^2 + ||G_b||_F^2 + (d_u / d_b + d_b / d_u) <G_u, G_b>_F.
    const double fu = device_nrm2(c_, Gu.data(), pp), fb = device_nrm2(c_, Gb.data(), pp);
    double fk2 = 0.0;
    if (blockwise) {
      fk2 = fu * fu + fb * fb;
      if (pts.nc > 0 && pts.nb > 0) {
        const double du = d[0], db = d[pts.nc];
        fk2 += (du / db + db / du) * static_cast<double>(device_dot(c_, Gu.data(), Gb.data(), pp));
      }
    } else {
      fk2 = static_cast<double>(device_dot(c_, A.data(), B.data(), pp));
      A = DeviceBuffer<Real>();
      B = DeviceBuffer<Real>();
    }
    res.frobenius_K = std::sqrt(std::max(0.0, fk2));
    if (own_u) res.frobenius_Kuu = fu;
    if (own_b) res.frobenius_Kbb = fb;
    if (!std::isfinite(res.frobenius_K) || !std::isfinite(fu) || !std::isfinite(fb))
      throw NumericalError(
          "the NTK's Grams are not finite in the backend's precision (the problem's coefficients or "
          "the network's weights are too large)");
    // K_s's spectrum from G_u + G_b = Jh^T Jh, formed in a Gram whose own spectrum is not needed (or in a copy).
    DeviceBuffer<Real> copy;
    Real* S = Gb.data();
    if (own_b) {
      S = Gu.data();
      if (own_u) {
        copy = DeviceBuffer<Real>(pp, o);
        PINNTK_CUDA_CHECK(
            cudaMemcpyAsync(copy.data(), Gu.data(), pp * sizeof(Real), cudaMemcpyDeviceToDevice, c_.stream()));
        S = copy.data();
      }
    }
    PINNTK_CUBLAS_CHECK(
        linalg::axpy(c_.blas(), static_cast<int64_t>(pp), Real(1), S == Gb.data() ? Gu.data() : Gb.data(), S));
    res.spectrum_K = padded_spectrum(S, p, n);
    copy = DeviceBuffer<Real>();
    if (own_u) res.spectrum_Kuu = padded_spectrum(Gu.data(), p, pts.nc);
    if (own_b) res.spectrum_Kbb = padded_spectrum(Gb.data(), p, pts.nb);
    res.residuals.resize(n);
    to_host(dr, res.residuals);
    return res;
  }

  std::unique_ptr<TrainSession> train_session(const Mlp& net, const PointSet& pts, const AdamConfig& cfg) override {
    return std::make_unique<CudaTrainSession<Real>>(ctx_, net, pts, cfg);
  }

  std::unique_ptr<BatchTrainSession> batch_train_session(const std::vector<Mlp>& nets, const std::vector<PointSet>& pts,
                                                         const AdamConfig& cfg) override {
    return std::make_unique<CudaBatchTrainSession<Real>>(ctx_, nets, pts, cfg);
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

  // The matrix-free products' rows for net and pts (kept from the last call when neither the network's shape nor a
  // row changed) with net's theta uploaded; std::invalid_argument naming op when the vectors' sizes are not N (rows)
  // and P (params) (`transposed`: the input is the rows' vector).
  MatfreeRows<Real>& matfree(const Mlp& net, const PointSet& pts, size_t rows, size_t params, const char* op,
                             bool transposed) {
    if (matfree_ == nullptr || !matfree_->holds(net.layers, pts)) {
      matfree_.reset();  // the old rows' device memory first
      matfree_ = std::make_unique<MatfreeRows<Real>>(c_, net.layers, pts, op);
    }
    MatfreeRows<Real>& m = *matfree_;
    const size_t n = static_cast<size_t>(pts.size()), p = static_cast<size_t>(m.net.P);
    const auto need = [&](size_t got, size_t want, const char* what) {
      if (got != want)
        throw std::invalid_argument(std::string("CUDA backend ") + op + ": " + what + " has " + std::to_string(got) +
                                    " numbers, not " + std::to_string(want));
    };
    need(net.theta.size(), p, "theta");
    need(rows, n, transposed ? "y" : "out");
    need(params, p, transposed ? "out" : "u");
    m.theta.upload(cast_vector<Real>(net.theta));
    return m;
  }

  // n zeroed entries on the stream.
  DeviceBuffer<Real> zeros(size_t n) const {
    DeviceBuffer<Real> z(n, c_.order());
    if (n > 0) PINNTK_CUDA_CHECK(cudaMemsetAsync(z.data(), 0, n * sizeof(Real), c_.stream()));
    return z;
  }

  // The descending spectrum of a form of n rows whose nonzero eigenvalues are those of the p x p device Gram G
  // (destroyed): G's p eigenvalues and n - p zeros, sorted (the smallest computed one may be rounding noise below
  // zero).
  std::vector<double> padded_spectrum(Real* G, int p, int n) const {
    const std::vector<double> e = device_eigenvalues(c_, G, p);
    std::vector<double> out(n, 0.0);
    std::copy(e.begin(), e.end(), out.begin());
    std::sort(out.begin(), out.end(), std::greater<double>());
    return out;
  }

  // A UsageError naming the sizes when the device cannot hold ntk_chunked's buffers: the rows (row_numbers numbers
  // each, with weights and residuals) and theta throughout; `grams` P x P Grams with a chunk of `piece` rows of J (and
  // a row Gram of `whole` rows) during the pass; then `finish` P x P matrices for the spectra (besides cuSOLVER's
  // workspace).
  void require_chunked_memory(int n, int p, double row_numbers, int piece, int whole, int grams, int finish) const {
    const double pp = static_cast<double>(p) * p, real = sizeof(Real);
    const double base = static_cast<double>(n) * row_numbers + p;
    const double pass = grams * pp + static_cast<double>(piece) * p + static_cast<double>(whole) * whole;
    const double need = real * (base + std::max(pass, finish * pp)), have = available_device_bytes(c_);
    if (need <= have) return;
    const auto mib = [](double bytes) {
      return std::to_string(static_cast<long long>(bytes / 1048576.0) + 1) + " MiB";
    };
    throw UsageError("the chunked NTK on the GPU needs about " + mib(need) + " of device memory (" +
                     std::to_string(std::max(grams, finish)) + " P x P Grams of " + mib(real * pp) +
                     " each at P = " + std::to_string(p) + ", a chunk of " + std::to_string(piece) +
                     " Jacobian rows of " + mib(real * piece * p) + ", the " + std::to_string(n) + " rows), " +
                     mib(have) + " are free: use fewer --chunk-rows or a smaller network");
  }

  // Shared with the sessions, which may outlive the backend (a session made from a temporary backend).
  std::shared_ptr<const CudaContext> ctx_;
  const CudaContext& c_;
  std::unique_ptr<MatfreeRows<Real>> matfree_;  // declared after the context: released before it
};

}  // namespace

void set_multi_step_graphs(bool on) { g_multi_step_graphs.store(on, std::memory_order_relaxed); }
void set_layerwise_products(LayerwiseProducts mode, int chunk_rows) {
  g_layerwise.store(mode, std::memory_order_relaxed);
  g_layerwise_chunk.store(std::max(0, chunk_rows), std::memory_order_relaxed);
}

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
