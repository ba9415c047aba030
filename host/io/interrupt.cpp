#include "host/io/interrupt.hpp"

#include <unistd.h>  // write, rmdir, access

#include <csignal>  // std::signal, std::raise, SIGINT, SIGTERM
#include <cstring>  // std::strlen, std::memcpy

namespace pinntk {
namespace {

// Fixed storage: a handler may not allocate. Longer paths are not removed (nor named).
constexpr int kFolders = 16;
constexpr size_t kPath = 4096;
char g_folders[kFolders][kPath];
volatile sig_atomic_t g_count = 0;
char g_resume[kPath];
volatile sig_atomic_t g_committed = 0;

void put(const char* s) {
  const ssize_t n = write(2, s, std::strlen(s));
  static_cast<void>(n);
}

extern "C" void on_signal(int sig) {
  put(sig == SIGINT ? "\npinntk: interrupted (SIGINT)" : "\npinntk: terminated (SIGTERM)");
  if (g_resume[0] != '\0' && access(g_resume, F_OK) == 0) {
    put("; the last checkpoint is in ");
    put(g_resume);
    put(": continue with the same flags and --resume\n");
  } else {
    put(g_committed ? "\n" : "; no result was written\n");
  }
  for (int i = g_count - 1; i >= 0; --i) rmdir(g_folders[i]);  // fails, harmlessly, on a folder that is not empty
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void copy(char* dst, const std::string& src) {
  if (src.size() >= kPath) {
    dst[0] = '\0';
    return;
  }
  std::memcpy(dst, src.c_str(), src.size() + 1);
}

}  // namespace

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

void interrupt_remove_if_empty(const std::vector<std::string>& folders) {
  g_count = 0;
  g_committed = folders.empty() ? 1 : 0;
  int n = 0;
  for (const auto& f : folders) {
    if (n == kFolders || f.size() >= kPath) break;
    copy(g_folders[n++], f);
  }
  g_count = n;
}

void interrupt_resume_file(const std::string& path) {
  g_resume[0] = '\0';
  copy(g_resume, path);
}

}  // namespace pinntk
