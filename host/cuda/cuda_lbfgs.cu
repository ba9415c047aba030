// The batched L-BFGS's vector operations on the device (host/cuda/cuda_lbfgs.hpp). Layout, all in Real: the five
// LbfgsVector one after the other, each B x P (member b's row at b P), and the history S, Y, each B x m x P (member
// b's ring position j at (b m + j) P). What each operation runs, on the context's stream:
//   dot, max_abs: one CUB segmented reduction over the B members (a transform iterator forms each term in double),
//     one download of B numbers;
//   axpy, scale, copy: one Thrust loop over the B P entries, reading the per-member coefficients and the mask from
//     small device arrays uploaded by the call; no download;
//   two_loop: the ring's coefficients uploaded once, then the whole recursion in one launch, one block per member
//     (two_loop_kernel: each pair's dot product a fixed-order block reduction, the member's d updated in place between
//     them); or, with set_fused_two_loop(false), per pair a segmented reduction and a Thrust loop that forms alpha (or
//     beta) from the reduction's result on the device: 4 max(count) + 3 launches. No host round trip either way;
//   store_pair: a Thrust loop writing s and y, one segmented reduction of (s . y, y . y), one download of 2 B numbers;
//   evaluate: the batch's loss-gradient partials and their reduction, every masked member in one launch each, the
//     gradient into g_trial and the losses into a device array, then a segmented max |g|: one download of 2 B.
// A masked-out member's reductions are computed with the others (their entries unspecified, returned as NaN) but its
// vectors are never written. Reductions sum in double whatever Real is; element updates are in Real.
#include <cuda_runtime.h>                         // cudaMemcpyAsync
#include <thrust/for_each.h>                      // thrust::for_each_n
#include <thrust/iterator/counting_iterator.h>    // thrust::counting_iterator
#include <thrust/iterator/transform_iterator.h>   // thrust::make_transform_iterator
#include <thrust/system/cuda/execution_policy.h>  // thrust::cuda::par_nosync

#include <algorithm>                               // std::max, std::copy
#include <cmath>                                   // std::isfinite
#include <cub/device/device_segmented_reduce.cuh>  // cub::DeviceSegmentedReduce
#include <limits>                                  // std::numeric_limits
#include <memory>                                  // std::unique_ptr, std::make_unique, std::shared_ptr
#include <stdexcept>                               // std::invalid_argument, std::length_error, std::logic_error
#include <string>                                  // std::string, std::to_string
#include <utility>                                 // std::move
#include <vector>                                  // std::vector

#include "cuda/check.cuh"                // PINNTK_CUDA_CHECK, PINNTK_LAUNCH_CHECK
#include "cuda/device_buffer.cuh"        // DeviceBuffer
#include "cuda/loss_gradient.hpp"        // GradientWorkspace, Members
#include "cuda/nvtx.cuh"                 // NvtxRange
#include "cuda/two_loop.cuh"             // two_loop_kernel, TwoLoopArgs, kTwoLoopThreads
#include "host/cuda/backend_common.cuh"  // CudaContext, enqueue_loss_gradient, available_device_bytes
#include "host/cuda/cuda_lbfgs.hpp"

