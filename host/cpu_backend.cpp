// The CPU backend: the batched passes of host/cpu_batched.hpp (layers as matrix products over chunks of points) where
// the network suits them, else OpenMP over points around the shared per-point math; OpenBLAS syrk, LAPACKE syevd.
#include <cblas.h>    // cblas_dsyrk
#include <lapacke.h>  // LAPACKE_dsyevd
#include <omp.h>      // omp_set_num_threads, omp_get_max_threads, omp_get_thread_num

#include <algorithm>   // std::sort, std::min, std::fill
#include <functional>  // std::greater
#include <memory>      // std::unique_ptr, std::make_unique
#include <stdexcept>   // std::runtime_error
#include <thread>      // std::thread::hardware_concurrency
#include <utility>     // std::move
#include <vector>      // std::vector

#include "common/errors.hpp"       // NumericalError
#include "common/mlp_math.hpp"     // mlp_forward_point, mlp_reverse_point
#include "common/mlp_math_nd.hpp"  // mlp_forward_point_nd, mlp_reverse_point_nd
#include "common/problems_nd.hpp"  // kMaxDim
#include "common/residual.hpp"     // row_residual, row_residual_nd
#include "host/backend.hpp"        // Backend
#include "host/cpu_batched.hpp"    // batched_loss_gradient, batched_jacobian_times, ...
#include "host/member_batch.hpp"   // MemberBatchTrainSession

namespace pinntk {
namespace {

void fill_symmetric_lower(double* G, int n) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) G[static_cast<size_t>(i) * n + j] = G[static_cast<size_t>(j) * n + i];
}

// The n coordinate axes as Taylor directions (m x n, row-major identity).
std::vector<double> axis_directions(int n) {
  std::vector<double> v(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i) * n + i] = 1.0;
  return v;
}

// Whether a loop over rows independent of each other is worth OpenMP threads: below about 2^18 row-parameter
// products (a few milliseconds on one core) starting and waking the threads costs more than it saves. The Fig. 2
// network's NTK (258 rows, 151 parameters) took 2.7 ms on one thread against 3.9 ms on two (median of 9 fresh
// `pinntk ntk` runs, 2 cores). The rows' results do not depend on the thread count either way.
bool rows_worth_threads(size_t rows, size_t params) { return static_cast<double>(rows) * params >= 262144.0; }

