#include "host/member_batch.hpp"

#include <cblas.h>  // openblas_get_num_threads, openblas_set_num_threads
#include <omp.h>    // omp_get_max_threads

#include <algorithm>  // std::min
#include <exception>  // std::exception_ptr, std::current_exception, std::rethrow_exception
#include <limits>     // std::numeric_limits
#include <stdexcept>  // std::invalid_argument, std::out_of_range
#include <string>     // std::to_string
#include <utility>    // std::move

#include "host/optim/lbfgs_batched.hpp"  // LbfgsOps

namespace pinntk {

MemberBatchTrainSession::MemberBatchTrainSession(std::vector<Backend*> backends,
                                                 std::vector<std::unique_ptr<Backend>> owned,
                                                 const std::vector<Mlp>& nets, const std::vector<PointSet>& pts,
                                                 const AdamConfig& cfg, int workers)
    : owned_(std::move(owned)), pts_(pts), active_(nets.size(), true), workers_(workers) {
  check_batch(nets, pts);
  if (backends.size() != nets.size())
    throw std::invalid_argument("MemberBatchTrainSession: " + std::to_string(backends.size()) + " backends for " +
                                std::to_string(nets.size()) + " members");
  for (size_t b = 0; b < nets.size(); ++b) sessions_.push_back(backends[b]->train_session(nets[b], pts_[b], cfg));
}

size_t MemberBatchTrainSession::index(int b) const {
  if (b < 0 || b >= size())
    throw std::out_of_range("batch member " + std::to_string(b) + " of " + std::to_string(size()));
  return static_cast<size_t>(b);
}

std::vector<double> MemberBatchTrainSession::run(long steps, double lr) {
  std::vector<double> loss(sessions_.size(), std::numeric_limits<double>::quiet_NaN());
  std::vector<int> todo;
  for (size_t b = 0; b < sessions_.size(); ++b)
    if (active_[b]) todo.push_back(static_cast<int>(b));
  const int n = static_cast<int>(todo.size());
  const int workers = std::min(workers_, n);
  if (workers <= 1) {
    for (int b : todo) loss[b] = sessions_[b]->run(steps, lr);
    return loss;
  }
  // OpenBLAS's own threads would compete with the members' (and a member switching its thread count would race).
  const int blas_threads = openblas_get_num_threads();
  if (blas_threads != 1) openblas_set_num_threads(1);
  std::vector<std::exception_ptr> errors(n);
#pragma omp parallel for num_threads(workers) schedule(dynamic, 1)
  for (int i = 0; i < n; ++i) {
    try {
      loss[todo[i]] = sessions_[todo[i]]->run(steps, lr);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  }
  if (blas_threads != 1) openblas_set_num_threads(blas_threads);
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return loss;
}

std::unique_ptr<LbfgsOps> MemberBatchTrainSession::lbfgs_ops(int params, int history) {
  if (size() == 1)
    if (std::unique_ptr<LbfgsOps> own = sessions_[0]->lbfgs_ops(params, history)) return own;
  return BatchTrainSession::lbfgs_ops(params, history);
}

}  // namespace pinntk