namespace pinntk::cudaimpl {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- the terms of the reductions and the element updates (Thrust functors) ----

// Entry k of a B x P block: member b = k / P, parameter p = k - b P.
struct Entry {
  size_t k, b, p;
};
__host__ __device__ inline Entry entry(size_t k, size_t P) {
  const size_t b = k / P;
  return {k, b, k - b * P};
}

// Entry (b, p) of a B x P block.
template <class Real>
struct Rows {
  const Real* v;
  __host__ __device__ Real operator()(const Entry& e) const { return v[e.k]; }
};

// Entry (b, p) of member b's pair `back` positions before ring position at[b] in a B x m x P history (back = 0: at[b]
// itself; with at = newest, back = i is the two-loop's i-th pair from the newest).
template <class Real>
struct RingRows {
  const Real* v;
  const int* at;
  int back, m;
  size_t P;
  __host__ __device__ int position(size_t b) const { return (at[b] - back + m) % m; }
  __host__ __device__ Real operator()(const Entry& e) const {
    return v[(e.b * m + static_cast<size_t>(position(e.b))) * P + e.p];
  }
};

// a_bp v_bp in double, over the B P entries.
template <class A, class V>
struct Product {
  A a;
  V v;
  size_t P;
  __host__ __device__ double operator()(long long k) const {
    const Entry e = entry(static_cast<size_t>(k), P);
    return static_cast<double>(a(e)) * static_cast<double>(v(e));
  }
};

// |a_k| in double.
template <class Real>
struct Magnitude {
  const Real* v;
  __host__ __device__ double operator()(long long k) const { return fabs(static_cast<double>(v[k])); }
};

// s . y and y . y of a stored pair, summed in one reduction.
struct PairSums {
  double sy, yy;
};
template <class Real>
struct PairTerms {
  RingRows<Real> s, y;
  size_t P;
  __host__ __device__ PairSums operator()(long long k) const {
    const Entry e = entry(static_cast<size_t>(k), P);
    const double sv = static_cast<double>(s(e)), yv = static_cast<double>(y(e));
    return {sv * yv, yv * yv};
  }
};

struct Plus {
  __host__ __device__ double operator()(double a, double b) const { return a + b; }
  __host__ __device__ PairSums operator()(const PairSums& a, const PairSums& b) const {
    return {a.sy + b.sy, a.yy + b.yy};
  }
};

// The larger of two magnitudes, NaN when either is NaN (fmax would drop it): max_abs of a vector with a NaN is NaN.
struct MaxOrNaN {
  __host__ __device__ double operator()(double a, double b) const {
    if (a != a) return a;
    if (b != b) return b;
    return a > b ? a : b;
  }
};

// Member b's segment of the B P terms starts at b P.
struct SegmentStart {
  long long P;
  __host__ __device__ long long operator()(long long b) const { return b * P; }
};

// The element updates of the masked members, entry by entry: y_b += alpha_b x_b, y_b *= alpha_b, y_b = x_b, y_b = -y_b.
enum class Update { Axpy, Scale, Copy, Negate };
template <class Real, Update U>
struct Masked {
  Real* y;
  const Real* x;        // Axpy, Copy
  const double* alpha;  // Axpy, Scale
  const int* mask;
  size_t P;
  __host__ __device__ void operator()(size_t k) const {
    const size_t b = k / P;
    if (mask[b] == 0) return;
    if constexpr (U == Update::Axpy) {
      y[k] += static_cast<Real>(alpha[b]) * x[k];
    } else if constexpr (U == Update::Scale) {
      y[k] *= static_cast<Real>(alpha[b]);
    } else if constexpr (U == Update::Copy) {
      y[k] = x[k];
    } else {
      y[k] = -y[k];
    }
  }
};

// The two-loop recursion's first loop at the pair y.back = i from the newest (ring position j), for every member with
// more than i pairs: alpha_bi = rho_bj (s_j . d) from the reduction's result in dots, kept in alpha[b m + i] (by the
// entry p = 0), and d -= alpha_bi y_j.
template <class Real>
struct NewestToOldest {
  Real* d;
  RingRows<Real> y;
  const double *dots, *rho;
  double* alpha;
  const int* count;
  __host__ __device__ void operator()(size_t k) const {
    const Entry e = entry(k, y.P);
    if (y.back >= count[e.b]) return;
    const size_t slot = e.b * y.m;
    const double a = rho[slot + y.position(e.b)] * dots[e.b];
    if (e.p == 0) alpha[slot + y.back] = a;
    d[k] -= static_cast<Real>(a) * y(e);
  }
};

// Its second loop at the pair s.back = i: beta = rho_bj (y_j . d) from dots, d += (alpha_bi - beta) s_j.
template <class Real>
struct OldestToNewest {
  Real* d;
  RingRows<Real> s;
  const double *dots, *rho, *alpha;
  const int* count;
  __host__ __device__ void operator()(size_t k) const {
    const Entry e = entry(k, s.P);
    if (s.back >= count[e.b]) return;
    const size_t slot = e.b * s.m;
    const double c = alpha[slot + s.back] - rho[slot + s.position(e.b)] * dots[e.b];
    d[k] += static_cast<Real>(c) * s(e);
  }
};

// ---- the two-loop recursion in one launch: cuda/two_loop.cuh ----

bool g_fused_two_loop = true;

// s = x_trial - x and y = g_trial - g into ring position at[b] of every masked member.
template <class Real>
struct StorePair {
  Real *s, *y;
  const Real *x, *xt, *g, *gt;
  const int *at, *mask;
  int m;
  size_t P;
  __host__ __device__ void operator()(size_t k) const {
    const Entry e = entry(k, P);
    if (mask[e.b] == 0) return;
    const size_t r = (e.b * m + static_cast<size_t>(at[e.b])) * P + e.p;
    s[r] = xt[k] - x[k];
    y[r] = gt[k] - g[k];
  }
};

// ---- the operations ----

template <class Real>
class CudaLbfgsOps final : public LbfgsOps {
 public:
  CudaLbfgsOps(std::shared_ptr<const CudaContext> ctx, int members, int params, int history,
               const LbfgsEvaluation<Real>& eval)
      : ctx_(std::move(ctx)),
        c_(*ctx_),
        B_(members),
        P_(params),
        m_(history),
        bp_(checked_entries(c_, members, params, history, eval)),
        eval_(eval),
        vectors_(5 * bp_, c_.order()),
        s_(bp_ * m_, c_.order()),
        y_(bp_ * m_, c_.order()),
        mask_host_(B_, -1),
        mask_(B_, c_.order()),
        coef_host_(B_),
        coef_(B_, c_.order()),
        pos_host_(B_),
        pos_(B_, c_.order()),
        ring_ints_host_(2 * static_cast<size_t>(B_)),
        ring_ints_(ring_ints_host_.size(), c_.order()),
        ring_reals_host_(static_cast<size_t>(B_) * (1 + m_)),
        ring_reals_(ring_reals_host_.size(), c_.order()),
        alpha_(static_cast<size_t>(B_) * m_, c_.order()),
        out_(2 * static_cast<size_t>(B_), c_.order()),
        pairs_(B_, c_.order()) {
    // Zeros, as HostLbfgsOps starts: a reduction over a ring position not yet written reads defined numbers.
    for (const DeviceBuffer<Real>* d : {&vectors_, &s_, &y_})
      PINNTK_CUDA_CHECK(cudaMemsetAsync(d->data(), 0, d->size() * sizeof(Real), c_.stream()));
    c_.sync();
  }

