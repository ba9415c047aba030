// Memory budgets: what a run may allocate (the machine's available memory, its cgroup limit, or --memory-limit)
// and the check that refuses a run whose estimate exceeds it, before any allocation.
#pragma once

#include <cstdint>  // uint64_t
#include <string>   // std::string

namespace pinntk {

// Bytes this process can still allocate: MemAvailable of /proc/meminfo, lowered to the room left under the cgroup's
// limit where one is set (the limit less the usage without the file cache). A very large number where
// neither can be read.
uint64_t available_memory_bytes();
// The same, reading proc/meminfo and sys/fs/cgroup under root ("" for the machine's; a folder of such files in tests).
uint64_t available_memory_bytes_under(const std::string& root);

// "8G", "512M", "1.5G", "2000000000" (bytes; K, M, G, T are powers of 1024). Throws UsageError naming `what`.
uint64_t parse_bytes(const std::string& text, const std::string& what);

// "3.2 GB" (powers of 10, for messages).
std::string format_bytes(double bytes);

// Throws UsageError "<command>: needs about X (<what>), more than the Y available; <hint>" when need > budget.
// budget 0 means available_memory_bytes().
void require_memory(double need, uint64_t budget, const std::string& command, const std::string& what,
                    const std::string& hint);

}  // namespace pinntk
