// Host-side helpers of the CUDA backend that plain C++ (the benchmarks) can use too: copies between host vectors
// and device buffers, a PointSet's rows on the device, and the loss and gradient without an Adam update.
#pragma once

#include <cuda_runtime.h>  // cudaStream_t

#include <algorithm>  // std::copy
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::to_string
#include <vector>     // std::vector

#include "common/point_set.hpp"    // PointSet
#include "common/span.hpp"         // span
#include "cuda/device_buffer.cuh"  // DeviceBuffer, StreamOrder
#include "cuda/loss_gradient.hpp"  // GradientWorkspace, launch_gradient_partials
#include "cuda/reduce.hpp"         // launch_reduce_gradient
#include "cuda/tile_plan.hpp"      // DeviceRows

namespace pinntk::cudaimpl {

template <class Real>
std::vector<Real> cast_vector(const std::vector<double>& v) {
  return std::vector<Real>(v.begin(), v.end());
}
template <class Real>
DeviceBuffer<Real> to_device(const std::vector<double>& v, StreamOrder o) {
  return DeviceBuffer<Real>(cast_vector<Real>(v), o);
}
template <class Real>
DeviceBuffer<Real> to_device(span<const double> v, StreamOrder o) {
  return DeviceBuffer<Real>(std::vector<Real>(v.begin(), v.end()), o);
}
template <class Real>
void to_host(const DeviceBuffer<Real>& d, span<double> out) {
  if (out.size() < d.size())
    throw std::invalid_argument("to_host: " + std::to_string(d.size()) + " values into " + std::to_string(out.size()));
  std::vector<Real> h;
  d.download(h);
  std::copy(h.begin(), h.end(), out.begin());
}

// The rows of a PointSet on the device: x, alpha and beta p.dim numbers per row (row-major), gamma, f, w one; the
// kernels take the dimension from the network (NetDesc::n_in()), which the backend checks against dim.
template <class Real>
struct DevicePoints {
  DevicePoints(const PointSet& p, StreamOrder o)
      : x(to_device<Real>(p.x, o)),
        alpha(to_device<Real>(p.alpha, o)),
        beta(to_device<Real>(p.beta, o)),
        gamma(to_device<Real>(p.gamma, o)),
        f(to_device<Real>(p.f, o)),
        w(to_device<Real>(p.w, o)),
        dirs(to_device<Real>(p.dirs, o)),
        n(p.size()),
        dim(p.dim) {}
  DeviceRows<Real> view() const {
    return {x.data(), alpha.data(), beta.data(), gamma.data(), f.data(), w.data(), n, dirs.data()};
  }
  DeviceBuffer<Real> x, alpha, beta, gamma, f, w, dirs;  // dirs empty (null) for the axes
  int n, dim;
};

// L = 1/2 sum w r^2 at theta into *loss, its gradient into grad and the residuals into r when r is not null: the
// loss-gradient kernel (per-block partials into ws, planned for these rows), then their reduction in a fixed order,
// without an Adam update. For the members mb of a batch, each member's at its offsets (Members).
template <class Real>
void enqueue_loss_gradient(const Real* theta, DeviceRows<Real> rows, const GradientWorkspace<Real>& ws, Real* r,
                           Real* grad, double* loss, cudaStream_t s, const Members& mb = Members{}) {
  launch_gradient_partials<Real>(theta, rows, ws, r, nullptr, s, mb);
  launch_reduce_gradient<Real>(ws, grad, loss, s, mb);
}

}  // namespace pinntk::cudaimpl
