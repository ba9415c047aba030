#include "host/memory.hpp"

#include <cctype>   // std::tolower
#include <cerrno>   // errno
#include <cmath>    // std::isfinite, std::pow
#include <cstdio>   // std::snprintf
#include <cstdlib>  // std::strtod
#include <fstream>  // std::ifstream
#include <limits>   // std::numeric_limits
#include <sstream>  // std::istringstream

#include "common/errors.hpp"  // UsageError

namespace pinntk {
namespace {

// A cgroup statistic of memory.stat (e.g. "inactive_file" on v2, "total_inactive_file" on v1), or 0 when unreadable.
uint64_t cgroup_stat(const std::string& stat_file, const char* key) {
  std::ifstream in(stat_file);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

// A cgroup's memory limit and what of its usage the kernel cannot reclaim: the usage less the file cache (active and
// inactive), which it drops before it refuses an allocation (a process that has read large libraries, PyTorch's say,
// leaves the usage near the limit). limit is 0 when unlimited or unreadable.
struct CgroupMemory {
  uint64_t limit = 0, unreclaimable = 0;
};
CgroupMemory cgroup_memory(const std::string& limit_file, const std::string& usage_file, const std::string& stat_file,
                           const char* inactive_key, const char* active_key) {
  std::ifstream lim(limit_file), use(usage_file);
  std::string l;
  uint64_t u = 0;
  if (!(lim >> l) || l == "max" || !(use >> u)) return {};
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(l.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v == 0 || v >= (uint64_t{1} << 62)) return {};  // v1: "unlimited" is ~2^63
  const uint64_t cache = cgroup_stat(stat_file, inactive_key) + cgroup_stat(stat_file, active_key);
  return {v, u > cache ? u - cache : 0};
}

}  // namespace

uint64_t available_memory_bytes_under(const std::string& root) {
  constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
  uint64_t avail = kNone, total = kNone;
  std::ifstream info(root + "/proc/meminfo");
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream in(line);
    std::string key;
    uint64_t kb = 0;
    if (!(in >> key >> kb)) continue;
    if (key == "MemAvailable:") avail = kb * 1024;
    if (key == "MemTotal:") total = kb * 1024;
  }
  // A cgroup lowers the room only where its limit is below the machine's memory: a limit at or above it (a virtual
  // machine's or a sandbox's root, whose usage may count memory the kernel accounts elsewhere) constrains nothing
  // that MemAvailable does not already say.
  const std::string v2 = root + "/sys/fs/cgroup/", v1 = root + "/sys/fs/cgroup/memory/";
  for (const CgroupMemory& cg :
       {cgroup_memory(v2 + "memory.max", v2 + "memory.current", v2 + "memory.stat", "inactive_file", "active_file"),
        cgroup_memory(v1 + "memory.limit_in_bytes", v1 + "memory.usage_in_bytes", v1 + "memory.stat",
                      "total_inactive_file", "total_active_file")})
    if (cg.limit != 0 && cg.limit < total)
      avail = std::min(avail, cg.limit > cg.unreclaimable ? cg.limit - cg.unreclaimable : 0);
  return avail;
}

uint64_t available_memory_bytes() { return available_memory_bytes_under(""); }

uint64_t parse_bytes(const std::string& text, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  // Binary units, in any case, with or without "B" or "iB": 8G, 8g, 8GB, 8gb and 8GiB are all 8 x 2^30 bytes.
  double scale = 1.0;
  std::string unit = end ? std::string(end) : "";
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.size() >= 2 && unit.compare(unit.size() - 2, 2, "ib") == 0) {
    unit.resize(unit.size() - 2);
    if (unit.empty()) unit = "?";  // "iB" alone names no unit
  } else if (!unit.empty() && unit.back() == 'b') {
    unit.pop_back();
  }
  const std::string units = "kmgt";
  const auto u = unit.size() == 1 ? units.find(unit[0]) : std::string::npos;
  if (u != std::string::npos)
    scale = std::pow(1024.0, static_cast<double>(u + 1));
  else if (!unit.empty())
    throw UsageError(what + ": cannot read '" + text + "' as a size (e.g. 8G, 512M; binary units)");
  const double bytes = v * scale;
  if (text.empty() || end == text.c_str() || errno != 0 || !std::isfinite(bytes) || !(bytes >= 1.0) || bytes > 1.8e19)
    throw UsageError(what + ": cannot read '" + text + "' as a positive size (e.g. 8G, 512M)");
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
  } else if (bytes >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f kB", bytes / 1e3);
  }
  return buf;
}

void require_memory(double need, uint64_t budget, const std::string& command, const std::string& what,
                    const std::string& hint) {
  const bool given = budget != 0;
  const double have = static_cast<double>(given ? budget : available_memory_bytes());
  if (need <= have) return;
  throw UsageError(command + ": needs about " + format_bytes(need) + " of memory (" + what + "), more than the " +
                   format_bytes(have) + (given ? " of --memory-limit" : " available") + "; " + hint);
}

}  // namespace pinntk
