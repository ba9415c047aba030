#include "host/io/files.hpp"

#include <fcntl.h>     // open, O_*
#include <sys/stat.h>  // fstat, S_ISREG
#include <unistd.h>    // read, write, close, fsync, unlink, getpid

#include <cerrno>     // errno
#include <cstdio>     // std::rename
#include <cstring>    // std::strerror
#include <stdexcept>  // std::runtime_error

#include "common/errors.hpp"  // UsageError

namespace pinntk {
namespace {

std::string reason() { return std::strerror(errno); }

// Closes the descriptor on every path out of a scope.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

std::string read_regular_file(const std::string& path, const std::string& what, size_t max_bytes) {
  Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};  // O_NONBLOCK: a FIFO must not hang the open
  if (f.fd < 0) throw UsageError(what + " " + path + ": cannot open for reading (" + reason() + ")");
  struct stat st {};
  if (fstat(f.fd, &st) != 0) throw UsageError(what + " " + path + ": " + reason());
  if (!S_ISREG(st.st_mode)) throw UsageError(what + " " + path + ": not a regular file");
  if (static_cast<size_t>(st.st_size) > max_bytes)
    throw UsageError(what + " " + path + ": " + std::to_string(st.st_size) + " bytes, more than the limit of " +
                     std::to_string(max_bytes));
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t got = read(f.fd, &text[done], text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw UsageError(what + " " + path + ": read failed (" + reason() + ")");
    if (got == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(got);
  }
  text.resize(done);
  return text;
}

void write_new_file(const std::string& path, const std::string& bytes) {
  Fd f{open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)};
  if (f.fd < 0) throw std::runtime_error("cannot create " + path + ": " + reason());
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t put = write(f.fd, bytes.data() + done, bytes.size() - done);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      const std::string why = put < 0 ? reason() : "no progress";
      unlink(path.c_str());
      throw std::runtime_error("cannot write " + path + ": " + why);
    }
    done += static_cast<size_t>(put);
  }
  // A full disk can show only here (delayed allocation): sync before the file counts as written.
  if (fsync(f.fd) != 0 || close(f.fd) != 0) {
    const std::string why = reason();
    f.fd = -1;
    unlink(path.c_str());
    throw std::runtime_error("cannot write " + path + ": " + why);
  }
  f.fd = -1;
}

void replace_file(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT)  // a leftover of this pid, or a planted name: removed, not followed
    throw std::runtime_error("cannot remove " + tmp + ": " + reason());
  write_new_file(tmp, bytes);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = reason();
    unlink(tmp.c_str());
    throw std::runtime_error("cannot replace " + path + ": " + why);
  }
}

}  // namespace pinntk
