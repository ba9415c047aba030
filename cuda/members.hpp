// Members: which networks of a batch a launch serves (plain C++, for the launchers and the device code alike).
#pragma once

namespace pinntk {

// The members of a batch of networks of one shape that a launch serves (BatchTrainSession, host/backend.hpp):
// members first .. first + count - 1, one slice of the grid's y dimension each. A launcher takes member 0's buffers,
// the members' slices following one another: member b's parameters, Adam moments and gradient at b P, its partials
// at b blocks P and b blocks (GradientWorkspace), its loss and Adam step count at b, its residuals at b n, and its
// rows at b n rows unless shared_rows (one set of n rows read by every member). Where active is not null (a device
// array of one int per member) a member whose flag is 0 is skipped: its blocks return before they touch anything.
// The default, member 0 alone, is a single network: the offsets are all 0.
struct Members {
  int first = 0;
  int count = 1;
  const int* active = nullptr;
  bool shared_rows = false;
};

}  // namespace pinntk
