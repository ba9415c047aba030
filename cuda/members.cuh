// The device side of a batched launch (Members, cuda/members.hpp): which member a block serves, and its rows
// within the members' concatenated rows. Every kernel that serves a batch calls member_of first, before any barrier:
// an inactive member's blocks return whole.
#pragma once

#include <cstddef>  // size_t

#include "cuda/members.hpp"    // Members
#include "cuda/tile_plan.hpp"  // DeviceRows

namespace pinntk {

// The member b = first + blockIdx.y of the block, or -1 when its active flag is 0 (the block has nothing to do).
__device__ inline int member_of(const Members& mb) {
  const int b = mb.first + static_cast<int>(blockIdx.y);
  if (mb.active != nullptr && mb.active[b] == 0) return -1;
  return b;
}

// Member b's rows: the n rows at b n (x, alpha and beta m numbers per row), or row 0 on when the rows are shared.
template <class Real>
__device__ inline DeviceRows<Real> member_rows(DeviceRows<Real> rows, const Members& mb, int b, int m) {
  if (mb.shared_rows) return rows;
  const size_t k = static_cast<size_t>(b) * rows.n;
  rows.x += k * m;
  rows.alpha += k * m;
  rows.beta += k * m;
  rows.gamma += k;
  rows.f += k;
  rows.w += k;
  if (rows.dirs != nullptr) rows.dirs += k * m * m;
  return rows;
}

}  // namespace pinntk