// OpenBLAS on one thread for the scope when the call's work (flops) is small: waking its threads for a product or
// an eigensolve of a few million flops costs more than they save (the Fig. 2 NTK, a 258 x 151 Jacobian: 3.7 ms with
// two threads, 2.8 ms with one, median of 9 fresh `pinntk ntk` runs on 2 cores).
class SmallBlasCall {
 public:
  explicit SmallBlasCall(double flops) {
    if (flops < 33554432.0 && openblas_get_num_threads() > 1) {
      saved_ = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  ~SmallBlasCall() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  SmallBlasCall(const SmallBlasCall&) = delete;
  SmallBlasCall& operator=(const SmallBlasCall&) = delete;

 private:
  int saved_ = 0;
};

// u and its derivatives along the directions at the points x (N x m, m = the network's input width): the rows'
// own directions where `rows` has them, else the axes.
void forward_points_nd(const Mlp& net, span<const double> x, const PointSet* rows, span<double> u, span<double> du,
                       span<double> d2u) {
  const MlpShape s = net.shape();
  const int m = net.layers.front(), n = static_cast<int>(x.size()) / m;
  const std::vector<double> v = axis_directions(m);
#pragma omp parallel if (rows_worth_threads(n, net.n_params()))
  {
    std::vector<double> tape(mlp_tape_size_nd(s, m));
    double out[1 + 2 * kMaxDim];
#pragma omp for schedule(static)
    for (int i = 0; i < n; ++i) {
      const size_t o = static_cast<size_t>(i) * m;
      const double* vi = rows != nullptr ? rows->directions(i, v.data()) : v.data();
      mlp_forward_point_nd(s, net.theta.data(), x.data() + o, m, vi, tape.data(), out);
      u[i] = out[0];
      for (int k = 0; k < m; ++k) {
        du[o + k] = out[1 + k];
        d2u[o + k] = out[1 + m + k];
      }
    }
  }
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) {
    // More threads than cores only oversubscribe them (and the gradient keeps a partial sum per thread).
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    if (cores > 0) threads = std::min(threads, cores);
    if (threads > 0) {
      omp_set_num_threads(threads);
      openblas_set_num_threads(threads);
    }
  }
  std::string name() const override { return "cpu"; }

  void evaluate(const Mlp& net, span<const double> x, span<double> u, span<double> du, span<double> d2u) override {
    const MlpShape s = net.shape();
    const int m = net.layers.front();  // input width: the points' dimension and the number of axis directions
    const int n = static_cast<int>(x.size()) / m;
    if (batched_evaluation_fits(net)) {  // layers as products over chunks of points: 4 to 7 times faster (2 cores)
      PointSet rows;
      rows.dim = m;
      rows.nc = n;
      rows.x.assign(x.begin(), x.end());
      evaluate_rows(net, rows, u, du, d2u);
      return;
    }
    if (m > 1) {
      forward_points_nd(net, x, nullptr, u, du, d2u);
      return;
    }
#pragma omp parallel if (rows_worth_threads(n, net.n_params()))
    {
      std::vector<double> tape(mlp_tape_size(s));
#pragma omp for schedule(static)
      for (int i = 0; i < n; ++i) {
        double out[3];
        mlp_forward_point(s, net.theta.data(), x[i], tape.data(), out);
        u[i] = out[0];
        du[i] = out[1];
        d2u[i] = out[2];
      }
    }
  }

  void residuals_jacobian(const Mlp& net, const PointSet& pts, span<double> r, span<double> J) override {
    if (batched_evaluation_fits(net) && pts.dim == net.layers.front()) {
      // The layers as products over chunks of rows, then each row's outer products: 1.5 to 4.6 times faster than the
      // per-point reverse pass (2 cores, `pinntk-bench --cpu-only --only cpu`, rows `cpu jacobian:`).
      batched_residuals_jacobian(net, pts, r, J, products_ws_);
      return;
    }
    residuals_jacobian_per_point(net, pts, r, J);
  }

  // J^T y and J u without J (DESIGN.md section 8): the batched passes of host/cpu_batched.hpp, the gradient pass
  // seeded with y and the tangent pass along u, in workspace of their own (a training session's stays as it is).
  void jacobian_transpose_times(const Mlp& net, const PointSet& pts, span<const double> y, span<double> out) override {
    batched_jacobian_transpose_times(net, pts, y, out, products_ws_);
  }

  void jacobian_times(const Mlp& net, const PointSet& pts, span<const double> u, span<double> out) override {
    batched_jacobian_times(net, pts, u, out, products_ws_);
  }

  bool residuals_sample_gram(const Mlp& net, const PointSet& pts, span<const double> d, span<double> r,
                             span<double> K) override {
    if (!batched_sample_gram_pays(net, pts)) return false;  // J's Gram is as fast
    batched_sample_gram(net, pts, d, r, K, products_ws_);
    return true;
  }

  double loss_gradient(const Mlp& net, const PointSet& pts, span<double> r, span<double> grad) override {
    return batched_loss_gradient(net, pts, r, grad, ws_);
  }

  double loss(const Mlp& net, const PointSet& pts, span<double> r) override { return batched_loss(net, pts, r, ws_); }

  void gram_rows(span<const double> A, int n, int k, span<double> G) override {
    const SmallBlasCall small(static_cast<double>(n) * n * k);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, k, 1.0, A.data(), k, 0.0, G.data(), n);
    fill_symmetric_lower(G.data(), n);
  }

