#include "host/work_progress.hpp"

#include <chrono>  // std::chrono::steady_clock
#include <cstdio>  // std::snprintf
#include <mutex>   // std::mutex, std::lock_guard

namespace pinntk {
namespace {

std::mutex g_mutex;
std::function<void(const std::string&)> g_sink;
std::chrono::steady_clock::time_point g_start, g_last;

// Whether a line is due at `now`; the caller holds g_mutex.
bool due(std::chrono::steady_clock::time_point now) { return g_sink && now - g_last >= std::chrono::seconds(5); }

}  // namespace

void set_work_progress_sink(std::function<void(const std::string&)> sink) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_sink = std::move(sink);
  g_start = g_last = std::chrono::steady_clock::now();
}

bool work_progress_due() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return due(std::chrono::steady_clock::now());
}

void work_progress(const char* what, long done, long total) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (!due(now)) return;
  g_last = now;
  const double s = std::chrono::duration<double>(now - g_start).count();
  char line[256];
  if (total > 0)
    std::snprintf(line, sizeof line, "%s: %ld of %ld (%.0f%%), %.0f s", what, done, total, 100.0 * done / total, s);
  else
    std::snprintf(line, sizeof line, "%s: %ld, %.0f s", what, done, s);
  g_sink(line);
}

}  // namespace pinntk
