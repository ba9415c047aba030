// Safe file primitives for everything pinntk reads and writes: bounded reads of regular files only, and writes
// through temporary files that are created exclusively (never through a planted symlink) and renamed into place.
#pragma once

#include <cstddef>  // size_t
#include <string>   // std::string

namespace pinntk {

// The whole content of a regular file of at most max_bytes; UsageError naming `what` otherwise (a device such as
// /dev/zero, a folder, a missing or oversized file).
std::string read_regular_file(const std::string& path, const std::string& what, size_t max_bytes);

// Creates `path` exclusively (O_EXCL | O_NOFOLLOW: an existing name, symlink or not, is an error), writes and
// syncs `bytes`; on any failure removes what it created and throws std::runtime_error with the reason.
void write_new_file(const std::string& path, const std::string& bytes);

// Replaces `path` by a complete file holding `bytes`: written to a fresh temporary beside it, then renamed over it
// (a reader sees the old file or the new one, never a part). A leftover temporary of the same name, or a symlink
// planted there, is removed first, never followed. Throws std::runtime_error and leaves no temporary on failure.
void replace_file(const std::string& path, const std::string& bytes);

}  // namespace pinntk