  int members() const override { return B_; }
  int params() const override { return P_; }
  int history() const override { return m_; }

  void load(int b, span<const double> theta) override {
    check_member(b, theta.size(), "load");
    const std::vector<Real> h(theta.begin(), theta.end());
    PINNTK_CUDA_CHECK(
        cudaMemcpyAsync(row(LbfgsVector::X, b), h.data(), h.size() * sizeof(Real), cudaMemcpyHostToDevice, stream()));
    c_.sync();
  }

  void store(int b, span<double> theta) const override {
    check_member(b, theta.size(), "store");
    const std::vector<Real> h = fetch(row(LbfgsVector::X, b), static_cast<size_t>(P_));
    std::copy(h.begin(), h.end(), theta.begin());
  }

  std::vector<double> dot(LbfgsVector a, LbfgsVector v, const LbfgsMask& active) override {
    check_mask(active);
    if (!any(active)) return std::vector<double>(B_, kNaN);
    segmented_reduce(Product<Rows<Real>, Rows<Real>>{{vec(a)}, {vec(v)}, p()}, Plus{}, 0.0, out_.data());
    return masked(fetch(out_.data(), B_), active);
  }

  void axpy(LbfgsVector y, const std::vector<double>& alpha, LbfgsVector x, const LbfgsMask& active) override {
    check_coefficients(alpha, "axpy");
    const int* mask = device_mask(active);
    if (!any(active)) return;
    upload_async(alpha, coef_host_, coef_);
    update<Update::Axpy>(vec(y), vec(x), coef_.data(), mask);
  }

