// A batch of networks as one train_session per member (host/backend.hpp's BatchTrainSession): the default of every
// backend (all members on the backend itself, stepped in turn) and the CPU backend's (each member on a backend of its
// own, several members stepped at once on the OpenMP threads). Each member's arithmetic is its session's.
#pragma once

#include <memory>  // std::unique_ptr
#include <vector>  // std::vector

#include "host/backend.hpp"  // Backend, BatchTrainSession, TrainSession

namespace pinntk {

class MemberBatchTrainSession final : public BatchTrainSession {
 public:
  // Member b trains nets[b] on pts[b] through backends[b]->train_session (owned: backends the batch made for its
  // members, kept alive as long as it). With workers > 1, run() steps up to `workers` members at once, one OpenMP
  // thread each; a member's own parallel regions then run on its one thread, OpenBLAS single-threaded.
  MemberBatchTrainSession(std::vector<Backend*> backends, std::vector<std::unique_ptr<Backend>> owned,
                          const std::vector<Mlp>& nets, const std::vector<PointSet>& pts, const AdamConfig& cfg,
                          int workers);
  int size() const override { return static_cast<int>(sessions_.size()); }
  std::vector<double> run(long steps, double lr) override;
  TrainSession& member(int b) override { return *sessions_[index(b)]; }
  void set_active(int b, bool active) override { active_[index(b)] = active; }
  // One member: its session's own operations where it has them (on the device for a CUDA session: the arithmetic of
  // a device batch's member), else the host's.
  std::unique_ptr<LbfgsOps> lbfgs_ops(int params, int history) override;

 private:
  size_t index(int b) const;                     // std::out_of_range outside [0, size())
  std::vector<std::unique_ptr<Backend>> owned_;  // declared before the sessions: outlives them
  const std::vector<PointSet> pts_;              // the sessions may hold references into it: never resized
  std::vector<std::unique_ptr<TrainSession>> sessions_;
  std::vector<bool> active_;
  int workers_;
};

}  // namespace pinntk