  void gram_cols(span<const double> A, int n, int k, span<double> G) override {
    const SmallBlasCall small(static_cast<double>(k) * k * n);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, k, n, 1.0, A.data(), k, 0.0, G.data(), k);
    fill_symmetric_lower(G.data(), k);
  }

  void gram_cols_accumulate(span<const double> A, int n, int k, span<double> G) override {
    const SmallBlasCall small(static_cast<double>(k) * k * n);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, k, n, 1.0, A.data(), k, 1.0, G.data(), k);
    fill_symmetric_lower(G.data(), k);
  }

  void symmetric_eigenvalues(span<double> A, int n, span<double> eigenvalues) override {
    const SmallBlasCall small(static_cast<double>(n) * n * n);
    // A symmetric matrix is its own transpose: read column-major it is the same matrix, and LAPACKE makes no
    // transposed n x n copy (as it does for row-major input). 'U' takes the reduction LAPACK_ROW_MAJOR with 'U'
    // took (the same arithmetic on the same numbers), so the eigenvalues are bitwise those of before.
    const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'U', n, A.data(), n, eigenvalues.data());
    if (info > 0)
      throw NumericalError("the symmetric eigensolver (LAPACK dsyevd) did not converge (info " + std::to_string(info) +
                           "): the kernel is too ill-scaled for double precision");
    if (info < 0) throw std::runtime_error("LAPACKE_dsyevd: argument " + std::to_string(-info) + " is invalid");
    std::sort(eigenvalues.begin(), eigenvalues.end(), std::greater<double>());
  }

  // Each member on a CPU backend of its own (its own workspace), up to the thread count of members stepped at once.
  // A member's gradient splits its rows into omp_get_max_threads() shares whatever number of threads runs them, so
  // a member's result is the one a run of its own with this backend's thread count gives, bit for bit.
  std::unique_ptr<BatchTrainSession> batch_train_session(const std::vector<Mlp>& nets, const std::vector<PointSet>& pts,
                                                         const AdamConfig& cfg) override {
    check_batch(nets, pts);
    std::vector<std::unique_ptr<Backend>> own;
    std::vector<Backend*> of;
    for (size_t b = 0; b < nets.size(); ++b) {
      own.push_back(std::make_unique<CpuBackend>(0));  // 0: the thread counts stay as they are
      of.push_back(own.back().get());
    }
    return std::make_unique<MemberBatchTrainSession>(of, std::move(own), nets, pts, cfg, omp_get_max_threads());
  }

 private:
  BatchedWorkspace ws_;
  BatchedWorkspace products_ws_;
};

}  // namespace

void evaluate_rows(const Mlp& net, const PointSet& pts, span<double> u, span<double> du, span<double> d2u) {
  if (net.layers.front() != pts.dim)
    throw std::invalid_argument("evaluate_rows: the network's input width differs from the rows' dimension");
  if (batched_evaluation_fits(net)) {
    BatchedWorkspace ws;  // its own: evaluate may run beside a training on a backend (the Python module)
    batched_evaluate(net, pts, u, du, d2u, ws);
    return;
  }
  evaluate_rows_per_point(net, pts, u, du, d2u);
}

void evaluate_rows_per_point(const Mlp& net, const PointSet& pts, span<double> u, span<double> du, span<double> d2u) {
  if (net.layers.front() != pts.dim)
    throw std::invalid_argument("evaluate_rows_per_point: the network's input width differs from the rows' dimension");
  forward_points_nd(net, pts.x, &pts, u, du, d2u);
}

void residuals_jacobian_per_point(const Mlp& net, const PointSet& pts, span<double> r, span<double> J) {
  const MlpShape s = net.shape();
  const int n = pts.size();
  const size_t P = net.n_params();
  if (pts.dim > 1) {
    const int m = pts.dim;
    const std::vector<double> v = axis_directions(m);
#pragma omp parallel if (rows_worth_threads(n, P))
    {
      std::vector<double> tape(mlp_tape_size_nd(s, m)), adj(mlp_adjoint_size_nd(s, m));
      double out[1 + 2 * kMaxDim];
#pragma omp for schedule(static)
      for (int k = 0; k < n; ++k) {
        const size_t o = static_cast<size_t>(k) * m;
        const double* vk = pts.directions(k, v.data());
        mlp_forward_point_nd(s, net.theta.data(), pts.x.data() + o, m, vk, tape.data(), out);
        r[k] = row_residual_nd(m, pts.alpha.data() + o, pts.beta.data() + o, pts.gamma[k], pts.f[k], out[0], out + 1,
                               out + 1 + m);
        mlp_reverse_point_nd(s, net.theta.data(), pts.x.data() + o, m, vk, tape.data(), pts.gamma[k],
                             pts.beta.data() + o, pts.alpha.data() + o, J.data() + k * P, false, adj.data());
      }
    }
    return;
  }
#pragma omp parallel if (rows_worth_threads(n, P))
  {
    std::vector<double> tape(mlp_tape_size(s)), adj(mlp_adjoint_size(s));
#pragma omp for schedule(static)
    for (int k = 0; k < n; ++k) {
      double out[3];
      mlp_forward_point(s, net.theta.data(), pts.x[k], tape.data(), out);
      r[k] = row_residual(pts.alpha[k], pts.beta[k], pts.gamma[k], pts.f[k], out[0], out[1], out[2]);
      mlp_reverse_point(s, net.theta.data(), pts.x[k], tape.data(), pts.alpha[k], pts.beta[k], pts.gamma[k],
                        J.data() + k * P, false, adj.data());
    }
  }
}

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace pinntk