  void scale(LbfgsVector y, const std::vector<double>& alpha, const LbfgsMask& active) override {
    check_coefficients(alpha, "scale");
    const int* mask = device_mask(active);
    if (!any(active)) return;
    upload_async(alpha, coef_host_, coef_);
    update<Update::Scale>(vec(y), nullptr, coef_.data(), mask);
  }

  void copy(LbfgsVector dst, LbfgsVector src, const LbfgsMask& active) override {
    const int* mask = device_mask(active);
    if (!any(active) || dst == src) return;
    update<Update::Copy>(vec(dst), vec(src), nullptr, mask);
  }

  std::vector<double> max_abs(LbfgsVector a, const LbfgsMask& active) override {
    check_mask(active);
    if (!any(active)) return std::vector<double>(B_, kNaN);
    segmented_reduce(Magnitude<Real>{vec(a)}, MaxOrNaN{}, 0.0, out_.data());
    return masked(fetch(out_.data(), B_), active);
  }

  void two_loop(const LbfgsRing& ring, const LbfgsMask& active) override {
    NvtxRange r("lbfgs two-loop");
    check_mask(active);
    const size_t B = static_cast<size_t>(B_), m = static_cast<size_t>(m_);
    if (ring.newest.size() != B || ring.count.size() != B || ring.gamma.size() != B || ring.rho.size() != B * m)
      throw std::invalid_argument("CudaLbfgsOps::two_loop: the ring needs B newest, count, gamma and B x m rho");
    // newest and count on the device; a masked-out member gets count 0 (no pair is read for it) and position 0.
    int deepest = 0;
    for (size_t b = 0; b < B; ++b) {
      int newest = 0, count = 0;
      if (active[b]) {
        newest = ring.newest[b];
        count = ring.count[b];
        if (newest < 0 || newest >= m_ || count < 0 || count > m_)
          throw std::invalid_argument("CudaLbfgsOps::two_loop: a ring position or count outside the history");
      }
      ring_ints_host_[b] = newest;
      ring_ints_host_[B + b] = count;
      deepest = std::max(deepest, count);
    }
    const int* mask = device_mask(active);
    if (!any(active)) return;
    std::copy(ring.gamma.begin(), ring.gamma.end(), ring_reals_host_.begin());
    std::copy(ring.rho.begin(), ring.rho.end(), ring_reals_host_.begin() + B);
    upload_async(ring_ints_host_, ring_ints_);
    upload_async(ring_reals_host_, ring_reals_);
    const int *newest = ring_ints_.data(), *count = newest + B;
    const double *gamma = ring_reals_.data(), *rho = gamma + B;
    Real* d = vec(LbfgsVector::D);
    double* dots = out_.data();

    if (g_fused_two_loop) {
      const TwoLoopArgs<Real> args{d,   vec(LbfgsVector::G), s_.data(), y_.data(), newest, count, mask, gamma,
                                   rho, alpha_.data(),       m_,        p()};
      two_loop_kernel<Real, kTwoLoopThreads><<<static_cast<unsigned>(B_), kTwoLoopThreads, 0, stream()>>>(args);
      PINNTK_LAUNCH_CHECK();
      return;
    }
    update<Update::Copy>(d, vec(LbfgsVector::G), nullptr, mask);
    for (int i = 0; i < deepest; ++i) {  // newest to oldest
      segmented_reduce(Product<RingRows<Real>, Rows<Real>>{ring_rows(s_, newest, i), {d}, p()}, Plus{}, 0.0, dots);
      for_each_entry(NewestToOldest<Real>{d, ring_rows(y_, newest, i), dots, rho, alpha_.data(), count});
    }
    update<Update::Scale>(d, nullptr, gamma, mask);
    for (int i = deepest - 1; i >= 0; --i) {  // oldest to newest
      segmented_reduce(Product<RingRows<Real>, Rows<Real>>{ring_rows(y_, newest, i), {d}, p()}, Plus{}, 0.0, dots);
      for_each_entry(OldestToNewest<Real>{d, ring_rows(s_, newest, i), dots, rho, alpha_.data(), count});
    }
    update<Update::Negate>(d, nullptr, nullptr, mask);
  }

