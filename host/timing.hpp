// seconds_since: wall-clock seconds on the steady clock since t0 (run times in summaries and history rows).
#pragma once

#include <chrono>  // std::chrono::steady_clock

namespace pinntk {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace pinntk