  LbfgsPairProducts store_pair(const std::vector<int>& position, const LbfgsMask& active) override {
    check_mask(active);
    if (position.size() != static_cast<size_t>(B_))
      throw std::invalid_argument("CudaLbfgsOps::store_pair: position needs B entries");
    for (int b = 0; b < B_; ++b) {
      if (active[b] && (position[b] < 0 || position[b] >= m_))
        throw std::invalid_argument("CudaLbfgsOps::store_pair: a ring position outside the history");
      pos_host_[b] = active[b] ? position[b] : 0;
    }
    LbfgsPairProducts out{std::vector<double>(B_, kNaN), std::vector<double>(B_, kNaN)};
    const int* mask = device_mask(active);
    if (!any(active)) return out;
    upload_async(pos_host_, pos_);
    for_each_entry(StorePair<Real>{s_.data(), y_.data(), vec(LbfgsVector::X), vec(LbfgsVector::XTrial),
                                   vec(LbfgsVector::G), vec(LbfgsVector::GTrial), pos_.data(), mask, m_, p()});
    segmented_reduce(PairTerms<Real>{ring_rows(s_, pos_.data(), 0), ring_rows(y_, pos_.data(), 0), p()}, Plus{},
                     PairSums{0.0, 0.0}, pairs_.data());
    const std::vector<PairSums> h = fetch(pairs_.data(), B_);
    for (int b = 0; b < B_; ++b) {
      if (!active[b]) continue;
      out.sy[b] = h[b].sy;
      out.yy[b] = h[b].yy;
    }
    return out;
  }

  std::vector<double> evaluate(const LbfgsMask& active) override {
    NvtxRange r("lbfgs evaluate");
    check_mask(active);
    if (eval_.ws == nullptr)
      throw std::logic_error("CudaLbfgsOps::evaluate: these operations were made without a loss and gradient");
    std::vector<double> out(B_, kNaN);
    const int* mask = device_mask(active);
    if (!any(active)) return out;
    const Members mb{0, B_, mask, eval_.shared_rows};
    enqueue_loss_gradient<Real>(vec(LbfgsVector::XTrial), eval_.rows, *eval_.ws, nullptr, vec(LbfgsVector::GTrial),
                                out_.data(), stream(), mb);
    segmented_reduce(Magnitude<Real>{vec(LbfgsVector::GTrial)}, MaxOrNaN{}, 0.0, out_.data() + B_);
    const std::vector<double> h = fetch(out_.data(), 2 * static_cast<size_t>(B_));
    for (int b = 0; b < B_; ++b)
      if (active[b]) out[b] = std::isfinite(h[B_ + b]) ? h[b] : kNaN;  // a non-finite gradient entry: NaN
    return out;
  }

 private:
  // The checks of the constructor, before any allocation; returns B P.
  static size_t checked_entries(const CudaContext& c, int members, int params, int history,
                                const LbfgsEvaluation<Real>& eval) {
    if (members < 1) throw std::invalid_argument("CUDA L-BFGS: the batch needs at least one member");
    if (params < 1) throw std::invalid_argument("CUDA L-BFGS: a member needs at least one parameter");
    if (history < 1 || history > kMaxHistory)
      throw std::invalid_argument("CUDA L-BFGS: the history must lie in [1, " + std::to_string(kMaxHistory) + "]");
    if (eval.ws != nullptr && (params != eval.ws->plan().net.P || members > eval.ws->members()))
      throw std::invalid_argument("CUDA L-BFGS: " + std::to_string(members) + " members of " + std::to_string(params) +
                                  " parameters on a batch of " + std::to_string(eval.ws->members()) + " of " +
                                  std::to_string(eval.ws->plan().net.P));
    const double available = available_device_bytes(c);
    const double need = (5.0 + 2.0 * history) * members * static_cast<double>(params) * sizeof(Real);
    if (need > available)
      throw std::length_error("CUDA L-BFGS: " + std::to_string(members) + " members of " + std::to_string(params) +
                              " parameters with a history of " + std::to_string(history) + " need " +
                              std::to_string(static_cast<long long>(need / 1048576.0) + 1) +
                              " MiB of device memory ((5 + 2 m) B P numbers), " +
                              std::to_string(static_cast<long long>(available / 1048576.0)) + " MiB are free");
    return static_cast<size_t>(members) * static_cast<size_t>(params);
  }

  cudaStream_t stream() const { return c_.stream(); }
  size_t p() const { return static_cast<size_t>(P_); }
  Real* vec(LbfgsVector v) const { return vectors_.data() + static_cast<size_t>(v) * bp_; }
  Real* row(LbfgsVector v, int b) const { return vec(v) + static_cast<size_t>(b) * p(); }
  RingRows<Real> ring_rows(const DeviceBuffer<Real>& h, const int* at, int back) const {
    return {h.data(), at, back, m_, p()};
  }

  void check_member(int b, size_t n, const char* op) const {
    if (b < 0 || b >= B_ || n != p())
      throw std::invalid_argument(std::string("CudaLbfgsOps::") + op + ": member " + std::to_string(b) + " with " +
                                  std::to_string(n) + " parameters (B = " + std::to_string(B_) +
                                  ", P = " + std::to_string(P_) + ")");
  }
  void check_mask(const LbfgsMask& active) const {
    if (active.size() != static_cast<size_t>(B_))
      throw std::invalid_argument("CudaLbfgsOps: a mask of " + std::to_string(active.size()) + " entries for " +
                                  std::to_string(B_) + " members");
  }
  void check_coefficients(const std::vector<double>& alpha, const char* op) const {
    if (alpha.size() != static_cast<size_t>(B_))
      throw std::invalid_argument(std::string("CudaLbfgsOps::") + op + ": alpha needs B entries");
  }
  static bool any(const LbfgsMask& active) {
    return std::any_of(active.begin(), active.end(), [](char c) { return c != 0; });
  }
  std::vector<double> masked(std::vector<double> v, const LbfgsMask& active) const {
    for (int b = 0; b < B_; ++b)
      if (!active[b]) v[b] = kNaN;
    return v;
  }

  // The mask as B ints on the device, uploaded only when it differs from the last one (the driver passes one mask to
  // several operations in a row).
  const int* device_mask(const LbfgsMask& active) {
    check_mask(active);
    bool same = true;
    for (int b = 0; b < B_; ++b) same = same && mask_host_[b] == (active[b] ? 1 : 0);
    if (!same) {
      for (int b = 0; b < B_; ++b) mask_host_[b] = active[b] ? 1 : 0;
      upload_async(mask_host_, mask_);
    }
    return mask_.data();
  }

  // host into d, ordered on the stream without waiting: host is a member kept until the next call, and a copy from
  // pageable memory is staged when it is issued (as BatchState::set_lr's).
  template <class T>
  void upload_async(const std::vector<T>& host, DeviceBuffer<T>& d) {
    PINNTK_CUDA_CHECK(
        cudaMemcpyAsync(d.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream()));
  }
  template <class T>
  void upload_async(const std::vector<T>& values, std::vector<T>& host, DeviceBuffer<T>& d) {
    host = values;
    upload_async(host, d);
  }

  // n values at d, after the stream's work.
  template <class T>
  std::vector<T> fetch(const T* d, size_t n) const {
    std::vector<T> h(n);
    PINNTK_CUDA_CHECK(cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, stream()));
    c_.sync();
    return h;
  }

  // f(k) for every entry k of a B x P block: one Thrust loop on the stream, not waited for.
  template <class F>
  void for_each_entry(const F& f) {
    thrust::for_each_n(thrust::cuda::par_nosync.on(stream()), thrust::counting_iterator<size_t>(0), bp_, f);
    PINNTK_LAUNCH_CHECK();
  }

  // y_b = U(y_b, x_b, alpha_b) for the masked members: one Thrust loop.
  template <Update U>
  void update(Real* y, const Real* x, const double* alpha, const int* mask) {
    for_each_entry(Masked<Real, U>{y, x, alpha, mask, p()});
  }

  // out[b] = op over member b's terms term(b P) .. term(b P + P - 1), from init: CUB's segmented reduction, its
  // temporary storage sized by its query and grown when a reduction needs more.
  template <class Term, class Op, class T>
  void segmented_reduce(const Term& term, Op op, T init, T* out) {
    const auto in = thrust::make_transform_iterator(thrust::counting_iterator<long long>(0), term);
    const auto begin = thrust::make_transform_iterator(thrust::counting_iterator<long long>(0),
                                                       SegmentStart{static_cast<long long>(P_)});
    size_t bytes = 0;
    PINNTK_CUDA_CHECK(
        cub::DeviceSegmentedReduce::Reduce(nullptr, bytes, in, out, B_, begin, begin + 1, op, init, stream()));
    if (temp_.size() < std::max<size_t>(bytes, 1))
      temp_ = DeviceBuffer<unsigned char>(std::max<size_t>(bytes, 1), c_.order());
    PINNTK_CUDA_CHECK(
        cub::DeviceSegmentedReduce::Reduce(temp_.data(), bytes, in, out, B_, begin, begin + 1, op, init, stream()));
    PINNTK_LAUNCH_CHECK();
  }

  std::shared_ptr<const CudaContext> ctx_;  // declared first: outlives every buffer below
  const CudaContext& c_;
  int B_, P_, m_;
  size_t bp_;  // B P
  LbfgsEvaluation<Real> eval_;
  DeviceBuffer<Real> vectors_;  // the five LbfgsVector, each B x P
  DeviceBuffer<Real> s_, y_;    // B x m x P, member-major
  // The per-call coefficients: the mask, axpy's and scale's alpha, store_pair's positions, the ring's newest and
  // count (B each) and gamma and rho (B, then B x m), each with the host copy it was uploaded from.
  std::vector<int> mask_host_;
  DeviceBuffer<int> mask_;
  std::vector<double> coef_host_;
  DeviceBuffer<double> coef_;
  std::vector<int> pos_host_;
  DeviceBuffer<int> pos_;
  std::vector<int> ring_ints_host_;
  DeviceBuffer<int> ring_ints_;
  std::vector<double> ring_reals_host_;
  DeviceBuffer<double> ring_reals_;
  DeviceBuffer<double> alpha_;        // the two-loop's alpha, B x m
  DeviceBuffer<double> out_;          // the reductions' results and the losses, 2 B
  DeviceBuffer<PairSums> pairs_;      // store_pair's products, B
  DeviceBuffer<unsigned char> temp_;  // CUB's temporary storage
};

}  // namespace

void set_fused_two_loop(bool on) { g_fused_two_loop = on; }

template <class Real>
std::unique_ptr<LbfgsOps> make_cuda_lbfgs_ops(std::shared_ptr<const CudaContext> ctx, int members, int params,
                                              int history, const LbfgsEvaluation<Real>& eval) {
  return std::make_unique<CudaLbfgsOps<Real>>(std::move(ctx), members, params, history, eval);
}

template std::unique_ptr<LbfgsOps> make_cuda_lbfgs_ops<double>(std::shared_ptr<const CudaContext>, int, int, int,
                                                               const LbfgsEvaluation<double>&);
template std::unique_ptr<LbfgsOps> make_cuda_lbfgs_ops<float>(std::shared_ptr<const CudaContext>, int, int, int,
                                                              const LbfgsEvaluation<float>&);

}  // namespace pinntk::cudaimpl
